"""HTTP surface of the advisory plugin: parse → `service` → JSON. Plain Starlette routes.

Canonical paths live under ``/api/advisory/…`` (writes need ``advisory.write``); the original product's
``/api/policy/enforce`` and ``/api/policy/audit`` stay as aliases of the same handlers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from comfyvn.errors import Invalid
from comfyvn.wire import parse_request, read_json
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from . import service
from .audit import Liability
from .wire import AckRequest, EnforceRequest

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["make_routes"]


def _limit(raw: str | None) -> int:
    if raw is None:
        return 25
    if not raw.isdigit() or not 1 <= int(raw) <= service.MAX_AUDIT_LIMIT:
        raise Invalid(f"limit must be 1 to {service.MAX_AUDIT_LIMIT}", field="limit", code="invalid_request")
    return int(raw)


def make_routes(kernel: Kernel) -> list[Route]:
    """The advisory routes bound to ``kernel``."""

    async def enforce(request: Request) -> JSONResponse:
        """Run every scanner for an action and decide (feature flag enable_policy_enforcer).
        ---
        summary: Enforce the policy for an action
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [action]
                additionalProperties: false
                properties:
                  action: {type: string, description: "export.renpy, publish.renpy, import.chat, …"}
                  bundle: {type: object, description: "free-form; bundle.project (or project_id) names a store project"}
                  override: {type: boolean, default: false, description: "let blocking findings through (needs the
                    liability acknowledgement; recorded)"}
        responses:
          200: {description: "{ok, action, project, allow: true, counts{info, warn, block}, findings[{level, code,
                message, where, scanner}], blocked, warnings, override, overridden, gate, log_path, timestamp}"}
          400: {description: invalid input}
          403: {description: enable_policy_enforcer is off}
          404: {description: no such project}
          423: {description: "a finding blocks, or a publish lacks the liability acknowledgement (error.result)"}
        """
        req = parse_request(await read_json(request), EnforceRequest)
        result = await run_in_threadpool(
            service.enforce_action, kernel, req.action, req.project_id(), req.bundle or {}, req.override, "api"
        )
        return JSONResponse(service.raise_if_blocked(result))

    async def audit(request: Request) -> JSONResponse:
        """The latest enforcement decisions and a summary; export=1 also writes a JSON report.
        ---
        summary: Policy audit trail
        parameters:
          - {name: limit, in: query, required: false, schema: {type: integer, minimum: 1, maximum: 1000, default: 25}}
          - {name: export, in: query, required: false, schema: {enum: ["0", "1"]}}
        responses:
          200: {description: "{ok, events[], summary{total, allowed, blocked, by_action, findings}, log_path,
                report_path?}"}
          400: {description: invalid limit or export}
        """
        params = request.query_params
        if unknown := sorted(set(params) - {"limit", "export"}):
            raise Invalid(f"unknown parameter {unknown[0]!r}", field=unknown[0], code="unknown_field")
        export = params.get("export", "0")
        if export not in ("0", "1"):
            raise Invalid("export must be 0 or 1", field="export", code="invalid_request")
        limit = _limit(params.get("limit"))
        return JSONResponse(await run_in_threadpool(service.audit, kernel, limit, export == "1"))

    async def disclaimer(request: Request) -> JSONResponse:
        """The liability terms and whether this installation acknowledged them.
        ---
        summary: Liability acknowledgement status
        responses:
          200: {description: "{ok, acknowledged, user, notes, acknowledged_at, terms_version, terms}"}
        """
        status = await run_in_threadpool(Liability(kernel.paths.config).status)
        return JSONResponse({"ok": True, **status})

    async def ack(request: Request) -> JSONResponse:
        """Acknowledge the liability terms once for this installation (before the first publish).
        ---
        summary: Acknowledge the liability terms
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [user, accept]
                additionalProperties: false
                properties:
                  user: {type: string}
                  accept: {const: true}
                  notes: {type: string}
        responses:
          200: {description: "{ok, acknowledged: true, user, notes, acknowledged_at, terms_version, terms}"}
          400: {description: invalid input, or accept is not true}
        """
        req = parse_request(await read_json(request), AckRequest)
        if not req.accept:
            raise Invalid("accept must be true to acknowledge the terms", field="accept", code="invalid_request")
        return JSONResponse(await run_in_threadpool(service.acknowledge, kernel, req.user, req.notes))

    return [
        Route("/api/advisory/enforce", enforce, methods=["POST"], name="advisory_enforce"),
        Route("/api/advisory/audit", audit, methods=["GET"], name="advisory_audit"),
        Route("/api/advisory/disclaimer", disclaimer, methods=["GET"], name="advisory_disclaimer"),
        Route("/api/advisory/ack", ack, methods=["POST"], name="advisory_ack"),
        # The original product's paths, as aliases of the same handlers.
        Route("/api/policy/enforce", enforce, methods=["POST"]),
        Route("/api/policy/audit", audit, methods=["GET"]),
    ]
