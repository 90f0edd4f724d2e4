"""Exception handlers: every client mistake becomes ``{"error": {"code", "message", "field"}}``.

`comfyvn.errors.ComfyVNError` keeps its own status; bad JSON is a 400; a cattrs structuring error
is a 422 naming the first offending field (``cattrs.transform_error``); routing misses (404/405)
and body limits (413) are JSON too. Unhandled exceptions never reach these handlers: the guard
middleware turns them into a JSON 500 carrying the request id.
"""

from __future__ import annotations

import json
import re
from typing import Any

import cattrs
from comfyvn.errors import ComfyVNError
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket

__all__ = ["EXCEPTION_HANDLERS", "error_body", "field_of"]

_EXTRA = re.compile(r"^extra fields found \((.*)\)$")
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
}


def error_body(code: str, message: str, field: str | None, request_id: str | None, **details: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field, "request_id": request_id, **details}}


def _request_id(conn: HTTPConnection) -> str | None:
    request_id: str | None = conn.scope.get("state", {}).get("request_id")
    return request_id


async def _respond(
    conn: HTTPConnection, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse | None:
    if isinstance(conn, WebSocket):
        # Before accept this becomes an HTTP 403 on the handshake; after it, a policy close.
        await conn.close(code=1008, reason=body["error"]["message"][:120])
        return None
    return JSONResponse(body, status_code=status, headers=headers)


def field_of(path: str) -> str | None:
    """``$.stats.str`` -> ``stats.str``; ``$[0].name`` -> ``[0].name``; ``$`` -> ``None``."""
    path = path.strip()
    if path.startswith("$"):
        path = path[1:]
    path = path.removeprefix(".")
    return path or None


async def on_comfyvn_error(conn: HTTPConnection, exc: Exception) -> JSONResponse | None:
    assert isinstance(exc, ComfyVNError)
    body = exc.to_dict()
    body["error"]["request_id"] = _request_id(conn)
    return await _respond(conn, exc.status, body)


async def on_bad_json(conn: HTTPConnection, exc: Exception) -> JSONResponse | None:
    detail = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
    return await _respond(
        conn, 400, error_body("invalid_json", f"the request body is not valid JSON{detail}", "body", _request_id(conn))
    )


async def on_validation(conn: HTTPConnection, exc: Exception) -> JSONResponse | None:
    assert isinstance(exc, cattrs.BaseValidationError)
    messages = cattrs.transform_error(exc)
    first = messages[0] if messages else str(exc)
    description, _, path = first.rpartition(" @ ")
    field = field_of(path) if path else None
    extra = _EXTRA.match(description)
    if extra:
        # Name the unexpected key itself rather than the object that holds it.
        name = extra.group(1).split(",")[0].strip()
        field = f"{field}.{name}" if field else name
    return await _respond(
        conn,
        422,
        error_body("validation_error", "; ".join(messages) or str(exc), field, _request_id(conn), errors=messages),
    )


async def on_http(conn: HTTPConnection, exc: Exception) -> JSONResponse | None:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    code = _HTTP_CODES.get(status, "http_error")
    message = exc.detail
    if status == 404:
        message = f"no route for {conn.url.path}"
    elif status == 405:
        message = f"{conn.scope.get('method')} is not allowed on {conn.url.path}"
    return await _respond(conn, status, error_body(code, message, None, _request_id(conn)), dict(exc.headers or {}))


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ComfyVNError: on_comfyvn_error,
    json.JSONDecodeError: on_bad_json,
    UnicodeDecodeError: on_bad_json,
    cattrs.BaseValidationError: on_validation,
    HTTPException: on_http,
}
