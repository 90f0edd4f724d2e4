"""Exception handlers: every error a route raises becomes ``{"error": {"code", "message", "field"}}``.

`STATUS` is the one table from error class to HTTP status (domain code raises meaning, never a number).
Bad JSON and cattrs structuring errors are 400s naming the field, through `comfyvn.wire`; routing misses
(404/405) are JSON too. Unhandled exceptions never reach these handlers: the guard middleware turns them
into a JSON 500 carrying the request id.
"""

from __future__ import annotations

import json
from typing import Any

import cattrs
from comfyvn.errors import (
    Blocked,
    ComfyVNError,
    Conflict,
    FeatureDisabled,
    Invalid,
    NotFound,
    OperationFailed,
    PreconditionFailed,
    TooLarge,
    Unprocessable,
    UpstreamError,
    clip,
)
from comfyvn.secrets import VaultError
from comfyvn.wire import validation_error
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketState

# The ASGI extension that lets a WebSocket handshake be answered with an HTTP response.
DENIAL = "websocket.http.response"

__all__ = ["EXCEPTION_HANDLERS", "HTTP_CODES", "STATUS", "error_body", "http_status", "route_not_found"]

STATUS: dict[type[ComfyVNError], int] = {
    ComfyVNError: 400,
    Invalid: 400,
    Unprocessable: 422,
    TooLarge: 413,
    NotFound: 404,
    Conflict: 409,
    PreconditionFailed: 412,
    FeatureDisabled: 403,
    Blocked: 423,
    OperationFailed: 500,
    UpstreamError: 502,
    VaultError: 503,
}
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    422: "invalid_request",
    429: "too_many_requests",
}


def http_status(exc: ComfyVNError) -> int:
    """The status for ``exc``: its nearest class in `STATUS`."""
    return next(STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS)


def _clipped(value: Any) -> Any:
    # Details may quote the input too (a validator's messages); keep every string short.
    if isinstance(value, str):
        return clip(value, 400)
    if isinstance(value, dict):
        return {key: _clipped(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clipped(item) for item in value[:100]]
    return value


def error_body(code: str, message: str, field: str | None, request_id: str | None, **details: Any) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": clip(message, 400),
            "field": None if field is None else clip(field, 200),
            "request_id": request_id,
            **_clipped(details),
        }
    }


def _request_id(conn: HTTPConnection) -> str | None:
    request_id: str | None = conn.scope.get("state", {}).get("request_id")
    return request_id


async def _respond(
    conn: HTTPConnection, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse | None:
    if isinstance(conn, WebSocket):
        if conn.application_state == WebSocketState.CONNECTING and DENIAL in conn.scope.get("extensions", {}):
            # Before accept, where the server can (hypercorn can): a real HTTP answer to the handshake, the
            # same status and JSON error as any route, so a client can tell a 404 from a 403.
            await conn.send_denial_response(JSONResponse(body, status_code=status, headers=headers))
        else:
            # Otherwise an HTTP 403 on the handshake before accept; after it, a policy close.
            await conn.close(code=1008, reason=body["error"]["message"][:120])
        return None
    return JSONResponse(body, status_code=status, headers=headers)


async def on_comfyvn_error(conn: HTTPConnection, exc: Exception) -> JSONResponse | None:
    assert isinstance(exc, ComfyVNError)
    body = error_body(exc.code, exc.message, exc.field, _request_id(conn), **exc.details)
    return await _respond(conn, http_status(exc), body)


async def on_bad_json(conn: HTTPConnection, exc: Exception) -> JSONResponse | None:
    # Routes read bodies through comfyvn.wire; this catches a plugin that decodes a body itself.
    where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
    return await on_comfyvn_error(conn, Invalid(f"body: not valid JSON{where}", field="body", code="invalid_json"))


async def on_validation(conn: HTTPConnection, exc: Exception) -> JSONResponse | None:
    return await on_comfyvn_error(conn, validation_error(exc))


async def on_http(conn: HTTPConnection, exc: Exception) -> JSONResponse | None:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    code = HTTP_CODES.get(status, "http_error")
    message = exc.detail
    if status == 404:
        message = f"no route for {conn.url.path}"
    elif status == 405:
        message = f"{conn.scope.get('method')} is not allowed on {conn.url.path}"
    return await _respond(conn, status, error_body(code, message, None, _request_id(conn)), dict(exc.headers or {}))


async def route_not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """The router's answer when no route matches, WebSocket handshakes included (Starlette's own default
    closes those, an empty HTTP 403): a 404 the handlers answer with the JSON error, like any request."""
    raise HTTPException(status_code=404)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ComfyVNError: on_comfyvn_error,
    json.JSONDecodeError: on_bad_json,
    UnicodeDecodeError: on_bad_json,
    cattrs.BaseValidationError: on_validation,
    cattrs.ForbiddenExtraKeysError: on_validation,
    HTTPException: on_http,
}
