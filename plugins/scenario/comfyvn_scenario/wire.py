"""The JSON boundary of the scenario plugin: request shapes and the plugin's one cattrs converter.

Requests are structured strictly (no ``"3"`` for 3, no ``1`` for true, unknown keys rejected) and a
failure becomes a `ComfyVNError` naming the offending field. A request names its story either as
``scene`` (one scene) or as ``project`` (+ ``scenes``), see `story_of`.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.v import format_exception
from comfyvn.errors import ComfyVNError

from .project import Project, project_from_payload

__all__ = [
    "PlaytestRequest",
    "PovForkRequest",
    "PovSetRequest",
    "StepRequest",
    "converter",
    "parse_request",
    "story_of",
]

T = TypeVar("T")
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
    if value is not None and value < 0:
        raise _bad(attribute, "must be a non-negative integer")


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if not 1 <= value <= 100_000:
        raise _bad(attribute, "must be between 1 and 100000")


def _name(instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and not value.strip():
        raise _bad(attribute, "must not be blank")


def _object(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, dict):
        raise _bad(attribute, "must be a JSON object")


@attrs.frozen
class StepRequest:
    """``POST /api/scenario/run/step``: ``{scene | project+scenes, state?, seed?, choice_id? (alias choice), pov?}``."""

    scene: Any = attrs.field(default=None, validator=_object)
    project: Any = attrs.field(default=None, validator=_object)
    scenes: Any = None
    state: Any = attrs.field(default=None, validator=_object)
    seed: int | None = attrs.field(default=None, validator=_seed)
    choice_id: str | None = attrs.field(default=None, validator=_name)
    choice: str | None = attrs.field(default=None, validator=_name)
    pov: str | None = attrs.field(default=None, validator=_name)


@attrs.frozen
class PlaytestRequest:
    """``POST /api/playtest/run``; ``prompt_packs`` and ``workflow`` are recorded in the provenance."""

    scene: Any = attrs.field(default=None, validator=_object)
    project: Any = attrs.field(default=None, validator=_object)
    scenes: Any = None
    seed: int = attrs.field(default=0, validator=_seed)
    pov: str | None = attrs.field(default=None, validator=_name)
    povs: list[str] | None = None
    variables: Any = attrs.field(default=None, validator=_object)
    policy: str = "random"
    choices: list[str] = attrs.Factory(list)
    max_steps: int = attrs.field(default=500, validator=_positive)
    max_depth: int = attrs.field(default=200, validator=_positive)
    max_states: int = attrs.field(default=20_000, validator=_positive)
    golden: Any = attrs.field(default=None, validator=_object)
    persist: bool = False
    dry_run: bool = False
    prompt_packs: Any = None
    workflow: Any = None


@attrs.frozen
class PovSetRequest:
    """``POST /api/pov/set``: ``{pov?}`` (absent or null: back to the default POV)."""

    pov: str | None = None


@attrs.frozen
class PovForkRequest:
    """``POST /api/pov/fork``: ``{slot, pov?}`` -> a deterministic slot name."""

    slot: str = attrs.field(validator=_name)
    pov: str | None = attrs.field(default=None, validator=_name)


def story_of(scene: Any, project: Any, scenes: Any) -> dict[str, Any] | Project:
    """The scene dict or `Project` a request names; exactly one of ``scene`` / ``project``."""
    if scene is not None and project is not None:
        raise ComfyVNError("send either scene or project, not both", field="project", code="invalid_request")
    if project is not None:
        return project_from_payload(project, scenes)
    if scene is None:
        raise ComfyVNError("a scene (or a project with scenes) is required", field="scene", code="missing_field")
    if scenes is not None:
        raise ComfyVNError("scenes only go with project", field="scenes", code="invalid_request")
    return scene
