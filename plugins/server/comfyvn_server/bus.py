"""The modder event bus over HTTP: specs and history, a test emit, the WebSocket stream, webhooks.

Every WebSocket client reads its own bounded `comfyvn.events.EventStream`: ``emit`` only ever
does a non-blocking put, so a client that stops reading fills its own buffer, loses the overflow
(reported to it as a ``dropped`` message when it reads again) and never slows the emitter or the
other clients.
"""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import attrs
import structlog
from comfyvn.errors import ComfyVNError, Invalid, TooLarge
from comfyvn.events import Envelope, EventBus
from comfyvn.wire import read_json
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from .egress import parse_webhook_url
from .state import ServerState
from .webhooks import WebhookSpec, converter, envelope_json, validate_spec

__all__ = ["TEST_EVENT", "TEST_EVENT_SCHEMA", "make_routes"]

log = structlog.get_logger("comfyvn.server.bus")
TEST_EVENT = "on_modder_test"
TEST_EVENT_SCHEMA = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string"}, "data": {}},
}


def _state(conn: Request | WebSocket) -> ServerState:
    state: ServerState = conn.app.state.server
    return state


def int_param(request: Request | WebSocket, name: str, default: int, low: int, high: int) -> int:
    """A bounded integer query parameter; a bad one is a 400 naming it."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ComfyVNError(f"{name} must be an integer, got {raw!r}", field=name, code="invalid_query") from None
    if not low <= value <= high:
        raise ComfyVNError(f"{name} must be between {low} and {high}", field=name, code="invalid_query")
    return value


def event_names(raw: str | None, bus: EventBus, field: str = "events") -> list[str] | None:
    """``a,b`` -> ``["a", "b"]`` (declared names only); empty or missing -> ``None`` (all events)."""
    if not raw:
        return None
    names = [part.strip() for part in raw.split(",") if part.strip()]
    for name in names:
        if bus.spec(name) is None:
            raise ComfyVNError(f"unknown event {name!r} (see GET /api/modder/hooks)", field=field, code="unknown_event")
    return names or None


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object (bad JSON -> 400 via the error handlers; non-object -> 400)."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ComfyVNError(
            f"the request body must be a JSON object, got {type(body).__name__}", field="body", code="invalid_body"
        )
    return body


def _with_envelopes(body: dict[str, Any], key: str, envelopes: list[Envelope]) -> Response:
    """``body`` plus ``key``: the envelopes as the bus encoded them at emit (always sendable JSON)."""
    items = ",".join(envelope_json(e) for e in envelopes)
    text = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return _json_text(f'{text[:-1]}{"," if body else ""}"{key}":[{items}]}}')


def _webhook_view(state: ServerState, hook: Any) -> dict[str, Any]:
    status = state.dispatcher.status.get(hook.id)
    view: dict[str, Any] = hook.as_dict()
    view["status"] = None if status is None else attrs.asdict(status)
    view["delivering"] = state.dispatcher.running
    return view


async def hooks_index(request: Request) -> Response:
    """Event specs, recent history and webhook registrations (never their secrets).
    ---
    summary: The modder hook bus at a glance
    parameters:
      - {name: events, in: query, required: false, schema: {type: string}, description: comma-separated event names}
      - {name: limit, in: query, required: false, schema: {type: integer, minimum: 0, maximum: 500}}
    responses:
      200:
        description: specs, history and webhooks
        content: {application/json: {schema: {type: object, required: [events, history, webhooks, websocket],
          properties: {events: {type: array, items: {type: object}}, history: {type: array, items: {type: object}},
                       webhooks: {type: array, items: {type: object}}, websocket: {type: object}}}}}
    """
    state = _state(request)
    bus = state.kernel.events
    names = event_names(request.query_params.get("events"), bus)
    limit = int_param(request, "limit", 50, 0, 500)
    specs = [s.as_dict() for s in bus.specs() if names is None or s.name in names]
    return _with_envelopes(
        {
            "events": specs,
            "webhooks": [_webhook_view(state, h) for h in state.webhooks.list()],
            "websocket": {
                "path": "/api/modder/hooks/ws",
                "clients": state.hub.clients,
                "queue": state.settings.ws_queue,
                "heartbeat": state.settings.ws_heartbeat,
                "dropped_total": state.hub.dropped_total,
            },
        },
        "history",
        bus.history(event=names, limit=limit),
    )


async def hooks_history(request: Request) -> Response:
    """Envelopes newer than ``since``, optionally of some events, the newest ``limit`` of them.
    ---
    summary: Bus history
    parameters:
      - {name: since, in: query, required: false, schema: {type: integer, minimum: 0}}
      - {name: event, in: query, required: false, schema: {type: string}, description: comma-separated event names}
      - {name: limit, in: query, required: false, schema: {type: integer, minimum: 0, maximum: 1000}}
    responses:
      200:
        description: matching envelopes, oldest first
        content: {application/json: {schema: {type: object, required: [items, last_seq],
          properties: {items: {type: array, items: {$ref: '#/components/schemas/Envelope'}},
                       last_seq: {type: [integer, 'null']}}}}}
    """
    bus = _state(request).kernel.events
    since = int_param(request, "since", 0, 0, 2**62)
    limit = int_param(request, "limit", 100, 0, 1000)
    names = event_names(request.query_params.get("event"), bus, field="event")
    items = bus.history(since=since, event=names, limit=limit)
    return _with_envelopes({"last_seq": items[-1].seq if items else None}, "items", items)


async def hooks_test(request: Request) -> Response:
    """Emit a test envelope (``on_modder_test``) to every subscriber, WebSocket and webhook.
    ---
    summary: Emit a test event
    requestBody:
      required: false
      content: {application/json: {schema: {type: object, additionalProperties: false,
        properties: {message: {type: string, maxLength: 1000}, data: {}}}}}
    responses:
      200:
        description: the emitted envelope
        content: {application/json: {schema: {$ref: '#/components/schemas/Envelope'}}}
    """
    body = await json_object(request) if await request.body() else {}
    extra = set(body) - {"message", "data"}
    if extra:
        raise ComfyVNError(f"unknown field {sorted(extra)[0]!r}", field=sorted(extra)[0], code="unknown_field")
    message = body.get("message", "test")
    if not isinstance(message, str) or len(message) > 1000 or not _is_unicode(message):
        raise ComfyVNError(
            "message must be a valid string of at most 1000 characters", field="message", code="invalid_message"
        )
    payload: dict[str, Any] = {"message": message}
    if "data" in body:
        payload["data"] = body["data"]
    try:
        envelope = _state(request).kernel.events.emit(TEST_EVENT, payload)
    except (Invalid, TooLarge) as exc:  # NaN, Infinity, a lone surrogate or too many bytes: all in data
        exc.field = "data"
        raise
    return _json_text(envelope_json(envelope, topic=f"modder.{envelope.event}"))


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_text(text: str, status_code: int = 200) -> Response:
    return Response(text, status_code=status_code, media_type="application/json")


async def hooks_ws(websocket: WebSocket) -> None:
    """Stream bus envelopes as ``{"topic": "modder.<event>", event, payload, ts, seq}``.
    ---
    summary: The bus as a WebSocket stream
    description: >
      First message `{"topic": "ready"}`; then one message per envelope in order; `{"topic": "heartbeat"}`
      after each quiet heartbeat interval; `{"topic": "dropped", "dropped": n}` when this client fell
      behind and its bounded queue overflowed. Unknown event names close the handshake (HTTP 403).
    parameters:
      - {name: events, in: query, required: false, schema: {type: string}, description: comma-separated event names}
      - {name: access_token, in: query, required: false, schema: {type: string},
         description: token when bound off-loopback}
    responses:
      101: {description: switching to the WebSocket protocol}
    """
    state = _state(websocket)
    bus = state.kernel.events
    names = event_names(websocket.query_params.get("events"), bus)
    settings, hub = state.settings, state.hub
    closing = hub.closing_event()
    await websocket.accept()
    async with bus.stream(names, max_buffer=settings.ws_queue) as stream:
        hub.clients += 1
        try:
            async with anyio.create_task_group() as group:

                async def watch_client() -> None:
                    # Reading is how a disconnect is noticed; client messages carry no commands.
                    while (await websocket.receive())["type"] != "websocket.disconnect":
                        pass
                    group.cancel_scope.cancel()

                async def watch_shutdown() -> None:
                    await closing.wait()
                    group.cancel_scope.cancel()
                    try:
                        await websocket.close(code=1001, reason="server shutting down")
                    except Exception:  # already closed by the peer
                        pass

                group.start_soon(watch_client)
                group.start_soon(watch_shutdown)
                await _pump(websocket, stream, state, names)
                group.cancel_scope.cancel()
        finally:
            hub.clients -= 1


async def _pump(websocket: WebSocket, stream: Any, state: ServerState, names: list[str] | None) -> None:
    settings, hub = state.settings, state.hub
    try:
        await websocket.send_text(
            json.dumps(
                {
                    "topic": "ready",
                    "events": names,
                    "queue": settings.ws_queue,
                    "heartbeat": settings.ws_heartbeat,
                    "ts": time.time(),
                }
            )
        )
        while True:
            envelope = None
            with anyio.move_on_after(settings.ws_heartbeat):
                envelope = await stream.receive()
            dropped = stream.take_dropped()
            if dropped:
                hub.dropped_total += dropped
                await websocket.send_text(json.dumps({"topic": "dropped", "dropped": dropped, "ts": time.time()}))
            if envelope is None:
                await websocket.send_text(json.dumps({"topic": "heartbeat", "ts": time.time()}))
            else:
                await websocket.send_text(hub.encode(envelope))
    except (anyio.EndOfStream, anyio.ClosedResourceError):
        return
    except Exception as exc:
        # A send failing means the peer is gone (the ASGI server reports that in its own ways).
        log.debug("websocket client gone", error=repr(exc))


async def webhooks_list(request: Request) -> JSONResponse:
    """Webhook registrations with their last delivery status (secrets are never shown).
    ---
    summary: List webhooks
    responses:
      200:
        description: registrations
        content: {application/json: {schema: {type: object, required: [webhooks],
          properties: {webhooks: {type: array, items: {$ref: '#/components/schemas/Webhook'}}}}}}
    """
    state = _state(request)
    return JSONResponse({"webhooks": [_webhook_view(state, h) for h in state.webhooks.list()]})


async def webhooks_create(request: Request) -> JSONResponse:
    """Register a signed callback for some events (all events when ``events`` is empty).
    ---
    summary: Register a webhook
    requestBody:
      required: true
      content: {application/json: {schema: {type: object, required: [url], additionalProperties: false,
        properties: {url: {type: string, format: uri}, events: {type: array, items: {type: string}},
                     secret: {type: [string, 'null'], minLength: 16, maxLength: 256,
                              description: optional legacy HMAC-SHA256 shared secret (kept in the vault)},
                     description: {type: string, maxLength: 500}}}}}
    responses:
      201:
        description: the registration
        content: {application/json: {schema: {$ref: '#/components/schemas/Webhook'}}}
    """
    state = _state(request)
    spec = converter.structure(await json_object(request), WebhookSpec)
    validate_spec(spec, state.kernel.events)
    await state.dispatcher.policy.addresses(parse_webhook_url(spec.url))
    hook = state.webhooks.add(spec)
    state.dispatcher.start(hook)
    return JSONResponse(_webhook_view(state, hook), status_code=201)


async def webhooks_delete(request: Request) -> JSONResponse:
    """Remove a webhook named by ``id`` (path or body) or by ``url`` (body).
    ---
    summary: Remove a webhook
    requestBody:
      required: false
      content: {application/json: {schema: {type: object, additionalProperties: false,
        properties: {id: {type: string}, url: {type: string}}}}}
    responses:
      200:
        description: the removed registration
        content: {application/json: {schema: {type: object, required: [deleted],
          properties: {deleted: {$ref: '#/components/schemas/Webhook'}}}}}
    """
    state = _state(request)
    hook_id = request.path_params.get("id")
    if hook_id is None:
        body = await json_object(request)
        extra = set(body) - {"id", "url"}
        if extra or not ({"id", "url"} & set(body)):
            raise ComfyVNError(
                "name the webhook with 'id' or 'url'", field=sorted(extra)[0] if extra else "id", code="invalid_body"
            )
        for key in ("id", "url"):
            if key in body and not isinstance(body[key], str):
                raise ComfyVNError(f"{key} must be a string", field=key, code="invalid_body")
        hook_id = body["id"] if "id" in body else state.webhooks.find_url(body["url"]).id
    hook = state.webhooks.remove(hook_id)
    state.dispatcher.stop(hook.id)
    return JSONResponse({"deleted": hook.as_dict()})


async def pubkey(request: Request) -> JSONResponse:
    """The Ed25519 public key that verifies ``X-ComfyVN-Signature`` on webhook deliveries.
    ---
    summary: Webhook signing public key
    responses:
      200:
        description: key and signature format
        content: {application/json: {schema: {type: object, required: [algorithm, public_key, key_id],
          properties: {algorithm: {const: ed25519}, public_key: {type: string}, public_key_hex: {type: string},
                       key_id: {type: string}, signed_message: {type: string}}}}}
    """
    return JSONResponse(_state(request).signer.public_info())


def make_routes() -> list[Any]:
    return [
        Route("/api/modder/hooks", hooks_index, methods=["GET"]),
        Route("/api/modder/hooks/history", hooks_history, methods=["GET"]),
        Route("/api/modder/hooks/test", hooks_test, methods=["POST"]),
        Route("/api/modder/hooks/pubkey", pubkey, methods=["GET"]),
        Route("/api/modder/hooks/webhooks", webhooks_list, methods=["GET"]),
        Route("/api/modder/hooks/webhooks", webhooks_create, methods=["POST"]),
        Route("/api/modder/hooks/webhooks", webhooks_delete, methods=["DELETE"]),
        Route("/api/modder/hooks/webhooks/{id}", webhooks_delete, methods=["DELETE"]),
        WebSocketRoute("/api/modder/hooks/ws", hooks_ws),
    ]
