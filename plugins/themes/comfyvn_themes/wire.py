"""The JSON boundary of the themes plugin: the apply request and the plugin's cattrs converter."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs
from cattrs.v import format_exception
from comfyvn.errors import ComfyVNError

from .planner import CharacterRequest
from .templates import CHARACTER_FIELDS

__all__ = ["ApplyRequest", "converter", "parse_apply", "parse_characters"]

_AT = re.compile(r"^(?P<message>.*) @ \$(?P<path>.*)$")


class _InvalidValueError(ValueError):
    """A value rejected by a strict hook; its message is shown as is."""


def _str_hook(value: Any, _type: Any) -> str:
    if not isinstance(value, str):
        raise _InvalidValueError(f"expected str, got {type(value).__name__}")
    return value


converter = cattrs.Converter(forbid_extra_keys=True)
converter.register_structure_hook(str, _str_hook)


@attrs.frozen
class ApplyRequest:
    """``POST /api/themes/apply``: ``{theme*, characters?, current?, scene_id?}``."""

    theme: str
    characters: Any = None
    current: Any = None
    scene_id: str | None = None


def _format(exc: BaseException, type_: type | None) -> str:
    return str(exc) if isinstance(exc, _InvalidValueError) else format_exception(exc, type_)


def _fail(field: str, message: str) -> ComfyVNError:
    return ComfyVNError(f"{field}: {message}", field=field, code="invalid_request")


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
    """Structure the apply body or raise `ComfyVNError` naming the first bad field."""
    if not isinstance(data, dict):
        raise ComfyVNError("the request body must be a JSON object", field="body", code="invalid_request")
    try:
        request = converter.structure(data, ApplyRequest)
    except cattrs.ClassValidationError as exc:
        messages = cattrs.transform_error(exc, path="$", format_exception=_format)
        match = _AT.match(messages[0]) if messages else None
        message, path = (match["message"], match["path"].lstrip(".")) if match else (str(exc), "")
        extra = re.match(r"extra fields found \((?P<names>[^)]*)\)", message)
        if extra:
            path = extra["names"].split(", ")[0]
            message = f"unknown field {path!r}"
        raise _fail(path or "body", message) from None
    if request.current is not None and not isinstance(request.current, dict):
        raise _fail("current", "expected an object (the plan to diff against)")
    return request
