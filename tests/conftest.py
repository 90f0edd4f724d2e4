"""Shared test set-up: hypothesis profiles, quiet logging, and a factory for fresh kernels."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from comfyvn import Kernel, RuntimePaths, create_kernel
from comfyvn.log import configure_logging
from hypothesis import HealthCheck, settings
from live_server import live_server as serve_live

# CI is derandomized so a run is reproducible from the commit alone; `dev` and `thorough` explore
# fresh random examples on every run (use them locally to look for new failures).
settings.register_profile(
    "ci",
    deadline=None,
    max_examples=60,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "dev",
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "thorough",
    deadline=None,
    max_examples=500,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

BENCH = Path(__file__).resolve().parent / "bench"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The benchmarks run only when asked for (``nox -s bench`` passes ``--benchmark-enable``), never in
    the default test run: they take minutes and measure the machine as much as the code."""
    inside = collection_path == BENCH or BENCH in collection_path.parents
    if inside and not config.getoption("benchmark_enable", default=False):
        return True
    return None


# structlog's default logger prints to stdout; route it through stdlib logging (stderr) instead.
configure_logging(None, level="WARNING", env={})


@pytest.fixture
def runtime(tmp_path: Path) -> RuntimePaths:
    """Runtime roots below the test's temporary folder."""
    return RuntimePaths.under(tmp_path / "runtime")


@pytest.fixture
def make_kernel(runtime: RuntimePaths) -> Callable[..., Kernel]:
    """Build a strict kernel with exactly the plugins named, no entry points, an empty environment."""

    def factory(*plugins: object, env: dict[str, str] | None = None, **kwargs: Any) -> Kernel:
        kwargs.setdefault("strict", True)
        return create_kernel(plugins=list(plugins), paths=runtime, env=env or {}, **kwargs)

    return factory


@pytest.fixture
def http_for() -> Iterator[Callable[[Kernel], Any]]:
    """``http_for(kernel)``: a Starlette TestClient on the full server app composed from ``kernel``."""
    from comfyvn_server import create_app
    from starlette.testclient import TestClient

    clients: list[TestClient] = []

    def factory(kernel: Kernel) -> TestClient:
        clients.append(TestClient(create_app(kernel)))
        return clients[-1]

    yield factory
    for client in clients:
        client.close()


@pytest.fixture
def live_server() -> Callable[[Kernel], AbstractContextManager[str]]:
    """``with live_server(kernel) as base_url:`` -- the real app over real HTTP (hypercorn, loopback)."""
    return serve_live
