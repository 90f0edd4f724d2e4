"""A rating block's way out works from every narrator and llm command: the blocked message names ``--gate``, the
command takes it, and acknowledging then repeating with it passes (no new token each time, no structlog line)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import comfyvn_battle.plugin
import comfyvn_rating.plugin
import comfyvn_scenario.plugin
import pytest
from click.testing import CliRunner, Result
from comfyvn import Kernel
from comfyvn.cli import make_cli

_TOKEN = re.compile(r"comfyvn rating ack ([0-9a-f]{32})`")


def _run(kernel: Kernel, *args: str) -> Result:
    return CliRunner().invoke(make_cli(kernel), list(args), obj=kernel)


def _gated(narrator_kernel: Callable[..., Kernel]) -> Kernel:
    return narrator_kernel(comfyvn_scenario.plugin, comfyvn_rating.plugin, comfyvn_battle.plugin)


def _blocked_token(result: Result) -> tuple[str, list[str]]:
    """The token of a blocked command and the ``--gate`` arguments its message says to repeat with."""
    assert result.exit_code == 3, result.output
    line = result.stderr.strip()
    assert line.count("\n") == 0 and line.startswith("error: LLM call blocked by ") and "rated M" in line, line
    match = _TOKEN.search(line)
    assert match is not None, line
    token = match.group(1)
    named = re.findall(r"--gate (\S+)", line)
    assert named == [f"rating_ack_token={token}", "rating_acknowledged=true"], line
    return token, [arg for pair in named for arg in ("--gate", pair)]


@pytest.mark.parametrize(
    "command",
    [
        ("narrator", "propose", "s9", "--node", "n1", "-m", "he draws a weapon"),
        ("narrator", "chat", "s9", "he draws a weapon", "--node", "n1"),
        ("llm", "test", "he draws a weapon"),
        ("llm", "chat", "offline", "he draws a weapon"),
    ],
)
def test_ack_then_the_named_gate_options_pass(
    narrator_kernel: Callable[..., Kernel], command: tuple[str, ...], caplog: pytest.LogCaptureFixture
) -> None:
    kernel = _gated(narrator_kernel)
    with caplog.at_level(logging.DEBUG):
        token, gate = _blocked_token(_run(kernel, *command))
    # A block is policy, not a fault: below the console's WARNING level, so a CLI user sees only the error line.
    blocked_logs = [r for r in caplog.records if "llm.blocked" in r.getMessage()]
    assert blocked_logs and all(r.levelno < logging.WARNING for r in blocked_logs)
    # Repeating without the options asks again with the same token, not a fresh one each time.
    assert _blocked_token(_run(kernel, *command))[0] == token
    acked = _run(kernel, "rating", "ack", token, "--user", "ana")
    assert acked.exit_code == 0, acked.output
    passed = _run(kernel, *command, *gate)
    assert passed.exit_code == 0, passed.output
    assert passed.stdout.strip()


def test_pov_rewrite_and_battle_take_the_same_option(narrator_kernel: Callable[..., Kernel]) -> None:
    kernel = _gated(narrator_kernel)
    for command in (("narrator", "pov-rewrite"), ("battle", "sim"), ("battle", "resolve")):
        helped = _run(kernel, *command, "--help")
        assert helped.exit_code == 0 and "--gate KEY=VALUE" in helped.stdout, command
    bad = _run(kernel, "narrator", "propose", "s9", "--node", "n1", "--gate", "novalue")
    assert bad.exit_code == 2 and "--gate expects KEY=VALUE" in bad.stderr
