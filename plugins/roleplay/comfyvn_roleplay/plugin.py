"""Hook implementations of the roleplay plugin (thin: everything real lives in the domain modules)."""

from __future__ import annotations

from typing import Any

from comfyvn import hookimpl

from . import hookspecs, jobs, routes
from .cli import import_group
from .service import EVENTS


@hookimpl
def add_hookspecs(pm: Any) -> None:
    pm.add_hookspecs(hookspecs)


@hookimpl
def register_events(register: Any) -> None:
    for name, (description, schema) in EVENTS.items():
        register(name, description, schema)


@hookimpl
def register_commands(cli: Any) -> None:
    cli.add_command(import_group)


@hookimpl
def register_routes(kernel: Any) -> list[Any]:
    return routes.make_routes(kernel)


@hookimpl(optionalhook=True)
def register_job_kinds(register: Any) -> None:
    # Optional: without the jobs plugin there is no such hookspec, and pluggy must not reject this plugin.
    jobs.register_kinds(register)
