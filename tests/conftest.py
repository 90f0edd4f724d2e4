"""Shared test set-up: hypothesis profiles, quiet logging, and a factory for fresh kernels."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from comfyvn import Kernel, RuntimePaths, create_kernel
from comfyvn.log import configure_logging
from hypothesis import HealthCheck, settings

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


@contextmanager
def _live_server(kernel: Kernel) -> Iterator[str]:
    """Serve ``kernel``'s full app on real hypercorn on a free loopback port until the block ends."""
    from comfyvn_server import ServerSettings, create_app
    from comfyvn_server.serve import bind_socket, serve_app

    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    app = create_app(kernel, ServerSettings(host="127.0.0.1", port=port))
    ready: dict[str, Any] = {}

    async def main() -> None:
        ready["loop"], ready["stop"] = asyncio.get_running_loop(), asyncio.Event()
        await serve_app(app, sock, ready["stop"].wait, graceful_timeout=2.0)

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the server did not come up"
        time.sleep(0.05)
    try:
        yield base
    finally:
        ready["loop"].call_soon_threadsafe(ready["stop"].set)
        thread.join(30)
    assert not thread.is_alive(), "the server did not stop"


@pytest.fixture
def live_server() -> Callable[[Kernel], AbstractContextManager[str]]:
    """``with live_server(kernel) as base_url:`` -- the real app over real HTTP (hypercorn, loopback)."""
    return _live_server
