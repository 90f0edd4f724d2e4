"""Point of view: the active POV with its history, fork slot names, and POV candidates of a scene.

The manager keeps the original's semantics (``narrator`` by default, ``set`` with no POV falls
back to it, forks count per ``(slot, pov)``: ``slot__pov_alice``, then ``slot__pov_alice_2``…) and
persists its small state atomically so fork names stay unique across restarts.

Only what can be written and read back is stored: a POV id is valid Unicode of at most `MAX_POV_LENGTH`
characters, the history keeps the last `MAX_HISTORY` POVs. A state file that cannot be used (not UTF-8,
nested too deep, a wrong shape) is moved aside to ``pov.json.damaged-<time>`` and reported in the log,
and the manager starts from the default: one bad file must not break every POV route.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog
from comfyvn.errors import ComfyVNError, Invalid, TooLarge
from comfyvn.paths import atomic_write_text
from comfyvn.wire import loads

from .project import DEFAULT_POV, Project
from .saves import MAX_SLOT, normalize_slot

__all__ = ["MAX_FORKS", "MAX_HISTORY", "MAX_POV_LENGTH", "PovManager", "candidates"]

log = structlog.get_logger("comfyvn.scenario.pov")
MAX_POV_LENGTH = 200
MAX_HISTORY = 100
MAX_FORKS = 10_000


def _pov_id(value: Any, field: str = "pov") -> str:
    """``value`` as a storable POV id, or `Invalid` / `TooLarge` naming ``field``."""
    if not isinstance(value, str):
        raise Invalid("pov must be a string", field=field, code="invalid_pov")
    if len(value) > MAX_POV_LENGTH:
        raise TooLarge(f"pov is longer than {MAX_POV_LENGTH} characters", field=field, code="invalid_pov")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid("pov is not valid Unicode (a lone surrogate)", field=field, code="invalid_pov") from None
    return value


class _Damaged(ValueError):
    """The state file cannot be used as it is."""


class PovManager:
    """Active POV, its history and fork counters; ``path`` (optional) is where the state persists."""

    def __init__(self, path: Path | None = None, *, default: str = DEFAULT_POV) -> None:
        self.path = path
        self.default = default
        self._lock = threading.Lock()
        self._current = default
        self._history: list[str] = []
        self._forks: dict[str, int] = {}
        if path is not None and path.is_file():
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            current, history, forks = self._parse(path.read_bytes())
        except OSError as exc:
            log.error("POV state unreadable; starting from the default", file=path.name, error=exc.strerror)
            return
        except (ComfyVNError, _Damaged) as exc:
            kept = self._set_aside(path)
            reason = exc.message if isinstance(exc, ComfyVNError) else str(exc)
            log.error("POV state damaged; kept aside, starting from the default", kept=kept, reason=reason)
            return
        self._current, self._history, self._forks = current, history, forks

    @staticmethod
    def _parse(data: bytes) -> tuple[str, list[str], dict[str, int]]:
        document = loads(data, field="pov.json")
        if not isinstance(document, dict):
            raise _Damaged("not a JSON object")
        history, forks = document.get("history", []), document.get("forks", {})
        if not isinstance(history, list) or not isinstance(forks, dict):
            raise _Damaged("history must be a list and forks an object")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in forks.values()):
            raise _Damaged("fork counters must be integers")
        try:
            current = _pov_id(document.get("pov"), "pov.json")
            entries = [_pov_id(entry, "pov.json") for entry in history]
        except ComfyVNError as exc:
            raise _Damaged(exc.message) from None
        return current, entries[-MAX_HISTORY:], dict(forks)

    @staticmethod
    def _set_aside(path: Path) -> str | None:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        for attempt in range(100):
            target = path.with_name(f"{path.name}.damaged-{stamp}" + (f"-{attempt}" if attempt else ""))
            if target.exists():
                continue
            try:
                os.replace(path, target)
            except OSError:
                return None  # left in place: the next write replaces it, as before
            return target.name
        return None

    def _persist(self) -> None:
        if self.path is not None:
            state = {"pov": self._current, "history": self._history, "forks": self._forks}
            atomic_write_text(self.path, json.dumps(state, indent=2, sort_keys=True) + "\n")

    def snapshot(self) -> dict[str, Any]:
        """``{pov, history}``."""
        with self._lock:
            return {"pov": self._current, "history": list(self._history)}

    def set(self, pov: Any) -> dict[str, Any]:
        """Switch POV (``None``/empty -> the default); the previous one is appended to the history, which
        keeps the last `MAX_HISTORY`. A POV that is not a string, too long or not valid Unicode raises."""
        if pov is not None:
            _pov_id(pov)
        new = pov.strip() if pov and pov.strip() else self.default
        with self._lock:
            if new != self._current:
                self._history.append(self._current)
                del self._history[:-MAX_HISTORY]
                self._current = new
                self._persist()
            return {"pov": self._current, "history": list(self._history)}

    def fork(self, slot: Any, pov: Any = None) -> str:
        """The next save-slot name for ``slot`` seen from ``pov`` (default: the active POV). At most
        `MAX_FORKS` distinct ``(slot, pov)`` counters are kept; a new one past that raises `TooLarge`."""
        if pov is not None:
            _pov_id(pov)
        base = normalize_slot(slot)
        with self._lock:
            pov_id = (pov or "").strip() or self._current
            pov_part = normalize_slot(pov_id, field="pov").replace("-", "_")
            key = f"{base}\x00{pov_part}"
            if key not in self._forks and len(self._forks) >= MAX_FORKS:
                raise TooLarge(
                    f"more than {MAX_FORKS} forked slots; reuse a slot name", field="slot", code="too_many_forks"
                )
            count = self._forks.get(key, 0) + 1
            self._forks[key] = count
            self._persist()
        suffix = f"__pov_{pov_part}" + (f"_{count}" if count > 1 else "")
        return base[: max(1, MAX_SLOT - len(suffix))] + suffix


def candidates(source: Mapping[str, Any] | Project) -> list[dict[str, str]]:
    """POV candidates ``[{id, name, source}]`` of a scene or project, first source winning per id:
    project POVs and cast, a stand-alone scene's ``cast``, node ``pov`` tags and speakers, node
    ``metadata.pov``/``speaker_id``, and choice ``visible_to`` ids."""
    found: dict[str, dict[str, str]] = {}
    names: dict[str, str] = {}

    def add(entry: Any, name: Any, origin: str) -> None:
        if isinstance(entry, str) and entry.strip() and entry.strip() not in found:
            key = entry.strip()
            found[key] = {"id": key, "name": str(name or names.get(key) or key), "source": origin}

    scenes: list[Mapping[str, Any]]
    if isinstance(source, Project):
        for char_id, char in source.characters.items():
            if isinstance(char, Mapping):
                names[char_id] = str(char.get("name") or char_id)
        for pov in source.povs:
            character = pov.get("character")
            character_name = names.get(character) if isinstance(character, str) else None
            add(pov.get("id"), pov.get("name") or character_name, "pov")
        for char_id in source.characters:
            add(char_id, names.get(char_id), "cast")
        scenes = [s for s in source.scenes.values() if isinstance(s, Mapping)]
    else:
        scenes = [source]
    for scene in scenes:
        cast = scene.get("cast")
        for member in cast if isinstance(cast, list) else []:
            if isinstance(member, Mapping):
                add(member.get("id"), member.get("name"), "cast")
        add(scene.get("default_pov"), None, "scene")
        nodes = scene.get("nodes")
        for node in nodes if isinstance(nodes, list) else []:
            if not isinstance(node, Mapping):
                continue
            meta = node.get("metadata")
            if isinstance(meta, Mapping):
                add(meta.get("pov"), meta.get("pov_name"), "node.meta")
                add(meta.get("speaker_id"), meta.get("speaker_name"), "node.meta")
            add(node.get("pov"), node.get("pov_name"), "node")
            add(node.get("speaker"), None, "node")
            choices = node.get("choices")
            for choice in choices if isinstance(choices, list) else []:
                visible = choice.get("visible_to") if isinstance(choice, Mapping) else None
                for pov_id in [visible] if isinstance(visible, str) else visible if isinstance(visible, list) else []:
                    add(pov_id, None, "choice.visible_to")
    return list(found.values())
