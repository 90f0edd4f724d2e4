"""Reading a file already on this machine for `AssetRegistry.register_file`: resolved (symlinks included)
and, when confined, only under the configured import roots; read with a bound. Errors never name the path."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from comfyvn.errors import Invalid, NotFound, OperationFailed, TooLarge

__all__ = ["MAX_PATH", "read_bounded", "resolve_source"]

MAX_PATH = 4096


def resolve_source(path: str | os.PathLike[str], roots: Sequence[Path], *, confined: bool) -> Path:
    """The regular file ``path`` names. With ``confined``, it must lie under one of ``roots`` once resolved
    (`Invalid` ``outside_import_roots`` otherwise, checked before existence so nothing outside is probed);
    a relative path is looked up in each root."""
    text = os.fspath(path)
    if not isinstance(text, str) or not text or "\x00" in text or len(text) > MAX_PATH:
        raise Invalid(f"path must be a file path of at most {MAX_PATH} characters", field="path", code="invalid_path")
    try:
        resolved = _resolve(Path(text).expanduser(), roots, confined)
        exists, regular = resolved.exists(), resolved.is_file()
    except (OSError, RuntimeError):  # a name too long, a symlink loop: nothing to read there
        raise NotFound("the file does not exist", field="path", code="file_not_found") from None
    if not exists:
        raise NotFound("the file does not exist", field="path", code="file_not_found")
    if not regular:
        raise Invalid("the path is not a regular file", field="path", code="not_a_file")
    return resolved


def _resolve(given: Path, roots: Sequence[Path], confined: bool) -> Path:
    if not confined:
        return given.resolve()
    if not roots:
        raise Invalid(
            "no import roots are configured (assets.import_roots in comfyvn.json or "
            "COMFYVN_ASSETS_IMPORT_ROOTS), so no server file can be registered",
            field="path",
            code="outside_import_roots",
        )
    candidates = [given.resolve()] if given.is_absolute() else [(root / given).resolve() for root in roots]
    inside = [c for c in candidates if any(c == r or r in c.parents for r in roots)]
    if not inside:
        raise Invalid("the path is not under a configured import root", field="path", code="outside_import_roots")
    return next((c for c in inside if c.exists()), inside[0])


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path`` (not following a final symlink), at most ``limit`` of them."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        raise OperationFailed("the file cannot be read", field="path", code="unreadable_file") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Invalid("the path is not a regular file", field="path", code="not_a_file")
        if info.st_size > limit:
            raise TooLarge(f"the file is larger than the {limit} bytes allowed", field="file", code="asset_too_large")
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read(limit + 1)  # the caller's size check sees a file that grew meanwhile
    except OSError:
        raise OperationFailed("the file cannot be read", field="path", code="unreadable_file") from None
    finally:
        os.close(fd)
