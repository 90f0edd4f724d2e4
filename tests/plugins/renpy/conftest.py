"""Fixtures for the renpy plugin's tests: kernels with scenario + renpy, the demo, the real engine."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import comfyvn_renpy.plugin as renpy_plugin
import comfyvn_scenario.plugin as scenario_plugin
import pytest
from comfyvn import Kernel
from comfyvn_renpy import find_demo_project, find_engine
from comfyvn_renpy.engine import Engine

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def renpy_kernel(make_kernel: Callable[..., Kernel]) -> Callable[..., Kernel]:
    """``renpy_kernel(*extra_plugins, env=...)``: a strict kernel with the scenario and renpy plugins."""

    def factory(*extra: object, env: dict[str, str] | None = None) -> Kernel:
        return make_kernel(scenario_plugin, renpy_plugin, *extra, env=env)

    return factory


@pytest.fixture
def demo_project(tmp_path: Path) -> Path:
    """A private copy of examples/demo (tests may edit it)."""
    target = tmp_path / "demo"
    shutil.copytree(find_demo_project(), target)
    return target


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The real Ren'Py engine. CI installs Debian's renpy (noxfile); without it these tests cannot pass."""
    found = find_engine()
    assert found is not None, "Ren'Py is not installed: `sudo apt-get install -y renpy` (see docs/renpy.md)"
    return found
