"""The composed app in-process: probes, status, plugin listing, composition, lifespan, JSON errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from comfyvn import Kernel, hookimpl
from comfyvn_server import ServerSettings, create_app
from comfyvn_server.middleware import GuardMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect
from structlog.testing import capture_logs


def test_probes_answer_ok(client: TestClient) -> None:
    for path in ("/health", "/healthz"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert response.headers["content-type"] == "application/json"


def test_status_reports_version_plugins_and_uptime(client: TestClient) -> None:
    body = client.get("/status").json()
    assert body["status"] == "ok"
    assert body["version"] == "0.1.0"
    assert body["uptime_s"] >= 0
    names = {row["name"]: row["status"] for row in body["plugins"]}
    assert names["probe"] == "loaded"
    assert body["route_conflicts"] == [] and body["route_errors"] == []


def test_plugins_json_lists_plugins_with_their_routes(client: TestClient) -> None:
    rows = {row["name"]: row for row in client.get("/-/plugins.json").json()}
    assert "GET /api/probe/item/{id:int}" in rows["probe"]["routes"]
    assert "register_routes" in rows["probe"]["hooks"]
    with_kernel = client.get("/-/plugins.json?all=1").json()
    assert with_kernel[0]["status"] == "kernel"
    assert client.get("/-/plugins.json?all=maybe").status_code == 400


def test_lifespan_runs_startup_and_shutdown(kernel: Kernel, probe: Any) -> None:
    app = create_app(kernel)
    assert probe.calls == []
    with TestClient(app):
        assert probe.calls == ["startup"]
    assert probe.calls == ["startup", "shutdown"]


class Clasher:
    name = "clasher"

    @hookimpl
    def register_routes(self, kernel: Kernel) -> list[Any]:
        async def mine(request: Any) -> JSONResponse:
            return JSONResponse({"who": "clasher"})

        return [Route("/health", mine), Route("/api/clasher/ok", mine), "not a route"]


class Broken:
    name = "broken"

    @hookimpl
    def register_routes(self, kernel: Kernel) -> list[Any]:
        raise RuntimeError("cannot make routes")


def test_composition_isolates_conflicts_non_routes_and_failures(server_kernel: Callable[..., Kernel]) -> None:
    kernel = server_kernel(Clasher(), Broken())
    with TestClient(create_app(kernel)) as client:
        assert client.get("/health").json() == {"status": "ok"}  # the server's own probe wins
        assert client.get("/api/clasher/ok").json() == {"who": "clasher"}
        status = client.get("/status").json()
        assert status["route_conflicts"] == [{"route": "GET /health", "kept": "comfyvn_server", "dropped": "clasher"}]
        assert status["route_errors"] == [{"plugin": "clasher", "error": "not a Starlette route: str"}]
        plugins = {row["name"]: row for row in status["plugins"]}
        assert plugins["broken"]["status"] == "failed"
        assert "cannot make routes" in plugins["broken"]["error"]


def test_comfyvn_error_keeps_status_and_names_field(client: TestClient) -> None:
    response = client.get("/api/probe/item/11")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found" and error["field"] == "id"
    assert error["request_id"] == response.headers["x-request-id"]


def test_feature_disabled_is_403_naming_the_flag(kernel: Kernel, client: TestClient) -> None:
    assert client.get("/api/probe/gated").json() == {"ok": True}
    kernel.flags.set("enable_probe", False)
    response = client.get("/api/probe/gated")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "feature_disabled"
    assert response.json()["error"]["field"] == "enable_probe"


def test_bad_json_is_400(client: TestClient) -> None:
    for raw in (b"{not json", b"\xff\xfe\x00", b""):
        response = client.post("/api/probe/character", content=raw)
        assert response.status_code == 400, raw
        assert response.json()["error"]["code"] == "invalid_json"


def test_cattrs_errors_are_400_invalid_request_naming_the_field(client: TestClient) -> None:
    # One status for request validation, whether a route uses comfyvn.wire or its own cattrs converter.
    response = client.post("/api/probe/character", json={"name": "Ada", "stats": {"str": "x", "dex": 1}})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert response.json()["error"]["field"] == "stats.str"
    response = client.post("/api/probe/character", json={"name": "Ada", "stats": {"str": 1, "dex": 1}, "hp": 3})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "hp"
    ok = client.post("/api/probe/character", json={"name": "Ada", "stats": {"str": 1, "dex": 2}})
    assert ok.json() == {"name": "Ada", "stats": {"str": 1, "dex": 2}}


def test_unknown_routes_and_methods_are_json(client: TestClient) -> None:
    missing = client.get("/no/such/route")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = client.delete("/health")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"


def test_unhandled_exception_is_json_500_with_logged_traceback(client: TestClient) -> None:
    with capture_logs() as logs:
        response = client.post("/api/probe/boom", headers={"X-Request-ID": "req-123"})
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal_error" and error["request_id"] == "req-123"
    assert "probe exploded" not in response.text  # no internals leak to the client
    entry = next(e for e in logs if e["event"] == "unhandled error")
    assert entry["request_id"] == "req-123" and entry["exc_info"] is True


def test_a_damaged_token_file_is_a_json_500_not_a_plain_text_one(kernel: Kernel) -> None:
    # The guard reads the token file before any route runs; its failure is answered like any other bug.
    kernel.paths.config.mkdir(parents=True, exist_ok=True)
    (kernel.paths.config / "server_tokens.json").write_text("{damaged", encoding="utf-8")
    token = "cvn_0123456789ab_" + "x" * 24  # shaped like a token, so the store is read
    with TestClient(create_app(kernel)) as client, capture_logs() as logs:
        response = client.get("/status", headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-7"})
    assert response.status_code == 500 and response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "internal_error" and response.json()["error"]["request_id"] == "req-7"
    assert str(kernel.paths.config) not in response.text
    entry = next(e for e in logs if e["event"] == "unhandled error")
    assert entry["request_id"] == "req-7" and entry["exc_info"] is True


def test_the_guard_is_the_outermost_layer(kernel: Kernel) -> None:
    # Starlette's own ServerErrorMiddleware (a plain-text 500) is left out: the guard answers every escape.
    stack = create_app(kernel).build_middleware_stack()
    assert type(stack) is GuardMiddleware
    assert type(stack.app) is ExceptionMiddleware and stack.app.app is not None


class Crasher:
    name = "crasher"

    @hookimpl
    def register_routes(self, kernel: Kernel) -> list[Any]:
        async def crash(websocket: WebSocket) -> None:
            await websocket.accept()
            raise RuntimeError("socket exploded")

        return [WebSocketRoute("/api/crasher/ws", crash)]


def test_a_websocket_that_fails_after_its_accept_is_closed_1011(server_kernel: Callable[..., Kernel]) -> None:
    client = TestClient(create_app(server_kernel(Crasher())))
    socket = client.websocket_connect("/api/crasher/ws")
    with client, capture_logs() as logs, socket as ws, pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_text()
    assert closed.value.code == 1011 and "socket exploded" not in (closed.value.reason or "")
    assert any(e["event"] == "unhandled error" and e["exc_info"] is True for e in logs)


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    assert client.get("/health", headers={"X-Request-ID": "abc.DEF-1"}).headers["x-request-id"] == "abc.DEF-1"
    generated = client.get("/health", headers={"X-Request-ID": "bad id with spaces"}).headers["x-request-id"]
    assert generated != "bad id with spaces" and generated.isalnum()
    assert generated != client.get("/health").headers["x-request-id"]


def test_body_limit_is_json_413(kernel: Kernel) -> None:
    with TestClient(create_app(kernel, ServerSettings(max_body_size=64))) as client:
        response = client.post("/api/probe/character", content=b"x" * 1000)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_settings_come_from_environment_then_config(server_kernel: Callable[..., Kernel]) -> None:
    kernel = server_kernel(env={"COMFYVN_SERVER_HOST": "0.0.0.0", "COMFYVN_SERVER_PORT": "9100"})
    settings = ServerSettings.resolve(env=kernel.env, config={"server": {"port": 1, "ws_queue": 8}})
    assert (settings.host, settings.port, settings.ws_queue) == ("0.0.0.0", 9100, 8)
    assert not settings.loopback and settings.base_url == "http://127.0.0.1:9100"
    explicit = ServerSettings.resolve(env=kernel.env, host="::1", port=0)
    assert explicit.loopback and explicit.base_url == "http://[::1]:0"


def test_streamed_body_over_the_limit_is_json_413(kernel: Kernel) -> None:
    def chunks() -> Any:
        for _ in range(10):
            yield b"x" * 50

    with TestClient(create_app(kernel, ServerSettings(max_body_size=64))) as client:
        response = client.post("/api/probe/character", content=chunks())
    assert response.status_code == 413
    assert response.json()["error"]["field"] == "body"


def test_serve_reload_needs_a_fixed_port(kernel: Kernel) -> None:
    from click.testing import CliRunner
    from comfyvn.cli import make_cli

    result = CliRunner().invoke(make_cli(kernel), ["serve", "--reload", "--port", "0"])
    assert result.exit_code == 2 and "fixed port" in result.output
