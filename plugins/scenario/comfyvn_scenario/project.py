"""The project folder: ``project.json`` + ``scenes/<id>.json`` (+ ``assets/``).

`load_project` and `save_project` are the only code that touches a project's files; importers write
projects with `save_project`, exporters read them with `load_project`. Scenes stay plain dicts in the
wire shape (comfyvn-wire.md) so that every plugin reads and writes the same JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from comfyvn.errors import ComfyVNError, NotFound
from comfyvn.paths import atomic_write_text, safe_join
from comfyvn.wire import loads

__all__ = [
    "PROJECT_FILE",
    "SCENES_DIR",
    "Project",
    "dump_json",
    "load_project",
    "project_from_payload",
    "save_project",
    "split_target",
]

PROJECT_FILE = "project.json"
SCENES_DIR = "scenes"
FORMAT = "comfyvn-project"
FORMAT_VERSION = 1
DEFAULT_POV = "narrator"
SCENE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# project.json keys written first, in this order; the rest follow in the order the author gave them.
_KEY_ORDER = (
    "format",
    "format_version",
    "id",
    "title",
    "description",
    "author",
    "start",
    "scenes",
    "default_pov",
    "povs",
    "characters",
    "variables",
    "metadata",
)


@attrs.frozen
class Project:
    """A loaded project. ``meta`` is project.json without ``scenes``; ``scenes`` maps id -> scene in story order.

    The containers are plain dicts so callers can build or edit a project before `save_project`;
    the runner and validator never mutate them.
    """

    meta: dict[str, Any]
    scenes: dict[str, dict[str, Any]]
    root: Path | None = None

    @property
    def id(self) -> str:
        return str(self.meta.get("id", ""))

    @property
    def title(self) -> str:
        return str(self.meta.get("title", ""))

    @property
    def characters(self) -> dict[str, Any]:
        chars = self.meta.get("characters")
        return chars if isinstance(chars, dict) else {}

    @property
    def variables(self) -> dict[str, Any]:
        variables = self.meta.get("variables")
        return variables if isinstance(variables, dict) else {}

    @property
    def povs(self) -> list[dict[str, Any]]:
        povs = self.meta.get("povs")
        return [p for p in povs if isinstance(p, dict)] if isinstance(povs, list) else []

    @property
    def default_pov(self) -> str:
        pov = self.meta.get("default_pov")
        return pov if isinstance(pov, str) and pov else DEFAULT_POV

    @property
    def scene_order(self) -> list[str]:
        return list(self.scenes)

    def start_pointer(self) -> tuple[str, str | None]:
        """``(scene_id, node_id)`` where play begins; ``node_id`` is None for "that scene's start"."""
        start = self.meta.get("start")
        if not isinstance(start, str) or not start:
            first = next(iter(self.scenes), "")
            return first, None
        scene_id, _, node_id = start.partition(":")
        return scene_id, node_id or None

    def document(self) -> dict[str, Any]:
        """The project.json content (``scenes`` rebuilt from the scene order)."""
        doc: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION}
        merged = {**self.meta, "scenes": self.scene_order}
        for key in _KEY_ORDER:
            if key in merged:
                doc[key] = merged[key]
        for key, value in merged.items():
            if key not in doc:
                doc[key] = value
        return doc


def split_target(target: str, local_nodes: Mapping[str, Any] | None = None) -> tuple[str | None, str]:
    """Split a choice target into ``(scene_id or None, node_id)``.

    A target that names a node of the current scene (``local_nodes``) is local even if it contains
    ``:`` -- original scenes may use such ids; otherwise ``scene_id:node_id`` points across scenes.
    """
    if local_nodes is not None and target in local_nodes:
        return None, target
    scene_id, sep, node_id = target.partition(":")
    if sep and scene_id and node_id:
        return scene_id, node_id
    return None, target


def dump_json(value: Any) -> str:
    """Project files as written: 2-space indent, UTF-8, the author's key order, a final newline.

    Key order is kept (unlike `comfyvn.paths.atomic_write_json`, which sorts) because people edit
    these files and read them top-down: ``id`` and ``text`` before ``choices``.
    """
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def _read_json(path: Path, label: str, fingerprints: dict[str, str] | None = None) -> Any:
    # Messages name the file relative to the project (``label``), never the server's absolute path.
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"{label} not found", field=label, code="file_not_found") from None
    except OSError as exc:
        raise ComfyVNError(f"cannot read {label}: {exc.strerror}", field=label, code="unreadable_file") from None
    if fingerprints is not None:
        fingerprints[label] = hashlib.sha256(data).hexdigest()
    return loads(data, field=label)


def _project_root(path: str | os.PathLike[str]) -> Path:
    root = Path(path)
    if root.name == PROJECT_FILE or root.is_file():
        root = root.parent
    return root


def load_project(path: str | os.PathLike[str], *, fingerprints: dict[str, str] | None = None) -> Project:
    """Read a project folder (or its project.json). Raises `NotFound` / `ComfyVNError` naming the file.

    Only the scenes listed in project.json ``scenes`` are read, in that order. The result is not
    validated: call `comfyvn_scenario.validation.validate_project` for that. ``fingerprints``, when
    given, receives the SHA-256 of every file read (by its project-relative name), taken from the very
    bytes parsed, so a caller can tell whether the files are the ones it validated before.
    """
    root = _project_root(path)
    document = _read_json(root / PROJECT_FILE, PROJECT_FILE, fingerprints)
    if not isinstance(document, dict):
        raise ComfyVNError("project.json must be a JSON object", field=PROJECT_FILE, code="invalid_project")
    order = document.get("scenes")
    if not isinstance(order, list) or not all(isinstance(s, str) for s in order):
        raise ComfyVNError("project.json `scenes` must be a list of scene ids", field="scenes", code="invalid_project")
    scenes: dict[str, dict[str, Any]] = {}
    for index, scene_id in enumerate(order):
        field = f"scenes/{index}"
        if not SCENE_ID.fullmatch(scene_id):
            raise ComfyVNError(
                f"scene id {scene_id[:80]!r} is not a valid file name", field=field, code="invalid_scene_id"
            )
        if scene_id in scenes:
            # Merging the two would silently drop a place in the story order; say so instead.
            raise ComfyVNError(f"project.json lists scene {scene_id!r} twice", field=field, code="duplicate_scene")
        relative = f"{SCENES_DIR}/{scene_id}.json"
        scene = _read_json(safe_join(root, SCENES_DIR, f"{scene_id}.json", field=field), relative, fingerprints)
        if not isinstance(scene, dict):
            raise ComfyVNError(f"{relative} must be a JSON object", field=relative, code="invalid_scene")
        scenes[scene_id] = scene
    meta = {k: v for k, v in document.items() if k != "scenes"}
    return Project(meta=meta, scenes=scenes, root=root)


def save_project(project: Project, path: str | os.PathLike[str]) -> Path:
    """Write ``project`` as a folder at ``path``: project.json and scenes/<id>.json, each atomically.

    Scenes are written before project.json so that a reader never sees a project.json listing a
    scene file that is not there yet. Returns the folder. Scene files of scenes no longer in the
    project are left alone (they may be someone's work); `validate_project_dir` reports them.
    """
    root = _project_root(path)
    for index, (scene_id, scene) in enumerate(project.scenes.items()):
        if not SCENE_ID.match(scene_id):
            raise ComfyVNError(
                f"scene id {scene_id!r} is not a valid file name", field=f"scenes/{index}", code="invalid_scene_id"
            )
        if scene.get("id") != scene_id:
            raise ComfyVNError(
                f"scene keyed {scene_id!r} has id {scene.get('id')!r}",
                field=f"scenes/{index}",
                code="scene_id_mismatch",
            )
        atomic_write_text(safe_join(root, SCENES_DIR, f"{scene_id}.json"), dump_json(scene))
    atomic_write_text(root / PROJECT_FILE, dump_json(project.document()))
    return root


def project_from_payload(document: Any, scenes: Any, *, field: str = "project") -> Project:
    """Build a `Project` from a request: project.json content plus its scenes (a list or an id->scene map).

    When ``scenes`` is None the scenes are expected inline in ``document["scenes"]`` as scene objects.
    """
    if not isinstance(document, dict):
        raise ComfyVNError("project must be a JSON object", field=field, code="invalid_project")
    if scenes is None:
        scenes = document.get("scenes")
    items: list[tuple[str, Any]]
    if isinstance(scenes, dict):
        items = list(scenes.items())
    elif isinstance(scenes, list) and all(isinstance(s, dict) for s in scenes):
        items = [(str(s.get("id", "")), s) for s in scenes]
    else:
        raise ComfyVNError(
            "project scenes must be a list of scene objects or an id -> scene object",
            field="scenes",
            code="invalid_project",
        )
    collected: dict[str, dict[str, Any]] = {}
    for index, (scene_id, scene) in enumerate(items):
        if not isinstance(scene, dict):
            raise ComfyVNError("a scene must be a JSON object", field=f"scenes/{index}", code="invalid_scene")
        if scene_id in collected:
            raise ComfyVNError(f"duplicate scene id {scene_id!r}", field=f"scenes/{index}/id", code="duplicate_scene")
        collected[scene_id] = scene
    meta = {k: v for k, v in document.items() if k != "scenes"}
    order = document.get("scenes")
    if isinstance(order, list) and all(isinstance(s, str) for s in order) and set(order) == set(collected):
        collected = {scene_id: collected[scene_id] for scene_id in order}
    return Project(meta=meta, scenes=collected)
