"""Hook implementations of the weather plugin (wiring only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from comfyvn import hookimpl

from . import bake, routes
from .cli import weather_group
from .presets import CANONICAL

if TYPE_CHECKING:
    import click
    from comfyvn import Kernel

PLAN_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["state", "summary", "transition", "particles", "meta"],
    "properties": {
        "state": {
            "type": "object",
            "required": list(CANONICAL),
            "properties": {k: {"enum": list(v)} for k, v in CANONICAL.items()},
        },
        "summary": {"type": "object", "required": ["background", "overlay", "lut"]},
        "transition": {"type": "object", "required": ["type", "duration", "ease", "exposure_shift"]},
        "particles": {"type": ["object", "null"]},
        "meta": {
            "type": "object",
            "required": ["hash", "warnings", "version", "updated_at"],
            "properties": {
                "version": {"type": "integer", "minimum": 0},
                "warnings": {"type": "array", "items": {"type": "string"}},
            },
        },
    },
}


@hookimpl
def register_events(register: Any) -> None:
    register("on_weather_plan", "The shared weather plan changed (POST /api/weather/state).", PLAN_EVENT_SCHEMA)


@hookimpl
def register_flags(register: Any) -> None:
    register(routes.FLAG, True, "Serve /api/weather/* and `comfyvn weather plan` (the weather & lighting planner).")


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(weather_group)


@hookimpl
def register_routes(kernel: Kernel) -> list[Any]:
    return routes.make_routes(kernel)


@hookimpl(optionalhook=True)
def renpy_export_contributions(project: Any, options: dict[str, Any]) -> dict[str, Any] | None:
    """``comfyvn export renpy --bake-weather``: scene lines and ``game/comfyvn_weather.rpy`` (see `bake`).

    Optional: without the Ren'Py exporter there is no such hookspec, and pluggy must not reject the plugin.
    """
    return bake.bake_contribution(project, options)
