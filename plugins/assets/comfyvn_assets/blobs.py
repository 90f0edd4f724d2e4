"""Content-addressed storage: ``<root>/.blobs/<sha[:2]>/<sha>``, one read-only file per distinct content, and
the locks that keep blobs, rows and visible files consistent between threads and processes.

Locks (``flock`` on files in ``.blobs``; each acquisition opens its own descriptor, so threads of one
process exclude each other too):

- ``gc.lock`` — shared while a registration writes or reuses a blob and commits its row; exclusive while
  blobs or temporary files are deleted (gc, remove, rebuild). A blob is never deleted between the moment a
  registration finds it and the moment its row is committed.
- ``paths.lock`` — exclusive while a visible file or sidecar is written or removed. Whoever writes reads
  the row under this lock, so the last writer always leaves the committed content on disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from comfyvn.paths import atomic_write_bytes

__all__ = ["BLOBS_DIR", "BlobStore", "file_sha256", "is_temp_name"]

BLOBS_DIR = ".blobs"
_TMP = "tmp"
_HEX = frozenset("0123456789abcdef")


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(2**20):
            digest.update(chunk)
    return digest.hexdigest()


def is_temp_name(name: str) -> bool:
    """A temporary file some writer left behind (``atomic_write_*`` and links use ``.<name>.<random>.tmp``)."""
    return name.startswith(".") and name.endswith(".tmp")


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class BlobStore:
    """The blobs below ``<root>/.blobs`` and the registry's lock files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / BLOBS_DIR
        self.tmp = self.dir / _TMP
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return self.dir / sha256[:2] / sha256

    def has(self, sha256: str, size: int) -> bool:
        """Whether the blob exists with the expected size (blobs appear only by rename after fsync)."""
        try:
            return self.path(sha256).stat().st_size == size
        except OSError:
            return False

    @contextlib.contextmanager
    def _lock(self, name: str, exclusive: bool) -> Iterator[None]:
        fd = os.open(self.dir / name, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def registering(self) -> contextlib.AbstractContextManager[None]:
        """Shared: held from finding or writing a blob until its row is committed."""
        return self._lock("gc.lock", exclusive=False)

    def collecting(self) -> contextlib.AbstractContextManager[None]:
        """Exclusive: held while blobs or temporary files are deleted."""
        return self._lock("gc.lock", exclusive=True)

    def writing_paths(self) -> contextlib.AbstractContextManager[None]:
        """Exclusive: held while visible files and sidecars are written or removed."""
        return self._lock("paths.lock", exclusive=True)

    def put(self, sha256: str, data: bytes) -> Path:
        """Store ``data`` (whose digest the caller computed) unless an intact blob exists; returns its path.
        The bytes are fsynced and renamed into place, so a blob that exists is complete."""
        target = self.path(sha256)
        if self.has(sha256, len(data)):
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".blob.", suffix=".tmp", dir=self.tmp)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(name, 0o444)  # hard-linked visible files share this inode: keep it from in-place edits
            os.replace(name, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
            raise
        _fsync_dir(target.parent)
        return target

    def put_file(self, sha256: str, source: Path) -> Path:
        """Store the bytes of ``source`` (already hashed by the caller) as a blob, copying in chunks."""
        target = self.path(sha256)
        if self.has(sha256, source.stat().st_size):
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".blob.", suffix=".tmp", dir=self.tmp)
        try:
            with os.fdopen(fd, "wb") as handle, source.open("rb") as src:
                shutil.copyfileobj(src, handle, 2**20)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(name, 0o444)
            os.replace(name, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
            raise
        _fsync_dir(target.parent)
        return target

    def adopt(self, sha256: str, source: Path) -> bool:
        """Hard-link ``source`` in as the blob of ``sha256`` (no copy) when its bytes still hash to it;
        False when linking is impossible or the file changed since it was hashed."""
        if self.has(sha256, source.stat().st_size):
            return True
        target = self.path(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = self.tmp / f".adopt.{os.urandom(6).hex()}.tmp"
        try:
            os.link(source, temp)
        except OSError:
            return False
        try:
            if file_sha256(temp) != sha256:
                return False
            os.replace(temp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        _fsync_dir(target.parent)
        return True

    def materialize(self, sha256: str, target: Path) -> None:
        """Make ``target`` hold the blob's bytes: a hard link to the blob (a copy where linking fails),
        swapped in by rename so a reader never sees a partial file. Nothing happens when it already is."""
        blob = self.path(sha256)
        with contextlib.suppress(OSError):  # already this very file (a link to the blob)
            if os.path.samefile(blob, target):
                return
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.parent / f".{target.name}.{os.urandom(6).hex()}.tmp"
        try:
            os.link(blob, temp)
        except OSError:  # another file system, or links not allowed: a copy does
            atomic_write_bytes(target, blob.read_bytes(), mode=0o444)
            return
        try:
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        _fsync_dir(target.parent)

    def remove(self, sha256: str) -> bool:
        """Delete a blob (callers hold `collecting`); False when it was not there."""
        try:
            self.path(sha256).unlink()
        except FileNotFoundError:
            return False
        return True

    def shas(self) -> Iterator[tuple[str, Path]]:
        """Every blob on disk as ``(sha256, path)``."""
        for folder in sorted(self.dir.iterdir()):
            if len(folder.name) == 2 and folder.is_dir() and set(folder.name) <= _HEX:
                for blob in sorted(folder.iterdir()):
                    if len(blob.name) == 64 and set(blob.name) <= _HEX:
                        yield blob.name, blob

    def temp_files(self) -> Iterator[Path]:
        """Leftovers of interrupted writes: everything in ``.blobs/tmp`` and ``.<name>.<random>.tmp`` files
        below the root. Only valid under `collecting` (no registration is mid-write then)."""
        yield from sorted(p for p in self.tmp.iterdir() if p.is_file())
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not (folder == str(self.root) and d == BLOBS_DIR))
            yield from (Path(folder) / name for name in sorted(files) if is_temp_name(name))
