"""Fixtures for the roleplay tests: a strict kernel with the roleplay plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import comfyvn_roleplay.plugin
import pytest


@pytest.fixture
def kernel(make_kernel: Callable[..., Any]) -> Any:
    return make_kernel(comfyvn_roleplay.plugin)
