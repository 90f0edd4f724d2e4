"""Hook implementations of the battle plugin (wiring only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from comfyvn import hookimpl

from . import hookspecs, routes
from .cli import battle_group
from .narration import template_narration
from .service import PLAN_FLAG, SIM_FLAG

if TYPE_CHECKING:
    import click
    import pluggy
    from comfyvn import Kernel

    from .narration import NarrationRequest

_NUMBER_MAP = {"type": "object", "additionalProperties": {"type": "number"}}
_RNG = {
    "type": "object",
    "required": ["seed", "value", "uses"],
    "properties": {"seed": {"type": "integer"}, "value": {"type": "integer"}, "uses": {"type": "integer"}},
}
_ROLL = {
    "weights": _NUMBER_MAP,
    "rng": _RNG,
    "seed": {"type": "integer"},
    "breakdown": {"type": "array", "items": {"type": "object", "required": ["name", "total", "components"]}},
    "provenance": {"type": "object", "required": ["formula", "seed", "rng", "weights", "predicted_outcome"]},
    "log": {"type": "array", "items": {"type": "object", "required": ["turn", "pov", "text"]}},
    "narration": {"type": ["object", "null"], "required": ["outcome", "beats", "vars_patch", "source"]},
    "narrate": {"type": "boolean"},
    "rounds": {"type": "integer", "minimum": 1},
    "persisted": {"type": "boolean"},
    "context": {"type": "object"},
}
SIMULATED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["outcome", "seed", "weights", "rng", "breakdown", "formula", "provenance", "narrate", "rounds"],
    "properties": {"outcome": {"type": "string"}, "formula": {"type": "string"}, **_ROLL},
}
RESOLVED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["outcome", "vars", "persisted", "editor_prompt", "formula", "narrate", "rounds"],
    "properties": {
        "outcome": {"type": "string"},
        "vars": {"type": "object", "required": ["battle_outcome"]},
        "editor_prompt": {"const": "Pick winner"},
        "formula": {"type": "string"},
        "predicted_outcome": {"type": "string"},
        **_ROLL,
    },
}


@hookimpl
def add_hookspecs(pm: pluggy.PluginManager) -> None:
    pm.add_hookspecs(hookspecs)


@hookimpl
def register_events(register: Any) -> None:
    register(
        "on_battle_simulated",
        "The formula decided a battle (/api/battle/sim or `comfyvn battle sim`): the response without state.",
        SIMULATED_SCHEMA,
    )
    register(
        "on_battle_resolved",
        "An editor resolved a battle (/api/battle/resolve, `comfyvn battle resolve`): the response without state.",
        RESOLVED_SCHEMA,
    )


@hookimpl
def register_flags(register: Any) -> None:
    register(
        SIM_FLAG, True, "Allow POST /api/battle/sim (and /simulate, `comfyvn battle sim`): the formula decides battles."
    )
    register(PLAN_FLAG, True, "Allow POST /api/battle/plan: battle timelines for Studio panels and exporters.")


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(battle_group)


@hookimpl
def register_routes(kernel: Kernel) -> list[Any]:
    return routes.make_routes(kernel)


@hookimpl(trylast=True)
def narrate_battle(request: NarrationRequest) -> dict[str, Any]:
    """The built-in narrator: deterministic templates (``source: "template"``); others go first."""
    return template_narration(request)
