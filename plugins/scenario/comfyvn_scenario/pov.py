"""Point of view: the active POV with its history, fork slot names, and POV candidates of a scene.

The manager keeps the original's semantics (``narrator`` by default, ``set`` with no POV falls
back to it, forks count per ``(slot, pov)``: ``slot__pov_alice``, then ``slot__pov_alice_2``…) and
persists its small state atomically so fork names stay unique across restarts.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from comfyvn.errors import ComfyVNError
from comfyvn.paths import atomic_write_text

from .project import DEFAULT_POV, Project
from .saves import MAX_SLOT, normalize_slot

__all__ = ["PovManager", "candidates"]


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
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # a damaged state file is replaced on the next change
        if isinstance(data, dict) and isinstance(data.get("pov"), str):
            self._current = data["pov"]
            self._history = [h for h in data.get("history", []) if isinstance(h, str)]
            forks = data.get("forks", {})
            self._forks = {k: v for k, v in forks.items() if isinstance(v, int)} if isinstance(forks, dict) else {}

    def _persist(self) -> None:
        if self.path is not None:
            state = {"pov": self._current, "history": self._history, "forks": self._forks}
            atomic_write_text(self.path, json.dumps(state, indent=2, sort_keys=True) + "\n")

    def snapshot(self) -> dict[str, Any]:
        """``{pov, history}``."""
        with self._lock:
            return {"pov": self._current, "history": list(self._history)}

    def set(self, pov: Any) -> dict[str, Any]:
        """Switch POV (``None``/empty -> the default); the previous one is appended to the history."""
        if pov is not None and not isinstance(pov, str):
            raise ComfyVNError("pov must be a string", field="pov", code="invalid_pov")
        new = pov.strip() if pov and pov.strip() else self.default
        with self._lock:
            if new != self._current:
                self._history.append(self._current)
                self._current = new
                self._persist()
            return {"pov": self._current, "history": list(self._history)}

    def fork(self, slot: Any, pov: Any = None) -> str:
        """The next save-slot name for ``slot`` seen from ``pov`` (default: the active POV)."""
        if pov is not None and not isinstance(pov, str):
            raise ComfyVNError("pov must be a string", field="pov", code="invalid_pov")
        base = normalize_slot(slot)
        with self._lock:
            pov_id = (pov or "").strip() or self._current
            pov_part = normalize_slot(pov_id, field="pov").replace("-", "_")
            key = f"{base}\x00{pov_part}"
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
        nodes = scene.get("nodes") if isinstance(scene.get("nodes"), list) else []
        for node in nodes:
            if not isinstance(node, Mapping):
                continue
            meta = node.get("metadata")
            if isinstance(meta, Mapping):
                add(meta.get("pov"), meta.get("pov_name"), "node.meta")
                add(meta.get("speaker_id"), meta.get("speaker_name"), "node.meta")
            add(node.get("pov"), node.get("pov_name"), "node")
            add(node.get("speaker"), None, "node")
            for choice in node.get("choices") if isinstance(node.get("choices"), list) else []:
                visible = choice.get("visible_to") if isinstance(choice, Mapping) else None
                for pov_id in [visible] if isinstance(visible, str) else visible if isinstance(visible, list) else []:
                    add(pov_id, None, "choice.visible_to")
    return list(found.values())
