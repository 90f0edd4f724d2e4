"""Fixtures for the rating tests: strict kernels with the rating plugin (and scenario, roleplay, renpy, server
as a test needs them), and the adult SillyTavern chat imported through the real importer into the store."""

from __future__ import annotations

from collections.abc import Callable

import comfyvn_rating.plugin
import comfyvn_renpy.plugin
import comfyvn_roleplay.plugin
import comfyvn_scenario.plugin
import comfyvn_server.plugin
import pytest
from comfyvn import Kernel

STUDIO = (
    comfyvn_server.plugin,
    comfyvn_scenario.plugin,
    comfyvn_roleplay.plugin,
    comfyvn_renpy.plugin,
    comfyvn_rating.plugin,
)


@pytest.fixture
def rating_kernel(make_kernel: Callable[..., Kernel]) -> Callable[..., Kernel]:
    """``rating_kernel(*extra, env=...)``: server, scenario, roleplay, renpy and rating, plus ``extra``."""

    def factory(*extra: object, env: dict[str, str] | None = None) -> Kernel:
        return make_kernel(*STUDIO, *extra, env=env)

    return factory
