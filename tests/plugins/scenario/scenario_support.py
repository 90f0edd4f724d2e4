"""Helpers shared by the scenario tests: the demo path, an ASGI client, an app, a tiny scene."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import anyio
import httpx
from comfyvn import Kernel
from comfyvn.errors import ComfyVNError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "examples" / "demo"


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


class Http:
    """A synchronous HTTP client over ASGI."""

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

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)



def tiny_scene() -> dict[str, Any]:
    """A three-node scene with a weighted pick, a condition and an action."""
    return copy.deepcopy({
        "id": "tiny", "start": "a", "variables": {"gold": 1},
        "nodes": [
            {"id": "a", "text": "start", "choices": [
                {"id": "left", "target": "b", "weight": 1, "actions": [{"type": "increment", "key": "gold"}]},
                {"id": "right", "target": "c", "weight": 3},
                {"id": "rich", "target": "c", "conditions": [{"key": "gold", "operator": "gte", "value": 5}]}]},
            {"id": "b", "text": "left", "choices": [{"target": "c"}]},
            {"id": "c", "text": "end", "end": True},
        ],
    })
