"""Hook implementations of the collaboration plugin (wiring only): the flag, the event, the routes and the
hub's shutdown (every changed room is flushed to the project store)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from comfyvn import hookimpl

from . import routes
from .cli import collab_group
from .features import FLAG, OPERATION_EVENT, OPERATION_SCHEMA
from .hub import Hub

if TYPE_CHECKING:
    import click
    from comfyvn import Kernel


@hookimpl
def register_flags(register: Any) -> None:
    register(FLAG, True, "Live collaboration: the /api/collab/* rooms (Yjs over y-websocket and the JSON protocol).")


@hookimpl
def register_events(register: Any) -> None:
    register(
        OPERATION_EVENT,
        "Edits were applied to a collaboration room: a batch of JSON-protocol operations (with their results), "
        "or Yjs updates counted over at most a second.",
        OPERATION_SCHEMA,
    )


@hookimpl
def register_routes(kernel: Kernel) -> list[Any]:
    return routes.make_routes(kernel)


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(collab_group)


@hookimpl
def shutdown(kernel: Kernel) -> None:
    """Flush every room with unsaved edits and close the update log (what cannot be flushed stays in it)."""
    Hub.forget(kernel)
