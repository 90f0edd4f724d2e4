"""Fixtures for the llm tests: the fake provider server (a separate process on loopback) and kernels wired to it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import comfyvn_llm.plugin
import comfyvn_server.plugin
import httpx
import pytest
from comfyvn import Kernel

FAKE = Path(__file__).with_name("fake_llm.py")
OPENAI_KEY = "sk-test-0123456789abcdefSECRET"
ANTHROPIC_KEY = "sk-ant-test-0123456789SECRET"


@pytest.fixture(scope="session")
def fake_base() -> Iterator[str]:
    """``http://127.0.0.1:<port>`` of a running fake server (one process for the session)."""
    process = subprocess.Popen([sys.executable, str(FAKE)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    port = int(process.stdout.readline())
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(10)
    process.stdout.close()


@pytest.fixture
def fake(fake_base: str) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The fake's request log reader; the log and retry counters are cleared before each test."""
    httpx.post(f"{fake_base}/_reset", timeout=5)
    yield lambda: httpx.get(f"{fake_base}/_log", timeout=5).json()


def fake_env(base: str, **extra: str) -> dict[str, str]:
    """Environment pointing the shipped providers at the fake (keys through the vault's env override)."""
    return {
        "COMFYVN_LLM_LMSTUDIO_LOCAL_BASE_URL": f"{base}/v1",
        "COMFYVN_LLM_OLLAMA_LOCAL_BASE_URL": base,
        "COMFYVN_LLM_ANTHROPIC_BASE_URL": base,
        "COMFYVN_LLM_OPENAI_BASE_URL": f"{base}/v1",
        "COMFYVN_LLM_OPENAI_TIMEOUT": "10",
        "COMFYVN_LLM_ANTHROPIC_TIMEOUT": "10",
        "COMFYVN_LLM_OLLAMA_LOCAL_TIMEOUT": "10",
        "COMFYVN_LLM_LMSTUDIO_LOCAL_TIMEOUT": "10",
        **extra,
    }


@pytest.fixture
def llm_kernel(make_kernel: Callable[..., Kernel]) -> Callable[..., Kernel]:
    """``llm_kernel(*extra, env=...)``: a strict kernel with the server and llm plugins."""

    def factory(*extra: object, env: dict[str, str] | None = None) -> Kernel:
        return make_kernel(comfyvn_server.plugin, comfyvn_llm.plugin, *extra, env=env)

    return factory
