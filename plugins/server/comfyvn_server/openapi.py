"""Generate the OpenAPI 3.1 document from the composed routes.

Each endpoint's docstring holds its operation as YAML after a ``---`` line (Starlette's
``SchemaGenerator`` convention). Generation fills what every operation shares — path parameters,
the JSON error responses, a tag naming the plugin — so no operation is left without a response
schema. WebSocket routes appear as ``get`` operations marked ``x-websocket: true``. A handler registered
under several paths is documented at each; all but the first (its canonical path) carry ``x-alias-of``. Routes whose
docstring carries no YAML still appear, marked ``x-undocumented: true``.
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

__all__ = ["ERROR_SCHEMA", "build_openapi", "route_operations"]

_PARAM = re.compile(r"{([^}:]+)(?::[^}]+)?}")
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": ["string", "null"]},
                "request_id": {"type": ["string", "null"]},
            },
        }
    },
}
_ERROR_RESPONSE = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_DEFAULT_ERRORS = {
    "4XX": "client error: the body names the offending field",
    "500": "server bug: the body carries the request id of the logged traceback",
}
COMPONENTS: dict[str, Any] = {
    "Error": ERROR_SCHEMA,
    "Envelope": {
        "type": "object",
        "required": ["event", "payload", "ts", "seq"],
        "properties": {
            "topic": {"type": "string"},
            "event": {"type": "string"},
            "payload": {"type": "object"},
            "ts": {"type": "number"},
            "seq": {"type": "integer"},
        },
    },
    "Webhook": {
        "type": "object",
        "required": ["id", "url", "events", "hmac"],
        "properties": {
            "id": {"type": "string"},
            "url": {"type": "string"},
            "events": {"type": "array", "items": {"type": "string"}},
            "hmac": {"type": "boolean"},
            "description": {"type": "string"},
            "created": {"type": "number"},
            "status": {"type": ["object", "null"]},
            "delivering": {"type": "boolean"},
        },
    },
    "Flag": {
        "type": "object",
        "required": ["name", "value", "source"],
        "properties": {
            "name": {"type": "string"},
            "value": {"type": "boolean"},
            "source": {"enum": ["default", "file", "env"]},
            "default": {"type": "boolean"},
            "description": {"type": "string"},
            "owner": {"type": "string"},
            "aliases": {"type": "array", "items": {"type": "string"}},
        },
    },
}


def _docstring_operation(endpoint: Any) -> tuple[dict[str, Any], bool, str | None]:
    """``(operation, documented, yaml_error)`` from an endpoint's docstring."""
    doc = inspect.getdoc(endpoint) or ""
    head, sep, tail = doc.partition("\n---")
    summary = head.strip().splitlines()[0] if head.strip() else ""
    if not sep:
        return ({"summary": summary} if summary else {}), False, None
    try:
        parsed = yaml.safe_load(tail)
    except yaml.YAMLError as exc:
        return {"summary": summary}, False, str(exc).splitlines()[0]
    if not isinstance(parsed, dict):
        return {"summary": summary}, False, "the part after --- is not a YAML mapping"
    operation = copy.deepcopy(parsed)
    operation.setdefault("summary", summary)
    if head.strip() and "description" not in operation:
        operation["description"] = " ".join(head.split())
    return operation, True, None


def route_operations(routes: Iterable[BaseRoute], prefix: str = "") -> list[tuple[str, str, Any, bool]]:
    """``(path, method, endpoint, websocket)`` for every HTTP method and WebSocket route."""
    found: list[tuple[str, str, Any, bool]] = []
    for route in routes:
        if isinstance(route, Mount):
            found.extend(route_operations(route.routes or [], prefix + route.path))
        elif isinstance(route, Route):
            if not route.include_in_schema:
                continue
            for method in sorted(route.methods or {"GET"}):
                if method != "HEAD":
                    found.append((prefix + route.path, method.lower(), route.endpoint, False))
        elif isinstance(route, WebSocketRoute):
            found.append((prefix + route.path, "get", route.endpoint, True))
    return found


def _normalise(operation: dict[str, Any], path: str, method: str, websocket: bool) -> None:
    params = operation.setdefault("parameters", [])
    declared = {(p.get("name"), p.get("in")) for p in params if isinstance(p, Mapping)}
    for name in _PARAM.findall(path):
        if (name, "path") not in declared:
            params.append({"name": name, "in": "path", "required": True, "schema": {"type": "string"}})
    if not params:
        del operation["parameters"]
    responses = operation.setdefault("responses", {})
    # YAML keys like 200 load as ints; OpenAPI wants strings.
    operation["responses"] = responses = {str(code): value for code, value in responses.items()}
    if websocket:
        operation["x-websocket"] = True
        responses.setdefault("101", {"description": "switching to the WebSocket protocol"})
    elif not any(code.startswith("2") for code in responses):
        responses["200"] = {"description": "success", "content": {"application/json": {"schema": {"type": "object"}}}}
    for code, description in _DEFAULT_ERRORS.items():
        if code not in responses:
            responses[code] = {"description": description, **copy.deepcopy(_ERROR_RESPONSE)}
    for code, response in responses.items():
        if isinstance(response, dict):
            response.setdefault("description", f"HTTP {code}")
    if method in ("post", "put", "patch") and "requestBody" not in operation:
        operation["x-request-body"] = "none documented"


def build_openapi(
    routes: Iterable[BaseRoute], owners: Mapping[str, str] | None = None, *, version: str = "0"
) -> dict[str, Any]:
    """The OpenAPI document of ``routes``; ``owners`` maps ``"METHOD path"`` to the contributing plugin."""
    owners = owners or {}
    paths: dict[str, dict[str, Any]] = {}
    canonical: dict[tuple[Any, str], str] = {}  # (endpoint, method) -> the first path it answers at
    for raw_path, method, endpoint, websocket in route_operations(routes):
        path = _PARAM.sub(r"{\1}", raw_path)
        operation, documented, problem = _docstring_operation(endpoint)
        first = canonical.setdefault((endpoint, method), path)
        if first != path:
            # A plugin lists a route's canonical path first; later paths of the same handler are aliases
            # (the original product's paths, kept working).
            operation["x-alias-of"] = first
        if not documented:
            operation["x-undocumented"] = True
            if problem:
                operation["x-docstring-error"] = problem
        owner = owners.get(f"{'WS' if websocket else method.upper()} {raw_path}")
        if owner:
            operation.setdefault("tags", [owner])
        name = getattr(endpoint, "__name__", "endpoint")
        operation.setdefault("operationId", f"{method}_{name}_{re.sub(r'[^A-Za-z0-9]+', '_', path).strip('_')}")
        _normalise(operation, path, method, websocket)
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ComfyVN Studio",
            "version": version,
            "description": "Generated from the routes every installed plugin registers.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": copy.deepcopy(COMPONENTS),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
