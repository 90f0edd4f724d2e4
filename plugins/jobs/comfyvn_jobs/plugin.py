"""Hook implementations of the jobs plugin (wiring only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from comfyvn import hookimpl

from . import hookspecs, routes
from .cli import jobs_group, worker_command
from .events import EVENTS
from .kinds import builtin_kinds
from .service import close_jobs, jobs_for

if TYPE_CHECKING:
    import click
    import pluggy
    from comfyvn import Kernel

    from .kinds import KindRegistrar


@hookimpl
def add_hookspecs(pm: pluggy.PluginManager) -> None:
    pm.add_hookspecs(hookspecs)


@hookimpl
def register_events(register: Any) -> None:
    for name, (description, schema) in EVENTS.items():
        register(name, description, schema)


@hookimpl(tryfirst=True)
def register_job_kinds(register: KindRegistrar) -> None:
    # First, so the diagnostic names stay this plugin's: a plugin reusing one fails its registration.
    builtin_kinds(register)


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(jobs_group)
    cli.add_command(worker_command)


@hookimpl
def register_routes(kernel: Kernel) -> list[Any]:
    return routes.make_routes(kernel)


@hookimpl
def startup(kernel: Kernel) -> None:
    # Opening the service fails the jobs a dead server left active; Dask itself starts on first submit.
    jobs_for(kernel)


@hookimpl
def shutdown(kernel: Kernel) -> None:
    close_jobs(kernel)
