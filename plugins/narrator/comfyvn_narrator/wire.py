"""Request shapes of the narrator sessions, structured by the kernel's strict converter (`comfyvn.wire.parse_request`).

The REST routes and the CLI build the same classes, so both accept the same fields with the same limits. A
failure is an `Invalid` (400) naming the offending field, never echoing a whole input.
"""

from __future__ import annotations

import re
from typing import Any, Final

import attrs
from comfyvn.errors import Invalid
from comfyvn_llm.orchestrator import ROLES

__all__ = [
    "MAX_MESSAGE",
    "MAX_ROLLBACK",
    "MODES",
    "ApplyRequest",
    "ChatRequest",
    "ModeRequest",
    "ProposeRequest",
    "RollbackRequest",
    "SceneRequest",
    "check_scene_id",
]

MODES: Final = ("observe", "propose", "apply")
MAX_MESSAGE, MAX_TEXT, MAX_CHOICES, MAX_ROLLBACK = 4000, 8000, 50, 16
SCENE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
NODE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}")
POV_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
PROPOSAL_ID = re.compile(r"p[0-9]{4,9}")


def _bad(name: str, message: str, code: str = "invalid_request") -> Invalid:
    return Invalid(f"{name}: {message}", field=name, code=code)


def check_scene_id(value: Any, field: str = "scene_id") -> str:
    """A scene id: 1-100 letters, digits, ``_``, ``.`` or ``-`` starting with a letter or digit (a file name)."""
    if not isinstance(value, str) or not SCENE_ID.fullmatch(value):
        raise _bad(field, "1-100 letters, digits, '_', '.' or '-', starting with a letter or digit", "invalid_scene_id")
    return value


def _scene(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    check_scene_id(value, attribute.name)


def _pattern(pattern: re.Pattern[str], what: str) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
        if value is not None and not pattern.fullmatch(value):
            raise _bad(attribute.name, what)

    return check


def _text(limit: int, *, required: bool = False) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
        if value is None:
            return
        if len(value) > limit:
            raise _bad(attribute.name, f"at most {limit} characters", "too_long")
        if required and not value.strip():
            raise _bad(attribute.name, "must not be blank")

    return check


def _mode(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in MODES:
        raise _bad(attribute.name, f"must be one of {', '.join(MODES)}", "invalid_mode")


def _role(instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and value.lower() not in ROLES:
        raise _bad(attribute.name, f"must be one of {', '.join(ROLES)}", "invalid_role")


def _object(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, dict):
        raise _bad(attribute.name, "must be a JSON object")


def _choices(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, list) or len(value) > MAX_CHOICES:
        raise _bad(attribute.name, f"must be a list of at most {MAX_CHOICES} choices")
    seen: set[str] = set()
    for index, choice in enumerate(value):
        where = f"{attribute.name}[{index}]"
        if not isinstance(choice, dict) or set(choice) - {"id", "text"}:
            raise _bad(where, "a choice is {id, text?}")
        ident, text = choice.get("id"), choice.get("text", "")
        if not isinstance(ident, str) or not NODE_ID.fullmatch(ident):
            raise _bad(f"{where}.id", "1-128 letters, digits, '_', '.', ':' or '-'")
        if ident in seen:
            raise _bad(f"{where}.id", "appears twice")
        if not isinstance(text, str) or len(text) > 1000:
            raise _bad(f"{where}.text", "a string of at most 1000 characters")
        seen.add(ident)


def _steps(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if not 1 <= value <= MAX_ROLLBACK:
        raise _bad(attribute.name, f"must be between 1 and {MAX_ROLLBACK}")


_node = _pattern(NODE_ID, "1-128 letters, digits, '_', '.', ':' or '-'")
_pov = _pattern(POV_ID, "1-64 letters, digits, '_', '.' or '-'")
_proposal = _pattern(PROPOSAL_ID, "a proposal id such as 'p0001'")


@attrs.frozen
class SceneRequest:
    """``POST /api/narrator/stop`` (and the status query): ``{scene_id, force?}``."""

    scene_id: str = attrs.field(validator=_scene)
    force: bool = False


@attrs.frozen
class ModeRequest:
    """``POST /api/narrator/mode``: set the mode (and end a halt); create the session when it is new (then
    ``node_id`` is required). ``variables`` replace the observed variables and start a new rollback history;
    ``reset_queue`` drops the pending proposals and frees their turns."""

    scene_id: str = attrs.field(validator=_scene)
    mode: str = attrs.field(validator=_mode)
    node_id: str | None = attrs.field(default=None, validator=_node)
    variables: Any = attrs.field(default=None, validator=_object)
    pov: str | None = attrs.field(default=None, validator=_pov)
    role: str | None = attrs.field(default=None, validator=_role)
    reset_queue: bool = False
    force: bool = False


@attrs.frozen
class ProposeRequest:
    """``POST /api/narrator/propose``: ask the narrator role for one turn at ``node_id`` (default: the session's
    node). ``node_text``, ``speaker``, ``scene_title`` and ``choices`` describe the node to the model; ``gate``
    carries call-gate options (a rating acknowledgement)."""

    scene_id: str = attrs.field(validator=_scene)
    node_id: str | None = attrs.field(default=None, validator=_node)
    message: str = attrs.field(default="", validator=_text(MAX_MESSAGE))
    node_text: str | None = attrs.field(default=None, validator=_text(MAX_TEXT))
    speaker: str | None = attrs.field(default=None, validator=_text(200))
    scene_title: str | None = attrs.field(default=None, validator=_text(200))
    choices: Any = attrs.field(default=None, validator=_choices)
    pov: str | None = attrs.field(default=None, validator=_pov)
    gate: Any = attrs.field(default=None, validator=_object)
    force: bool = False


@attrs.frozen
class ApplyRequest:
    """``POST /api/narrator/apply``: ``{scene_id, proposal_id}``."""

    scene_id: str = attrs.field(validator=_scene)
    proposal_id: str = attrs.field(validator=_proposal)
    force: bool = False


@attrs.frozen
class RollbackRequest:
    """``POST /api/narrator/rollback``: undo the last ``steps`` applies (1-16, default 1)."""

    scene_id: str = attrs.field(validator=_scene)
    steps: int = attrs.field(default=1, validator=_steps)
    force: bool = False


@attrs.frozen
class ChatRequest:
    """``POST /api/narrator/chat``: a free message to the narrator role; nothing is queued or changed."""

    scene_id: str = attrs.field(validator=_scene)
    message: str = attrs.field(validator=_text(MAX_MESSAGE, required=True))
    node_id: str | None = attrs.field(default=None, validator=_node)
    role: str | None = attrs.field(default=None, validator=_role)
    pov: str | None = attrs.field(default=None, validator=_pov)
    gate: Any = attrs.field(default=None, validator=_object)
    force: bool = False
