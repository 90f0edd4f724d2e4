"""Battle narration and the rating gate: the gate judges the story (names, outcome), not the roll sheet's keys
(``weapon_tier``); a real block is a warning with the way out and no traceback; the CLI and REST take a gate."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import comfyvn_battle.plugin
import comfyvn_narrator.plugin
import comfyvn_rating.plugin
import comfyvn_scenario.plugin
import pytest
from click.testing import CliRunner, Result
from comfyvn import Kernel
from comfyvn.cli import make_cli

from . import model_help

offline_kernel = model_help.offline_kernel

ARMED = {"a": {"base": 1, "weapon_tier": 3}, "b": 2}


def _run(kernel: Kernel, *args: str) -> Result:
    return CliRunner().invoke(make_cli(kernel), ["battle", *args], obj=kernel)


def _kernel(offline_kernel: Callable[..., Kernel]) -> Kernel:
    return offline_kernel(
        comfyvn_scenario.plugin, comfyvn_rating.plugin, comfyvn_battle.plugin, comfyvn_narrator.plugin
    )


def _narration(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    narration: dict[str, Any] = json.loads(result.stdout)["narration"]
    return narration


@pytest.mark.parametrize(
    "command",
    [
        ("sim", "--stats", json.dumps(ARMED), "--seed", "9", "--narrate", "--json"),
        ("resolve", "b", "--stats", json.dumps(ARMED), "--seed", "9", "--json"),
    ],
)
def test_the_roll_sheet_keys_do_not_rate_the_narration(
    offline_kernel: Callable[..., Kernel], command: tuple[str, ...], caplog: pytest.LogCaptureFixture
) -> None:
    kernel = _kernel(offline_kernel)
    with caplog.at_level(logging.INFO):
        result = _run(kernel, *command)
    narration = _narration(result)
    assert "warnings" not in narration and "gate" not in narration, narration.get("warnings")
    # The narrator answered (offline): what docs/narrator.md says, adapter included.
    assert (narration["adapter"], narration["source"]) == ("offline", "template")
    assert result.stderr == ""
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_blocked_narration_says_how_to_go_on_and_passes_with_the_gate(
    offline_kernel: Callable[..., Kernel], caplog: pytest.LogCaptureFixture
) -> None:
    kernel = _kernel(offline_kernel)
    stats = json.dumps({"weapon": 1, "b": 2})  # a name is story text: this one rates M
    with caplog.at_level(logging.INFO):
        plain = _run(kernel, "sim", "--stats", stats, "--seed", "9", "--narrate")
    assert plain.exit_code == 0, plain.output
    assert "Traceback" not in plain.stderr and plain.stderr.startswith("warning: template used: the content-rating")
    # An expected block is no error in the log: no traceback, nothing at ERROR.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    narration = _narration(_run(kernel, "sim", "--stats", stats, "--seed", "9", "--narrate", "--json"))
    token = narration["gate"]["ack_token"]
    assert narration["source"] == "template" and narration["adapter"] is None
    assert narration["gate"] == {"blocked": True, "code": "llm_blocked", "ack_token": token}
    warning = narration["warnings"][0]
    assert warning.startswith("template used: the content-rating gate refused the narration: ")
    assert f"comfyvn rating ack {token}" in warning and f"--gate rating_ack_token={token}" in warning
    assert CliRunner().invoke(make_cli(kernel), ["rating", "ack", token], obj=kernel).exit_code == 0
    gate = ("--gate", f"rating_ack_token={token}", "--gate", "rating_acknowledged=true")
    passed = _narration(_run(kernel, "sim", "--stats", stats, "--seed", "9", "--narrate", "--json", *gate))
    assert "warnings" not in passed and passed["adapter"] == "offline"
    resolved = _narration(_run(kernel, "resolve", "b", "--stats", stats, "--seed", "9", "--json", *gate))
    assert "warnings" not in resolved and resolved["adapter"] == "offline"


def test_rest_takes_a_gate(offline_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], Any]) -> None:
    kernel = _kernel(offline_kernel)
    http = http_for(kernel)
    body = {"stats": {"weapon": 1, "b": 2}, "seed": 9, "narrate": True}
    blocked = http.post("/api/battle/sim", json=body)
    assert blocked.status_code == 200
    token = blocked.json()["narration"]["gate"]["ack_token"]
    assert http.post("/api/rating/ack", json={"token": token, "user": "ana"}).status_code == 200
    gate = {"rating_ack_token": token, "rating_acknowledged": True}
    for path, extra in (("/api/battle/sim", {}), ("/api/battle/resolve", {"winner": "b"})):
        answer = http.post(path, json={**body, **extra, "gate": gate})
        assert answer.status_code == 200, answer.text
        assert answer.json()["narration"]["adapter"] == "offline" and "warnings" not in answer.json()["narration"]
    bad = http.post("/api/battle/sim", json={**body, "gate": "yes"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "gate"
