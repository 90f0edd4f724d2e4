"""Fixtures for the scenario plugin's tests: the demo project, kernels and an HTTP client."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import comfyvn_scenario.plugin as scenario_plugin
import pytest
from comfyvn import Kernel
from comfyvn_scenario import Project, load_project
from scenario_support import DEMO


@pytest.fixture
def demo() -> Project:
    return load_project(DEMO)


@pytest.fixture
def demo_scene() -> dict[str, Any]:
    """The demo's second scene as a stand-alone scene (it has no cross-scene targets)."""
    return json.loads((DEMO / "scenes" / "night_train.json").read_text(encoding="utf-8"))


@pytest.fixture
def scenario_kernel(make_kernel: Callable[..., Kernel]) -> Callable[..., Kernel]:
    def factory(env: dict[str, str] | None = None) -> Kernel:
        return make_kernel(scenario_plugin, env=env)

    return factory


@pytest.fixture
def kernel(scenario_kernel: Callable[..., Kernel]) -> Kernel:
    return scenario_kernel(env={"COMFYVN_FEATURE_ENABLE_PLAYTEST_HARNESS": "1"})


@pytest.fixture
def client(kernel: Kernel, http_for: Callable[[Kernel], Any]) -> Any:
    return http_for(kernel)


@pytest.fixture
def events(kernel: Kernel) -> Iterator[list[Any]]:
    seen: list[Any] = []
    sub = kernel.events.subscribe(seen.append)
    yield seen
    sub.close()
