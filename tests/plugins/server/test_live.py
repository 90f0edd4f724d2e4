"""Real hypercorn on a loopback port: HTTP, WebSocket fan-out to 100 clients, a stalled client, signals."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from comfyvn import Kernel
from websockets.asyncio.client import ClientConnection, connect

from .conftest import LiveServer, wait_for

EVENTS = 240
ROUND = 24


def test_http_through_real_hypercorn(live: Callable[..., LiveServer]) -> None:
    with live() as server, httpx.Client(base_url=server.base_url, timeout=5) as http:
        assert http.get("/health").json() == {"status": "ok"}
        missing = http.get("/nowhere")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        assert "/api/modder/hooks/ws" in http.get("/openapi.json").json()["paths"]
        rebinding = http.get("/api/flags", headers={"Host": f"attacker.example:{server.port}"})
        assert rebinding.status_code == 403 and rebinding.json()["error"]["code"] == "host_refused"
        boom = http.post("/api/probe/boom")
        assert boom.status_code == 500 and boom.json()["error"]["request_id"] == boom.headers["x-request-id"]


async def _ready(ws: ClientConnection) -> None:
    assert json.loads(await ws.recv())["topic"] == "ready"


def test_websocket_cross_site_handshake_is_refused(live: Callable[..., LiveServer]) -> None:
    async def scenario(server: LiveServer) -> None:
        with pytest.raises(websockets.InvalidStatus) as info:
            async with connect(f"{server.ws_url}/api/modder/hooks/ws", origin="https://evil.example"):  # type: ignore[arg-type]
                pass
        assert info.value.response.status_code == 403
        async with connect(f"{server.ws_url}/api/modder/hooks/ws?events=on_feature_flag_changed") as ws:
            await _ready(ws)
            async with httpx.AsyncClient(base_url=server.base_url) as http:
                await http.post("/api/flags", json={"enable_probe": False})
            message = json.loads(await ws.recv())
            assert message["topic"] == "modder.on_feature_flag_changed" and message["payload"]["value"] is False

    with live() as server:
        asyncio.run(scenario(server))


class RawWebSocket:
    """A WebSocket client on a plain blocking socket with a tiny receive buffer.

    Nothing reads the socket until `recv` is called, so while the test leaves it alone it is a
    truly stalled peer (a client library would keep draining the socket into its own memory).
    """

    def __init__(self, port: int, path: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        self.sock.settimeout(30)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(4096)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head

    def _take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def recv(self) -> dict[str, Any]:
        """The next text message (server frames are unmasked and, here, never fragmented)."""
        first, second = self._take(2)
        assert first & 0x0F == 0x1, f"unexpected opcode {first & 0x0F}"
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._take(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._take(8))[0]
        message: dict[str, Any] = json.loads(self._take(length))
        return message

    def close(self) -> None:
        self.sock.close()


async def _fan_out(kernel: Kernel, server: LiveServer, *, fast_count: int, events: int, pad: str) -> int:
    """Emit ``events`` in rounds to ``fast_count`` reading clients and one that never reads until the end.

    Returns how many envelopes the stalled client was told it lost; asserts everything else.
    """
    url = f"{server.ws_url}/api/modder/hooks/ws?events=on_probe"
    # The stalled client connects first, so the server serves it before the others on every event.
    stalled = RawWebSocket(server.port, "/api/modder/hooks/ws?events=on_probe")
    assert stalled.recv()["topic"] == "ready"
    fast = [await connect(url) for _ in range(fast_count)]
    await asyncio.gather(*(_ready(ws) for ws in fast))
    received: list[list[dict[str, Any]]] = [[] for _ in fast]

    async def read(index: int, ws: ClientConnection, upto: int) -> None:
        while len(received[index]) < upto:
            received[index].append(json.loads(await ws.recv()))

    for start in range(0, events, ROUND):
        for n in range(start, min(start + ROUND, events)):
            kernel.events.emit("on_probe", {"n": n, "pad": pad})
        # Every reading client gets this round although the stalled one has read nothing at all.
        upto = min(start + ROUND, events)
        await asyncio.wait_for(asyncio.gather(*(read(i, ws, upto) for i, ws in enumerate(fast))), 60)
    for messages in received:
        assert [m["topic"] for m in messages] == ["modder.on_probe"] * events
        assert [m["payload"]["n"] for m in messages] == list(range(events))
        seqs = [m["seq"] for m in messages]
        assert seqs == sorted(seqs) and len(set(seqs)) == events
    # The stalled client now reads: what it gets plus what it was told it lost is everything.
    got, dropped = [], 0
    while len(got) + dropped < events:
        message = stalled.recv()
        if message["topic"] == "dropped":
            dropped += message["dropped"]
        else:
            got.append(message["payload"]["n"])
    assert got == sorted(got) and got[:1] == [0]
    stalled.close()
    await asyncio.gather(*(ws.close() for ws in fast))
    return dropped


def test_hundred_subscribers_get_every_event_in_order(kernel: Kernel, live: Callable[..., LiveServer]) -> None:
    with live(ws_queue=64, ws_heartbeat=5.0) as server:
        asyncio.run(_fan_out(kernel, server, fast_count=100, events=EVENTS, pad="x" * 256))


def test_a_stalled_subscriber_overflows_alone_without_delaying_others(
    kernel: Kernel, live: Callable[..., LiveServer]
) -> None:
    # 32 KiB envelopes: enough bytes to fill every socket and transport buffer between the server and
    # a client that stopped reading, so the server's send to it really blocks.
    with live(ws_queue=32, ws_heartbeat=5.0) as server:
        dropped = asyncio.run(_fan_out(kernel, server, fast_count=3, events=EVENTS, pad="x" * 32768))
    assert dropped > 0, "the stalled client never overflowed: the test did not stall it"


def _serve(runtime: Path, sig: int) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    env = {**os.environ, "COMFYVN_RUNTIME_ROOT": str(runtime), "COMFYVN_PLUGINS": "server", "COMFYVN_SERVER_PORT": "0"}
    env.pop("COMFYVN_SERVER_HOST", None)
    process = subprocess.Popen(
        [sys.executable, "-c", "from comfyvn.cli import main; main()", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    state_file = runtime / "config" / "runtime_state.json"

    def running() -> dict[str, Any] | None:
        if process.poll() is not None:
            raise AssertionError(f"server exited early: {process.communicate()[0]}")
        try:
            state: dict[str, Any] = json.loads(state_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return state if state["running"] else None

    return process, wait_for(running, timeout=60)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_comfyvn_serve_writes_runtime_state_and_stops_cleanly(tmp_path: Path, sig: int) -> None:
    process, state = _serve(tmp_path, sig)
    try:
        assert state["base_url"] == f"http://127.0.0.1:{state['port']}" and state["port"] > 0
        assert httpx.get(f"{state['base_url']}/health", timeout=5).json() == {"status": "ok"}
        plugins = httpx.get(f"{state['base_url']}/-/plugins.json", timeout=5).json()
        assert [row["name"] for row in plugins] == ["server"]

        async def hold_websocket() -> int | None:
            async with connect(f"ws://127.0.0.1:{state['port']}/api/modder/hooks/ws") as ws:
                await _ready(ws)
                started = time.monotonic()
                process.send_signal(sig)
                with pytest.raises(websockets.ConnectionClosed):
                    while time.monotonic() - started < 30:
                        await ws.recv()
                return ws.close_code

        assert asyncio.run(hold_websocket()) == 1001
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output
    assert "ComfyVN serving on" in output and "ComfyVN server stopped" in output
    final = json.loads((tmp_path / "config" / "runtime_state.json").read_text())
    assert final["running"] is False and final["port"] == state["port"]
