"""Kernel glue shared by the CLI and the routes: storage layout, hooks, events, corrections.

Storage below the plugin's data folder (``kernel.paths.plugin_dir("roleplay")``):
``raw/`` uploads as received, ``processed/<import_id>/`` projects, ``processed/_index/`` where
projects written elsewhere (CLI ``--out``) live, ``final/<import_id>/`` LLM-cleaned scenes.

An import is written to a fresh staging folder beside its target and renamed into place only when it
is complete, under a lock (a file lock, so the server and the CLI exclude each other too): a failed
import leaves the earlier one and its corrections as they were, and identical imports running at once
each finish, the last one's folder winning whole.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import attrs
from comfyvn.errors import ComfyVNError, Conflict, Invalid, NotFound, OperationFailed, Unprocessable, UpstreamError
from comfyvn.paths import atomic_write_text, safe_join
from comfyvn_scenario import load_project, validate_project
from comfyvn_scenario.project import dump_json

from .card_project import import_card
from .cards import read_card
from .convert import ImportOptions
from .importer import REPORT_FILE, ImportResult, import_chat, store_raw, write_report
from .lorebook import read_lorebook
from .models import Card, Lorebook

__all__ = [
    "EVENTS",
    "Storage",
    "apply_corrections",
    "classifier",
    "load_scene",
    "run_card_import",
    "run_import",
    "sample_llm",
]

_IMPORT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,80}$")
_SCENE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")

EVENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "on_roleplay_imported": (
        "A roleplay chat or log was imported into a project.",
        {
            "type": "object",
            "required": ["import_id", "project_id", "project_path", "source_format", "scenes", "messages", "skipped"],
            "properties": {
                "import_id": {"type": "string"},
                "project_id": {"type": "string"},
                "project_path": {"type": "string"},
                "source_format": {"type": "string"},
                "scenes": {"type": "integer"},
                "nodes": {"type": "integer"},
                "messages": {"type": "integer"},
                "skipped": {"type": "integer"},
                "raw_sha256": {"type": "string"},
            },
        },
    ),
    "on_roleplay_corrected": (
        "Editor corrections were applied to an imported scene.",
        {
            "type": "object",
            "required": ["scene_uid", "nodes_changed"],
            "properties": {"scene_uid": {"type": "string"}, "nodes_changed": {"type": "integer"}},
        },
    ),
}


class Storage:
    """The plugin's folders under the kernel's data root."""

    def __init__(self, kernel: Any) -> None:
        self.root: Path = kernel.paths.plugin_dir("roleplay")
        self.raw = self.root / "raw"
        self.processed: Path = self.root / "processed"
        self.final = self.root / "final"
        self.index = self.processed / "_index"
        self.locks: Path = kernel.paths.plugin_dir("roleplay", "cache") / "locks"

    def project_dir(self, import_id: str) -> Path:
        """Where a project of ``import_id`` lives (its own folder, or the one the CLI wrote to)."""
        if not _IMPORT_ID.match(import_id):
            raise ComfyVNError(f"invalid import id {import_id!r}", field="scene_uid", code="invalid_scene_uid")
        pointer = self.index / f"{import_id}.json"
        if pointer.is_file():
            return Path(str(json.loads(pointer.read_text(encoding="utf-8"))["project_dir"]))
        return self.processed / import_id

    def remember(self, result: ImportResult) -> None:
        """Record a project written outside ``processed/`` so previews and corrections find it."""
        if result.project_dir.resolve() != (self.processed / result.import_id).resolve():
            atomic_write_text(
                self.index / f"{result.import_id}.json",
                json.dumps({"project_dir": str(result.project_dir.resolve())}) + "\n",
            )


@contextlib.contextmanager
def project_lock(store: Storage, project_dir: Path) -> Iterator[None]:
    """Hold the lock of one project folder (swapping an import in, writing a correction)."""
    store.locks.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(str(project_dir.absolute()).encode("utf-8", "surrogateescape")).hexdigest()[:32]
    fd = os.open(store.locks / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _check_target(target: Path) -> None:
    """An import may replace a missing folder, an empty one, or an earlier import (it has its report)."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise Conflict("--out exists and is not a folder", field="out", code="out_not_a_folder")
    if target.is_dir() and any(target.iterdir()) and not (target / REPORT_FILE).is_file():
        raise Conflict(
            "--out is a folder with other files in it; give a new or empty folder, or an earlier import's",
            field="out",
            code="out_not_empty",
        )
    if target.resolve() in (Path.cwd().resolve(), *Path.cwd().resolve().parents):
        raise Invalid("--out must not be the current folder or one above it", field="out", code="invalid_out")


def _staging(parent: Path) -> Path:
    try:
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".comfyvn-import-", dir=parent))
    except OSError as exc:
        raise OperationFailed(
            f"cannot create the project folder: {exc.strerror or exc}", field="out", code="out_unwritable"
        ) from None


def _swap_in(store: Storage, staged: Path, target: Path) -> None:
    """Rename the finished ``staged`` folder to ``target``; the folder it replaces is removed afterwards."""
    old: Path | None = None
    with project_lock(store, target):
        _check_target(target)
        if target.exists():
            old = target.with_name(f".{target.name}.replaced-{uuid.uuid4().hex[:12]}")
            os.rename(target, old)
        try:
            os.rename(staged, target)
        except OSError:
            if old is not None:
                os.rename(old, target)
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def classifier(kernel: Any) -> Any:
    """The expression classifier hook as the converter's callable (None when nobody implements it)."""
    hook = kernel.pm.hook.roleplay_classify_expression
    if not hook.get_hookimpls():
        return None

    def classify(
        character_id: str, text: str, labels: Sequence[str], _chars: dict[str, Any] | None = None
    ) -> str | None:
        label = hook(character={"id": character_id}, text=text, labels=list(labels))
        return label if isinstance(label, str) else None

    return classify


def _read_bytes(item: bytes | Path, field: str) -> tuple[bytes, str]:
    if isinstance(item, Path):
        try:
            return item.read_bytes(), item.name
        except OSError as exc:
            raise ComfyVNError(f"cannot read {item}: {exc}", field=field, code="unreadable_file") from None
    return item, ""


def run_import(
    kernel: Any,
    upload: IO[bytes] | bytes,
    filename: str,
    options: ImportOptions,
    *,
    out_dir: Path | None = None,
    fmt: str = "",
    hint: str = "",
    cards: Sequence[tuple[bytes, str]] = (),
    world: bytes | Lorebook | None = None,
    sprites_dir: Path | None = None,
    progress: Any = None,
) -> ImportResult:
    """Store the raw upload, read cards and lorebook, import into a staging folder, swap it in (see the
    module docstring), and announce ``on_roleplay_imported``. ``out_dir`` None means ``processed/``."""
    store = Storage(kernel)
    if out_dir is not None:
        out_dir = out_dir.absolute()
        _check_target(out_dir)  # before the work, and again when swapping in
    raw = store_raw(store.raw, upload, filename)
    parsed_cards: list[Card] = [read_card(data, filename=name) for data, name in cards]
    book = read_lorebook(world, name="world") if isinstance(world, bytes) else world
    staged = _staging(out_dir.parent if out_dir is not None else store.processed)
    try:
        result = import_chat(
            raw,
            staged,
            processed_root=store.processed,
            options=options,
            fmt=fmt,
            hint=hint,
            cards=parsed_cards,
            world=book,
            sprites_dir=sprites_dir,
            classify=classifier(kernel),
            progress=progress,
        )
        result = _install(store, staged, result, out_dir)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return _announce(kernel, store, result)


def _install(store: Storage, staged: Path, result: ImportResult, out_dir: Path | None) -> ImportResult:
    """Write the import report into the staged folder and swap it in at its target."""
    target = out_dir if out_dir is not None else store.processed / result.import_id
    result = attrs.evolve(result, project_dir=target)
    write_report(staged, result)
    _swap_in(store, staged, target)
    return result


def _announce(kernel: Any, store: Storage, result: ImportResult) -> ImportResult:
    """Remember a finished import and emit ``on_roleplay_imported``."""
    store.remember(result)
    kernel.events.emit(
        "on_roleplay_imported",
        {
            "import_id": result.import_id,
            "project_id": result.project_id,
            "project_path": str(result.project_dir),
            "source_format": result.source_format,
            "scenes": len(result.scene_ids),
            "nodes": result.stats.get("nodes", 0),
            "messages": result.stats.get("messages", 0),
            "skipped": sum(1 for i in result.issues if i.severity == "skipped"),
            "raw_sha256": result.raw.sha256,
        },
    )
    return result


def run_card_import(
    kernel: Any,
    card: bytes,
    filename: str,
    options: ImportOptions,
    *,
    out_dir: Path | None = None,
    world: Lorebook | None = None,
    sprites_dir: Path | None = None,
) -> ImportResult:
    """A project opening the story of a card alone (:mod:`card_project`), staged and swapped in as
    :func:`run_import` does, and announced with ``on_roleplay_imported``."""
    store = Storage(kernel)
    if out_dir is not None:
        out_dir = out_dir.absolute()
        _check_target(out_dir)
    raw = store_raw(store.raw, card, filename)
    parsed = read_card(card, filename=filename)
    staged = _staging(out_dir.parent if out_dir is not None else store.processed)
    try:
        result = import_card(raw, parsed, staged, options=options, world=world, sprites_dir=sprites_dir)
        result = _install(store, staged, result, out_dir)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return _announce(kernel, store, result)


def split_uid(scene_uid: str) -> tuple[str, str]:
    """``import_id:scene_id`` → its parts (400 naming ``scene_uid`` when malformed)."""
    import_id, sep, scene_id = scene_uid.partition(":")
    if not sep or not _IMPORT_ID.match(import_id) or not _SCENE_ID.match(scene_id):
        raise ComfyVNError(
            "scene_uid must look like <import_id>:<scene_id>", field="scene_uid", code="invalid_scene_uid"
        )
    return import_id, scene_id


def load_scene(kernel: Any, scene_uid: str) -> tuple[Path, dict[str, Any]]:
    """The project folder and the scene JSON of ``scene_uid`` (404 when unknown)."""
    import_id, scene_id = split_uid(scene_uid)
    root = Storage(kernel).project_dir(import_id)
    path = safe_join(root, "scenes", f"{scene_id}.json", field="scene_uid")
    if not path.is_file():
        raise NotFound(f"no imported scene {scene_uid!r}", field="scene_uid")
    return root, json.loads(path.read_text(encoding="utf-8"))


def _validate(root: Path, scene: dict[str, Any]) -> list[dict[str, Any]]:
    project = load_project(root)
    project.scenes[scene["id"]] = scene
    return [issue.to_wire() for issue in validate_project(project).errors]


_EDITABLE = ("text", "speaker", "type", "characters", "background", "end", "data")


def apply_corrections(kernel: Any, scene_uid: str, scene: Any = None, nodes: Any = None) -> dict[str, Any]:
    """Apply editor corrections: a whole ``scene`` or ``nodes`` patches ``[{id, text?, speaker?, …}]``.

    The corrected scene is validated against its project before it replaces the file (422 listing
    the errors otherwise). Returns ``{scene_uid, nodes_changed, scene}``.
    """
    root, current = load_scene(kernel, scene_uid)
    changed = 0
    if scene is not None:
        if not isinstance(scene, dict) or scene.get("id") != current["id"]:
            raise ComfyVNError("scene must be an object with the same id", field="scene", code="invalid_scene")
        changed = len(scene.get("nodes") or [])
        current = scene
    elif isinstance(nodes, list) and nodes:
        by_id = {n.get("id"): n for n in current.get("nodes", []) if isinstance(n, dict)}
        for i, patch in enumerate(nodes):
            if not isinstance(patch, dict) or patch.get("id") not in by_id:
                raise ComfyVNError(
                    f"nodes[{i}] must name an existing node id", field=f"nodes/{i}/id", code="unknown_node"
                )
            unknown = set(patch) - {"id", *_EDITABLE}
            if unknown:
                raise ComfyVNError(
                    f"nodes[{i}] cannot change {sorted(unknown)}", field=f"nodes/{i}", code="invalid_correction"
                )
            target = by_id[patch["id"]]
            for key in _EDITABLE:
                if key in patch:
                    if patch[key] is None and key in ("speaker", "characters", "background"):
                        target.pop(key, None)
                    else:
                        target[key] = patch[key]
            changed += 1
    else:
        raise ComfyVNError("give `scene` or a non-empty `nodes` list", field="nodes", code="invalid_correction")
    errors = _validate(root, current)
    if errors:
        raise Unprocessable(
            "corrected scene is not valid", field="scene", code="invalid_scene", details={"errors": errors}
        )
    with project_lock(Storage(kernel), root):  # not while a re-import swaps the folder
        atomic_write_text(root / "scenes" / f"{current['id']}.json", dump_json(current))
    kernel.events.emit("on_roleplay_corrected", {"scene_uid": scene_uid, "nodes_changed": changed})
    return {"scene_uid": scene_uid, "nodes_changed": changed, "scene": current}


def sample_llm(kernel: Any, scene_uid: str, detail_level: str = "medium") -> dict[str, Any]:
    """Run the LLM clean-up hook on a scene; say ``not configured`` (and return the scene) when absent."""
    if detail_level not in ("low", "medium", "high"):
        raise ComfyVNError("detail_level must be one of low, medium, high", field="detail_level")
    root, scene = load_scene(kernel, scene_uid)
    hook = kernel.pm.hook.roleplay_cleanup_scene
    if not hook.get_hookimpls():
        return {"scene_uid": scene_uid, "llm": "not configured", "stored": None, "scene": scene}
    project = load_project(root)
    result = hook(scene=scene, detail_level=detail_level, characters=project.characters)
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
    return {"scene_uid": scene_uid, "llm": "configured", "stored": str(stored), "scene": result}


def read_inputs(cards: Sequence[Path], world: Path | None) -> tuple[list[tuple[bytes, str]], bytes | None]:
    """Read card and lorebook files given on the command line."""
    card_data = [(_read_bytes(p, "card")[0], p.name) for p in cards]
    world_data = _read_bytes(world, "world")[0] if world is not None else None
    return card_data, world_data
