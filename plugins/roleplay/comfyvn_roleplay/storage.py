"""Where roleplay projects live: the kernel's project store, a CLI ``--out`` folder (found through
``processed/_index/<import_id>.json``), or ``processed/<import_id>`` (imports made before the store), and
the file lock that keeps a folder import and a correction of it apart. See `comfyvn_roleplay.service`."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
from comfyvn.errors import Invalid
from comfyvn.paths import atomic_write_text
from comfyvn_scenario import ProjectStore
from comfyvn_scenario.project import PROJECT_FILE

from .importer import ImportResult

__all__ = ["IMPORT_ID", "Location", "Storage", "project_lock"]

IMPORT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,80}$")


@attrs.frozen
class Location:
    """Where the project of an import lives: a store project (``store`` set) or a folder."""

    import_id: str
    folder: Path
    store: ProjectStore | None = None


class Storage:
    """The plugin's folders under the kernel's data root, and the kernel's project store."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.root: Path = kernel.paths.plugin_dir("roleplay")
        self.raw = self.root / "raw"
        self.processed: Path = self.root / "processed"
        self.staging = self.root / "staging"
        self.final = self.root / "final"
        self.index = self.processed / "_index"
        self.locks: Path = kernel.paths.plugin_dir("roleplay", "cache") / "locks"

    @property
    def store(self) -> ProjectStore:
        """The kernel's project store."""
        return ProjectStore.for_kernel(self.kernel)

    def locate(self, import_id: str) -> Location:
        """Where the project of ``import_id`` lives: the folder a CLI ``--out`` import wrote (while it is
        there), else the store, else ``processed/`` (imports made before the store)."""
        if not IMPORT_ID.match(import_id):
            raise Invalid(f"invalid import id {import_id!r}", field="scene_uid", code="invalid_scene_uid")
        pointer = self.index / f"{import_id}.json"
        if pointer.is_file():
            folder = Path(str(json.loads(pointer.read_text(encoding="utf-8"))["project_dir"]))
            if (folder / PROJECT_FILE).is_file():
                return Location(import_id, folder)
        store = self.store
        if store.exists(import_id):
            return Location(import_id, store.root / import_id, store)
        return Location(import_id, self.processed / import_id)

    def project_dir(self, import_id: str) -> Path:
        """The folder of ``import_id``'s project (see `locate`)."""
        return self.locate(import_id).folder

    def remember(self, result: ImportResult) -> None:
        """Record a project written to a folder so previews and corrections find it."""
        atomic_write_text(
            self.index / f"{result.import_id}.json",
            json.dumps({"project_dir": str(result.project_dir.resolve())}) + "\n",
        )

    def forget(self, import_id: str) -> None:
        """The latest import of ``import_id`` went to the store: scene uids mean the store project again."""
        (self.index / f"{import_id}.json").unlink(missing_ok=True)

    def forget_folder(self, import_id: str, folder: Path) -> None:
        """``folder`` now holds another import: ``import_id``'s scene uids stop naming it."""
        if not IMPORT_ID.match(import_id):  # read from the folder's report, which anyone may have edited
            return
        pointer = self.index / f"{import_id}.json"
        try:
            recorded = json.loads(pointer.read_text(encoding="utf-8")).get("project_dir")
        except (OSError, ValueError, AttributeError):
            return
        if recorded == str(folder.resolve()):
            pointer.unlink(missing_ok=True)


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
