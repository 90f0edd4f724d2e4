"""The LLM call gate's block message tells the user what works for an LLM call, and following it literally
works: the CLI's ``--gate KEY=VALUE`` options and the HTTP body's ``gate`` object (not the exporter's
``--rating-ack-token``/``--rating-acknowledged`` flags, which ``comfyvn llm`` does not have)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from typing import Any

import comfyvn_llm.plugin
from click.testing import CliRunner
from comfyvn import Kernel
from comfyvn.cli import make_cli

PROMPT = "Write an explicit scene."


def _cli(kernel: Kernel, *args: str) -> Any:
    return CliRunner().invoke(make_cli(kernel), list(args))


def test_cli_block_message_says_how_to_pass_the_token_and_following_it_works(
    rating_kernel: Callable[..., Kernel],
) -> None:
    kernel = rating_kernel(comfyvn_llm.plugin)
    blocked = _cli(kernel, "llm", "test", "offline", PROMPT)
    assert blocked.exit_code == 3, blocked.output
    line = blocked.output.strip().splitlines()[-1]
    assert "--rating-ack-token" not in line and "--rating-acknowledged" not in line
    ack = re.search(r"`(comfyvn rating ack [0-9a-f]{32})`", line)
    retry = re.search(r"call again with (--gate \S+ --gate \S+)", line)
    assert ack is not None and retry is not None, line
    # Before the acknowledgement the suggested retry is still refused, and says so.
    early = _cli(kernel, "llm", "test", "offline", PROMPT, *shlex.split(retry.group(1)))
    assert early.exit_code == 3 and "not acknowledged" in early.output
    acked = _cli(kernel, *shlex.split(ack.group(1))[1:], "--user", "ana")
    assert acked.exit_code == 0, acked.output
    passed = _cli(kernel, "llm", "test", "offline", PROMPT, *shlex.split(retry.group(1)))
    assert passed.exit_code == 0, passed.output


def test_http_block_message_names_the_gate_object(
    rating_kernel: Callable[..., Kernel], http_for: Callable[..., Any]
) -> None:
    http = http_for(rating_kernel(comfyvn_llm.plugin))
    body: dict[str, Any] = {"messages": [{"role": "user", "content": PROMPT}]}
    error = http.post("/api/llm/test-call", json=body).json()["error"]
    message, token = error["message"], error["ack_token"]
    assert "--rating-ack-token" not in message
    assert "POST /api/rating/ack" in message and "gate.rating_ack_token" in message
    assert "gate.rating_acknowledged: true" in message
    assert http.post("/api/rating/ack", json={"token": token, "user": "ana"}).status_code == 200
    gate = {"rating_ack_token": token, "rating_acknowledged": True}
    assert http.post("/api/llm/test-call", json={**body, "gate": gate}).status_code == 200
