"""Fixtures for the battle plugin's tests: kernels with the battle plugin and an HTTP client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import comfyvn_battle.plugin as battle_plugin
import httpx
import pytest
from comfyvn import Kernel
from comfyvn.errors import ComfyVNError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse


def app_for(kernel: Kernel) -> Any:
    """The real server app when the server plugin is installed, else a bare app with its error shape."""
    try:
        from comfyvn_server import create_app
    except ImportError:
        async def client_error(request: Request, exc: Exception) -> JSONResponse:
            assert isinstance(exc, ComfyVNError)
            return JSONResponse(exc.to_dict(), status_code=exc.status)

        return Starlette(routes=[route for _, route in kernel.routes()],
                         exception_handlers={ComfyVNError: client_error})
    return create_app(kernel)


@pytest.fixture
def battle_kernel(make_kernel: Callable[..., Kernel]) -> Callable[..., Kernel]:
    """``battle_kernel(*extra_plugins, env=...)``: a strict kernel with the battle plugin."""

    def factory(*extra: object, env: dict[str, str] | None = None) -> Kernel:
        return make_kernel(battle_plugin, *extra, env=env)

    return factory


class Http:
    """A synchronous HTTP client over ASGI (starlette's TestClient warns under httpx 0.28)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                return await client.request(method, path, **kwargs)

        return anyio.run(go)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)


@pytest.fixture
def http_for() -> Callable[[Kernel], Http]:
    """``http_for(kernel)``: an HTTP client for the app composed from ``kernel``."""
    return lambda kernel: Http(app_for(kernel))


@pytest.fixture
def client(battle_kernel: Callable[..., Kernel]) -> Http:
    return Http(app_for(battle_kernel()))
