"""Hook implementations of the renpy plugin (wiring only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from comfyvn import hookimpl

from . import hookspecs, jobs, routes
from .cli import demo_command, export_group, renpy_group
from .service import BAKE_FLAG

if TYPE_CHECKING:
    import pluggy
    from comfyvn import Kernel
    from comfyvn_jobs import KindRegistrar

# ``out`` leaves the machine (webhooks): relative to the data root, or the folder's name when the
# export went elsewhere; never an absolute server path.
_OUT = {
    "type": "string",
    "pattern": "^(?![/\\\\]|[A-Za-z]:)",
    "description": "the game folder relative to the data root (projects/<id>/exports/renpy), else its name",
}
_STARTED = {
    "type": "object",
    "required": ["project", "out", "dry_run", "pov_mode"],
    "properties": {
        "project": {"type": "string"},
        "out": _OUT,
        "dry_run": {"type": "boolean"},
        "pov_mode": {"enum": ["auto", "master", "forks", "both", "disabled"]},
    },
}
_COMPLETED = {
    "type": "object",
    "required": ["project", "out", "dry_run", "files", "warnings", "missing_assets", "published"],
    "properties": {
        "project": {"type": "string"},
        "out": _OUT,
        "dry_run": {"type": "boolean"},
        "files": {"type": "integer", "minimum": 0},
        "warnings": {"type": "integer", "minimum": 0},
        "missing_assets": {"type": "integer", "minimum": 0},
        "published": {"type": "boolean"},
    },
}


@hookimpl
def add_hookspecs(pm: pluggy.PluginManager) -> None:
    pm.add_hookspecs(hookspecs)


@hookimpl
def register_events(register: Any) -> None:
    register("on_export_started", "A Ren'Py export (or dry run) passed its gates and is being built.", _STARTED)
    register("on_export_completed", "A Ren'Py export (or dry run) finished.", _COMPLETED)


@hookimpl
def register_flags(register: Any) -> None:
    register(BAKE_FLAG, True, "Ren'Py export --bake-weather: let contribution plugins bake weather into scripts.")


@hookimpl
def register_commands(cli: click.Group) -> None:
    group = cli.commands.get("export")
    if isinstance(group, click.Group):
        group.add_command(export_group.commands["renpy"])  # another exporter already made the group
    else:
        cli.add_command(export_group)
    cli.add_command(demo_command)
    cli.add_command(renpy_group)


@hookimpl
def register_routes(kernel: Kernel) -> list[Any]:
    return routes.make_routes(kernel)


@hookimpl(optionalhook=True)
def register_job_kinds(register: KindRegistrar) -> None:
    # Optional: without the jobs plugin there is no such hookspec, and pluggy must not reject this plugin.
    jobs.register_kinds(register)
