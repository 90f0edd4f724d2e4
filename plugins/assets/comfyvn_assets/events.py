"""The registry's events: the modder events it declares on the kernel bus (with payload schemas) and the
registry's own listeners (``AssetRegistry.add_hook``, the product's ``asset_registered`` style names)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from comfyvn.errors import Invalid

__all__ = ["EVENTS", "HOOK_EVENTS", "MODDER_EVENTS", "Hooks"]

log = structlog.get_logger("comfyvn.assets")

_ASSET: dict[str, Any] = {
    "type": "object",
    "required": ["uid", "type", "path", "sha256", "size", "tags", "metadata", "provenance", "pinned", "refs"],
    "properties": {
        "uid": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
        "type": {"type": "string"},
        "path": {"type": "string"},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "size": {"type": "integer", "minimum": 0},
        "width": {"type": ["integer", "null"]},
        "height": {"type": ["integer", "null"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "license": {"type": ["string", "null"]},
        "source": {"type": ["string", "null"]},
        "metadata": {"type": "object"},
        "provenance": {"type": "object"},
        "pinned": {"type": "boolean"},
        "refs": {"type": "array", "items": {"type": "string"}},
        "previous_sha256": {"type": ["string", "null"]},
        "reason": {"type": "string"},
    },
}
_SIDECAR: dict[str, Any] = {
    "type": "object",
    "required": ["uid", "path", "sidecar", "sha256"],
    "properties": {
        "uid": {"type": "string"},
        "path": {"type": "string", "description": "the asset file, relative to the assets root"},
        "sidecar": {"type": "string", "description": "the sidecar file, relative to the assets root"},
        "sha256": {"type": "string"},
    },
}
# modder event -> (description, schema)
EVENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "on_asset_registered": (
        "An asset was registered or its content replaced (previous_sha256 is then the old content's digest).",
        _ASSET,
    ),
    "on_asset_saved": ("Legacy alias of on_asset_registered, emitted with the same payload.", _ASSET),
    "on_asset_meta_updated": ("An asset's tags, licence or metadata changed.", _ASSET),
    "on_asset_removed": ("An asset was removed (reason: removed, or gc when evicted by size).", _ASSET),
    "on_asset_sidecar_written": ("An asset's sidecar <file>.asset.json was (re)written.", _SIDECAR),
}
# registry hook name -> the modder events it maps to
HOOK_EVENTS: dict[str, tuple[str, ...]] = {
    "asset_registered": ("on_asset_registered", "on_asset_saved"),
    "asset_meta_updated": ("on_asset_meta_updated",),
    "asset_removed": ("on_asset_removed",),
    "asset_sidecar_written": ("on_asset_sidecar_written",),
}
MODDER_EVENTS = tuple(EVENTS)

Emit = Callable[[str, Mapping[str, Any]], Any]
Listener = Callable[[dict[str, Any]], Any]


class Hooks:
    """Registry listeners per hook name, and delivery to them and to the kernel bus."""

    def __init__(self, emit: Emit | None) -> None:
        self._emit = emit
        self._lock = threading.Lock()
        self._listeners: dict[str, list[Listener]] = {name: [] for name in HOOK_EVENTS}

    def add(self, event: str, callback: Listener) -> Callable[[], None]:
        """Call ``callback(payload)`` after each ``event``; returns a function that removes it."""
        if event not in HOOK_EVENTS:
            raise Invalid(f"unknown registry event {event[:40]!r}", field="event", code="unknown_event")
        with self._lock:
            self._listeners[event] = [*self._listeners[event], callback]

        def remove() -> None:
            with self._lock:
                self._listeners[event] = [c for c in self._listeners[event] if c is not callback]

        return remove

    def counts(self) -> dict[str, int]:
        return {name: len(listeners) for name, listeners in self._listeners.items()}

    def fire(self, event: str, payload: dict[str, Any]) -> None:
        """Emit the modder events of ``event`` and call its listeners; a failing listener is logged."""
        if self._emit is not None:
            for name in HOOK_EVENTS[event]:
                self._emit(name, payload)
        for callback in self._listeners[event]:
            try:
                callback(dict(payload))
            except Exception:
                log.exception("asset registry listener failed", registry_event=event)
