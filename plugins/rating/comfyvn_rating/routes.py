"""HTTP surface of the rating plugin (wire doc "Rating"): parse → `service` → JSON. Plain Starlette routes.

Every route needs ``enable_rating_api`` (403 ``feature_disabled`` when it is off).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from comfyvn.wire import parse_request, read_json
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .service import API_FLAG, RatingService
from .wire import AckRequest, ClassifyRequest, ModeRequest, OverrideRequest

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["make_routes"]


def make_routes(kernel: Kernel) -> list[Route]:
    """The ``/api/rating/*`` routes bound to ``kernel``."""

    def service() -> RatingService:
        kernel.flags.require(API_FLAG)
        return RatingService(kernel)

    async def matrix(request: Request) -> JSONResponse:
        """The E/T/M/Adult keyword and tag matrix, precedence, default and the current mode.
        ---
        summary: Rating matrix
        responses:
          200: {description: "{ok, levels, precedence, default: T, mode, modes, matrix{level: {keywords, tags, nsfw,
                description}}}"}
          403: {description: enable_rating_api is off}
        """
        svc = service()
        return JSONResponse(await run_in_threadpool(svc.matrix))

    async def classify(request: Request) -> JSONResponse:
        """Rate an item (or, with project, a store project as a whole) and decide under the mode.
        ---
        summary: Classify and gate
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [item_id]
                additionalProperties: false
                properties:
                  item_id: {type: string, description: "stable id; project:<id> with project"}
                  payload: {type: object, description: "{text, title, description, summary, prompt, tags, meta}"}
                  mode: {enum: [sfw, warn, unrestricted], description: "default: the installation's mode"}
                  acknowledged: {type: boolean, default: false}
                  action: {type: string, default: generic}
                  ack_token: {type: string}
                  project: {type: string, description: "a store project id: rate every scene, node, card, lore entry"}
        responses:
          200: {description: "{ok, item_id, rating{rating, confidence, nsfw, reasons, matched, source}, mode, allowed,
                requires_ack, ack_token, ack_status: not_required|issued|pending|verified, project?{drivers, ...}}"}
          400: {description: invalid input; error.field names it}
          404: {description: no such project}
        """
        req = parse_request(await read_json(request), ClassifyRequest)
        return JSONResponse(await run_in_threadpool(service().classify_request, req))

    async def list_overrides(request: Request) -> JSONResponse:
        """Every reviewer override, newest first.
        ---
        summary: List rating overrides
        responses:
          200: {description: "{ok, overrides[{item_id, rating, reviewer, reason, scope, timestamp}]}"}
        """
        svc = service()
        found = await run_in_threadpool(svc.store.overrides)
        listed = sorted(found.values(), key=lambda o: (-o.timestamp, o.item_id))
        return JSONResponse({"ok": True, "overrides": [o.to_wire() for o in listed]})

    async def put_override(request: Request) -> JSONResponse:
        """Pin an item's rating (sticky across restarts; wins over every classifier).
        ---
        summary: Pin a rating override
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [item_id, rating, reviewer, reason]
                additionalProperties: false
                properties:
                  item_id: {type: string}
                  rating: {enum: [E, T, M, Adult]}
                  reviewer: {type: string}
                  reason: {type: string}
                  scope: {type: string, default: asset}
        responses:
          200: {description: "{ok, override, rating}"}
          400: {description: invalid input}
        """
        svc = service()
        req = parse_request(await read_json(request), OverrideRequest)
        record = await run_in_threadpool(svc.put_override, req.item_id, req.rating, req.reviewer, req.reason, req.scope)
        return JSONResponse({"ok": True, "override": record.to_wire(), "rating": record.to_result().to_wire()})

    async def delete_override(request: Request) -> JSONResponse:
        """Remove the override of an item; its rating goes back to the classifier.
        ---
        summary: Remove a rating override
        responses:
          200: {description: "{ok, removed: true, override}"}
          404: {description: no override for the item}
        """
        record = await run_in_threadpool(service().delete_override, request.path_params["item_id"])
        return JSONResponse({"ok": True, "removed": True, "override": record.to_wire()})

    async def ack(request: Request) -> JSONResponse:
        """Record who acknowledged a token (its rating gate then lets the item through with that token).
        ---
        summary: Acknowledge a rating token
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [token, user]
                additionalProperties: false
                properties:
                  token: {type: string}
                  user: {type: string}
                  notes: {type: string}
        responses:
          200: {description: "{ok, ack{token, item_id, action, rating, issued_at, acknowledged_at, user, notes, status,
                already_acknowledged}}"}
          404: {description: unknown token}
        """
        req = parse_request(await read_json(request), AckRequest)
        entry = await run_in_threadpool(service().acknowledge, req.token, req.user, req.notes)
        return JSONResponse({"ok": True, "ack": entry})

    async def acks(request: Request) -> JSONResponse:
        """Every acknowledgement token, newest first, with its status (issued or verified).
        ---
        summary: Acknowledgement tokens
        responses:
          200: {description: "{ok, acks[]}"}
        """
        svc = service()
        return JSONResponse({"ok": True, "acks": await run_in_threadpool(svc.store.acks)})

    async def get_mode(request: Request) -> JSONResponse:
        """The installation's rating mode and where it comes from.
        ---
        summary: Rating mode
        responses:
          200: {description: "{ok, mode, modes, source: env|settings}"}
        """
        svc = service()
        return JSONResponse(await run_in_threadpool(svc.describe_mode))

    async def set_mode(request: Request) -> JSONResponse:
        """Set the installation's rating mode (COMFYVN_RATING_MODE, when set, still wins).
        ---
        summary: Set the rating mode
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [mode]
                additionalProperties: false
                properties:
                  mode: {enum: [sfw, warn, unrestricted]}
        responses:
          200: {description: "{ok, mode, modes, source: env|settings}"}
          400: {description: not a mode}
        """
        svc = service()
        req = parse_request(await read_json(request), ModeRequest)
        return JSONResponse(await run_in_threadpool(svc.set_mode, req.mode))

    return [
        Route("/api/rating/matrix", matrix, methods=["GET"], name="rating_matrix"),
        Route("/api/rating/classify", classify, methods=["POST"], name="rating_classify"),
        Route("/api/rating/overrides", list_overrides, methods=["GET"], name="rating_overrides"),
        Route("/api/rating/overrides", put_override, methods=["POST"], name="rating_override_put"),
        Route("/api/rating/overrides/{item_id:path}", delete_override, methods=["DELETE"], name="rating_override"),
        Route("/api/rating/ack", ack, methods=["POST"], name="rating_ack"),
        Route("/api/rating/acks", acks, methods=["GET"], name="rating_acks"),
        Route("/api/rating/mode", get_mode, methods=["GET"], name="rating_mode"),
        Route("/api/rating/mode", set_mode, methods=["POST"], name="rating_mode_set"),
    ]
