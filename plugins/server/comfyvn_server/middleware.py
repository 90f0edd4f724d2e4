"""The one outer middleware: request ids, the auth guard and the last-resort JSON 500.

It is a plain ASGI callable (no ``BaseHTTPMiddleware``) because it wraps every request, including
the ``/health`` probe whose throughput the benchmark compares with a bare Starlette app.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import secrets
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

import structlog
from comfyvn.errors import TooLarge, clip
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import Denied, Principal, RouteScopes, TokenStore, area_scope, authorize
from .errors import HTTP_CODES
from .settings import ServerSettings

__all__ = ["GuardMiddleware"]

log = structlog.get_logger("comfyvn.server")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


_WANTED = frozenset({b"host", b"origin", b"authorization", b"x-request-id", b"content-length", b"range"})
# Headers of a framework's plain-text error kept when it is answered as JSON instead.
_KEPT = frozenset({b"content-range", b"allow", b"www-authenticate", b"retry-after"})
_MAX_PLAIN = 4096


def _query_token(scope: Scope) -> str | None:
    # Browsers cannot set headers on a WebSocket handshake, so the token may come in the query.
    tokens = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("access_token")
    return tokens[0] if tokens else None


_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS"})


class PayloadTooLargeError(TooLarge):
    code = "payload_too_large"


def _too_large(limit: int, request_id: str) -> dict[str, Any]:
    return {
        "error": {
            "code": "payload_too_large",
            "message": f"the request body exceeds {limit} bytes",
            "field": "body",
            "request_id": request_id,
        }
    }


def _limited(receive: Receive, limit: int) -> Receive:
    """``receive`` that stops a streamed body once it passes ``limit`` bytes (a JSON 413)."""
    total = 0

    async def receive_limited() -> Message:
        nonlocal total
        message = await receive()
        if message["type"] == "http.request":
            total += len(message.get("body", b""))
            if total > limit:
                raise PayloadTooLargeError(f"the request body exceeds {limit} bytes", field="body")
        return message

    return receive_limited


def json_body(status: int, body: dict[str, Any], request_id: str) -> tuple[Message, Message]:
    data = json.dumps(body).encode("utf-8")
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(data)).encode()),
            (b"x-request-id", request_id.encode("latin-1")),
        ],
    }
    return start, {"type": "http.response.body", "body": data}


def _plain_error(message: Message) -> bool:
    """A framework's own error response (Starlette's ``PlainTextResponse``: a file's unsatisfiable or
    malformed ``Range``), which routes never send: theirs are JSON."""
    if message["status"] < 400:
        return False
    types = [value for key, value in message.get("headers", ()) if key.lower() == b"content-type"]
    return bool(types) and types[0].split(b";")[0].strip().lower() == b"text/plain"


def _as_json_error(start: Message, text: bytes, ranged: bool, request_id: str) -> tuple[Message, Message]:
    """The JSON error (``{"error": {code, message, field}}``) that stands in for a plain-text one."""
    status: int = start["status"]
    kept = [(key, value) for key, value in start.get("headers", ()) if key.lower() in _KEPT]
    message = clip(text.decode("utf-8", "replace").strip(), 200) or HTTPStatus(status).phrase.lower()
    if status == 416:
        size = next((v.decode("latin-1").rpartition("/")[2] for k, v in kept if k.lower() == b"content-range"), "")
        message = f"the requested range is outside the file ({size} bytes)" if size.isdigit() else message
    error = {
        "code": HTTP_CODES.get(status, "http_error"),
        "message": message,
        "field": "Range" if ranged and status in (400, 416) else None,
        "request_id": request_id,
    }
    json_start, json_body_message = json_body(status, {"error": error}, request_id)
    json_start["headers"] = [*json_start["headers"], *kept]
    return json_start, json_body_message


class GuardMiddleware:
    """Assigns ``request.state.request_id``, applies `authorize`, and turns escapes into JSON 500s."""

    def __init__(
        self,
        app: ASGIApp,
        settings: ServerSettings,
        tokens: TokenStore,
        scopes: RouteScopes | None = None,
        open_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.settings = settings
        self.tokens = tokens
        self.scope_for = scopes if scopes is not None else area_scope
        self.open_prefixes = open_prefixes
        self._prefix = secrets.token_hex(4)
        self._counter = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        wanted: dict[bytes, str] = {}
        for key, value in scope["headers"]:
            if key in _WANTED:
                wanted[key] = value.decode("latin-1")
        incoming = wanted.get(b"x-request-id")
        if incoming is not None and _REQUEST_ID.match(incoming):
            request_id = incoming
        else:
            # Unique per process run and cheap: a random prefix and a counter (ids need not be secret).
            request_id = f"{self._prefix}{next(self._counter):08x}"
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state["request_id"] = request_id
        try:
            verdict = self._authorize(scope, kind, wanted)
        except Exception:
            # Our own bug (a token file that cannot be read, say): logged with the id, a JSON 500.
            await _internal_error(scope, send, request_id)
            return
        if isinstance(verdict, Denied):
            log.info("request refused", request_id=request_id, path=scope["path"], code=verdict.code)
            if kind == "http":
                start, body = json_body(verdict.status, verdict.body(request_id), request_id)
                await send(start)
                await send(body)
            elif "websocket.http.response" in scope.get("extensions", {}):
                # The handshake answered like any request: the status and the JSON error.
                start, body = json_body(verdict.status, verdict.body(request_id), request_id)
                await send({**start, "type": "websocket.http.response.start"})
                await send({**body, "type": "websocket.http.response.body"})
            else:
                await send({"type": "websocket.close", "code": 1008, "reason": verdict.message[:120]})
            return
        state["principal"] = verdict
        tag = request_id.encode("latin-1")
        started = False
        peer_gone = False
        plain: Message | None = None  # the start of a plain-text error, answered as JSON once its body is in
        plain_text = b""

        # One wrapper, no helper coroutine: it runs twice on every request.
        async def send_with_id(message: Message) -> None:
            nonlocal started, peer_gone, plain, plain_text
            what = message["type"]
            if what == "http.response.start":
                started = True
                if _plain_error(message):
                    plain = message
                    return
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", tag)]
            elif what == "http.response.body" and plain is not None:
                plain_text = (plain_text + message.get("body", b""))[:_MAX_PLAIN]
                if message.get("more_body", False):
                    return
                json_start, json_end = _as_json_error(plain, plain_text, b"range" in wanted, request_id)
                try:
                    await send(json_start)
                except Exception:
                    peer_gone = True
                    raise
                message = json_end
            elif what == "websocket.http.response.start":  # a refused handshake's HTTP answer
                started = True
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", tag)]
            elif what == "websocket.accept":
                started = True
            try:
                await send(message)
            except Exception:
                peer_gone = True
                raise

        if kind == "http" and scope["method"] not in _NO_BODY:
            length = wanted.get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.settings.max_body_size:
                start, body = json_body(413, _too_large(self.settings.max_body_size, request_id), request_id)
                await send(start)
                await send(body)
                return
            receive = _limited(receive, self.settings.max_body_size)
        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            # The client left while its body was being read: a normal end, and nobody to answer.
            log.info("client went away mid-request", request_id=request_id, path=scope["path"])
            return
        except Exception:
            if peer_gone:
                # The ASGI server could not deliver our response: the client left. Nothing to answer.
                log.info("client went away", request_id=request_id, path=scope["path"])
                return
            # Our own bug: log the traceback with the id the client sees, answer a JSON 500 (a WebSocket:
            # a 1011 close, even after the accept), and do not re-raise (the ASGI server would log it a
            # second time without the id).
            await _internal_error(scope, send, request_id, answer=kind == "websocket" or not started)

    def _authorize(self, scope: Scope, kind: str, wanted: dict[bytes, str]) -> Denied | Principal:
        server = scope.get("server")
        token = wanted.get(b"authorization")
        if token is not None:
            scheme, _, rest = token.partition(" ")
            token = rest.strip() if scheme.lower() == "bearer" else token
        elif kind == "websocket":
            token = _query_token(scope)
        return authorize(
            scope.get("method", "GET"),
            scope["path"],
            wanted.get(b"host"),
            wanted.get(b"origin"),
            token,
            server[0] if server else None,
            self.settings,
            self.tokens,
            self.scope_for,
            self.open_prefixes,
        )


async def _internal_error(scope: Scope, send: Send, request_id: str, *, answer: bool = True) -> None:
    """Log the exception being handled with the request id; with ``answer``, the last-resort answer to
    our own bug: a JSON 500 naming the request id, or a 1011 close."""
    method = scope.get("method", "WEBSOCKET")
    log.exception("unhandled error", request_id=request_id, path=scope["path"], method=method)
    if not answer:
        return
    if scope["type"] == "http":
        start, body = json_body(
            500,
            {
                "error": {
                    "code": "internal_error",
                    "field": None,
                    "request_id": request_id,
                    "message": f"internal server error (request id {request_id}; the traceback is in the server log)",
                }
            },
            request_id,
        )
        await send(start)
        await send(body)
    else:
        with contextlib.suppress(Exception):  # the socket may already be gone
            await send({"type": "websocket.close", "code": 1011, "reason": f"internal error {request_id}"})
