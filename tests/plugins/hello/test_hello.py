from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import comfyvn_hello.plugin
from click.testing import CliRunner
from comfyvn import ComfyVNError, Kernel
from comfyvn.cli import make_cli
from comfyvn_hello.greeting import greet
from hypothesis import given
from hypothesis import strategies as st


@given(st.text(max_size=100))
def test_greet_accepts_names_or_refuses_with_the_field(name: str) -> None:
    try:
        text = greet(name)
    except ComfyVNError as exc:
        assert exc.field == "name" and (not name.strip() or len(name.strip()) > 80)
    else:
        assert text == f"Hello, {name.strip()}!"


def test_command_flag_and_event(make_kernel: Callable[..., Kernel]) -> None:
    kernel = make_kernel(comfyvn_hello.plugin)
    cli = make_cli(kernel)
    assert CliRunner().invoke(cli, ["hello", "greet", "Ada"]).output == "Hello, Ada!\n"
    kernel.flags.set("enable_hello_shout", True)
    assert CliRunner().invoke(cli, ["hello", "greet", "Ada"]).output == "HELLO, ADA!\n"
    greeted = kernel.events.history(event="hello.greeted")
    assert [e.payload["text"] for e in greeted] == ["Hello, Ada!", "HELLO, ADA!"]
    bad = CliRunner().invoke(cli, ["hello", "greet", "   "])
    assert bad.exit_code == 2 and bad.output == "error: name must not be empty (field: name)\n"


def test_route_answers_with_the_greeting(make_kernel: Callable[..., Kernel]) -> None:
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    kernel = make_kernel(comfyvn_hello.plugin)
    routes = [route for _, route in kernel.routes()]
    with TestClient(Starlette(routes=routes)) as client:
        assert client.get("/api/hello/Ada").json() == {"text": "Hello, Ada!"}
    assert kernel.events.history()[-1].payload == {"name": "Ada", "text": "Hello, Ada!"}


def test_blocking_the_plugin_removes_its_command(tmp_path: Path) -> None:
    from comfyvn import RuntimePaths, create_kernel

    kernel = create_kernel(paths=RuntimePaths.under(str(tmp_path)), env={"COMFYVN_DISABLE_PLUGINS": "hello"})
    assert "hello" not in make_cli(kernel).commands
    assert kernel.plugins.records["hello"].status == "blocked"
