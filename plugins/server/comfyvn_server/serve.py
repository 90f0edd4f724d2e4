"""Running the app on hypercorn: binding, ``runtime_state.json``, signals, reload.

The listening socket is bound here (not by hypercorn) so that port 0 works and the real port is
known before serving: it is written to ``<config>/runtime_state.json`` for the GUI and scripts.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
from comfyvn import Kernel
from comfyvn.errors import ComfyVNError
from comfyvn.paths import atomic_write_json
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config
from starlette.applications import Starlette

from .app import create_app
from .auth import TokenStore
from .settings import ServerSettings
from .state import TOKENS_FILE

__all__ = [
    "RUNTIME_STATE",
    "app_from_environment",
    "bind_socket",
    "hypercorn_config",
    "run",
    "serve_app",
    "write_runtime_state",
]

RUNTIME_STATE = "runtime_state.json"


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket (IPv6 when ``host`` is an IPv6 address); a busy port is a clear error."""
    name = host.strip("[]")
    family = socket.AF_INET6 if ":" in name else socket.AF_INET
    try:
        sock = socket.create_server((name, port), family=family, reuse_port=False, backlog=1024)
    except OSError as exc:
        raise ComfyVNError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}", field="port", code="bind_failed"
        ) from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def hypercorn_config(fd: int, *, graceful_timeout: float = 3.0) -> Config:
    """One asyncio worker on an already-bound socket, no access log (structlog has the errors)."""
    config = Config()
    config.bind = [f"fd://{fd}"]
    config.worker_class = "asyncio"
    config.accesslog = None
    config.loglevel = "WARNING"
    config.graceful_timeout = graceful_timeout
    return config


async def serve_app(
    app: Any, sock: socket.socket, shutdown_trigger: Callable[[], Awaitable[Any]], *, graceful_timeout: float = 3.0
) -> None:
    """Serve ``app`` on ``sock`` until ``shutdown_trigger`` returns; hypercorn takes the socket over."""
    config = hypercorn_config(sock.detach(), graceful_timeout=graceful_timeout)
    state = getattr(getattr(app, "state", None), "server", None)

    async def trigger() -> None:
        await shutdown_trigger()
        if state is not None:
            # Live WebSocket streams end with 1001 now rather than holding the graceful wait open.
            state.hub.closing_event().set()

    await hypercorn_serve(app, config, shutdown_trigger=trigger)


def write_runtime_state(config_dir: Path, settings: ServerSettings, *, running: bool) -> Path:
    """Record the connectable URL of this server for the GUI, scripts and parallel launchers."""
    return atomic_write_json(
        Path(config_dir) / RUNTIME_STATE,
        {
            "base_url": settings.base_url,
            "host": settings.host,
            "port": settings.port,
            "pid": os.getpid(),
            "running": running,
            "updated_at": time.time(),
        },
    )


def _require_token_off_loopback(kernel: Kernel, settings: ServerSettings) -> None:
    if not settings.loopback and not TokenStore(kernel.paths.config / TOKENS_FILE).list():
        raise ComfyVNError(
            f"refusing to serve on {settings.host}: it is reachable off this machine and no API "
            "token exists; create one with `comfyvn tokens create --scope admin`",
            field="host",
            code="token_required",
        )


def run(kernel: Kernel, settings: ServerSettings, *, reload: bool = False, echo: Callable[[str], None] = print) -> None:
    """``comfyvn serve``: bind, record the URL, serve until SIGINT/SIGTERM, record that it stopped."""
    _require_token_off_loopback(kernel, settings)
    if reload:
        _run_reloading(kernel, settings, echo)
        return
    sock = bind_socket(settings.host, settings.port)
    settings = attrs.evolve(settings, port=sock.getsockname()[1])
    app = create_app(kernel, settings)
    asyncio.run(_serve_until_signal(kernel, app, sock, settings, echo))


async def _serve_until_signal(
    kernel: Kernel, app: Starlette, sock: socket.socket, settings: ServerSettings, echo: Callable[[str], None]
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    write_runtime_state(kernel.paths.config, settings, running=True)
    echo(f"ComfyVN serving on {settings.base_url} (Ctrl+C to stop)")
    try:
        await serve_app(app, sock, stop.wait)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        write_runtime_state(kernel.paths.config, settings, running=False)
        echo("ComfyVN server stopped")


def app_from_environment() -> Starlette:
    """The app a reloading worker serves: a kernel from the installed plugins and the environment."""
    from comfyvn import create_kernel
    from comfyvn.log import configure_logging
    from comfyvn.paths import RuntimePaths

    paths = RuntimePaths.from_env()
    configure_logging(paths.logs)
    return create_app(create_kernel(paths=paths))


def _run_reloading(kernel: Kernel, settings: ServerSettings, echo: Callable[[str], None]) -> None:
    from hypercorn.run import run as hypercorn_run

    if settings.port == 0:
        raise ComfyVNError(
            "--reload needs a fixed port (workers restart on the same one)", field="port", code="invalid_port"
        )
    os.environ["COMFYVN_SERVER_HOST"], os.environ["COMFYVN_SERVER_PORT"] = settings.host, str(settings.port)
    config = Config()
    host = settings.host.strip("[]")
    config.bind = [f"[{host}]:{settings.port}" if ":" in host else f"{host}:{settings.port}"]
    config.application_path = "comfyvn_server.serve:app_from_environment()"
    config.worker_class, config.workers, config.use_reloader = "asyncio", 1, True
    config.accesslog, config.loglevel = None, "WARNING"
    write_runtime_state(kernel.paths.config, settings, running=True)
    echo(f"ComfyVN serving on {settings.base_url} with reload (Ctrl+C to stop)")
    try:
        hypercorn_run(config)
    finally:
        write_runtime_state(kernel.paths.config, settings, running=False)
