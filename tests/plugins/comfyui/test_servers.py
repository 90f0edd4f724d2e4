"""Which ComfyUI servers are configured and which one a render tries first: URL checks, the environment and
the config file, tokens in the vault (never anywhere else), the pool's order."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from comfyvn import Kernel
from comfyvn.errors import ComfyVNError, Conflict, Invalid, NotFound, Unprocessable
from comfyvn_comfyui import servers as servers_module
from comfyvn_comfyui.servers import SERVERS_ENV, Server, ServerPool, ServerSettings, check_url
from hypothesis import given
from hypothesis import strategies as st

TOKEN = "tok-0123456789abcdefSECRET"


# -- check_url ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_url", "clean"),
    [
        ("http://127.0.0.1:8188", "http://127.0.0.1:8188"),
        ("  http://gpu-1:8188/  ", "http://gpu-1:8188"),
        ("HTTP://GPU-1.Example.ORG:8188", "http://gpu-1.example.org:8188"),
        ("https://comfy.example.org/", "https://comfy.example.org"),
        ("https://comfy.example.org/comfy/", "https://comfy.example.org/comfy"),
        ("http://[::1]:8188/", "http://[::1]:8188"),
        ("http://[FE80::1]", "http://[fe80::1]"),
        ("http://gpu-1:08188", "http://gpu-1:8188"),
        ("http://@gpu-1:8188", "http://gpu-1:8188"),  # an empty user part is no credential
    ],
)
def test_check_url_normalises(given_url: str, clean: str) -> None:
    assert check_url(given_url) == clean
    assert check_url(clean) == clean


@pytest.mark.parametrize(
    "bad",
    [
        "ftp://gpu-1:8188",
        "file:///etc/passwd",
        "ws://gpu-1:8188",
        "gpu-1:8188",
        "//gpu-1:8188",
        "http://",
        "http://:8188",
        "http://gpu-1:99999",
        "http://gpu-1:port",
        "http://[::1",
        "http://user:pw@gpu-1:8188",
        "http://user@gpu-1:8188",
        "http://gpu-1:8188/?token=abc",
        "http://gpu-1:8188/#frag",
        "",
        "   ",
        "http://" + "a" * 2100,
    ],
)
def test_check_url_refuses(bad: str) -> None:
    with pytest.raises(Invalid) as caught:
        check_url(bad, "where")
    assert caught.value.field == "where"
    assert "pw" not in caught.value.message  # a URL's password is never quoted back


@pytest.mark.parametrize("bad", [None, 8188, ["http://a"], {"url": "http://a"}])
def test_check_url_refuses_what_is_not_text(bad: Any) -> None:
    with pytest.raises(Invalid):
        check_url(bad)


_URLISH = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda scheme, middle, tail: f"{scheme}{middle}{tail}",
        st.sampled_from(["http://", "https://", "HTTP://", "ftp://", "", "http:/", "http://["]),
        st.text(alphabet="ab1:.@[]%/?#-_ \t\n\x00é", max_size=30),
        st.text(max_size=10),
    ),
)


@given(_URLISH)
def test_check_url_never_crashes_and_its_answer_is_clean(value: str) -> None:
    try:
        clean = check_url(value)
    except Invalid:
        return
    assert clean.startswith(("http://", "https://"))
    assert "@" not in clean.split("/", 3)[2] and "?" not in clean and "#" not in clean
    assert not clean.endswith("/") and clean == clean.strip()
    assert check_url(clean) == clean  # normalised: a second pass changes nothing


# -- ServerSettings ----------------------------------------------------------------------------------------------


@pytest.fixture
def settings_for(make_kernel: Callable[..., Kernel]) -> Callable[..., ServerSettings]:
    def factory(env: dict[str, str] | None = None) -> ServerSettings:
        return ServerSettings(make_kernel(env=env))

    return factory


def test_nothing_configured(settings_for: Callable[..., ServerSettings]) -> None:
    settings = settings_for()
    assert settings.servers() == []
    assert not settings.file.exists()


def test_environment_first_then_the_config_file(settings_for: Callable[..., ServerSettings]) -> None:
    settings = settings_for({SERVERS_ENV: " http://gpu-1:8188/ ,, http://[::1]:8189,"})
    added = settings.add("http://gpu-3:8188", name="big")
    assert added == Server("big", "http://gpu-3:8188", "config")
    settings.add("http://gpu-1:8188", name="dup-of-env")  # the file may name an env URL: it is listed once
    assert settings.servers() == [
        Server("env-1", "http://gpu-1:8188", "env"),
        Server("env-2", "http://[::1]:8189", "env"),
        Server("big", "http://gpu-3:8188", "config"),
    ]
    assert settings.get("env-2").url == "http://[::1]:8189"
    with pytest.raises(NotFound):
        settings.get("nope")
    assert json.loads(settings.file.read_text()) == {
        "servers": [{"name": "big", "url": "http://gpu-3:8188"}, {"name": "dup-of-env", "url": "http://gpu-1:8188"}]
    }


def test_a_bad_environment_url_is_refused(settings_for: Callable[..., ServerSettings]) -> None:
    settings = settings_for({SERVERS_ENV: "http://ok:1,ftp://nope"})
    with pytest.raises(Invalid) as caught:
        settings.servers()
    assert caught.value.field == SERVERS_ENV


def test_add_and_remove(settings_for: Callable[..., ServerSettings]) -> None:
    settings = settings_for()
    first = settings.add("http://gpu-1:8188/")
    second = settings.add("http://gpu-2:8188")
    assert (first.name, first.url, second.name) == ("comfyui-1", "http://gpu-1:8188", "comfyui-2")
    settings.remove("comfyui-1")
    assert settings.add("http://gpu-9:8188").name == "comfyui-1"  # a free name is reused
    assert [s.name for s in settings.servers()] == ["comfyui-2", "comfyui-1"]
    with pytest.raises(NotFound) as caught:
        settings.remove("comfyui-7")
    assert caught.value.code == "server_not_found"


def test_duplicate_url_or_name_is_a_conflict(settings_for: Callable[..., ServerSettings]) -> None:
    settings = settings_for()
    settings.add("http://gpu-1:8188", name="one")
    with pytest.raises(Conflict) as by_url:
        settings.add("HTTP://GPU-1:8188/", name="two")  # the same server, spelled differently
    assert (by_url.value.field, by_url.value.code) == ("url", "server_exists")
    with pytest.raises(Conflict) as by_name:
        settings.add("http://gpu-2:8188", name="one")
    assert by_name.value.field == "name"
    assert [s.name for s in settings.servers()] == ["one"]


@pytest.mark.parametrize("name", ["", "UPPER", "env-1", "a" * 33, "has space", "../x", "-lead"])
def test_a_bad_name_is_refused(settings_for: Callable[..., ServerSettings], name: str) -> None:
    settings = settings_for()
    with pytest.raises(Invalid) as caught:
        settings.add("http://gpu-1:8188", name=name)
    assert caught.value.field == "name"
    assert not settings.file.exists()


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"servers": {}}',
        '{"servers": [{"url": "http://a:1"}]}',
        '{"servers": [{"name": "ok", "url": "ftp://a"}]}',
        '{"servers": [{"name": "ok"}]}',
    ],
)
def test_a_bad_config_file_is_unprocessable_and_named(
    settings_for: Callable[..., ServerSettings], content: str
) -> None:
    settings = settings_for()
    settings.file.parent.mkdir(parents=True, exist_ok=True)
    settings.file.write_text(content)
    for action in (settings.servers, lambda: settings.add("http://gpu-1:8188")):
        with pytest.raises(Unprocessable) as caught:
            action()
        assert "comfyui_servers.json" in caught.value.message + str(caught.value.field)
        assert str(settings.file.parent) not in caught.value.message
    assert settings.file.read_text() == content  # nothing was overwritten


def test_an_unreadable_config_file_is_unprocessable(settings_for: Callable[..., ServerSettings]) -> None:
    settings = settings_for()
    settings.file.mkdir(parents=True)  # a folder where the file should be
    with pytest.raises(Unprocessable) as caught:
        settings.servers()
    assert "comfyui_servers.json" in caught.value.message and str(settings.file) not in caught.value.message


def _everything_under(root: Path) -> str:
    return "\n".join(p.read_bytes().decode("latin-1") for p in root.rglob("*") if p.is_file())


def test_a_token_lives_in_the_vault_only(
    settings_for: Callable[..., ServerSettings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = settings_for()
    kernel = settings.kernel
    server = settings.add("http://gpu-1:8188", name="locked", token=TOKEN)
    assert kernel.secrets.get("comfyui", "locked") == TOKEN
    assert settings.token(server) == TOKEN
    assert settings.token(settings.add("http://gpu-2:8188", name="open")) is None
    listed = [s.to_wire(has_token=settings.token(s) is not None) for s in settings.servers()]
    assert [(row["name"], row["token"]) for row in listed] == [("locked", True), ("open", False)]
    with pytest.raises(Conflict) as caught:
        settings.add("http://gpu-1:8188", name="again", token=TOKEN)
    assert TOKEN not in caught.value.message
    root = Path(kernel.paths.config).parent
    assert TOKEN not in _everything_under(root) + json.dumps(listed) + caplog.text
    assert TOKEN not in settings.file.read_text()
    settings.remove("locked")
    assert kernel.secrets.get("comfyui", "locked") is None


@pytest.mark.parametrize("token", ["tök-en", "two words", "line\nbreak", "tab\there"])
def test_a_token_that_cannot_be_a_header_is_refused_without_echoing_it(
    settings_for: Callable[..., ServerSettings], token: str
) -> None:
    settings = settings_for()
    with pytest.raises(Invalid) as caught:
        settings.add("http://gpu-1:8188", name="locked", token=token)
    assert caught.value.field == "token" and token not in caught.value.message
    assert settings.servers() == [] and settings.kernel.secrets.get("comfyui", "locked") is None


def test_an_environment_token_overrides_the_vault(settings_for: Callable[..., ServerSettings]) -> None:
    settings = settings_for({SERVERS_ENV: "http://gpu-1:8188", "COMFYVN_SECRET_COMFYUI_ENV_1": TOKEN})
    assert settings.token(settings.get("env-1")) == TOKEN


# -- ServerPool --------------------------------------------------------------------------------------------------

A, B, C = (Server(n, f"http://{n}:8188", "config") for n in ("a", "b", "c"))


def test_the_least_busy_server_goes_first() -> None:
    pool = ServerPool()
    pool.acquire(A)
    pool.acquire(A)
    pool.acquire(B)
    for _ in range(4):  # whatever the turn
        assert pool.order([A, B, C]) == [C, B, A]
    pool.release(A)
    pool.release(A)
    assert pool.order([A, B, C])[-1] == B


def test_round_robin_spreads_successive_calls() -> None:
    pool = ServerPool()
    firsts = [pool.order([A, B, C])[0] for _ in range(6)]
    assert set(firsts) == {A, B, C}
    assert all(firsts[n] != firsts[n + 1] for n in range(5))
    assert all(sorted(pool.order([A, B, C]), key=lambda s: s.name) == [A, B, C] for _ in range(3))


def test_a_failed_server_goes_last_until_it_cools_down(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(servers_module.time, "monotonic", lambda: clock[0])
    pool = ServerPool()
    pool.acquire(A)
    pool.release(A, failed=True)
    pool.acquire(B)  # busy, but not failed: still before A
    for _ in range(4):
        assert pool.order([A, B, C])[-1] == A
    clock[0] += servers_module.COOL_DOWN - 1
    assert pool.order([A, B, C])[-1] == A
    clock[0] += 2
    orders = [pool.order([A, B, C]) for _ in range(3)]
    assert any(order[0] == A for order in orders)  # cooled down: A takes its turn again
    pool.release(B)
    pool.acquire(C)
    pool.release(C, failed=True)
    pool.acquire(C)
    pool.release(C)  # a success clears the failure at once
    assert any(pool.order([A, B, C])[0] == C for _ in range(3))


def test_a_pool_with_no_servers_orders_nothing() -> None:
    assert ServerPool().order([]) == []


def test_release_never_goes_below_zero() -> None:
    pool = ServerPool()
    pool.release(A)
    pool.acquire(B)
    assert pool.order([A, B])[0] == A


def test_errors_of_settings_are_comfyvn_errors(settings_for: Callable[..., ServerSettings]) -> None:
    with pytest.raises(ComfyVNError):
        settings_for().add("nope")
