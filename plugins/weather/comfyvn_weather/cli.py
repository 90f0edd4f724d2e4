"""``comfyvn weather plan|presets``: parse options → planner → print."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from .planner import WorldState, compile_plan, merge_state
from .presets import ALIASES, CANONICAL, DEFAULTS
from .routes import FLAG
from .wire import plan_to_dict

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["weather_group"]


@click.group("weather")
def weather_group() -> None:
    """Weather, lighting and transition planning."""


@weather_group.command("plan")
@click.option("--time-of-day", "time_of_day", help="dawn, day, dusk, night (or an alias such as sunset).")
@click.option("--weather", help="clear, overcast, rain, storm, snow, fog (or an alias such as stormy).")
@click.option("--ambience", help="calm, tense, mystic, energetic, melancholic (or an alias).")
@click.option("--json", "as_json", is_flag=True, help="Print the full plan as JSON.")
@click.pass_obj
def plan_cmd(kernel: Kernel, time_of_day: str | None, weather: str | None, ambience: str | None, as_json: bool) -> None:
    """Compile a world state into a plan (stateless: version 0, no timestamp)."""
    kernel.flags.require(FLAG)
    state, warnings = merge_state(WorldState(), {"time_of_day": time_of_day, "weather": weather, "ambience": ambience})
    plan = plan_to_dict(compile_plan(state, warnings))
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        click.echo(json.dumps(plan, indent=2, sort_keys=True))
        return
    scene = plan["scene"]
    click.echo(f"state: {scene['summary']['description']}  (hash {plan['meta']['hash']})")
    for layer in scene["background_layers"]:
        click.echo(f"  layer {layer['role']:<10} {layer['texture']} @ {layer['intensity']}")
    click.echo(f"  lut {scene['lut']['path']}  exposure {scene['light_rig']['exposure']}")
    transition = plan["transition"]
    click.echo(f"  transition {transition['type']} {transition['duration']}s {transition['ease']}")
    particles = plan["particles"]
    click.echo(f"  particles {particles['type']} x{particles['spawn_rate']}" if particles else "  particles none")
    click.echo(f"  sfx {plan['sfx']['loop']} {plan['sfx']['gain_db']} dB")


@weather_group.command("presets")
def presets_cmd() -> None:
    """Print canonical values, defaults and aliases as JSON."""
    click.echo(
        json.dumps(
            {"values": {k: list(v) for k, v in CANONICAL.items()}, "defaults": DEFAULTS, "aliases": ALIASES},
            indent=2,
            sort_keys=True,
        )
    )
