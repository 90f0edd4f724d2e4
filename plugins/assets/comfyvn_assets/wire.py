"""The assets plugin's request shapes, structured by the shared strict converter (`comfyvn.wire.parse_request`),
and the product's ``metadata`` convention: ``license``, ``source``, ``tags`` and ``provenance`` given inside
``metadata`` are lifted out into the asset's own fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from comfyvn.errors import Invalid

__all__ = ["Described", "PatchRequest", "PinRequest", "RegisterRequest", "split_metadata"]

_LIFTED = ("license", "source", "tags", "provenance")
# The shared converter turns a string into a list of its characters for ``list[str]``; tags stay untyped
# here and `model.check_tags` (which refuses a string) checks them.
Tags = Any


@attrs.frozen
class RegisterRequest:
    """``POST /assets/register``: a file under a configured import root."""

    path: str
    asset_type: str
    dest_path: str | None = None
    metadata: dict[str, Any] | None = None
    copy: bool = True
    tags: Tags = None
    license: str | None = None
    source: str | None = None
    provenance: dict[str, Any] | None = None


@attrs.frozen
class PatchRequest:
    """``PATCH /assets/{uid}``: each field given replaces the stored one ("" clears a licence or source)."""

    tags: Tags = None
    license: str | None = None
    source: str | None = None
    metadata: dict[str, Any] | None = None


@attrs.frozen
class PinRequest:
    """``POST /assets/{uid}/pin``."""

    pinned: bool = True


@attrs.frozen
class Described:
    """Metadata with the lifted fields taken out; explicit fields win over lifted ones."""

    metadata: dict[str, Any]
    license: Any = None
    source: Any = None
    tags: Any = ()
    provenance: Any = None


def split_metadata(
    metadata: Mapping[str, Any] | None,
    *,
    license: str | None = None,
    source: str | None = None,
    tags: Any = None,
    provenance: Mapping[str, Any] | None = None,
) -> Described:
    """``metadata`` without ``license``/``source``/``tags``/``provenance``, which become the asset's fields."""
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, Mapping):
        raise Invalid("metadata must be a JSON object", field="metadata", code="invalid_request")
    rest = {k: v for k, v in metadata.items() if k not in _LIFTED}
    return Described(
        metadata=rest,
        license=license if license is not None else metadata.get("license"),
        source=source if source is not None else metadata.get("source"),
        tags=tags if tags is not None else metadata.get("tags") or (),
        provenance=provenance if provenance is not None else metadata.get("provenance"),
    )
