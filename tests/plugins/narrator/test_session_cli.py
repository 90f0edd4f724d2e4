"""``comfyvn narrator status|mode|propose|apply|stop|rollback|chat``: the same sessions as the routes, exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from click.testing import CliRunner, Result
from comfyvn import Kernel
from comfyvn.cli import make_cli
from starlette.testclient import TestClient


def _run(kernel: Kernel, *args: str) -> Result:
    return CliRunner().invoke(make_cli(kernel), ["narrator", *args], obj=kernel)


def _json(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    body: dict[str, Any] = json.loads(result.stdout)
    return body


def test_the_commands_drive_one_session(
    narrator_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], TestClient]
) -> None:
    kernel = narrator_kernel()
    started = _json(_run(kernel, "mode", "s", "propose", "--node", "n1", "--variables", '{"gold": 2}', "--json"))
    assert started["state"]["variables"] == {"gold": 2} and started["state"]["mode"] == "propose"
    first = _json(_run(kernel, "propose", "s", "-m", "Hello", "--choice", "go=Go on", "--choice", "stay", "--json"))
    assert first["proposal"]["id"] == "p0001" and first["proposal"]["metadata"]["adapter"] == "offline"
    line = _run(kernel, "propose", "s", "-m", "Again")
    assert line.exit_code == 0 and line.stdout.startswith("p0002 (turn 2 at n1): ")
    _run(kernel, "propose", "s")
    capped = _run(kernel, "propose", "s")
    assert capped.exit_code == 2 and "3 narrator turns" in capped.stderr and capped.stderr.count("\n") == 1
    applied = _json(_run(kernel, "apply", "s", "p0001", "--json"))
    assert applied["proposal"]["status"] == "applied" and applied["state"]["history_size"] == 1
    assert _run(kernel, "apply", "s", "p0001").exit_code == 2
    status = _run(kernel, "status", "s")
    assert status.exit_code == 0 and "mode apply" in status.stdout and "p0001 applied" in status.stdout
    rolled = _json(_run(kernel, "rollback", "s", "--json"))
    assert [p["id"] for p in rolled["rolled_back"]] == ["p0001"] and rolled["state"]["variables"] == {"gold": 2}
    assert "halted" in _run(kernel, "stop", "s").stdout
    assert _run(kernel, "propose", "s").exit_code == 2
    chat = _json(_run(kernel, "chat", "s", "Where are we?", "--json"))
    assert chat["reply"] and chat["metadata"]["adapter"] == "offline" and chat["state"]["halted"]
    # the CLI and the routes see the same session
    state = http_for(kernel).get("/api/narrator/status", params={"scene_id": "s"}).json()["state"]
    assert [p["status"] for p in state["queue"]] == ["rolled_back", "pending", "pending"]


def test_the_flag_and_bad_input(narrator_kernel: Callable[..., Kernel]) -> None:
    kernel = narrator_kernel(enabled=False)
    off = _run(kernel, "propose", "demo", "--node", "demo.root")
    assert off.exit_code == 2 and "enable_narrator" in off.stderr
    forced = _run(kernel, "propose", "demo", "--node", "demo.root", "--force", "--json")
    assert _json(forced)["state"]["turn_counts"] == {"demo.root": 1}
    assert _run(kernel, "status", "demo").exit_code == 2
    assert _run(kernel, "status", "demo", "--force").exit_code == 0
    for args in (
        ("status", "nowhere", "--force"),
        ("status", "../x", "--force"),
        ("mode", "demo", "propose", "--variables", "[1]", "--force"),
        ("mode", "demo", "propose", "--variables", "{oops", "--force"),
        ("propose", "demo", "--choice", "=text", "--force"),
        ("rollback", "demo", "--steps", "0", "--force"),
        ("apply", "demo", "7", "--force"),
    ):
        result = _run(kernel, *args)
        assert result.exit_code == 2 and result.stderr.startswith("error: "), (args, result.output)
        assert result.stderr.count("\n") == 1, args
