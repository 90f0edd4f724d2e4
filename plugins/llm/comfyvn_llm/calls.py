"""A call as the REST routes and the CLI describe it: parse the body, resolve a role's plan, then call or stream.

Shared by both surfaces so they accept the same fields and answer the same shapes.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any

import attrs
from comfyvn.errors import Invalid

from .adapters import ChatRequest, StreamEvent
from .orchestrator import check_role
from .registry import Provider
from .service import ROLES_FLAG, LLMService

__all__ = ["CallSpec", "parse_call", "prepare_call"]

_FIELDS = {"registry_id", "model", "messages", "context", "gate", "stream", "role", "scene_id", "dry_run"}


@attrs.frozen
class CallSpec:
    """A parsed call body; ``params`` are the pass-through kwargs (temperature, max_tokens…).

    ``subject``: what the call gates judge instead of the messages, for callers that render their own template
    around story text (a prompt pack); never read from a request body, so an HTTP caller cannot choose it.
    """

    messages: Any
    registry_id: str | None = None
    model: str | None = None
    context: Mapping[str, Any] = attrs.field(factory=dict)
    gate: Mapping[str, Any] = attrs.field(factory=dict)
    stream: bool = False
    role: str | None = None
    scene_id: str | None = None
    dry_run: bool = False
    params: Mapping[str, Any] = attrs.field(factory=dict)
    subject: str | None = None


def _string(body: Mapping[str, Any], key: str, limit: int = 200) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise Invalid(f"{key}: must be a string of 1-{limit} characters", field=key, code="invalid_request")
    return value


def _object(body: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(f"{key}: must be an object", field=key, code="invalid_request")
    return value


def _flag(body: Mapping[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise Invalid(f"{key}: must be true or false", field=key, code="invalid_request")
    return value


def parse_call(body: Any) -> CallSpec:
    """A `CallSpec` from a JSON body; every unknown top-level key is a pass-through param (checked later)."""
    if not isinstance(body, dict):
        raise Invalid("body: must be a JSON object", field="body", code="invalid_request")
    if "messages" not in body:
        raise Invalid("messages: required", field="messages", code="invalid_messages")
    return CallSpec(
        messages=body["messages"],
        registry_id=_string(body, "registry_id", 64),
        model=_string(body, "model"),
        context=_object(body, "context"),
        gate=_object(body, "gate"),
        stream=_flag(body, "stream"),
        role=None if body.get("role") is None else check_role(body.get("role")),
        scene_id=_string(body, "scene_id"),
        dry_run=_flag(body, "dry_run"),
        params={k: v for k, v in body.items() if k not in _FIELDS},
    )


def prepare_call(service: LLMService, spec: CallSpec) -> tuple[Provider, ChatRequest, dict[str, Any] | None]:
    """The provider and request to send, and a role's plan (None without a role). With a role, the role's
    assignment (or the scene's pinned session) picks the provider and model, and its budget shapes messages."""
    if spec.role is None:
        provider, request = service.prepare(spec.registry_id, spec.model, spec.messages, spec.params, spec.context)
        return provider, request, None
    service.kernel.flags.require(ROLES_FLAG)
    if spec.registry_id is not None or spec.model is not None:
        raise Invalid("role: a role call takes its provider and model from the role", field="role")
    from .service import check_messages, check_params

    messages = check_messages(spec.messages)
    plan = service.roles.plan(spec.role, spec.scene_id, messages, check_params(spec.params), pin=not spec.dry_run)
    provider, request = service.prepare(
        plan.provider, plan.model, [dict(m) for m in plan.messages], plan.params, {"role": spec.role, **spec.context}
    )
    wire = plan.to_wire()
    wire.update(adapter=provider.adapter, base_url=provider.base_url, params=dict(request.params))
    return provider, request, wire


async def run_call(service: LLMService, spec: CallSpec) -> dict[str, Any]:
    """A whole reply (or, with ``dry_run``, the plan and gate verdict without calling)."""
    provider, request, plan = prepare_call(service, spec)
    if spec.dry_run:
        import anyio

        verdict = await anyio.to_thread.run_sync(service.gate, provider, request, spec.gate, spec.role, spec.subject)
        preview = plan or {
            "provider": provider.id,
            "adapter": provider.adapter,
            "base_url": provider.base_url,
            "model": request.model,
            "messages": [dict(m) for m in request.messages],
            "params": dict(request.params),
        }
        return {"ok": True, "dry_run": True, "plan": preview, "gate": verdict}
    answer = await service.call(provider, request, gate=spec.gate, role=spec.role, subject=spec.subject)
    if plan is not None:
        answer["plan"] = {k: plan[k] for k in ("role", "scene_id", "sticky", "budget")}
    return {"ok": True, **answer}


async def stream_call(
    service: LLMService, spec: CallSpec
) -> tuple[AsyncGenerator[StreamEvent, None], dict[str, Any] | None]:
    """The event stream of a call (the gate has answered by the time this returns) and a role's plan."""
    provider, request, plan = prepare_call(service, spec)
    events = await service.stream(provider, request, gate=spec.gate, role=spec.role, subject=spec.subject)
    return events, plan
