"""Fixtures for the comfyui tests: fake ComfyUI servers, each a separate process on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .fakecomfy import FakeComfy, launch


def _factory() -> tuple[Callable[..., FakeComfy], list[FakeComfy]]:
    started: list[FakeComfy] = []

    def start(**options: Any) -> FakeComfy:
        started.append(launch(**options))
        return started[-1]

    return start, started


@pytest.fixture
def fake_comfyui() -> Iterator[Callable[..., FakeComfy]]:
    """``fake_comfyui(step_delay=, token=, checkpoints=, loras=)`` starts a fake for this test (call it N times for
    N servers); all are stopped at teardown."""
    start, started = _factory()
    yield start
    for fake in started:
        fake.stop()


@pytest.fixture(scope="module")
def fake_comfyui_module() -> Iterator[Callable[..., FakeComfy]]:
    """As ``fake_comfyui``, for fakes shared by a module's tests (reset them between tests)."""
    start, started = _factory()
    yield start
    for fake in started:
        fake.stop()


@pytest.fixture(scope="module")
def shared_comfy(fake_comfyui_module: Callable[..., FakeComfy]) -> FakeComfy:
    """One fake for the module."""
    return fake_comfyui_module()


@pytest.fixture
def comfy(shared_comfy: FakeComfy) -> FakeComfy:
    """The module's fake, reset (queue, history, files, log, failure mode) for this test."""
    shared_comfy.reset()
    return shared_comfy
