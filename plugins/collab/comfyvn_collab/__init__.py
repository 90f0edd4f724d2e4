"""ComfyVN live collaboration: one Yjs document per scene, shared by y-websocket and JSON-protocol clients."""

from __future__ import annotations
