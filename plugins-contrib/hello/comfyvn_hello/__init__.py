"""An example ComfyVN plugin, written exactly as a third-party modder would write one."""
