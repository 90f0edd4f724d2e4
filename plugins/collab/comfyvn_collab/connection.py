"""What both collaboration WebSockets share: who may edit, and running one connection (its outbox pumped to the
peer while its messages are handed to the protocol)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio
import structlog
from starlette.requests import Request
from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketState

from .features import WRITE_SCOPE
from .outbox import Outbox

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["can_write", "pump", "serve", "write_scope"]

log = structlog.get_logger("comfyvn.collab")


def write_scope(kernel: Kernel) -> str:
    """The scope an edit needs: ``<this plugin's name>.write``, as the server derives it for the plugin's
    HTTP writes (``collab.write`` when installed; a test registering the module gets its module name)."""
    for record in kernel.plugins.records.values():
        if record.module == __name__.rsplit(".", 1)[0] + ".plugin":
            return f"{record.name}.write"
    return WRITE_SCOPE


def can_write(conn: Request | WebSocket, scope: str = WRITE_SCOPE) -> bool:
    """Whether the caller may edit: anonymous on loopback, or a token with ``scope`` or ``admin``."""
    principal = conn.scope.get("state", {}).get("principal")
    if principal is None or getattr(principal, "token_id", None) is None:
        return True
    scopes: frozenset[str] = getattr(principal, "scopes", frozenset())
    return scope in scopes or "admin" in scopes


async def pump(websocket: WebSocket, outbox: Outbox) -> None:
    """Send what the room queues for this connection until it closes or overflows."""
    while True:
        items = await outbox.take()
        for item in items:
            if isinstance(item, bytes):
                await websocket.send_bytes(item)
            else:
                await websocket.send_text(item)
        if outbox.overflowed:
            await websocket.close(code=1013, reason="too far behind: reconnect to resync")
            return
        if outbox.closing:
            await websocket.close(code=1001, reason="server shutting down")
            return


async def serve(websocket: WebSocket, outbox: Outbox, handle: Callable[[Message], Awaitable[bool]]) -> None:
    """Run an accepted connection: pump ``outbox`` to the peer and hand each message received to ``handle``
    until it returns False (it closed the connection) or the peer leaves; the socket is closed at the end."""
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(pump, websocket, outbox)
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect" or not await handle(message):
                    break
            group.cancel_scope.cancel()
    except OSError as exc:  # the peer went away while we were sending
        log.debug("collab client gone", error=repr(exc))
    finally:
        if websocket.application_state == WebSocketState.CONNECTED:
            await websocket.close()
