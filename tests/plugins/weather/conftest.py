"""Fixtures for the weather plugin's tests: kernels with the weather plugin and an HTTP client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import comfyvn_weather.plugin as weather_plugin
import pytest
from comfyvn import Kernel


@pytest.fixture
def weather_kernel(make_kernel: Callable[..., Kernel]) -> Callable[..., Kernel]:
    """``weather_kernel(*extra_plugins, env=...)``: a strict kernel with the weather plugin."""

    def factory(*extra: object, env: dict[str, str] | None = None) -> Kernel:
        return make_kernel(weather_plugin, *extra, env=env)

    return factory


@pytest.fixture
def client(weather_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], Any]) -> Any:
    return http_for(weather_kernel())
