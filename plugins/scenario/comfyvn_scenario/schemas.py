"""The JSON Schemas (Draft 2020-12) shipped with the plugin, and their cached validators.

The same files live in the repository's ``schemas/`` for readers and other tools; a test keeps the
two copies identical.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import jsonschema

from .quickschema import Check, Unsupported, compile_check

__all__ = ["SCHEMA_NAMES", "load_schema", "quick_check", "validator"]

SCHEMA_NAMES = ("scene", "project", "save")


@functools.cache
def _text(name: str) -> str:
    if name not in SCHEMA_NAMES:
        raise KeyError(f"unknown schema {name!r}; known: {', '.join(SCHEMA_NAMES)}")
    return resources.files(__package__).joinpath("schemas", f"{name}.schema.json").read_text(encoding="utf-8")


def load_schema(name: str) -> dict[str, Any]:
    """A fresh copy of the schema ``name`` (``scene``, ``project`` or ``save``)."""
    schema: dict[str, Any] = json.loads(_text(name))
    return schema


def _inline_local_refs(node: Any, defs: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """Replace ``{"$ref": "#/$defs/x"}`` with the definition itself (siblings kept), recursively.

    jsonschema resolves every ``$ref`` through the referencing registry on every use; with one ref per
    node, choice and condition that lookup was over half of validating a 10,000-node project. A
    recursive definition is left as a reference.
    """
    if isinstance(node, list):
        return [_inline_local_refs(item, defs, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] in defs and ref[8:] not in seen:
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        target = _inline_local_refs(defs[ref[8:]], defs, (*seen, ref[8:]))
        # Sibling keywords apply alongside the reference (2020-12), so both go under allOf, not a merge.
        return {"allOf": [target], **_inline_local_refs(siblings, defs, seen)} if siblings else target
    return {k: v if k == "$defs" else _inline_local_refs(v, defs, seen) for k, v in node.items()}


@functools.cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    """A reusable Draft 2020-12 validator for ``name`` (schemas are checked once, on first use)."""
    schema = load_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(_inline_local_refs(schema, schema.get("$defs", {})))


@functools.cache
def quick_check(name: str) -> Check | None:
    """A compiled yes/no check for ``name`` (quickschema.py) that never accepts what `validator` rejects,
    or None where the schema uses a keyword the check does not implement."""
    try:
        return compile_check(load_schema(name))
    except Unsupported:
        return None
