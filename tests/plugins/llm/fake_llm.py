"""A fake language-model server for the llm tests: one process speaking three wire protocols over real HTTP/1.1.

- OpenAI chat completions: ``POST /v1/chat/completions`` (JSON, or SSE chunks with ``stream_options.include_usage``
  usage chunk and ``data: [DONE]``), ``GET /v1/models``.
- Ollama native: ``POST /api/chat`` (NDJSON when ``stream`` is true or absent), ``GET /api/tags``.
- Anthropic messages: ``POST /v1/messages`` (JSON, or its event stream), ``GET /v1/models`` when the request carries
  ``anthropic-version``.

The model name picks the behaviour: ``denied`` 401 (quoting the key it got, as OpenAI does), ``flaky`` 429 with
``Retry-After: 0`` on every other attempt, ``boom`` 500, ``slow`` answers after 3 s, ``cut`` closes the connection
after two streamed pieces; any other model echoes the last user message word by word. ``GET /_log`` returns every
request (path, lower-cased headers, body) and ``POST /_reset`` clears it. Run: ``python fake_llm.py``; the port is
printed on the first line.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOG: list[dict[str, Any]] = []
ATTEMPTS: dict[str, int] = {}
LOCK = threading.Lock()


def words_of(messages: list[dict[str, Any]]) -> int:
    return sum(len(str(m.get("content") or "").split()) for m in messages)


def reply_pieces(messages: list[dict[str, Any]]) -> list[str]:
    last = next((str(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    words = ["Echo:", *last.split()]
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as separate writes: without NODELAY, Nagle and delayed ACKs add ~40 ms to every
        # answer on a kept-alive connection, which would swamp what the benchmark measures.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- plumbing ---------------------------------------------------------------------------------------
    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _start_chunked(self, media: str) -> None:
        self.send_response(200)
        self.send_header("content-type", media)
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: str) -> None:
        raw = data.encode()
        self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
        self.wfile.flush()

    def _end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _cut(self) -> None:
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def _record(self, body: Any) -> None:
        with LOCK:
            LOG.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})

    def _anthropic(self) -> bool:
        return "anthropic-version" in {k.lower() for k in self.headers}

    def _error(self, status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> None:
        if self.path.startswith("/api/"):
            body: Any = {"error": message}
        elif self._anthropic():
            body = {"type": "error", "error": {"type": kind, "message": message}}
        else:
            body = {"error": {"message": message, "type": kind, "param": None, "code": kind}}
        self._json(status, body, headers)

    def _presented_key(self) -> str:
        auth = self.headers.get("authorization") or ""
        return self.headers.get("x-api-key") or auth.removeprefix("Bearer ")

    def _misbehave(self, model: str) -> bool:
        """Answer the failure a model name asks for; True when answered."""
        if model == "denied":
            self._error(401, f"Incorrect API key provided: {self._presented_key()}.", "invalid_api_key")
            return True
        if model == "boom":
            self._error(500, "The server had an error while processing your request.", "server_error")
            return True
        if model == "flaky":
            with LOCK:
                ATTEMPTS[self.path] = ATTEMPTS.get(self.path, 0) + 1
                odd = ATTEMPTS[self.path] % 2 == 1
            if odd:
                self._error(429, "Rate limit reached, retry later.", "rate_limit_exceeded", {"retry-after": "0"})
                return True
        if model == "slow":
            time.sleep(3)
        return False

    # -- routes -----------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._record(None)
        if self.path == "/_log":
            with LOCK:
                self._json(200, LOG)
        elif self.path == "/v1/models" and self._anthropic():
            model = {
                "type": "model",
                "id": "claude-fake",
                "display_name": "Claude Fake",
                "created_at": "2024-01-01T00:00:00Z",
            }
            self._json(200, {"data": [model], "has_more": False, "first_id": "claude-fake", "last_id": "claude-fake"})
        elif self.path == "/v1/models":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in ("fake-chat", "fake-json")]
            self._json(200, {"object": "list", "data": data})
        elif self.path == "/api/tags":
            self._json(200, {"models": [{"name": "llama3:8b", "model": "llama3:8b", "size": 1}]})
        else:
            self._error(404, "not found", "not_found")

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        self._record(body)
        if self.path == "/_reset":
            with LOCK:
                LOG.clear()
                ATTEMPTS.clear()
            self._json(200, {"ok": True})
            return
        model = str((body or {}).get("model"))
        if self.path not in ("/v1/chat/completions", "/api/chat", "/v1/messages"):
            self._error(404, "not found", "not_found")
            return
        if self._misbehave(model):
            return
        messages = body.get("messages") or []
        pieces = reply_pieces(messages)
        if self.path == "/v1/chat/completions":
            self._openai(body, model, messages, pieces)
        elif self.path == "/api/chat":
            self._ollama(body, model, messages, pieces)
        else:
            self._messages(body, model, messages, pieces)

    def _openai(self, body: Any, model: str, messages: list[Any], pieces: list[str]) -> None:
        usage = {"prompt_tokens": words_of(messages), "completion_tokens": len(pieces)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        base = {"id": "chatcmpl-fake", "created": 1700000000, "model": model}
        if not body.get("stream"):
            choice = {"index": 0, "message": {"role": "assistant", "content": "".join(pieces)}, "finish_reason": "stop"}
            self._json(200, {**base, "object": "chat.completion", "choices": [choice], "usage": usage})
            return
        self._start_chunked("text/event-stream")
        chunk = {**base, "object": "chat.completion.chunk"}

        def send(choices: list[Any], **extra: Any) -> None:
            self._chunk(f"data: {json.dumps({**chunk, 'choices': choices, **extra})}\n\n")

        send([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        for index, piece in enumerate(pieces):
            if model == "cut" and index == 2:
                self._cut()
                return
            send([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
        send([{"index": 0, "delta": {}, "finish_reason": "stop"}])
        if (body.get("stream_options") or {}).get("include_usage"):
            send([], usage=usage)
        self._chunk("data: [DONE]\n\n")
        self._end_chunked()

    def _ollama(self, body: Any, model: str, messages: list[Any], pieces: list[str]) -> None:
        final = {
            "model": model,
            "created_at": "2024-01-01T00:00:00Z",
            "done": True,
            "done_reason": "stop",
            "total_duration": 1000,
            "prompt_eval_count": words_of(messages),
            "eval_count": len(pieces),
        }
        if body.get("stream") is False:
            message = {"role": "assistant", "content": "".join(pieces)}
            self._json(200, {**final, "message": message})
            return
        self._start_chunked("application/x-ndjson")
        for index, piece in enumerate(pieces):
            if model == "cut" and index == 2:
                self._cut()
                return
            line = {
                "model": model,
                "created_at": "2024-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": piece},
                "done": False,
            }
            self._chunk(json.dumps(line) + "\n")
        self._chunk(json.dumps({**final, "message": {"role": "assistant", "content": ""}}) + "\n")
        self._end_chunked()

    def _messages(self, body: Any, model: str, messages: list[Any], pieces: list[str]) -> None:
        usage = {
            "input_tokens": words_of(messages) + len(str(body.get("system") or "").split()),
            "output_tokens": len(pieces),
        }
        if not body.get("stream"):
            self._json(
                200,
                {
                    "id": "msg_fake",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": "".join(pieces)}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": usage,
                },
            )
            return
        self._start_chunked("text/event-stream")

        def send(kind: str, data: dict[str, Any]) -> None:
            self._chunk(f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n")

        start = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 1},
        }
        send("message_start", {"message": start})
        send("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        send("ping", {})
        for index, piece in enumerate(pieces):
            if model == "cut" and index == 2:
                self._cut()
                return
            send("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}})
        send("content_block_stop", {"index": 0})
        send(
            "message_delta",
            {
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
        send("message_stop", {})
        self._end_chunked()


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
