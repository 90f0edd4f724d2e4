"""Project folders as files and zips: what a project carries, copying it, zipping and unzipping it safely.

A project zip holds project.json, scenes/, assets/ and the project's other files, never the store's
bookkeeping (``.comfyvn/``) or exports (``exports/``). Unzipping refuses entries that could escape the
target (absolute paths, ``..``, links, drive letters) and stops zip bombs by counting the bytes
actually unpacked, not the sizes the archive claims.
"""

from __future__ import annotations

import io
import re
import shutil
import stat
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

from comfyvn.errors import Invalid, TooLarge, Unprocessable
from comfyvn.paths import safe_join

from .project import PROJECT_FILE, SCENES_DIR

__all__ = [
    "MAX_UNPACKED_BYTES",
    "MAX_ZIP_BYTES",
    "MAX_ZIP_ENTRIES",
    "copy_project_files",
    "project_files",
    "unzip_project",
    "zip_project",
]

STORE_DIR = ".comfyvn"
EXPORTS_DIR = "exports"
# A zip upload: its size, its entry count and what it unpacks to. A project with art can be large, but
# an unpacked size far past the upload's is a zip bomb.
MAX_ZIP_BYTES = 512 * 2**20
MAX_ZIP_ENTRIES = 20_000
MAX_UNPACKED_BYTES = 2 * 2**30
# Folders a project zip never carries: the store's bookkeeping and the exports built from the project.
_NOT_EXPORTED = (STORE_DIR, EXPORTS_DIR)
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def zip_project(folder: Path) -> bytes:
    """The project files of ``folder`` as a zip; entries sorted and dated 1980-01-01, so the same
    project gives the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(project_files(folder), key=lambda p: p.as_posix()):
            info = zipfile.ZipInfo(path.as_posix(), date_time=_ZIP_DATE)
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, (folder / path).read_bytes())
    return buffer.getvalue()


def project_files(folder: Path) -> Iterator[PurePosixPath]:
    """Relative paths of the files a project carries (not ``.comfyvn/``, ``exports/``, dot files or links)."""
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if relative.parts[0] in _NOT_EXPORTED or any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_file() and not path.is_symlink():
            yield PurePosixPath(relative.as_posix())


def copy_project_files(source: Path, target: Path, *, replace: bool = False) -> None:
    """Copy the files a project carries besides project.json and scenes (those the store writes itself)."""
    for relative in project_files(source):
        if relative.parts[0] in (PROJECT_FILE, SCENES_DIR):
            continue
        destination = target.joinpath(*relative.parts)
        if destination.exists() and not replace:
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source.joinpath(*relative.parts), destination)


def _zip_name(name: str) -> PurePosixPath | None:
    """A safe relative path for a zip entry, or None for an entry to refuse."""
    if "\x00" in name or "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return None
    path = PurePosixPath(name)
    if any(part in ("", ".", "..") or any(ord(c) < 32 for c in part) for part in path.parts):
        return None
    return path


def unzip_project(data: bytes, target: Path) -> None:
    """Unpack a project zip into ``target``, refusing what could escape it or blow up (400/413/422)."""
    if len(data) > MAX_ZIP_BYTES:
        raise TooLarge(f"the zip is larger than {MAX_ZIP_BYTES // 2**20} MiB", field="file", code="zip_too_large")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError):
        raise Unprocessable("the upload is not a zip file", field="file", code="invalid_zip") from None
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if len(infos) > MAX_ZIP_ENTRIES:
            raise TooLarge(f"the zip has more than {MAX_ZIP_ENTRIES} files", field="file", code="zip_too_large")
        if sum(i.file_size for i in infos) > MAX_UNPACKED_BYTES:
            raise TooLarge("the zip unpacks to more than 2 GiB", field="file", code="zip_too_large")
        names: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
        for info in infos:
            path = _zip_name(info.filename)
            if path is None or stat.S_ISLNK(info.external_attr >> 16):
                raise Invalid("the zip has an entry with an unsafe path", field="file", code="unsafe_zip_entry")
            if info.flag_bits & 0x1:
                raise Unprocessable("the zip is encrypted", field="file", code="invalid_zip")
            names.append((info, path))
        prefix = _common_top(p for _, p in names)
        written = 0
        for info, path in names:
            relative = PurePosixPath(*path.parts[len(prefix) :]) if prefix else path
            if not relative.parts or relative.parts[0] in _NOT_EXPORTED:
                continue
            destination = safe_join(target, *relative.parts, field="file")
            written = _extract(archive, info, destination, written)
    if not (target / PROJECT_FILE).is_file():
        raise Unprocessable("the zip has no project.json", field="file", code="invalid_zip")


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, destination: Path, written: int) -> int:
    """Unpack one entry to ``destination``; returns the bytes unpacked so far. A damaged entry (bad CRC,
    truncated data, an unknown compression) or one that clashes with another (``a`` and ``a/b``) is the
    upload's fault: 422, never a crash."""
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as source, destination.open("wb") as out:
            while chunk := source.read(2**20):
                written += len(chunk)
                if written > MAX_UNPACKED_BYTES:  # the sizes in the directory can lie
                    raise TooLarge("the zip unpacks to more than 2 GiB", field="file", code="zip_too_large")
                out.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError):
        raise Unprocessable(
            "the zip is damaged or uses an unsupported format", field="file", code="invalid_zip"
        ) from None
    except OSError:
        raise Unprocessable(
            "the zip has entries that cannot be unpacked together (a file and a folder of the same name, "
            "or a name too long)",
            field="file",
            code="invalid_zip",
        ) from None
    return written


def _common_top(paths: Iterable[PurePosixPath]) -> tuple[str, ...]:
    """``("folder",)`` when every entry sits in one top folder holding project.json (a zipped folder)."""
    items = list(paths)
    if not items or any(p.as_posix() == PROJECT_FILE for p in items):
        return ()
    tops = {p.parts[0] for p in items if len(p.parts) > 1}
    if len(tops) == 1 and all(len(p.parts) > 1 for p in items):
        top = tops.pop()
        if PurePosixPath(top, PROJECT_FILE) in items:
            return (top,)
    return ()
