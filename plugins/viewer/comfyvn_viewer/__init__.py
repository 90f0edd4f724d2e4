"""ComfyVN viewer: the web player, Mini-VN thumbnails and native Ren'Py control for a project."""
