"""The real JavaScript Yjs client (js/client.mjs: yjs 13.6 + y-websocket 3 on Node) as an asyncio subprocess.

The interop tests FAIL, never skip, without Node or the pinned npm packages: ``nox -s tests`` installs both
(Debian's nodejs and npm through apt, then ``npm ci`` in tests/plugins/collab/js).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

JS_DIR = Path(__file__).resolve().parent / "js"
CLIENT = JS_DIR / "client.mjs"
MODULES = ("yjs", "y-websocket", "ws")


def node_executable() -> str:
    """The ``node`` binary, after checking the npm packages are installed; an AssertionError that says how
    to install them otherwise."""
    node = shutil.which("node")
    assert node, (
        "Node.js is not installed: run `nox -s tests` (it apt-installs nodejs and npm)"
        " or `apt-get install -y nodejs npm`"
    )
    missing = [name for name in MODULES if not (JS_DIR / "node_modules" / name / "package.json").exists()]
    assert not missing, (
        f"the collaboration tests' npm packages are not installed ({', '.join(missing)} missing): run `nox -s tests`"
        f" or `npm ci` in {JS_DIR}"
    )
    return node


class JSClient:
    """One ``node client.mjs <server> <room>`` process: ``await start()``, then ``await command(cmd=...)``."""

    def __init__(self, server_url: str, room: str) -> None:
        self.server_url = server_url
        self.room = room
        self.client_id: int | None = None
        self._process: asyncio.subprocess.Process | None = None

    async def start(self, timeout: float = 30.0) -> JSClient:
        """Start the process and wait until its provider has synced with the room."""
        self._process = await asyncio.create_subprocess_exec(
            node_executable(),
            str(CLIENT),
            self.server_url,
            self.room,
            str(int(timeout * 1000)),
            cwd=JS_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=64 * 1024 * 1024,
        )
        first = await self._line(timeout + 5)
        assert first.get("event") == "synced", f"the JS client did not sync: {first}"
        self.client_id = first["clientID"]
        return self

    async def _line(self, timeout: float) -> dict[str, Any]:
        assert self._process is not None and self._process.stdout is not None
        try:
            line = await asyncio.wait_for(self._process.stdout.readline(), timeout)
        except TimeoutError:
            raise AssertionError(f"the JS client said nothing for {timeout}s; stderr: {await self._stderr()}") from None
        if not line:
            raise AssertionError(f"the JS client exited ({await self._stderr()})")
        return dict(json.loads(line))

    async def _stderr(self) -> str:
        assert self._process is not None and self._process.stderr is not None
        if self._process.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._process.wait(), 0.5)
        if self._process.returncode is None:
            return "(still running)"
        return (await self._process.stderr.read()).decode(errors="replace")[-2000:]

    async def send(self, **command: Any) -> None:
        """Send a command without waiting for its answer (take it later with ``answer``)."""
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write((json.dumps(command) + "\n").encode())
        await self._process.stdin.drain()

    async def answer(self, timeout: float = 60.0) -> dict[str, Any]:
        """The next answer; an AssertionError when it reports a failure."""
        reply = await self._line(timeout)
        assert reply.get("ok"), f"the JS client refused a command: {reply}"
        return reply

    async def command(self, timeout: float = 60.0, **command: Any) -> dict[str, Any]:
        """Send a command and return its answer."""
        await self.send(**command)
        return await self.answer(timeout)

    async def dump(self) -> dict[str, Any]:
        """The client's document as JSON and its awareness states: ``{"doc": ..., "awareness": [...]}``."""
        return await self.command(cmd="dump")

    async def close(self) -> None:
        """Quit the client (it closes its socket) and wait for the process; kill it if it hangs."""
        if self._process is None or self._process.returncode is not None:
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, AssertionError):
            await self.command(cmd="quit", timeout=5)
        try:
            await asyncio.wait_for(self._process.wait(), 5)
        except TimeoutError:
            self._process.kill()
            await self._process.wait()
