"""``comfyvn worker``: a Dask worker in this process, with this process's kernel and plugins loaded.

The worker joins a scheduler, advertises its resources (``COMFYUI=1`` next to a ComfyUI server), and
runs `comfyvn_jobs.runtime.run_job` tasks with the kernel built from this machine's environment and
configuration, through a `KernelPlugin` handed to the worker in-process (never pickled).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from distributed import Worker

from .runtime import KernelPlugin

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["serve_worker"]


async def serve_worker(
    kernel: Kernel,
    scheduler: str,
    *,
    resources: Mapping[str, float],
    name: str | None,
    nthreads: int,
    comfyui_url: str | None,
    ready: Callable[[Worker], None] | None = None,
) -> None:
    """Run a worker until the scheduler closes it or this process gets SIGINT/SIGTERM."""
    options = {"name": name} if name else {}
    if comfyui_url:
        options["comfyui_url"] = comfyui_url
    plugin = KernelPlugin(kernel, options)
    worker = Worker(
        scheduler,
        nthreads=nthreads,
        resources=dict(resources) or None,
        name=name,
        plugins=(plugin,),
        dashboard=False,
        silence_logs=logging.ERROR,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with worker:
        if ready is not None:
            ready(worker)
        finished = asyncio.ensure_future(worker.finished())  # type: ignore[no-untyped-call]
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({finished, stopping}, return_when=asyncio.FIRST_COMPLETED)
        for task in (finished, stopping):
            task.cancel()
