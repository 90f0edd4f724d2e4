"""Kernel glue shared by the CLI and the routes: where imports go, hooks, events, corrections.

An import lands in one of two places:

- the project store (`comfyvn_scenario.ProjectStore`, ``<data>/projects/<import_id>``): every HTTP
  import, and a CLI import without ``--out``. A re-import of the same upload and title replaces the
  project as one new version of it (scenes keep their history), so the id a client got keeps working;
- a folder the CLI names with ``--out``; ``processed/_index/<import_id>.json`` points at it so previews and
  corrections by ``scene_uid`` find it. Projects imported into ``processed/<import_id>`` before the store
  existed are still read there.

Either way the import is written to a fresh staging folder first (a failed import leaves the earlier one
and its corrections as they were). A folder import is then renamed into place under a file lock (the
server and the CLI exclude each other too; identical imports running at once each finish, the last one's
folder winning whole); a store import is handed to the store, which validates and writes it under its own
lock. Below the plugin's data folder (``kernel.paths.plugin_dir("roleplay")``) live ``raw/`` (uploads as
received, stored before parsing), ``staging/`` and ``final/<import_id>/`` (LLM-cleaned scenes).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import attrs
from comfyvn.errors import ComfyVNError, OperationFailed
from comfyvn.paths import atomic_write_text
from comfyvn_scenario.service import MAX_NODES

from .card_project import import_card
from .cards import read_card
from .convert import ImportOptions
from .editing import apply_corrections, load_scene, read_scene, sample_llm
from .folders import Earlier, check_target, file_manifest
from .importer import REPORT_FILE, ImportResult, import_chat, store_raw, write_report
from .lorebook import read_lorebook
from .models import Card, Lorebook
from .storage import Location, Storage, project_lock

__all__ = [
    "EVENTS",
    "Location",
    "Storage",
    "StoredImport",
    "apply_corrections",
    "classifier",
    "load_scene",
    "public_report",
    "read_scene",
    "run_card_import",
    "run_import",
    "sample_llm",
]

EVENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "on_roleplay_imported": (
        "A roleplay chat or log was imported into a project.",
        {
            "type": "object",
            "required": ["import_id", "project_id", "store", "source_format", "scenes", "messages", "skipped"],
            "properties": {
                "import_id": {"type": "string"},
                "project_id": {"type": "string"},
                # Where the project went, without naming a server path (events reach webhooks and history):
                # true, the store project `project_id`; false, the CLI --out folder of `import_id`.
                "store": {"type": "boolean"},
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


@attrs.frozen
class StoredImport(ImportResult):
    """An import that went into the project store: the result plus the stored project's versions."""

    version: int = 1
    scene_versions: dict[str, int] = attrs.Factory(dict)

    def to_dict(self) -> dict[str, Any]:
        """`ImportResult.to_dict` with the project's version and each scene's (for ``If-Match``)."""
        body = super().to_dict()
        body["project"] = {**body["project"], "version": self.version, "store": True}
        for scene in body["scenes"]:
            scene["version"] = self.scene_versions.get(scene["id"], 1)
        return body


def public_report(result: ImportResult) -> dict[str, Any]:
    """The import report without server paths: what an HTTP answer and a store project's report carry."""
    body = result.to_dict()
    body["project"] = {k: v for k, v in body["project"].items() if k != "path"}
    body["raw"] = {k: v for k, v in body["raw"].items() if k != "path"}
    return body


def _staging(parent: Path) -> Path:
    try:
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".comfyvn-import-", dir=parent))
    except OSError as exc:
        raise OperationFailed(
            f"cannot create the project folder: {exc.strerror or exc}", field="out", code="out_unwritable"
        ) from None


def _swap_in(store: Storage, staged: Path, target: Path, import_id: str, force: bool) -> Earlier:
    """Rename the finished ``staged`` folder to ``target`` (checked again under the lock, now that the
    import id is known); the folder it replaces is removed afterwards. Returns what ``target`` held."""
    old: Path | None = None
    with project_lock(store, target):
        earlier = check_target(target, import_id, force=force)
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
    return earlier


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
    force: bool = False,
    backgrounds_dir: Path | None = None,
) -> ImportResult:
    """Store the raw upload, read cards and lorebook, import into a staging folder, install it (see the
    module docstring), and announce ``on_roleplay_imported``. ``out_dir`` None means the project store
    (the result is then a `StoredImport`). An ``out_dir`` holding another import, or files changed or
    added since its import, is refused (`Conflict`) unless ``force`` (see :mod:`folders`). The chat's
    background is copied from ``backgrounds_dir`` when it is there (see :mod:`backgrounds`)."""
    store = Storage(kernel)
    if out_dir is not None:
        out_dir = out_dir.absolute()
        check_target(out_dir, force=force)  # before the work, and again when swapping in
    raw = store_raw(store.raw, upload, filename)
    parsed_cards: list[Card] = [read_card(data, filename=name) for data, name in cards]
    book = read_lorebook(world, name="world") if isinstance(world, bytes) else world
    staged = _staging(out_dir.parent if out_dir is not None else store.staging)
    try:
        result = import_chat(
            raw,
            staged,
            options=options,
            fmt=fmt,
            hint=hint,
            cards=parsed_cards,
            world=book,
            sprites_dir=sprites_dir,
            classify=classifier(kernel),
            progress=progress,
            max_nodes=MAX_NODES,  # the store's limit (POST /api/projects refuses more), folder imports alike
            backgrounds_dir=backgrounds_dir,
        )
        result = _install(store, staged, result, out_dir, force)
    finally:
        shutil.rmtree(staged, ignore_errors=True)  # gone already when a folder import was swapped in
    return _announce(kernel, store, result)


def _install(
    store: Storage, staged: Path, result: ImportResult, out_dir: Path | None, force: bool = False
) -> ImportResult:
    """Write the import report into the staged folder and install it: swapped in at ``out_dir``, or added
    to the store as project ``import_id`` (a new version of it when it exists)."""
    if out_dir is not None:
        result = attrs.evolve(result, project_dir=out_dir)
        # The files as written, so a later import can tell whether the user changed the folder since.
        write_report(staged, result, files=file_manifest(staged))
        earlier = _swap_in(store, staged, out_dir, result.import_id, force)
        if earlier.import_id and earlier.import_id != result.import_id:
            store.forget_folder(earlier.import_id, out_dir)  # its scene uids no longer name this folder
        return attrs.evolve(result, replaced=earlier.import_id is not None)
    projects = store.store
    result = attrs.evolve(result, project_dir=projects.root / result.import_id)
    # The report travels with the project (and its zips): without the server's paths.
    atomic_write_text(staged / REPORT_FILE, json.dumps(public_report(result), indent=2) + "\n")
    stored = projects.create_from_folder(staged, project_id=result.import_id, replace=True)
    fields = {f.name: getattr(result, f.name) for f in attrs.fields(ImportResult)}
    return StoredImport(**fields, version=stored.version, scene_versions=dict(stored.scene_versions))


def _announce(kernel: Any, store: Storage, result: ImportResult) -> ImportResult:
    """Point scene uids at the finished import and emit ``on_roleplay_imported``."""
    if isinstance(result, StoredImport):
        store.forget(result.import_id)
    else:
        store.remember(result)
    kernel.events.emit(
        "on_roleplay_imported",
        {
            "import_id": result.import_id,
            "project_id": result.project_id,
            "store": isinstance(result, StoredImport),
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
    force: bool = False,
) -> ImportResult:
    """A project opening the story of a card alone (:mod:`card_project`), staged and installed as
    :func:`run_import` does (``out_dir`` None: the store; ``force`` as there), and announced with
    ``on_roleplay_imported``."""
    store = Storage(kernel)
    if out_dir is not None:
        out_dir = out_dir.absolute()
        check_target(out_dir, force=force)
    raw = store_raw(store.raw, card, filename)
    parsed = read_card(card, filename=filename)
    staged = _staging(out_dir.parent if out_dir is not None else store.staging)
    try:
        result = import_card(raw, parsed, staged, options=options, world=world, sprites_dir=sprites_dir)
        result = _install(store, staged, result, out_dir, force)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return _announce(kernel, store, result)


def read_inputs(cards: Sequence[Path], world: Path | None) -> tuple[list[tuple[bytes, str]], bytes | None]:
    """Read card and lorebook files given on the command line."""
    card_data = [(_read_bytes(p, "card")[0], p.name) for p in cards]
    world_data = _read_bytes(world, "world")[0] if world is not None else None
    return card_data, world_data
