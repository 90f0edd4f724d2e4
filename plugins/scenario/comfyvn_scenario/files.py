"""The files a project folder's documents name (backgrounds, sprites, portraits, music, voices, sounds)
and which of them are not there, as validation warnings: the exporter would otherwise be the first to
notice, with a placeholder in the game.

Only paths inside the folder are checked here. ``asset:<uid>`` references name files in the asset
registry, which the scenario plugin does not know; the exporter resolves and reports those.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from comfyvn.errors import ComfyVNError
from comfyvn.paths import safe_join

from .project import PROJECT_FILE, SCENES_DIR, Project

__all__ = ["file_references", "missing_files"]

REGISTRY_PREFIX = "asset:"
_MAX_REPORTED = 200  # a project whose assets folder was lost would otherwise list every node


def _music(value: Any, *path: Any) -> Iterator[tuple[tuple[Any, ...], str, str]]:
    if isinstance(value, Mapping) and isinstance(value.get("track"), str):
        yield (*path, "track"), value["track"], "music"


def file_references(project: Project) -> Iterator[tuple[str, tuple[Any, ...], str, str]]:
    """``(document, JSON-pointer parts, reference, what)`` for every file reference, in document order."""
    for char_id, spec in project.characters.items():
        if not isinstance(spec, Mapping):
            continue
        sprites = spec.get("sprites")
        if isinstance(sprites, Mapping):
            for label, ref in sprites.items():
                if isinstance(ref, str):
                    yield PROJECT_FILE, ("characters", char_id, "sprites", label), ref, f"sprite of {char_id!r}"
        for key in ("portrait", "avatar"):
            if isinstance(spec.get(key), str):
                yield PROJECT_FILE, ("characters", char_id, key), spec[key], f"{key} of {char_id!r}"
    for scene_id, scene in project.scenes.items():
        if not isinstance(scene, Mapping):
            continue
        doc = f"{SCENES_DIR}/{scene_id}.json"
        if isinstance(scene.get("background"), str):
            yield doc, ("background",), scene["background"], "background"
        for path, ref, what in _music(scene.get("music"), "music"):
            yield doc, path, ref, what
        for index, node in enumerate(scene.get("nodes") or ()):
            if not isinstance(node, Mapping):
                continue
            if isinstance(node.get("background"), str):
                yield doc, ("nodes", index, "background"), node["background"], "background"
            for path, ref, what in _music(node.get("music"), "nodes", index, "music"):
                yield doc, path, ref, what
            if isinstance(node.get("voice"), str):
                yield doc, ("nodes", index, "voice"), node["voice"], "voice"
            for j, sfx in enumerate(node.get("sfx") or ()):
                if isinstance(sfx, Mapping) and isinstance(sfx.get("sound"), str):
                    yield doc, ("nodes", index, "sfx", j, "sound"), sfx["sound"], "sound"


def _present(root: Path, ref: str, seen: dict[str, bool]) -> bool:
    found = seen.get(ref)
    if found is None:
        try:
            found = safe_join(root, ref).is_file()
        except (ComfyVNError, OSError):  # outside the folder, or a name the file system refuses
            found = False
        seen[ref] = found
    return found


def missing_files(project: Project) -> Iterator[tuple[str, tuple[Any, ...], str]]:
    """``(document, pointer parts, message)`` for each reference to a file the folder does not hold (at
    most 200, then one line saying how many more). Nothing for a project without a folder."""
    root = project.root
    if root is None:
        return
    seen: dict[str, bool] = {}
    count = 0
    for doc, path, ref, what in file_references(project):
        if not ref or ref.startswith(REGISTRY_PREFIX) or _present(root, ref, seen):
            continue
        count += 1
        if count <= _MAX_REPORTED:
            shown = ref if len(ref) <= 120 else ref[:119] + "…"
            yield doc, path, f"{what} {shown!r} is not in the project folder (the export shows a placeholder)"
    if count > _MAX_REPORTED:
        yield PROJECT_FILE, (), f"{count - _MAX_REPORTED} more references to missing files"
