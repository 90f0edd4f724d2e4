"""Save slots: ``<data root>/saves/<slot>.json``, written atomically, named so no path can escape.

The record shape is the original's (comfyvn-wire.md "Saves"): ``vars``, ``node_pointer`` and
``seed`` are required, any extra key is kept and echoed. `save_payload` / `state_from_save` map a
runner state to a save and back so that restoring and stepping equals never having saved.
"""

from __future__ import annotations

import re
import stat
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from comfyvn.errors import ComfyVNError, NotFound, Unprocessable
from comfyvn.paths import atomic_write_text, safe_join
from comfyvn.wire import dumps, loads

from .rng import Rng
from .runner import RunState, Scenario, state_from_wire

__all__ = ["SaveStore", "normalize_slot", "save_payload", "state_from_save"]

MAX_SLOT = 80
REQUIRED = ("vars", "node_pointer", "seed")
_OUTSIDE = re.compile(r"[^a-z0-9_-]")


def normalize_slot(raw: Any, *, field: str = "slot") -> str:
    """Lower-case, spaces -> ``-``, anything outside ``[a-z0-9_-]`` -> ``-``, trimmed of ``-_``,
    at most 80 characters. An empty result is a 400 naming ``field``."""
    if not isinstance(raw, str):
        raise ComfyVNError("slot must be a string", field=field, code="invalid_slot")
    slot = _OUTSIDE.sub("-", raw.strip().lower().replace(" ", "-")).strip("-_")
    slot = slot[:MAX_SLOT].strip("-_")
    if not slot:
        raise ComfyVNError(
            f"slot {raw!r} has no usable characters (allowed: a-z 0-9 _ -)", field=field, code="invalid_slot"
        )
    return slot


class SaveStore:
    """The save folder. ``clock`` returns Unix seconds (injected so tests are deterministic)."""

    def __init__(self, root: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.root = Path(root)
        self.clock = clock

    def _path(self, slot: str) -> Path:
        return safe_join(self.root, f"{slot}.json", field="slot")

    def write(self, slot: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and store ``payload`` under the normalised ``slot``; returns the stored record."""
        if not isinstance(payload, Mapping):
            raise ComfyVNError("save body must be a JSON object", field="body", code="invalid_save")
        for key in REQUIRED:
            if key not in payload:
                raise ComfyVNError(f"save needs {key!r}", field=key, code="missing_field")
        if not isinstance(payload["vars"], Mapping):
            raise ComfyVNError("vars must be an object", field="vars", code="invalid_save")
        name = normalize_slot(slot)
        now = self.clock()
        saved_at = int(now * 1000)
        record = {key: value for key, value in payload.items() if key not in ("slot", "saved_at", "saved_at_iso")}
        record = {
            "slot": name,
            "saved_at": saved_at,
            "saved_at_iso": datetime.fromtimestamp(saved_at // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            **record,
        }
        try:
            text = dumps(record, indent=2) + "\n"
        except ComfyVNError as exc:  # nothing is stored that could not be read back and sent again
            raise ComfyVNError(f"save cannot be stored: {exc.message}", field="body", code="invalid_save") from None
        except TypeError as exc:
            raise ComfyVNError(f"save is not JSON-serialisable: {exc}", field="body", code="invalid_save") from None
        atomic_write_text(self._path(name), text)
        return record

    def read(self, slot: str) -> dict[str, Any]:
        """The stored record, or `NotFound` (404)."""
        name = normalize_slot(slot)
        path = self._path(name)
        try:
            data = loads(path.read_bytes(), field="save")
        except FileNotFoundError:
            raise NotFound(f"no save in slot {name!r}", field="slot", code="save_not_found") from None
        except OSError as exc:
            raise Unprocessable(
                f"save {name!r} cannot be read: {exc.strerror}", field="slot", code="corrupt_save"
            ) from None
        except ComfyVNError as exc:
            raise Unprocessable(
                f"save {name!r} cannot be read: {exc.message}", field="slot", code="corrupt_save"
            ) from None
        if not isinstance(data, dict):
            raise Unprocessable(f"save {name!r} is not a JSON object", field="slot", code="corrupt_save")
        return data

    def delete(self, slot: str) -> str:
        """Remove a slot; `NotFound` when it does not exist. Returns the normalised name."""
        name = normalize_slot(slot)
        try:
            self._path(name).unlink()
        except FileNotFoundError:
            raise NotFound(f"no save in slot {name!r}", field="slot", code="save_not_found") from None
        return name

    def list(self) -> list[dict[str, Any]]:
        """``[{slot, saved_at, saved_at_iso, size_bytes}]`` newest first (ties by slot name). Only regular
        files directly in the folder count: a symlink (which could lead anywhere) is never followed."""
        if not self.root.is_dir():
            return []
        entries: list[dict[str, Any]] = []
        for path in self.root.glob("*.json"):
            if path.name.startswith("."):
                continue  # an in-flight atomic write's temporary file
            try:
                info = path.lstat()
                if not stat.S_ISREG(info.st_mode):
                    continue
                data = loads(path.read_bytes(), field="save")
                size = info.st_size
            except (OSError, ComfyVNError):
                continue  # unreadable slots are skipped in the listing; GET names the problem
            if not isinstance(data, dict):
                continue
            saved_at = data.get("saved_at") if isinstance(data.get("saved_at"), int) else 0
            entries.append(
                {"slot": path.stem, "saved_at": saved_at, "saved_at_iso": data.get("saved_at_iso"), "size_bytes": size}
            )
        entries.sort(key=lambda e: (-e["saved_at"], e["slot"]))
        return entries


def save_payload(state: RunState, *, with_scene: bool = False) -> dict[str, Any]:
    """A save body for a runner state: the wire fields plus what the runner needs to continue."""
    wire = state.to_wire(with_scene=with_scene)
    return {
        "vars": wire["variables"],
        "node_pointer": {"scene_id": wire["scene_id"], "node": wire["current_node"]},
        "seed": wire["rng"],
        "history": wire["history"],
        "pov": wire["pov"],
        "finished": wire["finished"],
    }


def state_from_save(scenario: Scenario, record: Mapping[str, Any]) -> RunState:
    """Rebuild the runner state from a save made by `save_payload` (or a compatible client).

    ``node_pointer`` may be ``{scene_id, node}`` or a ``"scene_id:node_id"`` / ``"node_id"`` string;
    ``seed`` an rng object or an integer seed.
    """
    pointer = record.get("node_pointer")
    if isinstance(pointer, str):
        scene_id, sep, node = pointer.partition(":")
        pointer = {"scene_id": scene_id, "node": node} if sep else {"scene_id": None, "node": pointer}
    if not isinstance(pointer, Mapping):
        raise ComfyVNError(
            "node_pointer must be {scene_id, node} or a node id", field="node_pointer", code="invalid_save"
        )
    wire = {
        "scene_id": pointer.get("scene_id"),
        "current_node": pointer.get("node"),
        "variables": record.get("vars", {}),
        "history": record.get("history", []),
        "rng": Rng.from_wire(record.get("seed"), field="seed").to_wire(),
        "finished": record.get("finished", False),
        "pov": record.get("pov"),
    }
    return state_from_wire(scenario, wire, field="save")
