"""``comfyvn themes list|apply``: parse options → planner → print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from comfyvn.errors import ComfyVNError
from comfyvn.wire import loads

from . import service
from .wire import parse_apply

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["themes_group"]


def _current(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return loads(Path(value[1:]).read_bytes() if value.startswith("@") else value, field="current")
    except OSError as exc:
        raise ComfyVNError(f"cannot read {value[1:]}: {exc.strerror}", field="current", code="invalid_file") from None


@click.group("themes")
def themes_group() -> None:
    """Theme templates and tone-swap plan deltas."""


@themes_group.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_cmd(as_json: bool) -> None:
    """The available templates."""
    templates = service.list_templates()
    if as_json:
        click.echo(json.dumps(templates, indent=2, sort_keys=True))
        return
    for template in templates:
        click.echo(f"{template['id']:<10} {template['summary']}")


@themes_group.command("apply")
@click.argument("theme")
@click.option(
    "--character",
    "characters",
    multiple=True,
    metavar="ID[:ROLE]",
    help="Restyle this character, optionally with a template role (repeatable).",
)
@click.option("--current", help="The current plan as JSON (or @file) to diff against.")
@click.option("--scene-id")
@click.pass_obj
def apply_cmd(
    kernel: Kernel, theme: str, characters: tuple[str, ...], current: str | None, scene_id: str | None
) -> None:
    """Print the plan delta (JSON) that applies THEME; nothing is rendered."""
    people: dict[str, Any] = {}
    for item in characters:
        ident, _, role = item.partition(":")
        people[ident] = {"role": role} if role else {}
    body: dict[str, Any] = {
        "theme": theme,
        "characters": people or None,
        "current": _current(current),
        "scene_id": scene_id,
    }
    result = service.apply(kernel, parse_apply({k: v for k, v in body.items() if v is not None}))
    click.echo(json.dumps(result, indent=2, sort_keys=True, ensure_ascii=False))
