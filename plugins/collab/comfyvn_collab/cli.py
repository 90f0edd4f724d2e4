"""``comfyvn collab status`` (what the rooms' update log holds, read-only) and ``comfyvn collab flush`` (write
rooms' unsaved edits to the project store without a server — after a crash, before a backup)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click
from comfyvn.errors import Invalid
from comfyvn.wire import loads
from pycrdt import Doc

from . import layout
from .hub import Hub

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["collab_group"]


@click.group("collab")
def collab_group() -> None:
    """Live collaboration rooms (the server edits them; these commands read and save their log)."""


def _unsaved(hub: Hub, room: str) -> dict[str, Any]:
    saved = hub.updates.load(room)
    if saved is None:
        raise Invalid(f"no room {room!r} in the collaboration log", field="room", code="unknown_room")
    doc: Doc[Any] = Doc()
    for update in saved.updates:
        doc.apply_update(update)
    scene = layout.to_scene(doc)
    return {
        "room": room,
        "store_version": saved.store_version,
        "updates": len(saved.updates),
        "unsaved": scene != loads(saved.base),
        "nodes": len(scene["nodes"]),
    }


@collab_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def status_command(kernel: Kernel, as_json: bool) -> None:
    """List the rooms in the update log and whether they hold edits the project store lacks."""
    hub = Hub.for_kernel(kernel)
    try:
        rooms = [_unsaved(hub, name) for name in hub.updates.rooms()]
    finally:
        Hub.forget(kernel)
    if as_json:
        click.echo(json.dumps({"rooms": rooms}, indent=2))
        return
    if not rooms:
        click.echo("no collaboration rooms in the log")
    for room in rooms:
        state = "UNSAVED EDITS" if room["unsaved"] else "saved"
        click.echo(f"{room['room']}: {state} (store version {room['store_version']}, {room['nodes']} nodes)")


@collab_group.command("flush")
@click.argument("rooms", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every room in the log with unsaved edits.")
@click.pass_obj
def flush_command(kernel: Kernel, rooms: tuple[str, ...], every: bool) -> None:
    """Write ROOMS (``<project_id>/<scene_id>``) to the project store, validated and versioned. A scene changed
    in the store since is merged three-way, as a running server does. Use it with the server stopped, or
    let the server's own flush (POST /api/collab/flush) do it."""
    if not rooms and not every:
        raise Invalid("name rooms (<project_id>/<scene_id>) or pass --all", field="rooms", code="no_rooms")
    hub = Hub.for_kernel(kernel)
    try:
        names = list(rooms) or [name for name in hub.updates.rooms() if _unsaved(hub, name)["unsaved"]]
        for name in names:
            room = hub.open_now(*hub.parse_room(name))
            result = hub.flush_now(room)
            if result["flushed"]:
                click.echo(f"{name}: saved as store version {result['store_version']}")
            else:
                click.echo(f"{name}: nothing to save (store version {result['store_version']})")
        if not names:
            click.echo("nothing to save")
    finally:
        Hub.forget(kernel)
