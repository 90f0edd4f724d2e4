"""ComfyVN ComfyUI bridge."""
