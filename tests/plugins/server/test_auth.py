"""Tokens (hashed, scoped, revocable), the loopback Host/Origin guard, off-loopback scopes, the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from comfyvn import Kernel, hookimpl
from comfyvn.cli import make_cli
from comfyvn.errors import ComfyVNError, NotFound
from comfyvn_server import ServerSettings, create_app
from comfyvn_server.app import open_prefixes
from comfyvn_server.auth import Denied, Principal, TokenStore, authorize, required_scope
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    return TokenStore(tmp_path / "tokens.json")


def test_tokens_are_stored_hashed_and_verified(store: TokenStore) -> None:
    token, record = store.create(["flags.write", "admin"], name="ci")
    text = store.path.read_text()
    assert token not in text and token.split("_", 2)[2] not in text
    assert oct(store.path.stat().st_mode & 0o777) == "0o600"
    assert store.verify(token) == record
    assert store.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert store.verify("cvn_000000000000_" + "x" * 43) is None
    assert [r.public() for r in store.list()] == [record.public()]
    assert "hash" not in record.public()


def test_revoked_tokens_stop_working(store: TokenStore) -> None:
    token, record = store.create(["admin"])
    store.revoke(record.id)
    assert store.verify(token) is None
    with pytest.raises(NotFound):
        store.revoke(record.id)


@pytest.mark.parametrize("scopes", [[], ["Admin"], ["a b"], ["x.y.z"], [""]])
def test_invalid_scopes_are_refused(store: TokenStore, scopes: list[str]) -> None:
    with pytest.raises(ComfyVNError) as info:
        store.create(scopes)
    assert info.value.field == "scope"


@given(st.text(max_size=80))
def test_verify_never_raises_on_garbage(tmp_path_factory: pytest.TempPathFactory, garbage: str) -> None:
    store = TokenStore(tmp_path_factory.mktemp("t") / "tokens.json")
    store.create(["admin"])
    assert store.verify(garbage) is None


@given(st.lists(st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True), min_size=1, max_size=4))
def test_required_scope_follows_the_api_area(parts: list[str]) -> None:
    assert required_scope("/api/" + "/".join(parts)) == f"{parts[0]}.write"
    assert required_scope("/" + "/".join(parts)) == (
        "admin" if parts[0] != "api" or len(parts) < 2 else f"{parts[1]}.write"
    )


LOOPBACK = ServerSettings()


def check(
    store: TokenStore,
    settings: ServerSettings = LOOPBACK,
    *,
    method: str = "GET",
    path: str = "/api/flags",
    host: str | None = "127.0.0.1:8001",
    origin: str | None = None,
    token: str | None = None,
    server_host: str | None = "127.0.0.1",
) -> Denied | Principal:
    return authorize(method, path, host, origin, token, server_host, settings, store)


@pytest.mark.parametrize("host", ["127.0.0.1:8001", "localhost:8001", "[::1]:8001", "localhost", "app.localhost:5"])
def test_loopback_hosts_are_accepted(store: TokenStore, host: str) -> None:
    assert isinstance(check(store, host=host), Principal)


@pytest.mark.parametrize("host", ["evil.example:8001", "192.168.1.5:8001", "127.0.0.1.evil.example"])
def test_foreign_hosts_are_refused_on_loopback(store: TokenStore, host: str) -> None:
    verdict = check(store, host=host)
    assert isinstance(verdict, Denied) and verdict.code == "host_refused"
    allowed = ServerSettings(allowed_hosts=("evil.example",))
    assert isinstance(check(store, allowed, host=host), Principal) == host.startswith("evil.example:")


def test_origin_must_match_host_or_be_allowed(store: TokenStore) -> None:
    assert isinstance(check(store, origin="http://127.0.0.1:8001"), Principal)
    for origin in ("http://evil.example", "http://127.0.0.1:3000", "null", "file://", "http://localhost:8001"):
        verdict = check(store, origin=origin, method="POST")
        assert isinstance(verdict, Denied) and verdict.code == "origin_refused", origin
    allowed = ServerSettings(allowed_origins=("http://localhost:5173",))
    assert isinstance(check(store, allowed, origin="http://localhost:5173"), Principal)


def test_off_loopback_needs_tokens_and_scopes(store: TokenStore) -> None:
    lan = ServerSettings(host="0.0.0.0")
    host = "192.168.1.5:8001"
    assert isinstance(check(store, lan, path="/health", host=host), Principal)
    missing = check(store, lan, host=host)
    assert isinstance(missing, Denied) and (missing.status, missing.code) == (401, "auth_required")
    reader, _ = store.create(["assets.write"])
    admin, _ = store.create(["admin"])
    assert isinstance(check(store, lan, host=host, token=reader), Principal)
    denied = check(store, lan, host=host, token=reader, method="POST")
    assert isinstance(denied, Denied) and (denied.status, denied.code) == (403, "insufficient_scope")
    assert isinstance(check(store, lan, host=host, token=reader, method="POST", path="/api/assets/x"), Principal)
    assert isinstance(check(store, lan, host=host, token=admin, method="DELETE"), Principal)
    bad = check(store, lan, host=host, token="cvn_nope")
    assert isinstance(bad, Denied) and bad.status == 401


def test_open_prefixes_need_no_token_off_loopback_but_keep_every_other_check(store: TokenStore) -> None:
    lan = ServerSettings(host="0.0.0.0")
    host = "192.168.1.5:8001"
    opened = ("/api/share/web/",)

    def verdict(path: str, **kwargs: Any) -> Denied | Principal:
        return authorize(
            kwargs.pop("method", "GET"),
            path,
            host,
            kwargs.pop("origin", None),
            kwargs.pop("token", None),
            None,
            lan,
            store,
            open_prefixes=opened,
        )

    assert isinstance(verdict("/api/share/web/abc/start", method="POST"), Principal)
    assert isinstance(verdict("/api/share/web/abc/"), Principal)
    for outside in ("/api/share/web", "/api/share/webx/", "/api/share/", "/api/flags"):
        refused = verdict(outside)
        assert isinstance(refused, Denied) and refused.code == "auth_required", outside
    bad_token = verdict("/api/share/web/abc/", token="cvn_nope")
    assert isinstance(bad_token, Denied) and bad_token.code == "invalid_token"
    reader, _ = store.create(["assets.write"])
    scoped = verdict("/api/share/web/abc/start", method="POST", token=reader)
    assert isinstance(scoped, Denied) and scoped.code == "insufficient_scope"
    cross = verdict("/api/share/web/abc/start", method="POST", origin="https://evil.example")
    assert isinstance(cross, Denied) and cross.code == "origin_refused"


class _Opener:
    @hookimpl
    def server_open_prefixes(self) -> list[Any]:
        return ["/", "/api/", "relative/x/", "/a/b", "/a/../b/", 5, "/api/open/web/"]


def test_hook_server_open_prefixes(server_kernel: Callable[..., Kernel]) -> None:
    kernel = server_kernel()
    kernel.plugins.pm.register(_Opener(), name="opener")
    assert open_prefixes(kernel) == ("/api/open/web/",)


def test_app_refuses_cross_site_and_rebinding_requests(client: TestClient) -> None:
    assert client.get("/api/flags", headers={"Host": "evil.example"}).status_code == 403
    refused = client.post("/api/flags", json={"enable_probe": False}, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "origin_refused"
    same_origin = client.post("/api/flags", json={"enable_probe": False}, headers={"Origin": "http://testserver"})
    assert same_origin.status_code == 200


def test_app_off_loopback_enforces_write_scopes(kernel: Kernel) -> None:
    store = TokenStore(kernel.paths.config / "server_tokens.json")
    flags_token, _ = store.create(["flags.write"])
    modder_token, _ = store.create(["modder.write"])
    app = create_app(kernel, ServerSettings(host="0.0.0.0"))
    with TestClient(app, base_url="http://192.168.1.5:8001") as client:
        assert client.get("/health").status_code == 200
        assert client.get("/api/flags").status_code == 401
        body = {"enable_probe_extra": True}
        wrong = {"Authorization": f"Bearer {modder_token}"}
        right = {"Authorization": f"Bearer {flags_token}"}
        assert client.post("/api/flags", json=body, headers=wrong).status_code == 403
        assert client.post("/api/flags", json=body, headers=right).status_code == 200
        assert kernel.flags.is_enabled("enable_probe_extra")


def test_app_off_loopback_refuses_to_start_without_tokens(kernel: Kernel) -> None:
    app = create_app(kernel, ServerSettings(host="0.0.0.0"))
    with pytest.raises(ComfyVNError, match="no API token"), TestClient(app):
        pass


def test_cli_tokens_create_list_revoke(kernel: Kernel) -> None:
    cli = make_cli(kernel)
    runner = CliRunner()
    created = runner.invoke(
        cli, ["tokens", "create", "--scope", "assets.write", "--scope", "admin", "--name", "ci", "--json"]
    )
    assert created.exit_code == 0, created.output
    data = json.loads(created.output)
    assert data["scopes"] == ["assets.write", "admin"] and data["token"].startswith("cvn_")
    listed = runner.invoke(cli, ["tokens", "list", "--json"])
    rows = json.loads(listed.output)
    assert [r["id"] for r in rows] == [data["id"]] and "token" not in rows[0]
    assert data["token"] not in (kernel.paths.config / "server_tokens.json").read_text()
    assert runner.invoke(cli, ["tokens", "revoke", data["id"]]).exit_code == 0
    again = runner.invoke(cli, ["tokens", "revoke", data["id"]])
    assert again.exit_code == 2 and "no token" in again.output
    bad = runner.invoke(cli, ["tokens", "create", "--scope", "NOT VALID"])
    assert bad.exit_code == 2 and "invalid scope" in bad.output


def test_cli_serve_refuses_off_loopback_without_token(kernel: Kernel) -> None:
    result = CliRunner().invoke(make_cli(kernel), ["serve", "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 2
    assert "no API token exists" in result.output
    assert not (kernel.paths.config / "runtime_state.json").exists()


def test_status_is_readable_with_tokens_from_env_kernel(server_kernel: Callable[..., Kernel]) -> None:
    kernel = server_kernel(env={"COMFYVN_SERVER_HOST": "10.0.0.2"})
    token, _ = TokenStore(kernel.paths.config / "server_tokens.json").create(["admin"])
    with TestClient(create_app(kernel), base_url="http://10.0.0.2:8001") as client:
        assert client.get("/status").status_code == 401
        status = client.get("/status", headers={"Authorization": f"Bearer {token}"}).json()
        assert status["loopback"] is False
