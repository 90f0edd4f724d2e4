"""Where an asset's visible file lives below the registry root: checked destination paths and the default one.

A destination is relative POSIX text: no absolute paths, drive letters, backslashes, NUL or control
characters, no empty, ``.`` or ``..`` segments, and no segment starting with a dot (the registry keeps its
own files, blobs and temporary files under dot-names, so a destination can never reach them). The
``.asset.json`` suffix belongs to sidecars and ``registry.sqlite3*`` at the top to the database.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path, PurePosixPath

from comfyvn.errors import Invalid
from comfyvn.paths import safe_join

from .model import type_bucket

__all__ = [
    "MAX_DEST",
    "MAX_FILE_NAME",
    "SIDECAR_SUFFIX",
    "check_dest_path",
    "default_dest",
    "dest_file",
    "safe_extension",
]

FIELD = "dest_path"
MAX_DEST = 1024
#: A folder name's limit: what file systems take (NAME_MAX).
MAX_SEGMENT = 255
#: The file name's limit, below NAME_MAX: the registry and its tools name files after it — the sidecar
#: ``<name>.asset.json``, companions like ``<name>.bridge.json`` and the temporary ``.<name>....tmp`` files
#: their atomic writes go through (up to 30 bytes more) — and every one of those must fit NAME_MAX too.
MAX_FILE_NAME = 200
SIDECAR_SUFFIX = ".asset.json"
_RESERVED_TOP = "registry.sqlite3"
_WINDOWS = frozenset('<>:"|?*')
_EXTENSION = re.compile(r"^\.[a-z0-9]{1,10}$")


def _refuse(message: str) -> Invalid:
    return Invalid(message, field=FIELD, code="invalid_dest_path")


def check_dest_path(value: object) -> str:
    """``value`` as a normalized relative POSIX path, or `Invalid` (field ``dest_path``) saying why not."""
    if not isinstance(value, str) or not value:
        raise _refuse("dest_path must be a non-empty relative path")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_DEST:  # bytes: below the root it must fit PATH_MAX
        raise _refuse(f"dest_path is longer than {MAX_DEST} bytes")
    if "\\" in value:
        raise _refuse("dest_path uses '/' between folders, never a backslash")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise _refuse("dest_path contains a control character")
    if value.startswith("/") or re.match(r"^[A-Za-z]:", value):
        raise _refuse("dest_path must be relative to the assets root, not absolute")
    segments = value.split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise _refuse("dest_path has an empty, '.' or '..' segment")
        if segment.startswith("."):
            raise _refuse("dest_path segments cannot start with a dot (hidden names belong to the registry)")
        if segment != segment.strip() or segment.endswith("."):
            raise _refuse("dest_path segments cannot start or end with spaces or end with a dot")
        if len(segment.encode("utf-8")) > MAX_SEGMENT:
            raise _refuse(f"a dest_path folder name is longer than {MAX_SEGMENT} bytes")
        if _WINDOWS & set(segment):
            raise _refuse('dest_path cannot contain any of < > : " | ? * (not portable)')
    if len(segments[-1].encode("utf-8")) > MAX_FILE_NAME:
        raise _refuse(
            f"the dest_path file name is longer than {MAX_FILE_NAME} bytes (the rest of the file system's"
            f" {MAX_SEGMENT} is kept for the sidecar and temporary files named after it)"
        )
    if segments[-1].lower().endswith(SIDECAR_SUFFIX):
        raise _refuse(f"names ending in {SIDECAR_SUFFIX} are sidecars")
    if len(segments) == 1 and segments[0].lower().startswith(_RESERVED_TOP):
        raise _refuse(f"{_RESERVED_TOP} at the top of the root is the registry's database")
    return "/".join(segments)


def dest_file(root: Path, dest_path: str) -> Path:
    """The visible file of ``dest_path`` below ``root`` (a symlink leading out of the root is refused)."""
    return safe_join(root, *dest_path.split("/"), field=FIELD)


def safe_extension(filename: str | None) -> str:
    """A lower-case extension from an uploaded file name (``.png``), or "" when it has none worth keeping."""
    if not filename:
        return ""
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    return suffix if _EXTENSION.match(suffix) else ""


def default_dest(asset_type: str, sha256: str, extension: str) -> str:
    """``<type folder>/<sha[:12]><ext>``: the same bytes of one type always land on the same path."""
    return f"{type_bucket(asset_type)}/{sha256[:12]}{extension}"
