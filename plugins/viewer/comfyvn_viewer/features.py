"""The viewer's feature flags and event names, in one place so the player, Mini-VN and native code agree."""

from __future__ import annotations

from typing import Any

__all__ = ["FLAG_MINI", "FLAG_WEB", "THUMBNAIL_EVENT", "THUMBNAIL_SCHEMA"]

FLAG_WEB = "enable_viewer_webmode"
FLAG_MINI = "enable_mini_vn"
THUMBNAIL_EVENT = "on_thumbnail_captured"

_ID = {"type": "string", "minLength": 1, "maxLength": 255}
THUMBNAIL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["project", "scene", "node", "mini_digest", "thumbnail_url", "width", "height"],
    "properties": {
        "project": _ID,
        "scene": _ID,
        "node": _ID,
        "pov": {"type": ["string", "null"], "maxLength": 255},
        "seed": {"type": "integer"},
        "mini_digest": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "thumbnail_url": {"type": "string", "minLength": 1},
        "width": {"type": "integer", "minimum": 1},
        "height": {"type": "integer", "minimum": 1},
        "cached": {"type": "boolean"},
    },
}
