"""The server plugin's hookimpls: its events and its commands (`comfyvn serve`, `comfyvn tokens`)."""

from __future__ import annotations

from typing import Any

import click
import pluggy
from comfyvn import hookimpl

from . import hookspecs
from .app import declare_events
from .cli import serve_command, tokens_group


@hookimpl
def add_hookspecs(pm: pluggy.PluginManager) -> None:
    pm.add_hookspecs(hookspecs)


@hookimpl
def register_events(register: Any) -> None:
    declare_events(register)


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(serve_command)
    cli.add_command(tokens_group)
