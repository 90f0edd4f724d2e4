"""A kernel's full studio app on real hypercorn on a free loopback port (the ``live_server`` fixture of
tests/conftest.py, and module-scoped servers such as the web player's browser tests)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from comfyvn import Kernel


@contextmanager
def live_server(kernel: Kernel, **settings: Any) -> Iterator[str]:
    """Serve ``kernel``'s full app on real hypercorn on a free loopback port until the block ends;
    ``settings`` are further `ServerSettings` fields (``allowed_origins=...``)."""
    from comfyvn_server import ServerSettings, create_app
    from comfyvn_server.serve import bind_socket, serve_app

    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    app = create_app(kernel, ServerSettings(host="127.0.0.1", port=port, **settings))
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
