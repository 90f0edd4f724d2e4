"""Fixtures for the jobs plugin: kernels with it, and a real Dask cluster of loopback processes.

Every process a fixture starts is killed in its ``finally`` (SIGKILL after a short SIGTERM grace), so a
failing test never leaves a scheduler or worker behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import comfyvn_jobs.plugin as jobs_plugin
import pytest
from comfyvn import Kernel
from comfyvn_jobs.service import close_jobs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 5.0) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@attrs.define
class Processes:
    """Processes started by one fixture, each with its log file; all are stopped at teardown."""

    root: Path
    started: list[subprocess.Popen[bytes]] = attrs.field(factory=list)

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=self.root,
        )
        log.close()
        self.started.append(process)
        return process

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for process in reversed(self.started):
            stop(process)


def worker_env(root: Path, name: str) -> dict[str, str]:
    # Each worker is its own machine as far as ComfyVN knows: its own runtime folders.
    return {"COMFYVN_RUNTIME_ROOT": str(root / name), "COMFYVN_PLUGINS": "jobs", "PYTHONUNBUFFERED": "1"}


@attrs.define
class Cluster:
    address: str
    processes: Processes
    workers: dict[str, subprocess.Popen[bytes]]

    def start_worker(self, name: str, *extra: str) -> subprocess.Popen[bytes]:
        process = self.processes.start(
            name,
            "-m",
            "comfyvn",
            "worker",
            "--scheduler",
            self.address,
            "--name",
            name,
            "--nthreads",
            "4",
            *extra,
            env=worker_env(self.processes.root, name),
        )
        self.workers[name] = process
        return process

    def names(self) -> set[str]:
        from distributed import Client

        with Client(self.address, timeout=10, set_as_default=False) as client:
            return {str(w["name"]) for w in client.scheduler_info(n_workers=-1)["workers"].values()}

    def wait_workers(self, *names: str, timeout: float = 90) -> None:
        wait_for(lambda: set(names) <= self.names(), timeout, f"workers {names} to join", interval=0.5)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """``dask scheduler`` plus two ``comfyvn worker`` processes on loopback: w1 offers COMFYUI=1, w2 nothing."""
    root = tmp_path_factory.mktemp("cluster")
    processes = Processes(root)
    port = free_port()
    try:
        processes.start(
            "scheduler", "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"
        )
        found = Cluster(f"tcp://127.0.0.1:{port}", processes, {})
        found.start_worker("w1", "--resources", "COMFYUI=1", "--comfyui-url", "http://127.0.0.1:8188")
        found.start_worker("w2")
        try:
            found.wait_workers("w1", "w2")
        except AssertionError:
            raise AssertionError("\n".join(processes.log(n)[-2000:] for n in ("scheduler", "w1", "w2"))) from None
        yield found
    finally:
        processes.stop_all()


@pytest.fixture
def jobs_kernel(make_kernel: Callable[..., Kernel]) -> Iterator[Callable[..., Kernel]]:
    """``jobs_kernel(*extra_plugins, env=...)``: a strict kernel with the jobs plugin; its service is closed after."""
    made: list[Kernel] = []

    def factory(*extra: object, env: dict[str, str] | None = None) -> Kernel:
        made.append(make_kernel(jobs_plugin, *extra, env=env))
        return made[-1]

    yield factory
    for kernel in made:
        close_jobs(kernel)
