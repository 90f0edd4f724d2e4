"""``comfyvn llm``: offline answers with no configuration, streaming chat, exit codes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from click.testing import CliRunner
from comfyvn import Kernel, hookimpl
from comfyvn.cli import make_cli

from .conftest import fake_env


def _run(kernel: Kernel, *args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(make_cli(kernel), list(args), input=stdin, obj=kernel)


def test_llm_test_answers_offline_and_deterministically(llm_kernel: Callable[..., Kernel]) -> None:
    kernel = llm_kernel()
    first, second = _run(kernel, "llm", "test", "The door creaks."), _run(kernel, "llm", "test", "The door creaks.")
    assert first.exit_code == 0, first.output
    assert "The door creaks." in first.stdout and first.stdout == second.stdout
    named = _run(kernel, "llm", "test", "offline", "The door creaks.")
    assert named.stdout == first.stdout


def test_llm_chat_streams_from_the_fake(llm_kernel: Callable[..., Kernel], fake_base: str, fake: Any) -> None:
    kernel = llm_kernel(env=fake_env(fake_base))
    result = _run(kernel, "llm", "chat", "ollama_local", "-m", "llama3:8b", stdin="first line\nsecond line\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["Echo: first line", "Echo: second line"]
    second_request = [r for r in fake() if r["path"] == "/api/chat"][1]["body"]["messages"]
    assert [m["content"] for m in second_request] == ["first line", "Echo: first line", "second line"]


def test_exit_codes(llm_kernel: Callable[..., Kernel], fake_base: str, fake: Any) -> None:
    class Gate:
        @hookimpl
        def llm_call_gate(self, prompt: str) -> dict[str, Any] | None:
            return {"reason": "no"} if "blocked" in prompt else None

    kernel = llm_kernel(Gate(), env=fake_env(fake_base))
    assert _run(kernel, "llm", "test", "blocked words").exit_code == 3
    failed = _run(kernel, "llm", "test", "ollama_local", "-m", "boom", "hi")
    assert failed.exit_code == 1 and "HTTP 500" in failed.output
    assert _run(kernel, "llm", "test", "a", "b", "c").exit_code == 2
    listed = _run(kernel, "llm", "health")
    assert listed.exit_code == 0 and "ollama_local" in listed.stdout and "llama3:8b" in listed.stdout
