"""What an asset is: its type (with the product's legacy short names), its record (`Asset`) and the checks
every field from outside goes through (tags, licence, metadata, provenance)."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from comfyvn.errors import Invalid, TooLarge, clip
from comfyvn.wire import dumps, loads

__all__ = [
    "ASSET_TYPES",
    "AUDIO_TYPES",
    "IMAGE_TYPES",
    "LEGACY_TYPES",
    "MAX_JSON_BYTES",
    "MAX_TAGS",
    "Asset",
    "check_holder",
    "check_json_object",
    "check_tags",
    "check_text",
    "normalize_type",
    "type_bucket",
    "uid_for",
]

# Canonical type -> the folder a file of that type lands in when no destination is given.
ASSET_TYPES: dict[str, str] = {
    "character.sprite": "characters/sprites",
    "character.portrait": "characters/portraits",
    "background": "backgrounds",
    "image": "images",
    "audio.bgm": "audio/bgm",
    "audio.sfx": "audio/sfx",
    "audio.voice": "audio/voice",
}
# The original product's short bucket names, accepted everywhere a type is.
LEGACY_TYPES: dict[str, str] = {
    "sprite": "character.sprite",
    "sprites": "character.sprite",
    "portrait": "character.portrait",
    "portraits": "character.portrait",
    "character": "character.portrait",
    "bg": "background",
    "backgrounds": "background",
    "images": "image",
    "bgm": "audio.bgm",
    "music": "audio.bgm",
    "sfx": "audio.sfx",
    "sound": "audio.sfx",
    "voice": "audio.voice",
}
IMAGE_TYPES = frozenset({"character.sprite", "character.portrait", "background", "image"})
AUDIO_TYPES = frozenset({"audio.bgm", "audio.sfx", "audio.voice"})

MAX_TAGS = 64
MAX_TAG = 64
MAX_TEXT = 200
MAX_HOLDER = 200
MAX_JSON_BYTES = 64 * 2**10


def normalize_type(value: Any, field: str = "asset_type") -> str:
    """The canonical type for ``value`` (case-insensitive, legacy names mapped); `Invalid` otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid("an asset type is required", field=field, code="invalid_asset_type")
    name = value.strip().lower()
    name = LEGACY_TYPES.get(name, name)
    if name not in ASSET_TYPES:
        known = ", ".join(sorted(ASSET_TYPES))
        raise Invalid(
            f"unknown asset type {clip(value, 40)!r}; use one of {known}", field=field, code="invalid_asset_type"
        )
    return name


def type_bucket(asset_type: str) -> str:
    """The folder (relative to the assets root) a type's files default to."""
    return ASSET_TYPES[asset_type]


def uid_for(dest_path: str) -> str:
    """An asset's uid: the first 16 hex digits of the sha256 of its path, so new bytes at the same path keep
    the uid (a re-render replaces content and every reference stays valid)."""
    return hashlib.sha256(dest_path.encode("utf-8")).hexdigest()[:16]


def _printable(text: str) -> bool:
    return not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text)


def check_text(value: Any, field: str, limit: int = MAX_TEXT) -> str | None:
    """An optional short text (licence, source): stripped, printable, at most ``limit`` characters; "" is None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(f"{field} must be text", field=field, code="invalid_request")
    text = value.strip()
    if len(text) > limit or not _printable(text):
        raise Invalid(f"{field} must be at most {limit} printable characters", field=field, code="invalid_request")
    return text or None


def check_tags(values: Any, field: str = "tags") -> tuple[str, ...]:
    """Tags: a list of short printable strings; stripped, duplicates (ignoring case) dropped, order kept."""
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise Invalid("tags must be a list of strings", field=field, code="invalid_tags")
    seen: set[str] = set()
    tags: list[str] = []
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise Invalid("tags must be a list of strings", field=f"{field}[{index}]", code="invalid_tags")
        tag = value.strip()
        if not tag or len(tag) > MAX_TAG or not _printable(tag):
            raise Invalid(
                f"a tag is 1 to {MAX_TAG} printable characters", field=f"{field}[{index}]", code="invalid_tags"
            )
        if tag.casefold() not in seen:
            seen.add(tag.casefold())
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise TooLarge(f"at most {MAX_TAGS} tags", field=field, code="too_many_tags")
    return tuple(tags)


def check_json_object(value: Any, field: str) -> dict[str, Any]:
    """An optional JSON object (metadata, provenance) that strict JSON stores and reads back, bounded in size."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise Invalid(f"{field} must be a JSON object", field=field, code="invalid_request")
    text = dumps(dict(value), sort_keys=True)  # Invalid for NaN, lone surrogates, non-JSON values
    if len(text.encode("utf-8")) > MAX_JSON_BYTES:
        raise TooLarge(f"{field} is larger than {MAX_JSON_BYTES // 1024} KiB", field=field, code="too_large")
    result: dict[str, Any] = loads(text, field=field)  # a plain copy, and the wire policy (depth, big ints)
    return result


def check_holder(value: Any) -> str:
    """A reference holder name such as ``project:demo``."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_HOLDER or not _printable(value):
        raise Invalid(f"a holder is 1 to {MAX_HOLDER} printable characters", field="holder", code="invalid_holder")
    return value.strip()


@attrs.frozen
class Asset:
    """One registered asset. ``path`` is POSIX and relative to the registry root; ``refs`` are its holders."""

    uid: str
    type: str
    path: str
    sha256: str
    size: int
    width: int | None
    height: int | None
    tags: tuple[str, ...]
    license: str | None
    source: str | None
    metadata: dict[str, Any]
    provenance: dict[str, Any]
    created: float
    pinned: bool = False
    refs: tuple[str, ...] = ()
    updated: float = 0.0
    last_access: float = 0.0

    def sidecar_payload(self) -> dict[str, Any]:
        """What ``<file>.asset.json`` holds (registry state such as pins and holders stays in the database)."""
        return {
            "uid": self.uid,
            "type": self.type,
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "width": self.width,
            "height": self.height,
            "tags": list(self.tags),
            "license": self.license,
            "source": self.source,
            "metadata": self.metadata,
            "provenance": self.provenance,
            "created": self.created,
        }

    def to_wire(self) -> dict[str, Any]:
        """The JSON form answered over HTTP, printed by the CLI and carried by events (never an absolute path)."""
        return {
            **self.sidecar_payload(),
            "pinned": self.pinned,
            "refs": list(self.refs),
            "updated": self.updated,
            "last_access": self.last_access,
        }
