"""The collaboration plugin's flag, event and scope names, in one place so routes, rooms and docs agree."""

from __future__ import annotations

from typing import Any

__all__ = ["FLAG", "OPERATION_EVENT", "OPERATION_SCHEMA", "WRITE_SCOPE"]

FLAG = "enable_collaboration"
OPERATION_EVENT = "on_collab_operation"
# The scope a token needs to edit (reading a room needs any valid token off-loopback).
WRITE_SCOPE = "collab.write"

_ID = {"type": "string", "minLength": 1, "maxLength": 255}
OPERATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["room", "project", "scene", "source", "version"],
    "properties": {
        "room": {"type": "string", "minLength": 3, "maxLength": 511},
        "project": _ID,
        "scene": _ID,
        # "json": a batch of the original protocol's operations; "yjs": Yjs updates from y-websocket or
        # pycrdt clients, coalesced (one event per room per second at most while someone types).
        "source": {"enum": ["json", "yjs", "store"]},
        "actor": {"type": ["string", "null"], "maxLength": 255},
        "version": {"type": "integer", "minimum": 0},
        # Per JSON operation: {op_id, actor, clock, kind, payload, applied, version} (payloads are left out
        # of a very large batch). For "yjs" the list is empty and `updates` counts them.
        "operations": {"type": "array", "items": {"type": "object"}, "maxItems": 500},
        "updates": {"type": "integer", "minimum": 0},
    },
}
