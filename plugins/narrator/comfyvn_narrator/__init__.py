"""ComfyVN narrator: Observe -> Propose -> Apply sessions, prompt packs, and model help in the pipeline."""
