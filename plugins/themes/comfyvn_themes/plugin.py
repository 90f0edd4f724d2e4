"""Hook implementations of the themes plugin (wiring only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from comfyvn import hookimpl

from . import routes
from .cli import themes_group

if TYPE_CHECKING:
    import click
    from comfyvn import Kernel

APPLIED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["theme", "checksum", "mutations", "scene_id"],
    "properties": {
        "theme": {"type": "string"},
        "checksum": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "mutations": {"type": "integer", "minimum": 0},
        "scene_id": {"type": ["string", "null"]},
    },
}


@hookimpl
def register_events(register: Any) -> None:
    register(
        "on_theme_applied",
        "A theme plan delta was computed (POST /api/themes/apply or `comfyvn themes apply`).",
        APPLIED_SCHEMA,
    )


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(themes_group)


@hookimpl
def register_routes(kernel: Kernel) -> list[Any]:
    return routes.make_routes(kernel)
