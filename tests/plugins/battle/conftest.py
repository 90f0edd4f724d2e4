"""Fixtures for the battle plugin's tests: kernels with the battle plugin and an HTTP client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import comfyvn_battle.plugin as battle_plugin
import pytest
from comfyvn import Kernel


@pytest.fixture
def battle_kernel(make_kernel: Callable[..., Kernel]) -> Callable[..., Kernel]:
    """``battle_kernel(*extra_plugins, env=...)``: a strict kernel with the battle plugin."""

    def factory(*extra: object, env: dict[str, str] | None = None) -> Kernel:
        return make_kernel(battle_plugin, *extra, env=env)

    return factory


@pytest.fixture
def client(battle_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], Any]) -> Any:
    return http_for(battle_kernel())
