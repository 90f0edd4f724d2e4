"""Issue 11 regressions: no secret reaches a file under the runtime root (not even through a 500's
traceback), and nothing strict JSON cannot carry, or too large, is kept by the bus or sent to clients."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from comfyvn import Kernel, RuntimePaths, hookimpl
from comfyvn.errors import ComfyVNError
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


def _configure_keeping_the_processor_list(logs: Path | None, level: str) -> None:
    # Loggers cache the processor list they first saw, and capture_logs() edits the current list in
    # place: keeping one list object stops this test from blinding capture_logs in later tests.
    processors = structlog.get_config()["processors"]
    configure_logging(logs, level=level, env={})
    processors[:] = structlog.get_config()["processors"]
    structlog.configure(processors=processors)


@pytest.fixture
def file_logging(runtime: RuntimePaths) -> Iterator[Path]:
    """The server's real logging set-up (JSON lines under the runtime root), undone afterwards."""
    _configure_keeping_the_processor_list(runtime.logs, "INFO")
    yield runtime.logs
    _configure_keeping_the_processor_list(None, "WARNING")


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


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"data": NaN}', "data"),
        ('{"data": {"x": [1, Infinity]}}', "data.x[1]"),  # the decoder names the exact place
        ('{"data": "\\ud800"}', "data"),
        ('{"message": "\\udfff"}', "message"),
    ],
)
def test_the_test_emit_refuses_what_strict_json_cannot_carry(client: TestClient, body: str, field: str) -> None:
    before = client.get("/api/modder/hooks/history").json()["items"]
    response = client.post("/api/modder/hooks/test", content=body, headers={"content-type": "application/json"})
    # The JSON edge may name the exact spot (``data.x[1]``); the bus names the field it was given.
    named = response.json()["error"]["field"]
    assert response.status_code == 400 and (named == field or named.startswith((f"{field}.", f"{field}["))), named
    assert client.get("/api/modder/hooks/history").json()["items"] == before
    assert client.get("/api/modder/hooks").status_code == 200


def test_an_oversized_test_event_is_a_413_and_not_kept(kernel: Kernel, client: TestClient) -> None:
    response = client.post("/api/modder/hooks/test", json={"data": "x" * (kernel.events.max_payload_bytes + 1)})
    assert response.status_code == 413 and response.json()["error"]["field"] == "data"
    assert kernel.events.history() == [] and kernel.events.history_bytes == 0


def test_internal_nan_never_reaches_history_or_websocket_clients(kernel: Kernel, client: TestClient) -> None:
    with client.websocket_connect("/api/modder/hooks/ws?events=on_probe") as ws:
        assert ws.receive_json()["topic"] == "ready"
        with pytest.raises(ComfyVNError):
            kernel.events.emit("on_probe", {"n": 1, "score": float("nan")})
        payload: dict[str, Any] = {"n": 2}
        kernel.events.emit("on_probe", payload)
        payload["score"] = float("inf")  # changed after the emit: what was emitted is what goes out
        text = ws.receive_text()
    assert json.loads(text)["payload"] == {"n": 2} and "NaN" not in text and "Infinity" not in text
    for path in ("/api/modder/hooks", "/api/modder/hooks/history"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "Infinity" not in response.text and "NaN" not in response.text
    assert [e["payload"] for e in client.get("/api/modder/hooks/history").json()["items"]] == [{"n": 2}]


def test_the_hooks_index_and_history_carry_envelopes_as_emitted(kernel: Kernel, client: TestClient) -> None:
    sent = [kernel.events.emit("on_probe", {"n": i, "pad": "é" * i}) for i in range(3)]
    index = client.get("/api/modder/hooks?events=on_probe&limit=2").json()
    history = client.get("/api/modder/hooks/history?event=on_probe").json()
    assert [e["payload"]["n"] for e in index["history"]] == [1, 2]
    assert history["items"] == [e.as_dict() for e in sent] and history["last_seq"] == sent[-1].seq
    assert client.get("/api/modder/hooks/history?since=999").json() == {"last_seq": None, "items": []}


def test_webhook_description_with_a_lone_surrogate_is_refused_and_the_registry_keeps_working(
    server_kernel: Callable[..., Kernel],
) -> None:
    kernel = server_kernel()
    settings = ServerSettings(webhook_allow_hosts=("127.0.0.1",))
    with TestClient(create_app(kernel, settings)) as client:
        bad = '{"url": "http://127.0.0.1:9/a", "description": "\\ud800"}'
        response = client.post("/api/modder/hooks/webhooks", content=bad, headers={"content-type": "application/json"})
        assert response.status_code == 400 and response.json()["error"]["field"] == "description"
        good = client.post("/api/modder/hooks/webhooks", json={"url": "http://127.0.0.1:9/b", "description": "ok"})
        assert good.status_code == 201
        assert [h["url"] for h in client.get("/api/modder/hooks/webhooks").json()["webhooks"]] == [
            "http://127.0.0.1:9/b"
        ]
        assert client.get("/api/modder/hooks").status_code == 200
