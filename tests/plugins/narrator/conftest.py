"""Fixtures for the narrator tests: kernels with server + llm + narrator, and a scripted model on loopback.

`scripted` is an OpenAI-compatible chat-completions server in a thread on 127.0.0.1 that answers each call with
the next reply a test queued (a JSON text, or anything else), and records the requests. `narrator_kernel(...,
scripted=True)` registers it as the provider ``scripted`` and assigns the narrator role to it (role mapping on),
so a proposal's answer comes through the real path: prompt pack → llm role call → parse → validate.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import comfyvn_llm.plugin
import comfyvn_narrator.plugin
import comfyvn_server.plugin
import pytest
from comfyvn import Kernel
from comfyvn.paths import atomic_write_json
from comfyvn_llm.orchestrator import Assignment
from comfyvn_llm.service import service_for

ENABLED = {"COMFYVN_FEATURE_ENABLE_NARRATOR": "1"}


class ScriptedModel:
    """The replies to give (first in, first out) and the requests received."""

    def __init__(self) -> None:
        self.replies: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.base_url = ""

    def answer(self, *replies: str | dict[str, Any]) -> None:
        """Queue replies: a dict is sent as its JSON text."""
        with self.lock:
            self.replies += [r if isinstance(r, str) else json.dumps(r) for r in replies]

    def take(self, body: dict[str, Any]) -> str:
        with self.lock:
            self.requests.append(body)
            return self.replies.pop(0) if self.replies else "(no reply queued)"


def _handler(model: ScriptedModel) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _json(self, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._json({"object": "list", "data": [{"id": "scripted-1", "object": "model", "owned_by": "test"}]})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
            reply = model.take(body)
            usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
            choice = {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}
            self._json(
                {
                    "id": "chatcmpl-scripted",
                    "object": "chat.completion",
                    "created": 1700000000,
                    "model": body.get("model"),
                    "choices": [choice],
                    "usage": usage,
                }
            )

    return Handler


@pytest.fixture
def scripted() -> Iterator[ScriptedModel]:
    """A scripted OpenAI-compatible model on a free loopback port (stopped after the test)."""
    model = ScriptedModel()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(model))
    model.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield model
    server.shutdown()
    server.server_close()
    thread.join(10)


@pytest.fixture
def narrator_kernel(make_kernel: Callable[..., Kernel], request: pytest.FixtureRequest) -> Callable[..., Kernel]:
    """``narrator_kernel(*extra, enabled=True, scripted=False, env=...)``: a strict kernel with the server, llm and
    narrator plugins; ``enabled`` turns enable_narrator on (by environment); ``scripted`` routes the narrator role
    to the `scripted` model."""

    def factory(
        *extra: object, enabled: bool = True, scripted: bool = False, env: dict[str, str] | None = None
    ) -> Kernel:
        environment = {**(ENABLED if enabled else {}), **(env or {})}
        if scripted:
            environment["COMFYVN_FEATURE_ENABLE_LLM_ROLE_MAPPING"] = "1"
        kernel = make_kernel(
            comfyvn_server.plugin, comfyvn_llm.plugin, comfyvn_narrator.plugin, *extra, env=environment
        )
        if scripted:
            model: ScriptedModel = request.getfixturevalue("scripted")
            provider = {
                "id": "scripted",
                "adapter": "openai",
                "base_url": model.base_url,
                "models": ["scripted-1"],
                "max_retries": 0,
                "timeout": 10,
            }
            atomic_write_json(kernel.paths.config / "llm_registry.json", {"providers": [provider]})
            service_for(kernel).roles.assign(Assignment(role="narrator", provider="scripted", model="scripted-1"))
        return kernel

    return factory


def turn(
    narration: str = "The rain thins.",
    *,
    patch: dict[str, Any] | None = None,
    choice_id: str | None = None,
    rationale: str = "test",
) -> dict[str, Any]:
    """A NARRATOR_TURN answer."""
    return {"narration": narration, "rationale": rationale, "choice_id": choice_id, "vars_patch": patch or {}}
