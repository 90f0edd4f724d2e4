"""``comfyvn collab status`` (what the rooms' update log holds, read-only), ``comfyvn collab flush`` (write rooms'
unsaved edits to the project store without a server — after a crash, before a backup) and ``comfyvn collab
discard`` (throw a room's unsaved edits away)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click
from comfyvn.errors import ComfyVNError, Invalid, Unprocessable
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
        Hub.forget(kernel, flush=False)
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
    in the store since is merged three-way, as a running server does. A room that cannot be saved (its scene
    does not validate) is reported and the others are still saved. Use it with the server stopped, or let
    the server's own flush (POST /api/collab/flush) do it."""
    if not rooms and not every:
        raise Invalid("name rooms (<project_id>/<scene_id>) or pass --all", field="rooms", code="no_rooms")
    hub = Hub.for_kernel(kernel)
    refused: list[str] = []
    try:
        # --all opens every room in the log once: opening tells whether it holds edits the store lacks.
        names = list(rooms) or hub.updates.rooms()
        shown = 0
        for name in names:
            ids = hub.parse_room(name)
            try:
                room = hub.open_now(*ids)
                if every and not rooms and not room.dirty:
                    continue
                result = hub.flush_now(room)
            except ComfyVNError as exc:
                refused.append(name)
                click.echo(f"{name}: NOT SAVED: {exc.message}")
                shown += 1
                continue
            shown += 1
            if result["flushed"]:
                click.echo(f"{name}: saved as store version {result['store_version']}")
            else:
                click.echo(f"{name}: nothing to save (store version {result['store_version']})")
        if not shown:
            click.echo("nothing to save")
    finally:
        Hub.forget(kernel, flush=False)  # what could not be saved stays in the log, untouched
    if refused:
        raise Unprocessable(
            f"{len(refused)} room(s) not saved; fix them in a room (or `comfyvn collab discard`)",
            field="rooms",
            code="flush_refused",
        )


@collab_group.command("discard")
@click.argument("room")
@click.option("--yes", is_flag=True, help="Do not ask.")
@click.pass_obj
def discard_command(kernel: Kernel, room: str, yes: bool) -> None:
    """Throw away ROOM's unsaved edits: the log forgets it and the room opens from the project store next time.
    Use it with the server stopped (a running server keeps the room it has open)."""
    hub = Hub.for_kernel(kernel)
    try:
        name = "/".join(hub.parse_room(room))
        state = _unsaved(hub, name)
        if state["unsaved"] and not yes:
            click.confirm(f"{name} has edits the project store lacks; throw them away?", abort=True)
        hub.updates.drop(name)
        hub.updates.sync()
    finally:
        Hub.forget(kernel, flush=False)
    click.echo(f"{name}: discarded; it opens from store version {state['store_version']} next time")
