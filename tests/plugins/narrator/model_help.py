"""Fixtures for the narrator's model tests: the scripted fake model server and kernels whose roles use it.

Test modules bind them by name (``scripted_base = model_help.scripted_base`` …) so that they stay out of the
package's conftest.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import comfyvn_llm.plugin
import httpx
import pytest
from comfyvn import Kernel
from comfyvn_llm.orchestrator import Assignment
from comfyvn_llm.service import service_for

FAKE = Path(__file__).with_name("fake_model.py")
MODEL = "fake-json"


@attrs.define
class Script:
    """The fake server's script and log."""

    base: str

    def reset(self) -> None:
        """Forget the queued replies and the log."""
        httpx.post(f"{self.base}/_reset", timeout=5).raise_for_status()

    def replies(self, *replies: Any) -> None:
        """Queue replies (objects are sent as JSON text)."""
        texts = [r if isinstance(r, str) else json.dumps(r) for r in replies]
        httpx.post(f"{self.base}/_script", json={"replies": texts}, timeout=5).raise_for_status()

    def log(self) -> list[dict[str, Any]]:
        """The body of every chat request so far."""
        answer: list[dict[str, Any]] = httpx.get(f"{self.base}/_log", timeout=5).json()
        return answer


@pytest.fixture(scope="session")
def scripted_base() -> Iterator[str]:
    process = subprocess.Popen([sys.executable, str(FAKE)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    port = int(process.stdout.readline())
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(10)
    process.stdout.close()


@pytest.fixture
def script(scripted_base: str) -> Script:
    httpx.post(f"{scripted_base}/_reset", timeout=5).raise_for_status()
    return Script(scripted_base)


def model_env(base: str) -> dict[str, str]:
    """Environment: lmstudio_local points at the fake, and roles may be mapped."""
    return {
        "COMFYVN_LLM_LMSTUDIO_LOCAL_BASE_URL": f"{base}/v1",
        "COMFYVN_LLM_LMSTUDIO_LOCAL_TIMEOUT": "10",
        "COMFYVN_FEATURE_ENABLE_LLM_ROLE_MAPPING": "1",
    }


@pytest.fixture
def model_kernel(make_kernel: Callable[..., Kernel], script: Script) -> Callable[..., Kernel]:
    """``model_kernel(*plugins, roles=("narrator",))``: a kernel with the llm plugin whose roles use the fake."""

    def factory(*plugins: object, roles: tuple[str, ...] = ("narrator",)) -> Kernel:
        kernel = make_kernel(comfyvn_llm.plugin, *plugins, env=model_env(script.base))
        for role in roles:
            service_for(kernel).roles.assign(Assignment(role, provider="lmstudio_local", model=MODEL))
        return kernel

    return factory


@pytest.fixture
def offline_kernel(make_kernel: Callable[..., Kernel]) -> Callable[..., Kernel]:
    """``offline_kernel(*plugins)``: nothing configured, so the offline adapter serves every role."""

    def factory(*plugins: object) -> Kernel:
        return make_kernel(comfyvn_llm.plugin, *plugins)

    return factory
