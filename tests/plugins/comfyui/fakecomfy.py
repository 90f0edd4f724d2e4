"""Starting and steering the fake ComfyUI (``fake_comfyui.py``) from tests: each fake is its own process on loopback.

``launch()`` returns a ``FakeComfy`` handle: ``.url``, ``.log()``, ``.fail(mode, after)``, ``.reset()``, ``.kill()``
(SIGKILL, like a crashed server), ``.stop()``, ``.process``. Tests outside this folder can import this module by path.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

SCRIPT = Path(__file__).with_name("fake_comfyui.py")


class FakeComfy:
    """A running fake ComfyUI process."""

    def __init__(self, process: subprocess.Popen[str], port: int, token: str | None) -> None:
        self.process, self.port, self.token = process, port, token
        self.url = f"http://127.0.0.1:{port}"

    def __repr__(self) -> str:
        return f"FakeComfy({self.url})"

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, f"{self.url}/_fake/{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def log(self) -> dict[str, list[dict[str, Any]]]:
        """``{"requests": [...], "prompts": [...], "events": [...]}`` since the last reset."""
        result: dict[str, list[dict[str, Any]]] = self._control("GET", "log")
        return result

    def fail(self, mode: str, after: int = 0) -> None:
        """Make the prompt after ``after`` successful ones (and every later one) fail: ``execution_error``,
        ``die``, ``hang``, ``drop_ws``; ``none`` turns failing off."""
        self._control("POST", "fail", {"mode": mode, "after": after})

    def reset(self) -> None:
        """Clear queue, history, files, log and failure mode."""
        self._control("POST", "reset")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the server (a crash: open connections are reset, nothing is flushed)."""
        if self.alive():
            self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        """Terminate the server and reap it."""
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def launch(
    *,
    step_delay: float = 0.02,
    token: str | None = None,
    checkpoints: list[str] | None = None,
    loras: list[str] | None = None,
) -> FakeComfy:
    """Start a fake on a free loopback port; it accepts connections when this returns."""
    command = [sys.executable, str(SCRIPT), "--step-delay", str(step_delay)]
    if token is not None:
        command += ["--token", token]
    if checkpoints is not None:
        command += ["--checkpoints", ",".join(checkpoints)]
    if loras is not None:
        command += ["--loras", ",".join(loras)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.strip().isdigit():
        process.kill()
        process.wait(10)
        raise RuntimeError(f"the fake ComfyUI did not start (it printed {line!r})")
    return FakeComfy(process, int(line), token)
