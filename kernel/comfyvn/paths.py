"""Runtime roots (config, data, cache, logs) from platformdirs, ``COMFYVN_RUNTIME_ROOT`` or
``COMFYVN_{CONFIG,DATA,CACHE,LOG}_DIR`` — never the working directory; atomic writes; root-confined paths."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import platformdirs

from .errors import ComfyVNError

__all__ = ["RuntimePaths", "atomic_write_bytes", "atomic_write_json", "atomic_write_text", "safe_join"]

_PLUGIN_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


@attrs.frozen
class RuntimePaths:
    """The four runtime roots. Folders are created on first use, not on construction."""

    config: Path
    data: Path
    cache: Path
    logs: Path

    @classmethod
    def under(cls, root: str | os.PathLike[str]) -> RuntimePaths:
        """All four roots below one folder (what ``COMFYVN_RUNTIME_ROOT`` does; handy in tests)."""
        base = Path(root).expanduser().resolve()
        return cls(*(base / name for name in ("config", "data", "cache", "logs")))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RuntimePaths:
        """Resolve the roots: per-root variables win over ``COMFYVN_RUNTIME_ROOT``, which wins over platformdirs."""
        env = os.environ if env is None else env
        if root := env.get("COMFYVN_RUNTIME_ROOT"):
            base = cls.under(root)
        else:
            dirs = platformdirs.PlatformDirs("comfyvn", appauthor=False)
            base = cls(
                *(Path(d) for d in (dirs.user_config_dir, dirs.user_data_dir, dirs.user_cache_dir, dirs.user_log_dir))
            )
        overrides = {
            attr: Path(env[f"COMFYVN_{var}_DIR"]).expanduser().resolve()
            for attr, var in (("config", "CONFIG"), ("data", "DATA"), ("cache", "CACHE"), ("logs", "LOG"))
            if env.get(f"COMFYVN_{var}_DIR")
        }
        return attrs.evolve(base, **overrides)

    def plugin_dir(self, plugin: str, kind: str = "data") -> Path:
        """A plugin's own folder below one root (``data`` by default), created if missing."""
        if not _PLUGIN_NAME.match(plugin):
            raise ValueError(f"invalid plugin name for a folder: {plugin!r}")
        if kind not in ("config", "data", "cache", "logs"):
            raise ValueError(f"unknown root {kind!r}")
        folder: Path = getattr(self, kind) / "plugins" / plugin
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def as_dict(self) -> dict[str, str]:
        return {name: str(value) for name, value in attrs.asdict(self).items()}


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int | None = None) -> Path:
    """Write ``data`` so readers see the old file or the new one, never a torn one: temp file in the same
    folder, fsync, rename, fsync the folder. On failure the temp file goes and the old file is untouched."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp_name, mode)
        elif target.exists():
            os.chmod(tmp_name, target.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp_name, 0o644)  # mkstemp makes 0600; a new user file is world-readable as usual
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(target.parent)
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str, *, mode: int | None = None) -> Path:
    """`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def atomic_write_json(path: str | os.PathLike[str], value: Any, *, mode: int | None = None) -> Path:
    """Write ``value`` as pretty, key-sorted UTF-8 JSON (stable bytes for stable input), atomically."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return atomic_write_text(path, text, mode=mode)


# In bytes: the longest name most file systems take (NAME_MAX), the longest path Linux opens (PATH_MAX - 1).
_NAME_MAX, _PATH_MAX = 255, 4095


def safe_join(root: str | os.PathLike[str], *parts: str, field: str | None = None) -> Path:
    """Join untrusted ``parts`` below ``root``; absolute parts, NUL bytes, ``..`` or symlink escapes, and names
    or paths the OS would refuse (too long, not text) raise `ComfyVNError` (400 ``invalid_path``) naming
    ``field``: a path it answers can be probed (``is_file``) without ``OSError`` ENAMETOOLONG."""
    base = Path(root).resolve()
    if bad := [p for p in parts if "\x00" in p or os.path.isabs(p) or p.startswith(("/", "\\"))]:
        raise ComfyVNError(f"path {bad[0]!r} is not allowed", field=field, code="invalid_path")
    try:
        names = [os.fsencode(name) for part in parts for name in Path(part).parts]
    except UnicodeError:  # a lone surrogate: no file system can name it
        raise ComfyVNError("path is not valid text", field=field, code="invalid_path") from None
    if any(len(name) > _NAME_MAX for name in names):
        raise ComfyVNError(f"path has a name longer than {_NAME_MAX} bytes", field=field, code="invalid_path")
    candidate = base.joinpath(*parts).resolve()
    if candidate != base and base not in candidate.parents:
        raise ComfyVNError("path escapes its root", field=field, code="invalid_path")
    if len(os.fsencode(candidate)) > _PATH_MAX:
        raise ComfyVNError(f"path is longer than {_PATH_MAX} bytes", field=field, code="invalid_path")
    return candidate


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # some platforms cannot open or fsync folders; the rename is still atomic
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
