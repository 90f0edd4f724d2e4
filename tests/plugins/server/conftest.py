"""Fixtures for the server plugin: a probe plugin with routes/events/flags, apps, clients, a live server."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import cattrs
import comfyvn_server.plugin as server_plugin
import httpx
import pytest
from comfyvn import Kernel, hookimpl
from comfyvn.errors import ComfyVNError, NotFound, Unprocessable
from comfyvn_server import ServerSettings, create_app
from comfyvn_server.serve import bind_socket, serve_app
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient


@attrs.frozen
class Stats:
    str: int
    dex: int


@attrs.frozen
class Character:
    name: str
    stats: Stats


_converter = cattrs.Converter(forbid_extra_keys=True)


class Probe:
    """An inline plugin exercising what real plugins do: routes, events, flags, lifecycle hooks."""

    name = "probe"

    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    def register_events(self, register: Any) -> None:
        register(
            "on_probe",
            "A probe event.",
            {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}, "pad": {"type": "string"}}},
        )

    @hookimpl
    def register_flags(self, register: Any) -> None:
        register("enable_probe", True, "Gate for the probe's gated route.")
        register("enable_probe_extra", False, "A second probe flag.")

    @hookimpl
    def startup(self, kernel: Kernel) -> None:
        self.calls.append("startup")

    @hookimpl
    def shutdown(self, kernel: Kernel) -> None:
        self.calls.append("shutdown")

    @hookimpl
    def register_routes(self, kernel: Kernel) -> list[Any]:
        async def boom(request: Request) -> JSONResponse:
            """Always fails: our own bug."""
            raise RuntimeError("probe exploded")

        async def item(request: Request) -> JSONResponse:
            """Fetch an item by integer id.
            ---
            responses:
              200: {description: the item, content: {application/json: {schema: {type: object}}}}
            """
            if request.path_params["id"] > 10:
                raise NotFound("no such item", field="id")
            return JSONResponse({"id": request.path_params["id"]})

        async def character(request: Request) -> JSONResponse:
            """Structure a character with cattrs.
            ---
            requestBody: {content: {application/json: {schema: {type: object}}}}
            responses:
              200: {description: ok, content: {application/json: {schema: {type: object}}}}
            """
            body = await request.json()
            if not isinstance(body, dict):  # cattrs assumes a mapping and would crash on a list
                raise ComfyVNError("expected a JSON object", field="body")
            value = _converter.structure(body, Character)
            if value.stats.str < 0:
                raise Unprocessable("str must not be negative", field="stats.str", code="invalid_stats")
            return JSONResponse(_converter.unstructure(value))

        async def gated(request: Request) -> JSONResponse:
            """A flag-gated read."""
            kernel.flags.require("enable_probe")
            return JSONResponse({"ok": True})

        async def burst(request: Request) -> JSONResponse:
            """Emit ``n`` events in one go (no await in between).
            ---
            requestBody: {content: {application/json: {schema: {type: object, properties: {n: {type: integer}}}}}}
            responses:
              200: {description: ok, content: {application/json: {schema: {type: object}}}}
            """
            body = await request.json()
            n = body.get("n") if isinstance(body, dict) else None
            if not isinstance(n, int) or not 0 <= n <= 10_000:
                raise ComfyVNError("n must be an integer 0..10000", field="n")
            for i in range(n):
                kernel.events.emit("on_probe", {"n": i})
            return JSONResponse({"emitted": n})

        return [
            Route("/api/probe/boom", boom, methods=["POST", "GET"]),
            Route("/api/probe/item/{id:int}", item, methods=["GET"]),
            Route("/api/probe/character", character, methods=["POST"]),
            Route("/api/probe/gated", gated, methods=["GET"]),
            Route("/api/probe/burst", burst, methods=["POST"]),
        ]


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def server_kernel(make_kernel: Callable[..., Kernel], probe: Probe) -> Callable[..., Kernel]:
    """``server_kernel(*extra, env=...)``: strict kernel with the server plugin and the probe."""

    def factory(*extra: object, env: dict[str, str] | None = None) -> Kernel:
        return make_kernel(server_plugin, probe, *extra, env=env)

    return factory


@pytest.fixture
def kernel(server_kernel: Callable[..., Kernel]) -> Kernel:
    return server_kernel()


@pytest.fixture
def client(kernel: Kernel) -> Iterator[TestClient]:
    with TestClient(create_app(kernel)) as test_client:
        yield test_client


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.02) -> Any:
    """Poll until ``predicate()`` is truthy (returns it); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        time.sleep(interval)


class LiveServer:
    """The real app on real hypercorn, on a free loopback port, in a background thread."""

    def __init__(self, kernel: Kernel, **settings: Any) -> None:
        self.sock = bind_socket("127.0.0.1", 0)
        self.port = self.sock.getsockname()[1]
        self.settings = ServerSettings(host="127.0.0.1", port=self.port, **settings)
        self.app = create_app(kernel, self.settings)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await serve_app(self.app, self.sock, self._stop.wait, graceful_timeout=2.0)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        wait_for(self._healthy, timeout=20)
        return self

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(20)
        assert not self._thread.is_alive(), "server did not stop"


@pytest.fixture
def live(kernel: Kernel) -> Callable[..., LiveServer]:
    return lambda **settings: LiveServer(kernel, **settings)
