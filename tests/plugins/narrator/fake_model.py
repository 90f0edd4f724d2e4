"""A scripted OpenAI-compatible chat server for the narrator tests (a separate process on loopback).

``POST /v1/chat/completions`` answers with the next scripted reply (HTTP 500 when none is left, so a test that
asks more than it scripted fails loudly); ``GET /v1/models`` lists ``fake-json``. ``POST /_script {"replies":
[...]}`` appends replies, ``POST /_reset`` clears the script and the log, ``GET /_log`` returns the body of every
chat request. Run: ``python fake_model.py``; the port is printed on the first line.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REPLIES: list[str] = []
LOG: list[Any] = []
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/_log":
            with LOCK:
                self._json(200, LOG)
        elif self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": "fake-json", "object": "model", "created": 0}]})
        else:
            self._json(404, {"error": {"message": "not found", "type": "not_found"}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"null")
        if self.path == "/_reset":
            with LOCK:
                REPLIES.clear()
                LOG.clear()
            self._json(200, {"ok": True})
        elif self.path == "/_script":
            with LOCK:
                REPLIES.extend(str(r) for r in body["replies"])
            self._json(200, {"ok": True})
        elif self.path == "/v1/chat/completions":
            with LOCK:
                LOG.append(body)
                reply = REPLIES.pop(0) if REPLIES else None
            if reply is None:
                self._json(500, {"error": {"message": "no scripted reply left", "type": "server_error"}})
                return
            usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
            choice = {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}
            self._json(
                200,
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": 1700000000,
                    "model": body.get("model"),
                    "choices": [choice],
                    "usage": usage,
                },
            )
        else:
            self._json(404, {"error": {"message": "not found", "type": "not_found"}})


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
