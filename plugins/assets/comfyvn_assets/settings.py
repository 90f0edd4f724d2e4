"""Where the registry lives and what it accepts: ``assets`` in comfyvn.json and the environment.

``{"assets": {"import_roots": ["/srv/art"], "max_upload_bytes": 67108864}}`` — both optional.
``COMFYVN_ASSETS_ROOT`` moves the whole registry (files, blobs and database) to another folder, a sandbox
for a mod pack; ``COMFYVN_ASSETS_IMPORT_ROOTS`` (``os.pathsep``-separated) replaces ``import_roots``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from comfyvn.errors import ComfyVNError

__all__ = ["DEFAULT_MAX_BYTES", "IMPORT_ROOTS_ENV", "ROOT_ENV", "AssetSettings"]

ROOT_ENV = "COMFYVN_ASSETS_ROOT"
IMPORT_ROOTS_ENV = "COMFYVN_ASSETS_IMPORT_ROOTS"
DEFAULT_MAX_BYTES = 64 * 2**20
_KEYS = frozenset({"import_roots", "max_upload_bytes"})


def _bad(message: str, field: str) -> ComfyVNError:
    return ComfyVNError(message, field=f"assets.{field}", code="invalid_config")


def _absolute(text: str, field: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_absolute():
        raise _bad("import roots must be absolute paths", field)
    return path.resolve()


@attrs.frozen
class AssetSettings:
    """``root``: the registry folder; ``import_roots``: where ``register`` may read; ``max_bytes``: the
    largest file accepted (uploads, registrations, imports)."""

    root: Path
    cache: Path
    import_roots: tuple[Path, ...] = ()
    max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def from_kernel(cls, kernel: Any) -> AssetSettings:
        """The settings of ``kernel``: its environment first, then ``assets`` in comfyvn.json."""
        section = kernel.config.get("assets", {})
        if not isinstance(section, Mapping):
            raise _bad("assets in comfyvn.json must be an object", "(root)")
        if unknown := sorted(set(section) - _KEYS):
            raise _bad(f"unknown setting {unknown[0]!r}", str(unknown[0]))
        env: Mapping[str, str] = kernel.env
        root = Path(env[ROOT_ENV]).expanduser().resolve() if env.get(ROOT_ENV) else kernel.paths.data / "assets"
        if env.get(IMPORT_ROOTS_ENV):
            texts = [p for p in env[IMPORT_ROOTS_ENV].split(os.pathsep) if p.strip()]
        else:
            texts = section.get("import_roots", [])
            if not isinstance(texts, list) or not all(isinstance(t, str) and t.strip() for t in texts):
                raise _bad("import_roots must be a list of folder paths", "import_roots")
        roots = tuple(_absolute(text, "import_roots") for text in texts)
        max_bytes = section.get("max_upload_bytes", DEFAULT_MAX_BYTES)
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or not 1 <= max_bytes <= 2**34:
            raise _bad("max_upload_bytes must be a whole number of bytes from 1 to 16 GiB", "max_upload_bytes")
        return cls(root=root, cache=kernel.paths.cache / "assets", import_roots=roots, max_bytes=max_bytes)
