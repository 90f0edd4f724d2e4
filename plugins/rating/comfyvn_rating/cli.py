"""``comfyvn rating classify|ack|acks|mode|override``: parse options → `service` → print.

Nothing here needs ``enable_rating_api`` (that flag guards the HTTP surface and the gates): a reviewer at
the machine can always look at and record decisions.
"""

from __future__ import annotations

import getpass
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from comfyvn.errors import ComfyVNError

from .service import RatingService
from .store import MODES
from .wire import MAX_ID, MAX_NAME, MAX_NOTE, check_rating

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["rating_group"]


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))


def _bounded(value: str, field: str, limit: int) -> str:
    if not value.strip() or len(value) > limit:
        raise ComfyVNError(f"--{field} must be 1 to {limit} characters", field=field, code="invalid_request")
    return value


def _load_project(kernel: Kernel, target: str) -> Any | None:
    """The project TARGET names (a folder, its project.json, or a store id), or None when it names none."""
    from comfyvn_scenario import ProjectStore, load_project

    path = Path(target)
    if path.is_dir() or (path.name == "project.json" and path.is_file()):
        return load_project(path.parent if path.name == "project.json" else path)
    store = ProjectStore.for_kernel(kernel)
    if len(target) <= MAX_NAME and store.exists(target):
        return store.load(target).project
    return None


def _print_decision(decision: dict[str, Any]) -> None:
    rating = decision["rating"]
    hits = ", ".join(rating["reasons"][:6])
    click.echo(f"{rating['rating']} (confidence {rating['confidence']}, {rating['source']}): {hits}")
    project = decision.get("project")
    if project is not None:
        drivers = project["drivers"]
        click.echo(f"{project['items']} items rated; driving items ({len(drivers)} of {project['drivers_total']}):")
        for driver in drivers:
            where = "/".join(
                driver.get(k, "") for k in ("scene", "node", "character", "book", "entry") if driver.get(k)
            )
            terms = ", ".join(driver["matched"]) or "; ".join(driver["reasons"])
            click.echo(f"  {driver['kind']:<9} {where or driver['item_id']}  {terms}")
    if decision["requires_ack"] and not decision["allowed"]:
        token = decision["ack_token"]
        click.echo(f"mode {decision['mode']}: needs an acknowledgement; run `comfyvn rating ack {token}`")
    else:
        click.echo(f"mode {decision['mode']}: {decision['ack_status'].replace('_', ' ')}, allowed")


@click.group("rating")
def rating_group() -> None:
    """Content ratings (E/T/M/Adult), reviewer overrides and acknowledgements."""


@rating_group.command("classify")
@click.argument("target")
@click.option("--text", "as_text", is_flag=True, help="Rate TARGET as text even if it names a project.")
@click.option("--tag", "tags", multiple=True, help="A tag of the text (repeatable).")
@click.option("--mode", type=click.Choice(MODES), help="Decide under this mode (default: the installation's).")
@click.option("--action", default="generic", show_default=True, help="What the decision is for (recorded).")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@click.pass_obj
def classify_command(
    kernel: Kernel, target: str, as_text: bool, tags: tuple[str, ...], mode: str | None, action: str, as_json: bool
) -> None:
    """Rate TARGET: a project (an existing folder or project.json, or a store id: every scene, node, card and
    lore entry) or a text (anything else)."""
    if not target.strip():
        raise ComfyVNError("nothing to rate: give a text, a project folder or a store id", field="target")
    service = RatingService(kernel)
    project = None if as_text else _load_project(kernel, target)
    if project is not None:
        decision, _ = service.evaluate_project(project, action=action, acknowledged=False, ack_token=None, mode=mode)
    else:
        result = service.classify("cli:text", {"text": target, "tags": list(tags)}, service.store.overrides())
        decision = service.decide(
            result, mode=mode or service.mode(), acknowledged=False, action=action, ack_token=None
        )
    if as_json:
        _echo_json(decision)
    else:
        _print_decision(decision)


@rating_group.command("ack")
@click.argument("token")
@click.option("--user", help="Who acknowledges (default: your login name).")
@click.option("--notes", help="Why, or under which terms.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def ack_command(kernel: Kernel, token: str, user: str | None, notes: str | None, as_json: bool) -> None:
    """Acknowledge TOKEN (issued by a blocked export or classify); the gate then accepts it."""
    who = _bounded(user if user is not None else getpass.getuser(), "user", MAX_NAME)
    entry = RatingService(kernel).acknowledge(
        _bounded(token, "token", MAX_NAME), who, notes and _bounded(notes, "notes", MAX_NOTE)
    )
    if as_json:
        _echo_json(entry)
        return
    if entry.get("already_acknowledged"):
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(entry["acknowledged_at"])))
        ignored = "; --user and --notes were not recorded" if notes or user else ""
        click.echo(
            f"{token} was already acknowledged by {entry['user']} at {when} "
            f"({entry['item_id']}, {entry['rating']}, {entry['action']}){ignored}"
        )
        return
    click.echo(f"acknowledged {entry['item_id']} ({entry['rating']}, {entry['action']}) as {entry['user']}")


@rating_group.command("acks")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def acks_command(kernel: Kernel, as_json: bool) -> None:
    """List acknowledgement tokens, newest first."""
    entries = RatingService(kernel).store.acks()
    if as_json:
        _echo_json(entries)
        return
    for e in entries:
        click.echo(f"{e['token']}  {e['status']:<8} {e['rating']:<5} {e['item_id']}  {e.get('user') or ''}")


@rating_group.command("mode")
@click.argument("mode", required=False, type=click.Choice(MODES))
@click.pass_obj
def mode_command(kernel: Kernel, mode: str | None) -> None:
    """Show the installation's rating mode, or set it to MODE."""
    service = RatingService(kernel)
    described = service.set_mode(mode) if mode is not None else service.describe_mode()
    click.echo(f"rating mode: {described['mode']} ({described['source']})")


@rating_group.group("override")
def override_group() -> None:
    """Reviewer overrides: pin an item's rating (sticky across restarts)."""


@override_group.command("set")
@click.argument("item_id")
@click.argument("rating")
@click.option("--reason", required=True, help="Why the classifier is overruled.")
@click.option("--reviewer", help="Who decides (default: your login name).")
@click.option("--scope", default="asset", show_default=True)
@click.pass_obj
def override_set(kernel: Kernel, item_id: str, rating: str, reason: str, reviewer: str | None, scope: str) -> None:
    """Pin RATING (E, T, M, Adult) for ITEM_ID (a project is ``project:<id>``)."""
    record = RatingService(kernel).put_override(
        _bounded(item_id, "item_id", MAX_ID),
        check_rating(rating),
        _bounded(reviewer if reviewer is not None else getpass.getuser(), "reviewer", MAX_NAME),
        _bounded(reason, "reason", MAX_NOTE),
        _bounded(scope, "scope", MAX_NAME),
    )
    click.echo(f"override: {record.item_id} is {record.rating} (by {record.reviewer})")


@override_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def override_list(kernel: Kernel, as_json: bool) -> None:
    """List overrides."""
    records = sorted(RatingService(kernel).store.overrides().values(), key=lambda o: o.item_id)
    if as_json:
        _echo_json([r.to_wire() for r in records])
        return
    for r in records:
        click.echo(f"{r.item_id}  {r.rating:<5} {r.reviewer}: {r.reason}")


@override_group.command("remove")
@click.argument("item_id")
@click.pass_obj
def override_remove(kernel: Kernel, item_id: str) -> None:
    """Remove the override of ITEM_ID."""
    record = RatingService(kernel).delete_override(item_id)
    click.echo(f"removed the override of {record.item_id} ({record.rating})")
