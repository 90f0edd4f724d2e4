"""ComfyVN asset registry: every sprite, portrait, background and sound a project uses, registered once.

Files live below ``<data>/assets`` as content-addressed blobs (deduplicated by sha256) with a visible file
per asset linked to its blob and a ``<file>.asset.json`` sidecar carrying provenance; SQLite (WAL) indexes
them with tags, pins, holders and last access for LRU eviction. `AssetRegistry` is the domain; `routes`
(``/assets``) and `cli` (``comfyvn assets``) are the edges.
"""

from __future__ import annotations

from .media import PROVENANCE_KEY, read_png_text
from .model import ASSET_TYPES, LEGACY_TYPES, Asset, normalize_type, uid_for
from .registry import AssetRegistry
from .settings import AssetSettings

__all__ = [
    "ASSET_TYPES",
    "LEGACY_TYPES",
    "PROVENANCE_KEY",
    "Asset",
    "AssetRegistry",
    "AssetSettings",
    "normalize_type",
    "read_png_text",
    "uid_for",
]
