"""Issue 11 regressions: no secret reaches a file under the runtime root, even through a 500's traceback."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from comfyvn import Kernel, RuntimePaths, hookimpl
from comfyvn.log import configure_logging
from comfyvn_server import ServerSettings, create_app
from comfyvn_server.auth import TokenStore
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient


class Leaky:
    """A plugin whose route fails while a bearer token and a webhook secret sit in its local variables."""

    @hookimpl
    def register_routes(self, kernel: Kernel) -> list[Any]:
        async def explode(request: Request) -> JSONResponse:
            state = request.app.state.server
            authorization = request.headers["authorization"]
            hook = state.webhooks.list()[0]
            secret = state.webhooks.secret(hook)
            raise RuntimeError(f"failed after reading {len(authorization) + len(secret or '')} characters")

        return [Route("/api/leaky/explode", explode, methods=["POST"])]


@pytest.fixture
def file_logging(runtime: RuntimePaths) -> Iterator[Path]:
    """The server's real logging set-up (JSON lines under the runtime root), undone afterwards."""
    configure_logging(runtime.logs, level="INFO", env={})
    yield runtime.logs
    configure_logging(None, level="WARNING", env={})


def _files_containing(root: Path, needles: dict[str, bytes]) -> list[str]:
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found += [f"{path.relative_to(root)} contains the {name}" for name, needle in needles.items() if needle in data]
    return found


def test_a_forced_500_in_token_mode_leaves_no_token_or_secret_in_any_file(
    server_kernel: Callable[..., Kernel], tmp_path: Path, file_logging: Path
) -> None:
    kernel = server_kernel(Leaky())
    token, _ = TokenStore(kernel.paths.config / "server_tokens.json").create(["admin"])
    secret = "canary-hmac-secret-0123456789"
    settings = ServerSettings(host="0.0.0.0", webhook_allow_hosts=("127.0.0.1",))
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(kernel, settings), base_url="http://192.168.1.5:8001") as client:
        hook = {"url": "http://127.0.0.1:9/hook", "events": ["on_probe"], "secret": secret}
        assert client.post("/api/modder/hooks/webhooks", json=hook, headers=headers).status_code == 201
        failed = client.post("/api/leaky/explode", headers=headers)
        assert failed.status_code == 500 and failed.json()["error"]["code"] == "internal_error"
        assert client.post("/api/probe/boom", headers=headers).status_code == 500
    log_file = file_logging / "comfyvn.log"
    text = log_file.read_text()
    assert "unhandled error" in text and "RuntimeError" in text  # the traceback itself is still logged
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    needles = {"token": token.encode(), "token's secret part": token.rsplit("_", 1)[1].encode()}
    assert _files_containing(tmp_path / "runtime", {**needles, "webhook secret": secret.encode()}) == []
