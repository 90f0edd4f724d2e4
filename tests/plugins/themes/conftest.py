"""Fixtures for the themes plugin's tests: kernels with the themes plugin and an HTTP client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import comfyvn_themes.plugin as themes_plugin
import pytest
from comfyvn import Kernel


@pytest.fixture
def themes_kernel(make_kernel: Callable[..., Kernel]) -> Callable[..., Kernel]:
    """``themes_kernel(*extra_plugins, env=...)``: a strict kernel with the themes plugin."""

    def factory(*extra: object, env: dict[str, str] | None = None) -> Kernel:
        return make_kernel(themes_plugin, *extra, env=env)

    return factory


@pytest.fixture
def client(themes_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], Any]) -> Any:
    return http_for(themes_kernel())
