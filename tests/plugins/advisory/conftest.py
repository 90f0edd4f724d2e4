"""Fixtures for the advisory tests: strict kernels with the studio plugins the enforcer meets (server,
scenario, roleplay, renpy, rating, advisory)."""

from __future__ import annotations

from collections.abc import Callable

import comfyvn_advisory.plugin
import comfyvn_rating.plugin
import comfyvn_renpy.plugin
import comfyvn_roleplay.plugin
import comfyvn_scenario.plugin
import comfyvn_server.plugin
import pytest
from comfyvn import Kernel


@pytest.fixture
def advisory_kernel(make_kernel: Callable[..., Kernel]) -> Callable[..., Kernel]:
    """``advisory_kernel(*extra, env=...)``: the studio plugins the enforcer meets, plus ``extra``."""

    def factory(*extra: object, env: dict[str, str] | None = None) -> Kernel:
        return make_kernel(
            comfyvn_server.plugin,
            comfyvn_scenario.plugin,
            comfyvn_roleplay.plugin,
            comfyvn_renpy.plugin,
            comfyvn_rating.plugin,
            comfyvn_advisory.plugin,
            *extra,
            env=env,
        )

    return factory
