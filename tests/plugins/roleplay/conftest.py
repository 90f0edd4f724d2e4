"""Fixtures for the roleplay tests: a strict kernel with the roleplay plugin and the scenario plugin (which
declares the project store's events: imports without --out go to the store)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import comfyvn_roleplay.plugin
import comfyvn_scenario.plugin
import pytest


@pytest.fixture
def kernel(make_kernel: Callable[..., Any]) -> Any:
    return make_kernel(comfyvn_scenario.plugin, comfyvn_roleplay.plugin)
