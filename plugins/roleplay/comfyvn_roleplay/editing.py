"""Reading and correcting imported scenes by ``scene_uid`` (``<import_id>:<scene_id>``): previews, editor
corrections (through the store for store projects: validated, versioned, kept in history) and the LLM
clean-up hook. The CLI and the routes call these; see `comfyvn_roleplay.service` for where projects live."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import attrs
from comfyvn.errors import ComfyVNError, Invalid, NotFound, PreconditionFailed, Unprocessable, UpstreamError
from comfyvn.paths import atomic_write_text, safe_join
from comfyvn_scenario import StoredProject, load_project, validate_project
from comfyvn_scenario.project import dump_json

from .storage import IMPORT_ID, Location, Storage, project_lock

__all__ = ["SceneRef", "apply_corrections", "load_scene", "read_scene", "sample_llm", "split_uid"]

_SCENE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")


def split_uid(scene_uid: str) -> tuple[str, str]:
    """``import_id:scene_id`` → its parts (400 naming ``scene_uid`` when malformed)."""
    import_id, sep, scene_id = scene_uid.partition(":")
    if not sep or not IMPORT_ID.match(import_id) or not _SCENE_ID.match(scene_id):
        raise ComfyVNError(
            "scene_uid must look like <import_id>:<scene_id>", field="scene_uid", code="invalid_scene_uid"
        )
    return import_id, scene_id


@attrs.frozen
class SceneRef:
    """One imported scene as read: where its project lives, the scene, and its version (store projects)."""

    location: Location
    scene_id: str
    scene: dict[str, Any]
    version: int | None = None


def read_scene(kernel: Any, scene_uid: str) -> SceneRef:
    """The scene of ``scene_uid`` (``<import_id>:<scene_id>``) with its project's location (404 when unknown)."""
    import_id, scene_id = split_uid(scene_uid)
    location = Storage(kernel).locate(import_id)
    if location.store is not None:
        try:
            scene, version = location.store.scene(import_id, scene_id)
        except NotFound:
            raise NotFound(f"no imported scene {scene_uid!r}", field="scene_uid") from None
        return SceneRef(location, scene_id, scene, version)
    path = safe_join(location.folder, "scenes", f"{scene_id}.json", field="scene_uid")
    if not path.is_file():
        raise NotFound(f"no imported scene {scene_uid!r}", field="scene_uid")
    return SceneRef(location, scene_id, json.loads(path.read_text(encoding="utf-8")))


def load_scene(kernel: Any, scene_uid: str) -> tuple[Path, dict[str, Any]]:
    """The project folder and the scene JSON of ``scene_uid`` (404 when unknown)."""
    ref = read_scene(kernel, scene_uid)
    return ref.location.folder, ref.scene


def _validate(root: Path, scene: dict[str, Any]) -> list[dict[str, Any]]:
    project = load_project(root)
    project.scenes[scene["id"]] = scene
    return [issue.to_wire() for issue in validate_project(project).errors]


_EDITABLE = ("text", "speaker", "type", "characters", "background", "end", "data")
# A node patch computed on a scene someone else just changed is applied again on the newer scene;
# past this many collisions in a row the caller is told to retry.
_PATCH_ATTEMPTS = 5


def _nodes_differing(old: Any, new: Any) -> int:
    """How many nodes a whole-scene correction adds, removes or changes (matched by id)."""
    before = {n.get("id"): n for n in old if isinstance(n, dict)} if isinstance(old, list) else {}
    after = new if isinstance(new, list) else []
    seen = set()
    changed = 0
    for node in after:
        key = node.get("id") if isinstance(node, dict) else None
        seen.add(key)
        if key not in before or before[key] != node:
            changed += 1
    return changed + sum(1 for key in before if key not in seen)


def _patched(current: dict[str, Any], scene: Any, nodes: Any) -> tuple[dict[str, Any], int, bool]:
    """``current`` corrected by a whole ``scene`` or by ``nodes`` patches; with how many nodes actually
    changed, and whether the scene changed at all (a patch repeating what is there changes nothing)."""
    if scene is not None:
        if not isinstance(scene, dict) or scene.get("id") != current["id"]:
            raise ComfyVNError("scene must be an object with the same id", field="scene", code="invalid_scene")
        return scene, _nodes_differing(current.get("nodes"), scene.get("nodes")), scene != current
    if not isinstance(nodes, list) or not nodes:
        raise ComfyVNError("give `scene` or a non-empty `nodes` list", field="nodes", code="invalid_correction")
    by_id = {n.get("id"): n for n in current.get("nodes", []) if isinstance(n, dict)}
    before: dict[Any, dict[str, Any]] = {}  # each patched node as it was, to count real changes
    for i, patch in enumerate(nodes):
        if not isinstance(patch, dict) or patch.get("id") not in by_id:
            raise ComfyVNError(f"nodes[{i}] must name an existing node id", field=f"nodes/{i}/id", code="unknown_node")
        unknown = set(patch) - {"id", *_EDITABLE}
        if unknown:
            raise ComfyVNError(
                f"nodes[{i}] cannot change {sorted(unknown)}", field=f"nodes/{i}", code="invalid_correction"
            )
        target = by_id[patch["id"]]
        if patch["id"] not in before:
            before[patch["id"]] = copy.deepcopy(target)
        for key in _EDITABLE:
            if key in patch:
                if patch[key] is None and key in ("speaker", "characters", "background"):
                    target.pop(key, None)
                else:
                    target[key] = patch[key]
    changed = sum(1 for node_id, was in before.items() if by_id[node_id] != was)
    return current, changed, changed > 0


def _put_stored(ref: SceneRef, scene: dict[str, Any], expect: int | None) -> StoredProject:
    """Write a corrected scene through the store (validated, versioned, kept in its history)."""
    assert ref.location.store is not None
    try:
        return ref.location.store.put_scene(ref.location.import_id, ref.scene_id, scene, if_match=expect)
    except PreconditionFailed:
        raise
    except Unprocessable as exc:
        if exc.code != "invalid_project":
            raise
        raise Unprocessable(
            "corrected scene is not valid", field="scene", code="invalid_scene", details=exc.details
        ) from None


def apply_corrections(
    kernel: Any, scene_uid: str, scene: Any = None, nodes: Any = None, *, if_match: int | None = None
) -> dict[str, Any]:
    """Apply editor corrections: a whole ``scene`` or ``nodes`` patches ``[{id, text?, speaker?, …}]``.

    The corrected scene is validated against its project before it replaces the scene (422 listing the
    errors otherwise). A store project's scene is written through the store, as a new version kept in its
    history; ``if_match`` (the scene version the editor saw) makes a stale write a 412 instead. Without it,
    node patches are applied to the newest scene even when another write lands meanwhile. A folder project
    has no versions, so ``if_match`` is refused there. Returns ``{scene_uid, nodes_changed, scene}`` plus
    ``version`` (the scene's new version) for a store project. ``nodes_changed`` counts the nodes that
    differ afterwards; corrections that change nothing write nothing and announce nothing.
    """
    for attempt in range(_PATCH_ATTEMPTS):
        ref = read_scene(kernel, scene_uid)
        current, changed, differs = _patched(ref.scene, scene, nodes)
        if not differs:
            if ref.location.store is None and if_match is not None:
                raise _not_versioned()
            unchanged = {"scene_uid": scene_uid, "nodes_changed": 0, "scene": ref.scene}
            return unchanged if ref.version is None else {**unchanged, "version": ref.version}
        if ref.location.store is None:
            return _write_folder(kernel, ref, scene_uid, current, changed, if_match)
        expect = if_match if if_match is not None or scene is not None else ref.version
        try:
            stored = _put_stored(ref, current, expect)
        except PreconditionFailed:
            if if_match is not None or scene is not None or attempt == _PATCH_ATTEMPTS - 1:
                raise
            continue  # someone else wrote the scene since it was read: patch the newer one
        kernel.events.emit("on_roleplay_corrected", {"scene_uid": scene_uid, "nodes_changed": changed})
        version = stored.scene_versions[ref.scene_id]
        return {"scene_uid": scene_uid, "nodes_changed": changed, "scene": current, "version": version}
    raise AssertionError("unreachable")  # pragma: no cover - the last attempt returns or raises


def _not_versioned() -> Invalid:
    return Invalid(
        "this scene's project is a folder (a CLI --out import), which keeps no versions",
        field="version",
        code="not_versioned",
    )


def _write_folder(
    kernel: Any, ref: SceneRef, scene_uid: str, scene: dict[str, Any], changed: int, if_match: int | None
) -> dict[str, Any]:
    if if_match is not None:
        raise _not_versioned()
    root = ref.location.folder
    errors = _validate(root, scene)
    if errors:
        raise Unprocessable(
            "corrected scene is not valid", field="scene", code="invalid_scene", details={"errors": errors}
        )
    with project_lock(Storage(kernel), root):  # not while a re-import swaps the folder
        atomic_write_text(root / "scenes" / f"{scene['id']}.json", dump_json(scene))
    kernel.events.emit("on_roleplay_corrected", {"scene_uid": scene_uid, "nodes_changed": changed})
    return {"scene_uid": scene_uid, "nodes_changed": changed, "scene": scene}


def sample_llm(kernel: Any, scene_uid: str, detail_level: str = "medium") -> dict[str, Any]:
    """Run the LLM clean-up hook on a scene; say ``not configured`` (and return the scene) when absent."""
    if detail_level not in ("low", "medium", "high"):
        raise ComfyVNError("detail_level must be one of low, medium, high", field="detail_level")
    root, scene = load_scene(kernel, scene_uid)
    hook = kernel.pm.hook.roleplay_cleanup_scene
    if not hook.get_hookimpls():
        return {"scene_uid": scene_uid, "llm": "not configured", "stored": None, "scene": scene}
    project = load_project(root)
    result = hook(scene=scene, detail_level=detail_level, characters=project.characters, kernel=kernel)
    if result is None:
        return {"scene_uid": scene_uid, "llm": "no result", "stored": None, "scene": scene}
    if not isinstance(result, dict) or result.get("id") != scene["id"]:
        raise UpstreamError("LLM clean-up returned a scene with another id", field="scene", code="llm_invalid")
    errors = _validate(root, result)
    if errors:
        raise UpstreamError(
            "LLM clean-up returned an invalid scene",
            field="scene",
            code="llm_invalid",
            details={"errors": errors},
        )
    import_id, scene_id = split_uid(scene_uid)
    stored = Storage(kernel).final / import_id / f"{scene_id}.json"
    atomic_write_text(stored, dump_json(result))
    # Relative to the data root: an answer never names a server path.
    shown = stored.relative_to(kernel.paths.data).as_posix()
    return {"scene_uid": scene_uid, "llm": "configured", "stored": shown, "scene": result}
