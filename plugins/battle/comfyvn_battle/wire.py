"""The battle plugin's request shapes, structured by the shared strict converter (`comfyvn.wire.parse_request`).

A failure is an `Invalid` naming the offending field, so HTTP answers 400 and the CLI exits 2.
"""

from __future__ import annotations

from typing import Any

import attrs
from comfyvn.errors import Invalid

__all__ = ["PlanRequest", "ResolveRequest", "SimRequest"]

MAX_ROUNDS = 50
MAX_SEED = 2**64


def _bad(attribute: attrs.Attribute[Any], message: str) -> Invalid:
    return Invalid(f"{attribute.name}: {message}", field=attribute.name, code="invalid_request")


def _seed(instance: Any, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and not 0 <= value < MAX_SEED:
        raise _bad(attribute, "must be between 0 and 2**64 - 1")


def _rounds(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if not 1 <= value <= MAX_ROUNDS:
        raise _bad(attribute, f"must be between 1 and {MAX_ROUNDS}")


def _gate(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, dict):
        raise _bad(attribute, "must be an object of call-gate options (rating_ack_token, rating_acknowledged)")


def _name(instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and not value.strip():
        raise _bad(attribute, "must not be blank")


@attrs.frozen
class ResolveRequest:
    """``POST /api/battle/resolve``: the editor's pick, optionally analysed against ``stats``. ``gate``: the
    narrator's llm call-gate options (a rating acknowledgement)."""

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
    gate: Any = attrs.field(default=None, validator=_gate)


@attrs.frozen
class SimRequest:
    """``POST /api/battle/sim``: let the formula decide. ``gate``: the narrator's llm call-gate options (a rating
    acknowledgement)."""

    stats: Any
    seed: int | None = attrs.field(default=None, validator=_seed)
    state: Any = None
    persist_state: bool = False
    pov: str | None = attrs.field(default=None, validator=_name)
    rounds: int = attrs.field(default=3, validator=_rounds)
    narrate: bool = False
    scene_id: str | None = None
    node_id: str | None = None
    gate: Any = attrs.field(default=None, validator=_gate)


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
