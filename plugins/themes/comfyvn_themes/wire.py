"""The themes plugin's apply request, structured by the shared strict converter (`comfyvn.wire`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from comfyvn.errors import Invalid
from comfyvn.wire import parse_request

from .planner import CharacterRequest
from .templates import CHARACTER_FIELDS

__all__ = ["ApplyRequest", "parse_apply", "parse_characters"]


@attrs.frozen
class ApplyRequest:
    """``POST /api/themes/apply``: ``{theme*, characters?, current?, scene_id?}``."""

    theme: str
    characters: Any = None
    current: Any = None
    scene_id: str | None = None


def _fail(field: str, message: str) -> Invalid:
    return Invalid(f"{field}: {message}", field=field, code="invalid_request")


def parse_characters(raw: Any) -> tuple[CharacterRequest, ...]:
    """``[id, ...]`` or ``{id: {role?, overrides?{palette, rim_light, wardrobe, expression_bias}}}``."""
    if raw is None:
        return ()
    if isinstance(raw, list):
        for index, item in enumerate(raw):
            if not isinstance(item, str) or not item.strip():
                raise _fail(f"characters[{index}]", "character ids must be non-empty strings")
        return tuple(CharacterRequest(item.strip()) for item in raw)
    if not isinstance(raw, Mapping):
        raise _fail("characters", "expected a list of ids or an object keyed by id")
    people = []
    for key, spec in raw.items():
        where = f"characters.{key}"
        if not key.strip():
            raise _fail(where, "character ids must be non-empty strings")
        if spec is None:
            spec = {}
        if not isinstance(spec, Mapping):
            raise _fail(where, "expected an object {role?, overrides?}")
        for name in spec:
            if name not in ("role", "overrides"):
                raise _fail(f"{where}.{name}", f"unknown field {name!r}")
        role = spec.get("role")
        if role is not None and not isinstance(role, str):
            raise _fail(f"{where}.role", "expected str")
        overrides = spec.get("overrides") or {}
        if not isinstance(overrides, Mapping):
            raise _fail(f"{where}.overrides", "expected an object")
        for name, value in overrides.items():
            if name not in CHARACTER_FIELDS:
                raise _fail(
                    f"{where}.overrides.{name}", f"unknown field {name!r}; expected one of {list(CHARACTER_FIELDS)}"
                )
            if not isinstance(value, str):
                raise _fail(f"{where}.overrides.{name}", "expected str")
        people.append(CharacterRequest(key.strip(), role, tuple(sorted(overrides.items()))))
    return tuple(people)


def parse_apply(data: Any) -> ApplyRequest:
    """Structure the apply body or raise `Invalid` naming the first bad field."""
    request = parse_request(data, ApplyRequest)
    if request.current is not None and not isinstance(request.current, dict):
        raise _fail("current", "expected an object (the plan to diff against)")
    return request
