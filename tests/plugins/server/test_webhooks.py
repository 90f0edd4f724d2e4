"""Webhooks: registration, Ed25519 signatures checked by a real loopback receiver, HMAC, retries, status.

The receivers listen on 127.0.0.1, which webhooks may only reach once the allow-list opens it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from comfyvn import Kernel
from comfyvn_server import ServerSettings, create_app
from comfyvn_server.signing import VAULT_FIELD, VAULT_PROVIDER, verify_signature
from starlette.testclient import TestClient

from .conftest import wait_for


class Receiver:
    """A tiny real HTTP server on loopback that records deliveries and answers a chosen status."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.requests.append({"headers": dict(self.headers), "body": body})
                self.send_response(owner.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def fast_client(kernel: Kernel) -> Iterator[TestClient]:
    settings = ServerSettings(
        webhook_retries=2, webhook_backoff=0.01, webhook_timeout=2.0, webhook_allow_hosts=("127.0.0.1",)
    )
    with TestClient(create_app(kernel, settings)) as client:
        yield client


def _status(client: TestClient, hook_id: str) -> dict[str, Any]:
    hooks = {h["id"]: h for h in client.get("/api/modder/hooks/webhooks").json()["webhooks"]}
    status: dict[str, Any] = hooks[hook_id]["status"]
    return status


def test_deliveries_verify_with_only_the_public_key(fast_client: TestClient, receiver: Receiver) -> None:
    public_key = fast_client.get("/api/modder/hooks/pubkey").json()["public_key"]
    hook = fast_client.post("/api/modder/hooks/webhooks", json={"url": receiver.url, "events": ["on_probe"]}).json()
    fast_client.post("/api/modder/hooks/test", json={})  # not subscribed
    fast_client.post("/api/probe/burst", json={"n": 3})
    wait_for(lambda: len(receiver.requests) >= 3)
    bodies = []
    for request in receiver.requests:
        headers = request["headers"]
        assert verify_signature(
            public_key, headers["X-ComfyVN-Timestamp"], request["body"], headers["X-ComfyVN-Signature"]
        )
        tampered = request["body"].replace(b'"n":', b'"n": ')
        assert not verify_signature(
            public_key, headers["X-ComfyVN-Timestamp"], tampered, headers["X-ComfyVN-Signature"]
        )
        assert not verify_signature(
            public_key, str(int(headers["X-ComfyVN-Timestamp"]) + 1), request["body"], headers["X-ComfyVN-Signature"]
        )
        assert headers["X-ComfyVN-Event"] == "on_probe" and headers["X-ComfyVN-Webhook-Id"] == hook["id"]
        assert "X-ComfyVN-Signature-HMAC" not in headers
        bodies.append(json.loads(request["body"]))
    assert [b["payload"]["n"] for b in bodies] == [0, 1, 2]
    assert all(b["topic"] == "modder.on_probe" for b in bodies)
    status = wait_for(lambda: (s := _status(fast_client, hook["id"]))["delivered"] == 3 and s)
    assert status["state"] == "ok" and status["last_status"] == 200 and status["failed"] == 0


def test_legacy_hmac_is_added_and_the_secret_never_shown(
    kernel: Kernel, fast_client: TestClient, receiver: Receiver
) -> None:
    secret = "s3cret-shared-key-123"
    hook = fast_client.post("/api/modder/hooks/webhooks", json={"url": receiver.url, "secret": secret}).json()
    assert hook["hmac"] is True and secret not in json.dumps(hook)
    fast_client.post("/api/modder/hooks/test", json={"message": "hmac"})
    request = wait_for(lambda: next((r for r in receiver.requests if b'"hmac"' in r["body"]), None))
    headers = request["headers"]
    message = headers["X-ComfyVN-Timestamp"].encode() + b"." + request["body"]
    expected = "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    assert headers["X-ComfyVN-Signature-HMAC"] == expected
    for path in ("/api/modder/hooks", "/api/modder/hooks/webhooks"):
        assert secret not in fast_client.get(path).text
    assert secret not in (kernel.paths.config / "plugins" / "server" / "webhooks.json").read_text()
    assert kernel.secrets.get(VAULT_PROVIDER, f"webhook-{hook['id']}-hmac") == secret


def _dead_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connections are refused
    return f"http://127.0.0.1:{port}/hook"


def test_receiver_down_is_retried_and_the_failure_shows(fast_client: TestClient) -> None:
    hook = fast_client.post("/api/modder/hooks/webhooks", json={"url": _dead_url(), "events": ["on_probe"]}).json()
    fast_client.post("/api/probe/burst", json={"n": 1})
    status = wait_for(lambda: (s := _status(fast_client, hook["id"]))["failed"] == 1 and s)
    assert status["attempts"] == 3  # the first try and two retries
    assert status["state"] == "failing" and status["last_status"] is None
    assert "Connect" in status["last_error"]
    assert status["delivered"] == 0


def test_server_errors_are_retried_but_client_errors_are_not(fast_client: TestClient) -> None:
    with Receiver(status=503) as flaky, Receiver(status=400) as rejecting:
        first = fast_client.post("/api/modder/hooks/webhooks", json={"url": flaky.url, "events": ["on_probe"]}).json()
        second = fast_client.post(
            "/api/modder/hooks/webhooks", json={"url": rejecting.url, "events": ["on_probe"]}
        ).json()
        fast_client.post("/api/probe/burst", json={"n": 1})
        flaky_status = wait_for(lambda: (s := _status(fast_client, first["id"]))["failed"] == 1 and s)
        rejected_status = wait_for(lambda: (s := _status(fast_client, second["id"]))["failed"] == 1 and s)
        assert len(flaky.requests) == 3 and flaky_status["last_status"] == 503
        assert len(rejecting.requests) == 1 and rejected_status["attempts"] == 1
        assert rejected_status["last_error"] == "receiver answered HTTP 400"


def test_registration_validation_and_deletion(fast_client: TestClient, receiver: Receiver) -> None:
    post = fast_client.post
    bad = [
        ({"url": "ftp://x"}, 400, "url"),
        ({"url": "not a url"}, 400, "url"),
        ({"events": []}, 400, "url"),
        ({"url": receiver.url, "events": ["nope"]}, 400, "events[0]"),
        ({"url": receiver.url, "events": "on_probe"}, 400, "events"),
        ({"url": receiver.url, "secret": "short"}, 400, "secret"),
        ({"url": receiver.url, "extra": 1}, 400, "extra"),
    ]
    for body, status, field in bad:
        response = post("/api/modder/hooks/webhooks", json=body)
        assert (response.status_code, response.json()["error"]["field"]) == (status, field), body
    created = post("/api/modder/hooks/webhooks", json={"url": receiver.url, "events": ["on_probe"]})
    assert created.status_code == 201
    duplicate = post("/api/modder/hooks/webhooks", json={"url": receiver.url, "events": ["on_probe"]})
    assert duplicate.status_code == 409
    other = post("/api/modder/hooks/webhooks", json={"url": receiver.url + "2"}).json()
    assert fast_client.request("DELETE", "/api/modder/hooks/webhooks", json={"url": receiver.url}).status_code == 200
    assert fast_client.delete(f"/api/modder/hooks/webhooks/{other['id']}").status_code == 200
    assert fast_client.delete(f"/api/modder/hooks/webhooks/{other['id']}").status_code == 404
    assert fast_client.request("DELETE", "/api/modder/hooks/webhooks", json={}).status_code == 400
    assert fast_client.get("/api/modder/hooks/webhooks").json()["webhooks"] == []


def test_registrations_and_signing_key_survive_a_restart(kernel: Kernel, receiver: Receiver) -> None:
    # The allow-list as a user writes it: server.webhooks.allow_hosts in comfyvn.json.
    kernel.paths.config.mkdir(parents=True, exist_ok=True)
    (kernel.paths.config / "comfyvn.json").write_text(
        json.dumps({"server": {"webhooks": {"allow_hosts": ["127.0.0.1"]}}})
    )
    kernel.flags.refresh()
    with TestClient(create_app(kernel)) as client:
        key = client.get("/api/modder/hooks/pubkey").json()["public_key"]
        hook = client.post("/api/modder/hooks/webhooks", json={"url": receiver.url}).json()
    with TestClient(create_app(kernel)) as client:
        assert client.get("/api/modder/hooks/pubkey").json()["public_key"] == key
        assert [h["id"] for h in client.get("/api/modder/hooks/webhooks").json()["webhooks"]] == [hook["id"]]
    assert kernel.secrets.get(VAULT_PROVIDER, VAULT_FIELD) is not None


def test_locked_vault_means_unsigned_is_never_sent(server_kernel: Any, receiver: Receiver) -> None:
    # A passphrase vault without its passphrase cannot give the signing key: nothing is delivered.
    seed_kernel = server_kernel(env={"COMFYVN_SECRETS_KEY": "passphrase"})
    seed_kernel.secrets.set("other", "field", "value")
    kernel = server_kernel(env={})
    settings = ServerSettings(webhook_retries=0, webhook_allow_hosts=("127.0.0.1",))
    with TestClient(create_app(kernel, settings)) as client:
        assert client.get("/api/modder/hooks/pubkey").status_code == 503
        hook = client.post("/api/modder/hooks/webhooks", json={"url": receiver.url}).json()
        client.post("/api/modder/hooks/test", json={})
        status = wait_for(lambda: (s := _status(client, hook["id"]))["state"] == "unsigned" and s)
    assert status["failed"] >= 1 and receiver.requests == []
