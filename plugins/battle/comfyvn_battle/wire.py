"""The JSON boundary of the battle plugin: request shapes and the plugin's one cattrs converter.

Requests are structured strictly (no `"3"` for 3, no `1` for true, unknown keys rejected) and any
failure becomes a `ComfyVNError` naming the offending field, so HTTP answers 400 and the CLI exits 2.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.v import format_exception
from comfyvn.errors import ComfyVNError

__all__ = ["PlanRequest", "ResolveRequest", "SimRequest", "converter", "parse_request"]

T = TypeVar("T")
MAX_ROUNDS = 50
MAX_SEED = 2**64
_AT = re.compile(r"^(?P<message>.*) @ \$(?P<path>.*)$")


class _InvalidValueError(ValueError):
    """A value rejected by a strict hook; its message is shown as is."""


def _strict(kind: type, *allowed: type) -> Any:
    def hook(value: Any, _type: Any) -> Any:
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, allowed):
            expected = "a number" if kind is float else kind.__name__
            raise _InvalidValueError(f"expected {expected}, got {type(value).__name__}")
        return kind(value)

    return hook


converter = cattrs.Converter(forbid_extra_keys=True)
converter.register_structure_hook(bool, _strict(bool, bool))
converter.register_structure_hook(int, _strict(int, int))
converter.register_structure_hook(float, _strict(float, int, float))
converter.register_structure_hook(str, _strict(str, str))


def _format(exc: BaseException, type_: type | None) -> str:
    return str(exc) if isinstance(exc, _InvalidValueError) else format_exception(exc, type_)


def _own_error(exc: BaseException) -> ComfyVNError | None:
    # A validator's ComfyVNError already names its field; cattrs wraps it in a group.
    if isinstance(exc, ComfyVNError):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = _own_error(inner)
        if found is not None:
            return found
    return None


def parse_request(data: Any, cls: type[T]) -> T:
    """Structure a JSON object into ``cls`` or raise `ComfyVNError` naming the first bad field."""
    if not isinstance(data, dict):
        raise ComfyVNError("the request body must be a JSON object", field="body", code="invalid_request")
    try:
        return converter.structure(data, cls)
    except (cattrs.ClassValidationError, cattrs.ForbiddenExtraKeysError) as exc:
        own = _own_error(exc)
        if own is not None:
            raise own from None
        messages = cattrs.transform_error(exc, path="$", format_exception=_format)
        match = _AT.match(messages[0]) if messages else None
        message, path = (match["message"], match["path"].lstrip(".")) if match else (str(exc), "")
        extra = re.match(r"extra fields found \((?P<names>[^)]*)\)", message)
        if extra:
            first = extra["names"].split(", ")[0]
            path = f"{path}.{first}" if path else first
            message = f"unknown field {first!r}"
        field = path or "body"
        raise ComfyVNError(f"{field}: {message}", field=field, code="invalid_request") from None


def _bad(attribute: attrs.Attribute[Any], message: str) -> ComfyVNError:
    return ComfyVNError(f"{attribute.name}: {message}", field=attribute.name, code="invalid_request")


def _seed(instance: Any, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and not 0 <= value < MAX_SEED:
        raise _bad(attribute, "must be between 0 and 2**64 - 1")


def _rounds(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if not 1 <= value <= MAX_ROUNDS:
        raise _bad(attribute, f"must be between 1 and {MAX_ROUNDS}")


def _name(instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and not value.strip():
        raise _bad(attribute, "must not be blank")


@attrs.frozen
class ResolveRequest:
    """``POST /api/battle/resolve``: the editor's pick, optionally analysed against ``stats``."""

    winner: str = attrs.field(validator=_name)
    state: Any = None
    persist_state: bool = True
    stats: Any = None
    seed: int | None = attrs.field(default=None, validator=_seed)
    pov: str | None = attrs.field(default=None, validator=_name)
    narrate: bool = True
    rounds: int = attrs.field(default=1, validator=_rounds)
    scene_id: str | None = None
    node_id: str | None = None


@attrs.frozen
class SimRequest:
    """``POST /api/battle/sim``: let the formula decide."""

    stats: Any
    seed: int | None = attrs.field(default=None, validator=_seed)
    state: Any = None
    persist_state: bool = False
    pov: str | None = attrs.field(default=None, validator=_name)
    rounds: int = attrs.field(default=3, validator=_rounds)
    narrate: bool = False
    scene_id: str | None = None
    node_id: str | None = None


@attrs.frozen
class PlanRequest:
    """``POST /api/battle/plan``: the three-phase timeline for a battle beat."""

    stats: Any = None
    contenders: list[str] | None = None
    pov: str | None = attrs.field(default=None, validator=_name)
    rounds: int = attrs.field(default=3, validator=_rounds)
    world: dict[str, str] | None = None
    scene_id: str | None = None
    node_id: str | None = None
