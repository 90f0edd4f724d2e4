"""HTTP surface of the llm plugin: parse → `service` / `calls` → JSON, or Server-Sent Events for a streamed chat.

Every route needs ``enable_llm_proxy``; ``/roles`` and ``/assign`` also ``enable_llm_role_mapping``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import attrs
from comfyvn.errors import ComfyVNError, Invalid
from comfyvn.wire import read_json
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .calls import parse_call, run_call, stream_call
from .orchestrator import parse_assignment
from .service import EXTERNAL_FLAG, PROXY_FLAG, ROLES_FLAG, LLMService, service_for

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["make_routes", "sse"]


def sse(event: str, data: Any) -> bytes:
    """One Server-Sent Event frame."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def make_routes(kernel: Kernel) -> list[Route]:
    """The ``/api/llm/*`` routes bound to ``kernel``."""

    def service() -> LLMService:
        kernel.flags.require(PROXY_FLAG)
        return service_for(kernel)

    async def registry(request: Request) -> JSONResponse:
        """Every provider: id, adapter, base_url, models, tags, defaults, timeout, external, requires_key and
        key_configured (whether the key it needs is set; never the key).
        ---
        summary: LLM provider registry
        responses:
          200: {description: "{ok, default: offline, external_enabled, providers[]}"}
        """
        svc = service()
        providers = await run_in_threadpool(lambda: [svc.describe(p) for p in svc.registry.all()])
        return JSONResponse(
            {
                "ok": True,
                "default": "offline",
                "external_enabled": kernel.flags.is_enabled(EXTERNAL_FLAG),
                "providers": providers,
            }
        )

    async def add_runtime(request: Request) -> JSONResponse:
        """Register a temporary adapter (in memory, until removed or the server stops).
        ---
        summary: Add a runtime LLM provider
        responses:
          200: {description: "{ok, provider}"}
          400: {description: invalid provider (a key in it is refused: keys live in the vault)}
          409: {description: the id exists}
        """
        svc = service()
        provider = svc.registry.add_runtime(await read_json(request))
        return JSONResponse({"ok": True, "provider": provider.to_wire()})

    async def remove_runtime(request: Request) -> JSONResponse:
        """Remove a runtime adapter.
        ---
        summary: Remove a runtime LLM provider
        responses:
          200: {description: "{ok, removed: true, provider}"}
          404: {description: not a runtime provider}
        """
        provider = service().registry.remove_runtime(request.path_params["provider_id"])
        return JSONResponse({"ok": True, "removed": True, "provider": provider.to_wire()})

    async def test_call(request: Request) -> JSONResponse:
        """One whole reply: ``{registry_id?, model?, messages, context?, gate?, ...kwargs}`` → ``{reply, raw, usage}``.
        ---
        summary: LLM test call
        responses:
          200: {description: "{ok, reply, raw, usage, provider, adapter, model, finish_reason, latency_ms, gate}"}
          400: {description: invalid input}
          403: {description: a flag is off (enable_llm_proxy, enable_llm_external_providers)}
          422: {description: "api_key_missing: the provider needs a key and none is set (named: the vault command)"}
          423: {description: "a call gate blocked it (error.ack_token, error.blocked_by)"}
          502: {description: the provider failed (its message, keys redacted)}
        """
        svc = service()
        spec = parse_call(await read_json(request))
        return JSONResponse(await run_call(svc, spec))

    async def chat(request: Request) -> Response:
        """Chat through a provider or a role; ``stream: true`` answers Server-Sent Events.
        ---
        summary: LLM chat
        description: "Events: delta {text}; done {reply, usage, model, finish_reason, provider}; error {error}."
        responses:
          200: {description: "JSON like test-call, or text/event-stream"}
          413: {description: "a role's budget refused the prompt (error.budget)"}
          422: {description: "api_key_missing: the provider needs a key and none is set"}
          423: {description: a call gate blocked it}
          502: {description: the provider failed before the stream began}
        """
        svc = service()
        spec = parse_call(await read_json(request))
        if not spec.stream or spec.dry_run:
            return JSONResponse(await run_call(svc, spec))
        events, plan = await stream_call(svc, spec)

        async def frames() -> AsyncIterator[bytes]:
            if plan is not None:
                yield sse("plan", {k: plan[k] for k in ("role", "scene_id", "provider", "model", "sticky", "budget")})
            try:
                async for event in events:
                    if event.kind == "delta":
                        yield sse("delta", {"text": event.text})
                    elif event.result is not None:
                        result = event.result
                        yield sse(
                            "done",
                            {
                                "reply": result.reply,
                                "usage": dict(result.usage),
                                "model": result.model,
                                "finish_reason": result.finish_reason,
                                "provider": spec.registry_id or (plan or {}).get("provider") or "offline",
                            },
                        )
            except ComfyVNError as exc:  # the status line is already sent: the error travels as an event
                yield sse("error", exc.to_dict())
            finally:
                await events.aclose()

        return StreamingResponse(frames(), media_type="text/event-stream", headers={"cache-control": "no-store"})

    async def roles(request: Request) -> JSONResponse:
        """Role assignments (provider, model, budget) and the sticky sessions per scene.
        ---
        summary: LLM roles
        responses:
          200: {description: "{ok, roles{role: {provider, model, budget_tokens, over_budget, params}}, sessions}"}
        """
        svc = service()
        kernel.flags.require(ROLES_FLAG)
        assignments = await run_in_threadpool(svc.roles.assignments)
        sessions = await run_in_threadpool(svc.roles.sessions)
        return JSONResponse(
            {"ok": True, "roles": {r: a.to_wire() for r, a in assignments.items()}, "sessions": sessions}
        )

    async def assign(request: Request) -> JSONResponse:
        """Assign a role: ``{role, provider?, model?, budget_tokens?, over_budget?, params?, reset_sessions?}``.
        ---
        summary: Assign an LLM role
        responses:
          200: {description: "{ok, assignment}"}
          404: {description: unknown provider}
        """
        svc = service()
        kernel.flags.require(ROLES_FLAG)
        body = await read_json(request)
        if not isinstance(body, dict):
            raise Invalid("body: must be a JSON object", field="body")
        reset = body.pop("reset_sessions", False)
        if not isinstance(reset, bool):
            raise Invalid("reset_sessions: must be true or false", field="reset_sessions")
        assignment = parse_assignment(body)
        provider = await run_in_threadpool(svc.registry.get, assignment.provider)
        if "model" not in body:
            if provider.default_model is None:
                raise Invalid(f"model: provider {provider.id!r} lists no models; name one", field="model")
            assignment = attrs.evolve(assignment, model=provider.default_model)
        stored = await run_in_threadpool(lambda: svc.roles.assign(assignment, reset_sessions=reset))
        return JSONResponse({"ok": True, "assignment": stored.to_wire()})

    async def health(request: Request) -> JSONResponse:
        """Each provider probed (model listing, a 5 s limit): reachable, models, latency.
        ---
        summary: LLM provider health
        responses:
          200: {description: "{ok, providers[{id, adapter, base_url, requires_key, key_configured, status:
                ok|unreachable|error|disabled|no_key, reachable, models, latency_ms?, message?}]}"}
        """
        svc = service()
        return JSONResponse({"ok": True, "providers": await svc.health()})

    return [
        Route("/api/llm/registry", registry, methods=["GET"], name="llm_registry"),
        Route("/api/llm/runtime", add_runtime, methods=["POST"], name="llm_runtime_add"),
        Route("/api/llm/runtime/{provider_id}", remove_runtime, methods=["DELETE"], name="llm_runtime_remove"),
        Route("/api/llm/test-call", test_call, methods=["POST"], name="llm_test_call"),
        Route("/api/llm/chat", chat, methods=["POST"], name="llm_chat"),
        Route("/api/llm/roles", roles, methods=["GET"], name="llm_roles"),
        Route("/api/llm/assign", assign, methods=["POST"], name="llm_assign"),
        Route("/api/llm/health", health, methods=["GET"], name="llm_health"),
    ]
