"""Error answers over real hypercorn that Starlette's defaults would leave without the JSON error shape:
WebSocket handshakes to no route, and a client leaving mid-body (no "unhandled error" in the log)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Callable

import pytest
import websockets
from websockets.asyncio.client import connect

from .conftest import LiveServer, wait_for


@pytest.mark.parametrize("path", ["/api/nope", "/health", "/api/flags", "/api/probe/character"])
def test_a_websocket_handshake_to_no_websocket_route_is_a_json_404(live: Callable[..., LiveServer], path: str) -> None:
    # Starlette's router closed such a handshake before accept: hypercorn answered a bare 403.
    async def scenario(server: LiveServer) -> None:
        with pytest.raises(websockets.InvalidStatus) as info:
            async with connect(f"{server.ws_url}{path}"):
                pass
        response = info.value.response
        assert response.status_code == 404
        error = json.loads(response.body or b"{}")["error"]
        assert error["code"] == "not_found" and error["field"] is None
        assert error["message"] == f"no route for {path}"
        assert error["request_id"] == response.headers["x-request-id"]
        # The real WebSocket route still answers.
        async with connect(f"{server.ws_url}/api/modder/hooks/ws") as ws:
            assert json.loads(await ws.recv())["topic"] == "ready"

    with live() as server:
        asyncio.run(scenario(server))


def test_a_client_leaving_mid_body_is_no_error(
    live: Callable[..., LiveServer], caplog: pytest.LogCaptureFixture
) -> None:
    with live() as server, caplog.at_level(logging.INFO):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(
                (
                    f"POST /api/probe/character HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                    "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
                ).encode()
                + b'{"name": "'
            )
        # The request ends one way or the other: noted as a client gone, or (the old bug) an unhandled error.
        wait_for(lambda: any(w in r.getMessage() for r in caplog.records for w in ("went away", "unhandled")))
    messages = [record.getMessage() for record in caplog.records]
    assert not [m for m in messages if "unhandled error" in m or "ClientDisconnect" in m], messages
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], messages
