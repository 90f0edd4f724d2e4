"""Where webhooks may point (strict URLs, no SSRF, the allow-list) and delivery isolation (issue 11, items 3/11)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from comfyvn import Kernel
from comfyvn.errors import ComfyVNError, Invalid
from comfyvn_server import ServerSettings, create_app
from comfyvn_server import webhooks as webhooks_module
from comfyvn_server.egress import EgressPolicy, is_public, parse_webhook_url, pinned, system_resolver
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from .conftest import wait_for
from .test_webhooks import Receiver, _dead_url, _status

PUBLIC = "93.184.216.34"
FAST = {"webhook_retries": 2, "webhook_backoff": 0.01, "webhook_timeout": 2.0}


class FakeDNS:
    """Answers for some names (the last answer repeats); other names go to the system resolver."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        if host not in self.answers:
            return await system_resolver(host, port)
        queue = self.answers[host]
        if not queue:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return queue.pop(0) if len(queue) > 1 else queue[0]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def app_for(kernel: Kernel) -> Iterator[Callable[..., TestClient]]:
    """``app_for(dns=None, **settings)``: a started app whose webhook policy uses ``dns``."""
    clients: list[TestClient] = []

    def factory(dns: FakeDNS | None = None, **settings: Any) -> TestClient:
        app = create_app(kernel, ServerSettings(**{**FAST, **settings}))
        if dns is not None:
            app.state.server.dispatcher.policy.resolver = dns
        clients.append(TestClient(app).__enter__())
        return clients[-1]

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


def _register(client: TestClient, url: str, **extra: Any) -> Any:
    return client.post("/api/modder/hooks/webhooks", json={"url": url, "events": ["on_probe"], **extra})


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/a\r\nX-Injected: 1",
        "http://127.0.0.1:9/a\n",
        "http://exa mple.com/",
        "http://example.com/\ta",
        "http://example.com/\x00",
        "http://example.com/\x7f",
        "http://example.com/\u2028",
        "http://example.com/\u200b",
        "http://example.com/\u00a0",
        "http://user:hunter2-password@example.com/",
        "http://:hunter2-password@example.com/",
        "gopher://example.com/",
        "file:///etc/passwd",
        "//example.com/x",
        "http:///x",
        "http://example.com:0/",
        "http://example.com:70000/",
        "http://-bad-.example.com/",
        "http://a..b/",
        "http://2130706433/",
        "http://1.2.3/",
        "http://%41.example.com/",
        "http://[fe80::1%25eth0]/",
        "http://" + "a" * 2100 + ".com/",
        "",
    ],
)
def test_webhook_urls_are_checked_with_a_real_parser(app_for: Callable[..., TestClient], url: str) -> None:
    client = app_for(webhook_allow_hosts=("127.0.0.1",))
    response = _register(client, url)
    error = response.json()["error"]
    assert (response.status_code, error["field"], error["code"]) == (400, "url", "invalid_url"), error
    assert "hunter2" not in response.text and len(response.text) < 1000
    assert client.get("/api/modder/hooks/webhooks").json()["webhooks"] == []


@given(st.text(max_size=60) | st.builds(lambda s: "http://" + s, st.text(max_size=40)))
def test_the_url_parser_returns_a_clean_url_or_raises_invalid(text: str) -> None:
    try:
        url = parse_webhook_url(text)
    except Invalid as exc:
        assert exc.field == "url"
        return
    assert url.scheme in ("http", "https") and url.host and not url.userinfo
    assert not any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.8.9.10",
        "localhost",
        "[::1]",
        "0.0.0.0",
        "[::]",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "[fe80::1]",
        "[fc00::1]",
        "[fd12::1]",
        "224.0.0.1",
        "[ff02::1]",
        "255.255.255.255",
        "[::ffff:127.0.0.1]",
        "[::ffff:169.254.169.254]",
        "[64:ff9b::a9fe:a9fe]",
        "[2002:7f00:1::]",
    ],
)
def test_non_public_destinations_are_refused_by_default(app_for: Callable[..., TestClient], host: str) -> None:
    response = _register(app_for(), f"http://{host}:8080/hook")
    error = response.json()["error"]
    assert (response.status_code, error["field"], error["code"]) == (400, "url", "destination_refused")
    assert "allow_hosts" in error["message"] and host.strip("[]") not in error["message"]


def test_every_address_a_name_resolves_to_is_checked(app_for: Callable[..., TestClient]) -> None:
    dns = FakeDNS(
        {
            "mixed.test": [[PUBLIC, "10.0.0.7"]],
            "metadata.test": [["169.254.169.254"]],
            "public.test": [[PUBLIC, "2606:4700::1"]],
            "nowhere.test": [],
        }
    )
    client = app_for(dns)
    assert _register(client, "http://mixed.test/hook").json()["error"]["code"] == "destination_refused"
    assert _register(client, "http://metadata.test/latest").json()["error"]["code"] == "destination_refused"
    assert _register(client, "http://nowhere.test/hook").json()["error"]["code"] == "unresolvable_host"
    assert _register(client, "https://public.test/hook").status_code == 201
    assert dns.calls == ["mixed.test", "metadata.test", "nowhere.test", "public.test"]


def test_the_allow_list_opens_the_hosts_it_names_and_no_others(app_for: Callable[..., TestClient]) -> None:
    dns = FakeDNS({"hooks.internal": [["192.168.7.7"]], "other.internal": [["192.168.7.7"]]})
    client = app_for(dns, webhook_allow_hosts=("127.0.0.1", "10.0.0.0/8", "hooks.internal"))
    for url in ("http://127.0.0.1:9000/a", "http://10.1.2.3/a", "http://hooks.internal/a"):
        assert _register(client, url).status_code == 201, url
    for url in ("http://127.0.0.2:9000/a", "http://192.168.7.7/a", "http://other.internal/a", "http://[::1]:9/a"):
        assert _register(client, url).json()["error"]["code"] == "destination_refused", url


def test_the_allow_list_is_read_from_comfyvn_json(kernel: Kernel) -> None:
    kernel.paths.config.mkdir(parents=True, exist_ok=True)
    config = {"server": {"webhooks": {"allow_hosts": ["127.0.0.0/8"]}}}
    (kernel.paths.config / "comfyvn.json").write_text(json.dumps(config))
    kernel.flags.refresh()
    with TestClient(create_app(kernel)) as client:
        assert _register(client, "http://127.0.0.9:9000/a").status_code == 201
        assert _register(client, "http://10.0.0.1/a").status_code == 400


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            ["LocalHost.", "10.0.0.0/8", "[::1]", " hooks.example "],
            ("localhost", "10.0.0.0/8", "[::1]", "hooks.example"),
        ),
        ([], ()),
    ],
)
def test_allow_hosts_setting_is_normalised(value: list[str], expected: tuple[str, ...]) -> None:
    settings = ServerSettings.resolve(config={"server": {"webhooks": {"allow_hosts": value}}})
    assert settings.webhook_allow_hosts == expected


@pytest.mark.parametrize(
    "server", [{"webhooks": {"allow_hosts": ["a b"]}}, {"webhooks": {"allow_hosts": "x"}}, {"webhooks": 5}]
)
def test_bad_allow_hosts_settings_are_refused(server: dict[str, Any]) -> None:
    with pytest.raises(ComfyVNError) as info:
        ServerSettings.resolve(config={"server": server})
    assert info.value.field in ("server.webhooks.allow_hosts", "server.webhooks")


def test_the_server_itself_is_refused_even_when_its_host_is_allowed(app_for: Callable[..., TestClient]) -> None:
    client = app_for(port=8001, webhook_allow_hosts=("127.0.0.1", "localhost"))
    for url in ("http://127.0.0.1:8001/api/flags", "http://localhost:8001/api/flags"):
        response = _register(client, url)
        assert response.json()["error"]["code"] == "destination_refused", url
        assert "this server" in response.json()["error"]["message"]
    assert _register(client, "http://127.0.0.1:8002/hook").status_code == 201


def test_a_wildcard_bind_refuses_every_local_address_on_its_port() -> None:
    policy = EgressPolicy(("127.0.0.0/8", "10.0.0.0/8"), "0.0.0.0", 8001)

    async def check(url: str) -> str:
        try:
            await policy.addresses(parse_webhook_url(url))
        except Invalid as exc:
            return exc.code
        return "ok"

    assert anyio.run(check, "http://127.0.0.5:8001/") == "destination_refused"
    assert anyio.run(check, "http://127.0.0.5:8002/") == "ok"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        (PUBLIC, True),
        ("2606:4700::1", True),
        ("::ffff:10.0.0.1", False),
        ("2001:0:4136:e378:8000:63bf:a247:27dd", True),  # Teredo for 93.184.216.34
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo for 192.0.2.45 (documentation)
    ],
)
def test_is_public_judges_embedded_ipv4(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def test_delivery_rechecks_the_address_and_never_connects_to_a_refused_one(
    app_for: Callable[..., TestClient], receiver: Receiver
) -> None:
    # Public at registration, loopback at delivery (DNS rebinding): nothing is sent, nothing is retried,
    # and a listening port and a closed one read the same, so the status probes nothing.
    dead = _dead_url()
    listening_port, dead_port = receiver.url.split(":")[2].split("/")[0], dead.split(":")[2].split("/")[0]
    dns = FakeDNS({"rebind.test": [[PUBLIC], ["127.0.0.1"]], "rebind2.test": [[PUBLIC], ["127.0.0.1"]]})
    client = app_for(dns)
    first = _register(client, f"http://rebind.test:{listening_port}/hook").json()
    second = _register(client, f"http://rebind2.test:{dead_port}/hook").json()
    client.post("/api/probe/burst", json={"n": 1})

    def failed_once(hook_id: str) -> Any:
        return wait_for(lambda: (s := _status(client, hook_id))["failed"] == 1 and s)

    statuses = [failed_once(first["id"]), failed_once(second["id"])]
    assert receiver.requests == []
    for status in statuses:
        assert status["attempts"] == 1 and status["last_status"] is None and status["state"] == "failing"
    assert statuses[0]["last_error"] == statuses[1]["last_error"]
    assert "may not reach" in statuses[0]["last_error"]


def test_delivery_connects_to_the_checked_address_under_the_original_name(
    app_for: Callable[..., TestClient], receiver: Receiver
) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    dns = FakeDNS({"hooks.test": [["127.0.0.1"]]})
    client = app_for(dns, webhook_allow_hosts=("hooks.test",))
    hook = _register(client, f"http://hooks.test:{port}/hook").json()
    client.post("/api/probe/burst", json={"n": 2})
    wait_for(lambda: _status(client, hook["id"])["delivered"] == 2)
    assert [r["headers"]["Host"] for r in receiver.requests] == [f"hooks.test:{port}"] * 2
    assert dns.calls.count("hooks.test") == 3  # at registration and before each delivery


@pytest.mark.parametrize("failure", ["vault", "transport"])
def test_any_failure_of_one_webhook_never_stops_the_others(
    app_for: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    with Receiver() as broken, Receiver() as healthy:
        client = app_for(webhook_allow_hosts=("127.0.0.1",))
        bad = _register(client, broken.url, secret="a-secret-of-16-chars-or-more").json()
        good = _register(client, healthy.url).json()
        if failure == "vault":
            registry = client.app.state.server.webhooks  # type: ignore[attr-defined]
            original_secret = registry.secret

            def secret(hook: Any) -> str | None:
                if hook.id == bad["id"]:
                    raise RuntimeError("vault backend exploded")
                return original_secret(hook)  # type: ignore[no-any-return]

            monkeypatch.setattr(registry, "secret", secret)
        else:
            original_pinned = webhooks_module.pinned

            def pinned(url: httpx.URL, address: Any) -> Any:
                if url.port == httpx.URL(broken.url).port:
                    raise httpx.InvalidURL("Invalid non-printable ASCII character in URL")
                return original_pinned(url, address)

            monkeypatch.setattr(webhooks_module, "pinned", pinned)
        client.post("/api/probe/burst", json={"n": 3})
        wait_for(lambda: len(healthy.requests) == 3)
        status = wait_for(lambda: (s := _status(client, bad["id"]))["failed"] == 3 and s)
        client.post("/api/probe/burst", json={"n": 1})
        wait_for(lambda: len(healthy.requests) == 4)
        assert _status(client, good["id"])["delivered"] == 4
    assert broken.requests == [] and status["state"] == "failing"
    assert status["attempts"] == (0 if failure == "vault" else 3)  # neither is retried
    assert ("RuntimeError" if failure == "vault" else "InvalidURL") in status["last_error"]
    assert "exploded" not in status["last_error"]


def test_damaged_stored_registrations_are_skipped_and_the_rest_deliver(kernel: Kernel, receiver: Receiver) -> None:
    good = {"id": "wh_0123456789ab", "url": receiver.url, "events": [], "hmac": False, "created": 2.0}
    rows = [
        {**good, "id": "wh_aaaaaaaaaaaa", "url": "http://127.0.0.1:9/a\r\nX: 1", "created": 1.0},
        {**good, "id": "wh_bbbbbbbbbbbb", "description": "\ud800"},
        {**good, "id": "wh_cccccccccccc", "events": "on_probe"},
        {**good, "id": "wh_dddddddddddd", "url": "http://user:pw@127.0.0.1:9/"},
        {"id": "wh_eeeeeeeeeeee"},
        "not an object",
        good,
    ]
    path = kernel.paths.config / "plugins" / "server" / "webhooks.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 1, "webhooks": rows}))  # ensure_ascii keeps the surrogate escaped
    settings = ServerSettings(webhook_allow_hosts=("127.0.0.1",), **FAST)
    with TestClient(create_app(kernel, settings)) as client:
        assert [h["id"] for h in client.get("/api/modder/hooks/webhooks").json()["webhooks"]] == [good["id"]]
        client.post("/api/modder/hooks/test", json={"message": "after restart"})
        wait_for(lambda: any(b"after restart" in r["body"] for r in receiver.requests))
        assert client.get("/api/modder/hooks").status_code == 200


def _self_signed(tmp_path: Path, name: str) -> tuple[str, str]:
    """A certificate for ``name`` (its own CA) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_file), str(key_file)


def test_a_pinned_https_request_still_verifies_the_certificate_for_the_name(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path, "hooks.test")
    with Receiver() as server:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
        port = server.server.server_address[1]
        trust = ssl.create_default_context(cafile=cert)

        async def post(name: str) -> int:
            url = parse_webhook_url(f"https://{name}:{port}/hook")
            target, host, extensions = pinned(url, ipaddress.ip_address("127.0.0.1"))
            async with httpx.AsyncClient(verify=trust, timeout=5) as client:
                response = await client.post(target, content=b"{}", headers=host, extensions=extensions)
                return response.status_code

        assert anyio.run(post, "hooks.test") == 200
        assert server.requests[0]["headers"]["Host"] == f"hooks.test:{port}"
        with pytest.raises(httpx.ConnectError, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
            anyio.run(post, "other.test")  # a certificate for another name is still refused
