"""Fixtures for the assets plugin's tests: a strict kernel with the plugin, its registry, an HTTP client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import comfyvn_assets.plugin as assets_plugin
import pytest
from comfyvn import Kernel
from comfyvn_assets import AssetRegistry


@pytest.fixture
def import_root(tmp_path: Path) -> Path:
    folder = tmp_path / "incoming"
    folder.mkdir()
    return folder


@pytest.fixture
def assets_kernel(make_kernel: Callable[..., Kernel]) -> Iterator[Callable[..., Kernel]]:
    made: list[Kernel] = []

    def factory(env: dict[str, str] | None = None) -> Kernel:
        made.append(make_kernel(assets_plugin, env=env))
        return made[-1]

    yield factory
    for kernel in made:
        AssetRegistry.forget(kernel)


@pytest.fixture
def kernel(assets_kernel: Callable[..., Kernel], import_root: Path) -> Kernel:
    return assets_kernel(env={"COMFYVN_ASSETS_IMPORT_ROOTS": str(import_root)})


@pytest.fixture
def registry(kernel: Kernel) -> AssetRegistry:
    return AssetRegistry.for_kernel(kernel)


@pytest.fixture
def events(kernel: Kernel) -> Iterator[list[Any]]:
    seen: list[Any] = []
    subscription = kernel.events.subscribe(seen.append)
    yield seen
    subscription.close()


@pytest.fixture
def client(kernel: Kernel, http_for: Callable[[Kernel], Any]) -> Any:
    return http_for(kernel)
