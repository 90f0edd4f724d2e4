"""Sidecars: ``<file>.asset.json`` next to each visible file, the asset's description without registry state
(pins and holders live in the database). `rebuild` reads them back into the database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from comfyvn.errors import Unprocessable
from comfyvn.paths import atomic_write_json
from comfyvn.wire import loads

from .destpath import SIDECAR_SUFFIX
from .model import Asset

__all__ = ["read_sidecar", "sidecar_path", "write_sidecar"]

MAX_SIDECAR_BYTES = 1 * 2**20


def sidecar_path(visible: Path) -> Path:
    """``<file>.asset.json`` for a visible file."""
    return visible.with_name(visible.name + SIDECAR_SUFFIX)


def write_sidecar(visible: Path, asset: Asset) -> bool:
    """Write the sidecar of ``asset`` atomically unless it already says exactly that; True when written."""
    target = sidecar_path(visible)
    payload = asset.sidecar_payload()
    try:
        if json.loads(target.read_text(encoding="utf-8")) == payload:
            return False
    except (OSError, ValueError):
        pass
    atomic_write_json(target, payload)
    return True


def read_sidecar(path: Path) -> dict[str, Any]:
    """A sidecar's JSON object (`Unprocessable` ``invalid_sidecar`` when it is not one)."""
    try:
        if path.stat().st_size > MAX_SIDECAR_BYTES:
            raise Unprocessable("the sidecar is too large", field="sidecar", code="invalid_sidecar")
        value = loads(path.read_bytes(), field="sidecar")
    except OSError:
        raise Unprocessable("the sidecar cannot be read", field="sidecar", code="invalid_sidecar") from None
    except Unprocessable:
        raise
    except Exception as exc:  # the wire policy's Invalid: keep the message, it names no path
        raise Unprocessable(str(exc), field="sidecar", code="invalid_sidecar") from None
    if not isinstance(value, dict):
        raise Unprocessable("the sidecar is not a JSON object", field="sidecar", code="invalid_sidecar")
    return value
