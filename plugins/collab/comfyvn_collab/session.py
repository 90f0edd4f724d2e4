"""The original ComfyVN collaboration protocol, served: ``WS /api/collab/ws?scene_id=<project>/<scene>``
and its REST twins (``POST /api/collab/room/{create,join,leave,apply}``).

A JSON client's operations (`comfyvn_collab.jsonops`) become Yjs transactions on the room's document
(so Yjs clients get them as updates); a Yjs client's edits reach JSON clients as ``doc.update`` with
the new snapshot (at most ten a second per room). Presence is the room's Yjs awareness, so a JSON
client's presence shows in a browser's awareness and the other way round; the roster
(``participants``) is read from it.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
from comfyvn.errors import ComfyVNError, Invalid, TooLarge, clip
from comfyvn.wire import loads, read_json
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Message
from starlette.websockets import WebSocket

from . import jsonops
from .connection import can_write, serve, write_scope
from .features import FLAG, OPERATION_EVENT
from .outbox import Outbox
from .room import Connection, Room

if TYPE_CHECKING:
    from comfyvn import Kernel

    from .hub import Hub

__all__ = ["apply_batch", "history", "joined", "participants", "presence_view", "routes"]

log = structlog.get_logger("comfyvn.collab")

MAX_MESSAGE = 4 * 1024 * 1024
PUSH_INTERVAL = 0.1  # at most ten snapshot pushes a second per room to JSON clients
SNAPSHOT_BUDGET = 0.05  # seconds: a scene that reads faster goes with every doc.update
_ACTOR = re.compile(r"^[\w.@:+-]{1,255}$")

# Per-room state of the JSON side: the op log, the control lock, and the push timer.
_STATE_KEY = "json"


class _JsonState:
    def __init__(self) -> None:
        self.push: asyncio.TimerHandle | None = None
        self.lock_timer: asyncio.TimerHandle | None = None
        self.attached = False


def _state(room: Room) -> _JsonState:
    state = room.extras.get(_STATE_KEY)
    if state is None:
        state = room.extras[_STATE_KEY] = _JsonState()
    assert isinstance(state, _JsonState)
    return state


# -- views ---------------------------------------------------------------------------------------
def participants(room: Room) -> list[dict[str, Any]]:
    """The roster, from awareness: ``{client_id, source, actor, name, color, node, selected, cursor}``."""
    roster = []
    for entry in room.presence():
        state = entry["state"] or {}
        found = state.get("user")
        user: dict[str, Any] = found if isinstance(found, dict) else {}
        roster.append(
            {
                "client_id": entry["client_id"],
                "source": entry["source"],
                "actor": user.get("id") or f"yjs:{entry['client_id']}",
                "name": user.get("name"),
                "color": user.get("color"),
                "node": state.get("node"),
                "selected": state.get("selected") or [],
                "cursor": state.get("cursor"),
                "status": state.get("status"),
            }
        )
    return roster


def presence_view(room: Room) -> dict[str, Any]:
    """``{presence: {participants, control}}``, the original's shape (with the raw awareness too)."""
    control = room.locks.state(time.time())
    return {"presence": {"participants": participants(room), "control": control}, "awareness": room.presence()}


def history(room: Room, since: int) -> dict[str, Any]:
    """The operations applied since room version ``since`` (``truncated`` when the history alone cannot
    bring a client there: pull the snapshot)."""
    return room.ops.since(since)


def joined(room: Room, actor: str | None, flags: dict[str, bool]) -> dict[str, Any]:
    """The ``room.joined`` message."""
    return {
        "type": "room.joined",
        "scene_id": room.name,
        "actor": actor,
        "feature_flags": flags,
        "version": room.version,
        "clock": room.ops.clock,
        "snapshot": room.scene(),
        **presence_view(room),
    }


# -- applying --------------------------------------------------------------------------------------
def apply_batch(
    room: Room, actor: str, raw: Any, *, sender: Connection | None, emit: Callable[..., Any] | None
) -> list[dict[str, Any]]:
    """Parse and apply a client's ``operations[]`` as one Yjs change; results per operation, sent to every
    JSON client as ``doc.update`` and announced as ``on_collab_operation``."""
    ops = jsonops.parse_operations(raw, actor)
    if room.size > room.max_bytes and room.full():
        room.refused_updates += 1
        raise TooLarge(room.full_message(), field="operations", code="document_too_large")
    with room.edit(sender, "json"):
        results = jsonops.apply_operations(room.doc, room.ops, ops)
    message = {
        "type": "doc.update",
        "version": room.version,
        "clock": room.ops.clock,
        "operations": results,
        "source": "json",
    }
    # The snapshot rides along while the scene is cheap to read; for a big one (a 10,000-node scene takes
    # about a second) clients apply the operations themselves or ask (`include_snapshot`, `doc.pull`).
    cheap = room.read_seconds < SNAPSHOT_BUDGET
    _broadcast(room, message, snapshot=cheap and any(r["applied"] for r in results))
    applied = [r for r in results if r["applied"] and not r["duplicate"]]
    log.info(
        "collab.op applied",
        room=room.name,
        version=room.version,
        ops=[r["kind"] for r in results][:20],
        applied=len(applied),
    )
    if emit is not None:
        emit(OPERATION_EVENT, _event(room, actor, results))
    return results


def _event(room: Room, actor: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    ops = [{k: r[k] for k in ("op_id", "actor", "clock", "kind", "payload", "applied", "version")} for r in results]
    if len(repr(ops)) > 128 * 1024:  # keep the bus envelope well under its limit: payloads are left out
        ops = [{k: v for k, v in op.items() if k != "payload"} for op in ops]
    return {
        "room": room.name,
        "project": room.project_id,
        "scene": room.scene_id,
        "source": "json",
        "actor": actor,
        "version": room.version,
        "operations": ops,
    }


def _json_conns(room: Room) -> list[Connection]:
    return [conn for conn in room.conns.values() if conn.kind == "json"]


def _send(conn: Connection, message: dict[str, Any]) -> None:
    conn.sink(_dumps(message))


def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def _snapshot_message(room: Room) -> dict[str, Any]:
    """The ``doc.snapshot`` message: the room's scene now, with its version and clock."""
    return {"type": "doc.snapshot", "version": room.version, "clock": room.ops.clock, "snapshot": room.scene()}


def _broadcast(room: Room, message: dict[str, Any], *, snapshot: bool) -> None:
    conns = _json_conns(room)
    if not conns:
        return
    if snapshot:
        message = {**message, "snapshot": room.scene()}
    text = _dumps(message)
    for conn in conns:
        conn.sink(text)


def _listener(room: Room, sender: Connection | None, source: str) -> None:
    """Changes that did not come as JSON operations (Yjs updates, store merges) and presence changes,
    told to JSON clients."""
    if not _json_conns(room):
        return
    if source == "presence":
        _broadcast(room, {"type": "presence.update", **presence_view(room)}, snapshot=False)
        return
    if source == "json":
        return  # `apply_batch` sends those with their operations
    state = _state(room)
    if state.push is not None:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return

    def push() -> None:
        state.push = None
        _broadcast(
            room,
            {
                "type": "doc.update",
                "version": room.version,
                "clock": room.ops.clock,
                "operations": [],
                "source": source,
            },
            snapshot=True,
        )

    # A big scene takes a while to read: push at most every five reading times, so JSON clients of a
    # 10,000-node scene cannot keep the server busy reading snapshots.
    state.push = loop.call_later(max(PUSH_INTERVAL, 5 * room.read_seconds), push)


def _attach(room: Room) -> None:
    state = _state(room)
    if not state.attached:
        state.attached = True
        room.listeners.append(_listener)


def _control_changed(room: Room) -> None:
    """Tell JSON clients the lock state, and look again when the current hold runs out."""
    state = _state(room)
    now = time.time()
    _broadcast(room, {"type": "control.state", "control": room.locks.state(now)}, snapshot=False)
    if state.lock_timer is not None:
        state.lock_timer.cancel()
        state.lock_timer = None
    deadline = room.locks.next_deadline()
    if deadline is not None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        state.lock_timer = loop.call_later(max(deadline - now, 0) + 0.01, _control_changed, room)


def _awareness_state(entry: dict[str, Any]) -> dict[str, Any]:
    """A JSON client's presence entry as the awareness state Yjs clients read (docs/collab.md)."""
    return {
        "user": {"id": entry["actor"], "name": entry["name"], "color": entry["color"]},
        "node": entry["node"],
        "selected": entry["selected"],
        "cursor": entry["cursor"],
        "status": entry["status"],
        "source": "json",
    }


def _identity(conn: Request | WebSocket, default: str | None = None) -> tuple[str, str | None]:
    """Who is calling: ``X-ComfyVN-User``/``X-ComfyVN-Name`` (or ``user``/``name`` in the query, which is all
    a browser can set on a WebSocket)."""
    actor = conn.headers.get("x-comfyvn-user") or conn.query_params.get("user")
    name = conn.headers.get("x-comfyvn-name") or conn.query_params.get("name")
    if actor is not None and not _ACTOR.match(actor):
        raise Invalid(
            "X-ComfyVN-User is 1 to 255 letters, digits or . _ @ : + -", field="X-ComfyVN-User", code="invalid_actor"
        )
    if name is not None:
        name = clip(name, 80)
    # Operations are deduplicated per actor: unnamed clients each get their own, so two of them numbering
    # their op_ids 1, 2, ... never swallow each other's edits.
    return actor or default or f"anonymous-{secrets.token_hex(4)}", name


# -- the JSON WebSocket ----------------------------------------------------------------------------
async def _handle(room: Room, conn: Connection, message: dict[str, Any], kernel: Kernel) -> None:
    kind = message.get("type")
    actor = conn.actor or "anonymous"
    if kind == "ping":
        _send(conn, {"type": "pong", "ts": time.time(), "version": room.version})
    elif kind == "doc.pull":
        _send(conn, _snapshot_message(room))
    elif kind == "doc.apply":
        if not conn.writable:
            raise ComfyVNError("editing needs the collaboration write scope", field="scope", code="insufficient_scope")
        since = message.get("since")
        if since is not None:
            if isinstance(since, bool) or not isinstance(since, int) or since < 0:
                raise Invalid("since must be a non-negative integer", field="since")
            if since != room.version:  # missed changes, or a version of an earlier server run: catch up first
                _send(conn, _snapshot_message(room))
        apply_batch(room, actor, message.get("operations"), sender=conn, emit=kernel.events.emit)
        if message.get("include_snapshot") is True:
            _send(conn, _snapshot_message(room))
    elif kind == "presence.update":
        data = message.get("presence", message.get("data", {k: v for k, v in message.items() if k != "type"}))
        entry = jsonops.presence_entry(actor, conn.name, data)
        room.set_presence(conn, _awareness_state(entry))
    elif kind == "control.request":
        room.locks.request(actor, ttl=message.get("ttl"), now=time.time())
        _control_changed(room)
    elif kind == "control.release":
        room.locks.release(actor, now=time.time())
        _control_changed(room)
    elif kind == "feature.refresh":
        kernel.flags.refresh()
        _send(conn, {"type": "feature.flags", "feature_flags": _flags(kernel)})
    elif kind is None:
        raise Invalid("a message needs a `type` (ping, doc.pull, doc.apply, ...)", field="type", code="missing_type")
    else:
        shown = clip(kind, 40) if isinstance(kind, str) else type(kind).__name__
        raise Invalid(f"unknown message type {shown!r}", field="type", code="unknown_type")


def _flags(kernel: Kernel) -> dict[str, bool]:
    return {FLAG: kernel.flags.is_enabled(FLAG)}


def _error(exc: ComfyVNError) -> dict[str, Any]:
    return {"type": "error", "error": {"code": exc.code, "message": exc.message, "field": exc.field}}


def routes(kernel: Kernel, hub: Callable[[], Hub]) -> list[BaseRoute]:
    """The JSON protocol's WebSocket and REST twins (``hub()`` checks the flag)."""

    async def ws(websocket: WebSocket) -> None:
        """The original ComfyVN collaboration protocol (JSON text frames).
        ---
        summary: Edit a scene over the original JSON protocol
        description: "Client messages: ping, presence.update, doc.pull, doc.apply {operations[], since?,
          include_snapshot?}, control.request {ttl}, control.release, feature.refresh. Server messages:
          room.joined, presence.update, pong, doc.snapshot, doc.update, control.state, feature.flags, error.
          Identity from X-ComfyVN-User / X-ComfyVN-Name (or the user / name query parameters)."
        parameters:
          - {name: scene_id, in: query, required: true, schema: {type: string}, description: "<project_id>/<scene_id>"}
        responses:
          101: {description: switching to the WebSocket protocol}
          403: {description: enable_collaboration is off}
        """
        h = hub()
        project_id, scene_id = h.parse_room(websocket.query_params.get("scene_id"), field="scene_id")
        actor, name = _identity(websocket)
        room = await h.open(project_id, scene_id)
        await websocket.accept()
        outbox = Outbox()
        writable = can_write(websocket, write_scope(kernel))
        conn = room.connect(outbox.put, kind="json", writable=writable, actor=actor, name=name)
        _attach(room)
        _send(conn, joined(room, actor, _flags(kernel)))

        async def handle(frame: Message) -> bool:
            text = frame.get("text")
            if text is None or len(text) > MAX_MESSAGE:
                _send(conn, _error(Invalid("messages are JSON text of at most 4 MiB", field="message")))
                return True
            try:
                message = loads(text, field="message")
                if not isinstance(message, dict):
                    raise Invalid("a message is a JSON object with a `type`", field="message")
                await _handle(room, conn, message, kernel)
            except ComfyVNError as exc:
                _send(conn, _error(exc))
            return True

        try:
            await serve(websocket, outbox, handle)
        finally:
            room.disconnect(conn)
            if not any(c.actor == actor for c in _json_conns(room)):
                room.locks.release(actor, now=time.time())
                _control_changed(room)
            h.left(room)

    async def _body_room(request: Request, h: Hub) -> tuple[dict[str, Any], Room]:
        if len(await request.body()) > MAX_MESSAGE:  # the WebSocket's limit, so REST allows no more
            raise TooLarge("a request is at most 4 MiB of JSON", field="body", code="payload_too_large")
        body = await read_json(request)
        if not isinstance(body, dict):
            raise Invalid("the body must be a JSON object", field="body", code="invalid_request")
        project_id, scene_id = h.parse_room(body.get("scene_id", body.get("room")), field="scene_id")
        return body, await h.open(project_id, scene_id)

    async def create(request: Request) -> JSONResponse:
        """Open a room (from the update log or the project store) and return its state.
        ---
        summary: Open a room
        requestBody: {required: true, content: {application/json: {schema: {type: object, required: [scene_id],
          properties: {scene_id: {type: string, description: "<project_id>/<scene_id>"}}}}}}
        responses:
          200: {description: "room.joined without an actor: {scene_id, version, clock, snapshot, presence}"}
          400: {description: a malformed scene_id}
          403: {description: enable_collaboration is off}
          404: {description: no such project or scene}
        """
        _, room = await _body_room(request, hub())
        return JSONResponse(joined(room, None, _flags(kernel)))

    async def join(request: Request) -> JSONResponse:
        """Headless join: the room's state for an actor (no presence is kept without a connection).
        ---
        summary: Join a room without a WebSocket
        requestBody: {required: true, content: {application/json: {schema: {type: object, required: [scene_id],
          properties: {scene_id: {type: string}, actor: {type: string}, name: {type: string}}}}}}
        responses:
          200: {description: the room.joined message}
          400: {description: a malformed scene_id or actor}
          403: {description: enable_collaboration is off}
          404: {description: no such project or scene}
        """
        body, room = await _body_room(request, hub())
        actor, _ = _identity(request, "anonymous")
        return JSONResponse(joined(room, _actor(body, actor), _flags(kernel)))

    async def leave(request: Request) -> JSONResponse:
        """Headless leave: gives up the actor's control lock or place in its queue.
        ---
        summary: Leave a room without a WebSocket
        requestBody: {required: true, content: {application/json: {schema: {type: object, required: [scene_id],
          properties: {scene_id: {type: string}, actor: {type: string}}}}}}
        responses:
          200: {description: "{scene_id, actor, control}"}
          400: {description: a malformed scene_id or actor}
          403: {description: enable_collaboration is off}
          404: {description: no such project or scene}
        """
        body, room = await _body_room(request, hub())
        identity, _ = _identity(request, "anonymous")
        actor = _actor(body, identity)
        room.locks.release(actor, now=time.time())
        _control_changed(room)
        return JSONResponse({"scene_id": room.name, "actor": actor, "control": room.locks.state(time.time())})

    async def apply(request: Request) -> JSONResponse:
        """Apply a batch of the original protocol's operations (as `doc.apply` does on the WebSocket).
        ---
        summary: Apply operations to a room
        requestBody: {required: true, content: {application/json: {schema: {type: object,
          required: [scene_id, operations], properties: {scene_id: {type: string}, actor: {type: string},
          operations: {type: array, maxItems: 500, items: {type: object}}, include_snapshot: {type: boolean}}}}}}
        responses:
          200: {description: "{scene_id, version, clock, operations[{..., version, server_clock, applied,
            duplicate}], snapshot?}"}
          400: {description: a malformed operation (field names it)}
          403: {description: enable_collaboration is off}
          404: {description: no such project or scene}
          413: {description: more than 500 operations}
        """
        body, room = await _body_room(request, hub())
        unknown = sorted(set(body) - {"scene_id", "room", "actor", "operations", "include_snapshot", "since"})
        if unknown:
            raise Invalid(f"unknown field {unknown[0][:40]!r}", field=unknown[0][:40], code="unknown_field")
        identity, _ = _identity(request, "anonymous")
        actor = _actor(body, identity)
        results = apply_batch(room, actor, body.get("operations"), sender=None, emit=kernel.events.emit)
        answer: dict[str, Any] = {
            "scene_id": room.name,
            "version": room.version,
            "clock": room.ops.clock,
            "operations": results,
        }
        if body.get("include_snapshot") is True:
            answer["snapshot"] = room.scene()
        return JSONResponse(answer)

    return [
        WebSocketRoute("/api/collab/ws", ws),
        Route("/api/collab/room/create", create, methods=["POST"]),
        Route("/api/collab/room/join", join, methods=["POST"]),
        Route("/api/collab/room/leave", leave, methods=["POST"]),
        Route("/api/collab/room/apply", apply, methods=["POST"]),
    ]


def _actor(body: dict[str, Any], fallback: str) -> str:
    actor = body.get("actor", fallback)
    if not isinstance(actor, str) or not _ACTOR.match(actor):
        raise Invalid("actor is 1 to 255 letters, digits or . _ @ : + -", field="actor", code="invalid_actor")
    return actor
