"""Hook implementations of the comfyui plugin (wiring only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from comfyvn import hookimpl

from . import hookspecs, jobs, routes
from .cli import comfyui_group, render_group
from .servers import ServerSettings

if TYPE_CHECKING:
    import click
    import pluggy
    from comfyvn import Kernel
    from comfyvn_jobs import KindRegistrar


@hookimpl
def add_hookspecs(pm: pluggy.PluginManager) -> None:
    pm.add_hookspecs(hookspecs)


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(render_group)
    cli.add_command(comfyui_group)


@hookimpl
def register_routes(kernel: Kernel) -> list[Any]:
    return routes.make_routes(kernel)


@hookimpl
def register_job_kinds(register: KindRegistrar) -> None:
    jobs.register_kinds(register)


@hookimpl
def jobs_embedded_resources(kernel: Kernel) -> dict[str, float] | None:
    """One ``COMFYUI`` slot per configured server: that many renders run at once on one laptop."""
    count = len(ServerSettings(kernel).servers())
    return {"COMFYUI": count} if count else None
