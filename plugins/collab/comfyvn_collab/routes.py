"""HTTP and WebSocket surface of collaboration: parse -> hub/room -> JSON.

Rooms are named ``<project_id>/<scene_id>``; in paths that is two segments. Every route answers 403
``feature_disabled`` while ``enable_collaboration`` is off. Edits need ``collab.write`` off loopback
(the server's rule for plugin routes' writes; a WebSocket checks it itself, since its handshake is a
GET): a read-only Yjs client still syncs and shows presence, and its updates are dropped and counted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from comfyvn.errors import Invalid, Unprocessable
from comfyvn.wire import read_json
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Message
from starlette.websockets import WebSocket

from . import session
from .connection import can_write, serve, write_scope
from .features import FLAG
from .hub import Hub
from .outbox import Outbox
from .protocol import FrameError
from .room import DocumentFull

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["MAX_FRAME", "make_routes"]

log = structlog.get_logger("comfyvn.collab")

# One Yjs frame: a paste of a whole chapter is well under this; a bigger one is refused (close 1009).
MAX_FRAME = 8 * 1024 * 1024


def _no_query(request: Request, *allowed: str) -> None:
    if unknown := sorted(set(request.query_params) - set(allowed)):
        raise Invalid(f"unknown parameter {unknown[0][:40]!r}", field=unknown[0][:40], code="unknown_field")


def make_routes(kernel: Kernel) -> list[BaseRoute]:
    """The collaboration routes bound to ``kernel``."""

    scope = write_scope(kernel)

    def hub() -> Hub:
        kernel.flags.require(FLAG)
        return Hub.for_kernel(kernel)

    async def room_of(conn: Request | WebSocket) -> Any:
        h = hub()
        project_id, scene_id = conn.path_params["project_id"], conn.path_params["scene_id"]
        h.check_ids(project_id, scene_id)
        return h, await h.open(project_id, scene_id)

    async def yjs(websocket: WebSocket) -> None:
        """The room as a y-websocket endpoint: `new WebsocketProvider("ws://host/api/collab/yjs/<project>",
        "<scene>", doc)` connects unchanged.
        ---
        summary: Edit a scene over the y-websocket protocol
        description: Binary frames of the y-websocket protocol (sync step 1/2, updates, awareness). The
          server sends sync step 1 and everyone's awareness on connect. Off loopback a token (query `access_token`)
          is needed, and `collab.write` to edit; without it updates are dropped.
        parameters:
          - {name: project_id, in: path, required: true, schema: {type: string}}
          - {name: scene_id, in: path, required: true, schema: {type: string}}
        responses:
          101: {description: switching to the WebSocket protocol}
          403: {description: enable_collaboration is off}
        """
        h, room = await room_of(websocket)
        await websocket.accept()
        outbox = Outbox()
        conn = room.connect(outbox.put, kind="yjs", writable=can_write(websocket, scope))

        async def handle(message: Message) -> bool:
            data = message.get("bytes")
            if data is None:
                await websocket.close(code=1003, reason="this endpoint speaks binary y-websocket frames")
                return False
            if len(data) > MAX_FRAME:
                await websocket.close(code=1009, reason=f"a frame is limited to {MAX_FRAME} bytes")
                return False
            try:
                room.receive(conn, data)
            except DocumentFull as exc:
                log.info("collab edit refused: the document is full", room=room.name)
                await websocket.close(code=1009, reason=str(exc)[:120])
                return False
            except FrameError as exc:
                log.info("collab frame refused", room=room.name, error=str(exc))
                await websocket.close(code=1007, reason=str(exc)[:120])
                return False
            return True

        try:
            await serve(websocket, outbox, handle)
        finally:
            room.disconnect(conn)
            h.left(room)

    async def snapshot(request: Request) -> JSONResponse:
        """The room's scene as scenario JSON, its room version and the store version it last matched.
        ---
        summary: A room's scene now
        parameters:
          - {name: project_id, in: path, required: true, schema: {type: string}}
          - {name: scene_id, in: path, required: true, schema: {type: string}}
        responses:
          200: {description: "{room, project, scene_id, version, store_version, dirty, digest, scene}"}
          403: {description: enable_collaboration is off}
          404: {description: no such project or scene}
        """
        _no_query(request)
        _, room = await room_of(request)
        return JSONResponse(room.snapshot())

    async def presence(request: Request) -> JSONResponse:
        """Everyone in the room: awareness client id, Yjs or JSON client, and presence state.
        ---
        summary: Who is in a room
        parameters:
          - {name: project_id, in: path, required: true, schema: {type: string}}
          - {name: scene_id, in: path, required: true, schema: {type: string}}
        responses:
          200: {description: "{room, presence[{client_id, source, clock, state}], control}"}
          403: {description: enable_collaboration is off}
          404: {description: no such project or scene}
        """
        _no_query(request)
        _, room = await room_of(request)
        return JSONResponse({"room": room.name, **session.presence_view(room)})

    async def history(request: Request) -> JSONResponse:
        """The JSON-protocol operations applied in the room since a room version.
        ---
        summary: A room's operation history
        parameters:
          - {name: project_id, in: path, required: true, schema: {type: string}}
          - {name: scene_id, in: path, required: true, schema: {type: string}}
          - {name: since, in: query, schema: {type: integer, minimum: 0, default: 0}}
        responses:
          200: {description: "{room, version, operations[], truncated}"}
          400: {description: since is not a whole number}
          403: {description: enable_collaboration is off}
          404: {description: no such project or scene}
        """
        _no_query(request, "since")
        text = request.query_params.get("since", "0")
        if not text.isdigit() or len(text) > 15:
            raise Invalid("since is a whole number of at least 0", field="since", code="invalid_since")
        _, room = await room_of(request)
        return JSONResponse({"room": room.name, **session.history(room, int(text))})

    async def health(request: Request) -> JSONResponse:
        """Open rooms, their clients and whether the update log is writable.
        ---
        summary: Collaboration status
        responses:
          200: {description: "{status, rooms[], log, quiet_seconds, max_dirty_seconds}"}
          403: {description: enable_collaboration is off}
        """
        _no_query(request)
        return JSONResponse(hub().health())

    async def flush(request: Request) -> JSONResponse:
        """Write rooms back to the project store now: one room (`{"room": "<project>/<scene>"}`), or every
        open room with unsaved edits (`{}`).
        ---
        summary: Flush rooms to the project store
        requestBody:
          content:
            application/json:
              schema:
                type: object
                additionalProperties: false
                properties:
                  room: {type: string, description: "<project_id>/<scene_id>"}
                  scene_id: {type: string, description: the original's name for `room`}
        responses:
          200: {description: "{flushed[{room, flushed, store_version}]}"}
          400: {description: a malformed room}
          403: {description: enable_collaboration is off}
          404: {description: the room's project or scene is gone}
          409: {description: the scene kept changing in the store}
          422: {description: "the room's scene is not valid; it stays in the room, unsaved (with `{}`: every other
            room is still saved, and `error.flushed` lists each room's result)"}
        """
        _no_query(request)
        h = hub()
        body = await read_json(request) if await request.body() else {}
        if not isinstance(body, dict) or set(body) - {"room", "scene_id"}:
            raise Invalid('the body is {} or {"room": "<project>/<scene>"}', field="body", code="invalid_request")
        name = body.get("room", body.get("scene_id"))
        if name is not None:
            return JSONResponse({"flushed": [await h.flush(await h.open(*h.parse_room(name)))]})
        results = await h.flush_many([room for room in list(h.rooms.values()) if room.dirty])
        refused = [result for result in results if "error" in result]
        if refused:
            first = refused[0]
            raise Unprocessable(
                f"{len(refused)} of {len(results)} rooms could not be saved; the first, {first['room']!r}: "
                f"{first['error']['message']}",
                field="room",
                code="flush_refused",
                details={"flushed": results},
            )
        return JSONResponse({"flushed": results})

    return [
        WebSocketRoute("/api/collab/yjs/{project_id}/{scene_id}", yjs),
        Route("/api/collab/health", health, methods=["GET"]),
        Route("/api/collab/snapshot/{project_id}/{scene_id}", snapshot, methods=["GET"]),
        Route("/api/collab/presence/{project_id}/{scene_id}", presence, methods=["GET"]),
        Route("/api/collab/history/{project_id}/{scene_id}", history, methods=["GET"]),
        Route("/api/collab/flush", flush, methods=["POST"]),
        *session.routes(kernel, hub),
    ]
