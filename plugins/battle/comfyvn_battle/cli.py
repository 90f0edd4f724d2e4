"""``comfyvn battle sim|resolve|plan``: parse options → `service` → print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from comfyvn.cli import gate_option, parse_gate_options
from comfyvn.errors import ComfyVNError
from comfyvn.wire import loads, parse_request

from . import service
from .wire import PlanRequest, ResolveRequest, SimRequest

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["battle_group"]


def _json_arg(value: str | None, field: str) -> Any:
    """Inline JSON, or ``@path`` to read a JSON file."""
    if value is None:
        return None
    try:
        return loads(Path(value[1:]).read_bytes() if value.startswith("@") else value, field=field)
    except OSError as exc:
        raise ComfyVNError(f"cannot read {value[1:]}: {exc.strerror}", field=field, code="invalid_file") from None


def _stats(stats: str | None, contenders: tuple[str, ...]) -> Any:
    if stats is not None and contenders:
        raise ComfyVNError("use --stats or --contender, not both", field="contender", code="invalid_request")
    if stats is not None:
        return _json_arg(stats, "stats")
    if not contenders:
        return None
    table: dict[str, Any] = {}
    for item in contenders:
        name, sep, base = item.partition("=")
        try:
            if not sep:
                raise ValueError(item)
            table[name] = float(base)
        except ValueError:
            raise ComfyVNError(
                f"--contender {item!r}: expected NAME=BASE", field="contender", code="invalid_request"
            ) from None
    return table


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def _show(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result, indent=2, sort_keys=True, ensure_ascii=False))
        return
    click.echo(f"outcome: {result['outcome']}")
    if "seed" in result:
        click.echo(f"seed: {result['seed']} ({result['provenance']['seed_source']})")
        for row in result["breakdown"]:
            click.echo(f"  {row['name']:<20} total {row['total']:>10.3f}  weight {result['weights'][row['name']]:.3f}")
    narration = result.get("narration")
    for beat in (narration or {}).get("beats", []):
        click.echo(f"  [{beat['speaker']}] {beat['text']}")
    for warning in (narration or {}).get("warnings", []):
        click.echo(f"warning: {warning}", err=True)


_stats_option = click.option(
    "--stats",
    help="Contenders as JSON, or @file.json: {name: number | {base, str, agi, weapon_tier, status_mod, rng}}.",
)
_contender_option = click.option(
    "--contender",
    "contenders",
    multiple=True,
    metavar="NAME=BASE",
    help="A contender with only a base value (repeatable).",
)
_json_option = click.option("--json", "as_json", is_flag=True, help="Print the full JSON response.")


@click.group("battle")
def battle_group() -> None:
    """Battle layer: the v0 formula, editor resolves and timelines."""


@battle_group.command("sim")
@_stats_option
@_contender_option
@click.option("--seed", type=int, help="Default: COMFYVN_BATTLE_SEED, else random (reported).")
@click.option("--rounds", type=int, default=3, show_default=True)
@click.option("--pov", help="Narrate from this contender's point of view.")
@click.option("--narrate/--no-narrate", default=False, show_default=True)
@gate_option
@_json_option
@click.pass_obj
def sim_cmd(
    kernel: Kernel,
    stats: str | None,
    contenders: tuple[str, ...],
    seed: int | None,
    rounds: int,
    pov: str | None,
    narrate: bool,
    gate: tuple[str, ...],
    as_json: bool,
) -> None:
    """Let the formula decide (needs the enable_battle_sim flag)."""
    table = _stats(stats, contenders)
    if table is None:
        raise ComfyVNError("give --stats or at least one --contender", field="stats", code="empty_contenders")
    req = parse_request(
        _drop_none(
            {
                "stats": table,
                "seed": seed,
                "rounds": rounds,
                "pov": pov,
                "narrate": narrate,
                "gate": parse_gate_options(gate) or None,
            }
        ),
        SimRequest,
    )
    _show(service.simulate_battle(kernel, req), as_json)


@battle_group.command("resolve")
@click.argument("winner")
@_stats_option
@_contender_option
@click.option("--seed", type=int)
@click.option("--rounds", type=int, default=1, show_default=True)
@click.option("--pov")
@click.option("--state", help="Scenario state JSON (or @file); a copy with variables.battle_outcome is printed.")
@click.option("--narrate/--no-narrate", default=True, show_default=True)
@gate_option
@_json_option
@click.pass_obj
def resolve_cmd(
    kernel: Kernel,
    winner: str,
    stats: str | None,
    contenders: tuple[str, ...],
    seed: int | None,
    rounds: int,
    pov: str | None,
    state: str | None,
    narrate: bool,
    gate: tuple[str, ...],
    as_json: bool,
) -> None:
    """Commit WINNER as the battle outcome (an editor's pick)."""
    req = parse_request(
        _drop_none(
            {
                "winner": winner,
                "stats": _stats(stats, contenders),
                "seed": seed,
                "rounds": rounds,
                "pov": pov,
                "state": _json_arg(state, "state"),
                "narrate": narrate,
                "gate": parse_gate_options(gate) or None,
            }
        ),
        ResolveRequest,
    )
    _show(service.resolve_battle(kernel, req), as_json)


@battle_group.command("plan")
@click.argument("contenders", nargs=-1, required=True)
@click.option("--rounds", type=int, default=3, show_default=True)
@click.option("--pov")
@click.option("--world", "world", multiple=True, metavar="KEY=VALUE", help="World facts to echo (repeatable).")
@click.pass_obj
def plan_cmd(kernel: Kernel, contenders: tuple[str, ...], rounds: int, pov: str | None, world: tuple[str, ...]) -> None:
    """Print the setup/engagement/resolution timeline for CONTENDERS as JSON."""
    facts = dict(item.partition("=")[::2] for item in world)
    req = parse_request(
        _drop_none({"contenders": list(contenders), "rounds": rounds, "pov": pov, "world": facts or None}), PlanRequest
    )
    click.echo(json.dumps(service.plan_battle(kernel, req), indent=2, sort_keys=True, ensure_ascii=False))
