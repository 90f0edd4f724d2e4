"""Probes, status, the plugin listing, the flags API and the generated OpenAPI document."""

from __future__ import annotations

import time
from importlib import metadata
from typing import Any

from comfyvn.errors import ComfyVNError
from comfyvn.flags import parse_bool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .bus import json_object
from .openapi import build_openapi
from .state import ServerState

__all__ = ["make_routes", "server_version"]

_HEALTH_BODY = b'{"status":"ok"}'


def server_version() -> str | None:
    try:
        return metadata.version("comfyvn-server")
    except metadata.PackageNotFoundError:
        return None


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.server
    return state


async def health(request: Request) -> Response:
    """Liveness probe: the app is wired and answering.
    ---
    summary: Health probe
    security: []
    responses:
      200:
        description: alive
        content: {application/json: {schema: {type: object, required: [status], properties: {status: {const: ok}}}}}
    """
    # Pre-encoded: the probe is hit constantly and benchmarked against a bare Starlette app.
    return Response(_HEALTH_BODY, media_type="application/json")


async def status(request: Request) -> JSONResponse:
    """Version, plugins, uptime, WebSocket clients, webhook count and route composition problems.
    ---
    summary: Server status
    responses:
      200:
        description: status
        content: {application/json: {schema: {type: object,
          required: [status, version, kernel_version, uptime_s, plugins, websocket_clients, webhooks],
          properties: {status: {const: ok}, version: {type: [string, 'null']}, kernel_version: {type: [string, 'null']},
                       uptime_s: {type: number}, started_at: {type: number}, base_url: {type: string},
                       loopback: {type: boolean}, plugins: {type: array, items: {type: object}},
                       websocket_clients: {type: integer}, webhooks: {type: integer},
                       route_conflicts: {type: array, items: {type: object}},
                       route_errors: {type: array, items: {type: object}}}}}}
    """
    state = _state(request)
    kernel = state.kernel
    plugins = [
        {"name": row["name"], "status": row["status"], "version": row["version"], "error": row["error"]}
        for row in kernel.plugins.listing()
    ]
    try:
        kernel_version: str | None = metadata.version("comfyvn-kernel")
    except metadata.PackageNotFoundError:
        kernel_version = None
    return JSONResponse(
        {
            "status": "ok",
            "version": server_version(),
            "kernel_version": kernel_version,
            "started_at": state.started_at,
            "uptime_s": round(time.time() - state.started_at, 3),
            "base_url": state.settings.base_url,
            "loopback": state.settings.loopback,
            "plugins": plugins,
            "websocket_clients": state.hub.clients,
            "webhooks": len(state.webhooks.list()),
            "route_conflicts": state.route_conflicts,
            "route_errors": state.route_errors,
        }
    )


async def plugins_json(request: Request) -> JSONResponse:
    """Installed plugins with distribution, version, status and hooks (as `comfyvn plugins --json`).
    ---
    summary: Plugin listing
    parameters:
      - {name: all, in: query, required: false, schema: {type: string, enum: ['0', '1', 'true', 'false']},
         description: also list the kernel and blocked plugins}
    responses:
      200:
        description: one row per plugin
        content: {application/json: {schema: {type: array, items: {type: object, required: [name, status],
          properties: {name: {type: string}, status: {type: string}, distribution: {type: [string, 'null']},
                       version: {type: [string, 'null']}, hooks: {type: array, items: {type: string}},
                       routes: {type: array, items: {type: string}}, error: {type: [string, 'null']}}}}}}
    """
    state = _state(request)
    include_all = parse_bool(request.query_params.get("all", "0"), field="all")
    rows = state.kernel.plugins.listing(include_all=include_all)
    for row in rows:
        row["routes"] = sorted(path for path, owner in state.route_owner.items() if owner == row["name"])
    return JSONResponse(rows)


async def flags_get(request: Request) -> JSONResponse:
    """Every declared feature flag with its value and source, and unknown names found in the file.
    ---
    summary: Feature flags
    responses:
      200:
        description: flags
        content: {application/json: {schema: {type: object, required: [flags, unknown],
          properties: {flags: {type: array, items: {$ref: '#/components/schemas/Flag'}},
                       unknown: {type: object}, file_error: {type: [string, 'null']}}}}}
    """
    flags = _state(request).kernel.flags
    return JSONResponse(
        {"flags": [s.as_dict() for s in flags.states()], "unknown": flags.unknown(), "file_error": flags.file_error}
    )


async def flags_set(request: Request) -> JSONResponse:
    """Set flags: ``{name: bool, ...}``. All names and values are checked before any is written.
    ---
    summary: Set feature flags
    requestBody:
      required: true
      content: {application/json: {schema: {type: object, minProperties: 1,
        additionalProperties: {type: boolean}}}}
    responses:
      200:
        description: the new states; each change is also emitted as on_feature_flag_changed
        content: {application/json: {schema: {type: object, required: [flags],
          properties: {flags: {type: array, items: {$ref: '#/components/schemas/Flag'}}}}}}
    """
    flags = _state(request).kernel.flags
    body = await json_object(request)
    if not body:
        raise ComfyVNError('name at least one flag: {"enable_x": true}', field="body", code="invalid_body")
    values = {}
    for name, value in body.items():
        flags.get(name)  # unknown names are a 404 naming the flag, before anything is written
        if not isinstance(value, bool):
            raise ComfyVNError(f"{name} must be true or false, got {value!r}", field=name, code="invalid_boolean")
        values[name] = value
    states = [flags.set(name, value) for name, value in values.items()]
    return JSONResponse({"flags": [s.as_dict() for s in states]})


async def openapi(request: Request) -> JSONResponse:
    """This document: every route of the composed app, generated from the routes themselves.
    ---
    summary: OpenAPI document
    responses:
      200:
        description: OpenAPI 3.1
        content: {application/json: {schema: {type: object, required: [openapi, paths]}}}
    """
    state = _state(request)
    return JSONResponse(build_openapi(request.app.routes, state.route_owner, version=server_version() or "0"))


def make_routes() -> list[Any]:
    return [
        Route("/health", health, methods=["GET"]),
        Route("/healthz", health, methods=["GET"], name="healthz"),
        Route("/status", status, methods=["GET"]),
        Route("/-/plugins.json", plugins_json, methods=["GET"]),
        Route("/api/flags", flags_get, methods=["GET"]),
        Route("/api/flags", flags_set, methods=["POST"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
