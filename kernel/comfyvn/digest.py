"""The canonical JSON digest every plugin shares, so equal data has one checksum on every machine."""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["canonical_json", "digest"]


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, non-ASCII kept, no NaN/Infinity: the text a digest is taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def digest(value: Any) -> str:
    """``sha256`` hex of the UTF-8 bytes of `canonical_json` (a lone surrogate raises ``UnicodeEncodeError``)."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()
