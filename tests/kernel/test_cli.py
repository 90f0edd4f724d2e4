from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click
import pytest
from click.testing import CliRunner
from comfyvn import ComfyVNError, Kernel, hookimpl
from comfyvn.cli import make_cli
from comfyvn.errors import Blocked, Invalid, NotFound, OperationFailed, UpstreamError


class Flags:
    @hookimpl
    def register_flags(self, register: Any) -> None:
        register("enable_weather_planner", True, "Weather.")


def run(kernel: Kernel, *args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(make_cli(kernel), list(args), input=input)


def test_version(make_kernel: Callable[..., Kernel]) -> None:
    result = run(make_kernel(), "--version")
    assert result.exit_code == 0 and result.output.startswith("comfyvn, version ")


def test_flags_commands(make_kernel: Callable[..., Kernel]) -> None:
    kernel = make_kernel(Flags())
    assert run(kernel, "flags", "set", "enable_weather_planner", "off").output == "enable_weather_planner off\n"
    listed = json.loads(run(kernel, "flags", "list", "--json").output)
    assert listed["flags"][0]["name"] == "enable_weather_planner" and listed["flags"][0]["value"] is False
    assert json.loads(run(kernel, "flags", "get", "enable_weather_planner", "--json").output)["source"] == "file"


def test_bad_input_exits_2_with_one_line(make_kernel: Callable[..., Kernel]) -> None:
    kernel = make_kernel(Flags())
    result = run(kernel, "flags", "set", "enable_weather_planner", "perhaps")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: expected a boolean (on/off, true/false, 1/0), got 'perhaps' (field: value)"
    ]
    missing = run(kernel, "flags", "get", "enable_nothing")
    assert missing.exit_code == 2 and missing.output.startswith("error: unknown feature flag")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (Blocked("export blocked by the rating gate", code="export_blocked"), 3),
        (OperationFailed("the engine failed"), 1),
        (UpstreamError("the LLM answered nonsense"), 1),
        (NotFound("no such project"), 2),
        (Invalid("bad --stats"), 2),
        (ComfyVNError("a plain mistake"), 2),
    ],
)
def test_the_exit_code_table_maps_error_classes(
    make_kernel: Callable[..., Kernel], error: ComfyVNError, code: int
) -> None:
    class Gate:
        @hookimpl
        def register_commands(self, cli: click.Group) -> None:
            @cli.command("fail")
            def fail() -> None:
                raise error

    result = run(make_kernel(Gate()), "fail")
    assert result.exit_code == code and result.output == f"error: {error.message}\n"


def test_an_error_quoting_a_huge_input_prints_one_short_line(make_kernel: Callable[..., Kernel]) -> None:
    result = run(make_kernel(), "flags", "get", "x" * 100_000)
    assert result.exit_code == 2 and result.output.startswith("error: ") and len(result.output) < 1_000


def test_secrets_commands_never_print_values_unless_revealed(make_kernel: Callable[..., Kernel]) -> None:
    kernel = make_kernel()
    assert run(kernel, "secrets", "set", "openai", "api_key", input="sk-hidden\n").exit_code == 0
    assert run(kernel, "secrets", "set", "comfyui", "token", "--stdin", input="tok\n").exit_code == 0
    shown = run(kernel, "secrets", "get", "openai", "api_key")
    assert "sk-hidden" not in shown.output and "is set (9 characters)" in shown.output
    assert run(kernel, "secrets", "get", "openai", "api_key", "--reveal").output == "sk-hidden\n"
    listed = json.loads(run(kernel, "secrets", "list", "--json").output)
    assert listed == [
        {"provider": "comfyui", "field": "token", "source": "vault"},
        {"provider": "openai", "field": "api_key", "source": "vault"},
    ]
    assert "rotated (keyfile): 2 secrets" in run(kernel, "secrets", "rotate").output
    assert run(kernel, "secrets", "get", "comfyui", "token", "--reveal").output == "tok\n"
    assert run(kernel, "secrets", "delete", "openai", "api_key").exit_code == 0
    gone = run(kernel, "secrets", "delete", "openai", "api_key")
    assert gone.exit_code == 2 and "no secret openai.api_key" in gone.output


def test_paths_json(make_kernel: Callable[..., Kernel]) -> None:
    kernel = make_kernel()
    assert json.loads(run(kernel, "paths", "--json").output) == kernel.paths.as_dict()


def test_plugins_listing_text(make_kernel: Callable[..., Kernel]) -> None:
    output = run(make_kernel(Flags()), "plugins", "--all").output
    assert output.splitlines()[0].startswith("comfyvn") and "flags" in output
