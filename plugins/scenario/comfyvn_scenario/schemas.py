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

__all__ = ["SCHEMA_NAMES", "load_schema", "validator"]

SCHEMA_NAMES = ("scene", "project", "save")


@functools.cache
def _text(name: str) -> str:
    if name not in SCHEMA_NAMES:
        raise KeyError(f"unknown schema {name!r}; known: {', '.join(SCHEMA_NAMES)}")
    return resources.files(__package__).joinpath("schemas", f"{name}.schema.json").read_text(encoding="utf-8")


def load_schema(name: str) -> dict[str, Any]:
    """A fresh copy of the schema ``name`` (``scene``, ``project`` or ``save``)."""
    return json.loads(_text(name))


@functools.cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    """A reusable Draft 2020-12 validator for ``name`` (schemas are checked once, on first use)."""
    schema = load_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)
