"""The llm service of a kernel: resolve a provider, gate, call or stream through its adapter, emit events.

Nothing here knows HTTP or click. Events carry no message content unless ``enable_llm_debug_events`` is on;
logs never do. Keys are read from the vault at call time and handed only to the adapter's client.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
import weakref
from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING, Any

import anyio
import attrs
import structlog
from comfyvn.errors import ComfyVNError, FeatureDisabled, Invalid, Unprocessable

from .adapters import ChatRequest, ChatResult, StreamEvent, make_adapter
from .adapters.base import PARAMS
from .gate import check_gate, prompt_of
from .orchestrator import RoleBook
from .registry import Provider, Registry

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = [
    "DEBUG_FLAG",
    "EXTERNAL_FLAG",
    "PROXY_FLAG",
    "ROLES_FLAG",
    "LLMService",
    "service_for",
]

log = structlog.get_logger("comfyvn.llm")
PROXY_FLAG = "enable_llm_proxy"
EXTERNAL_FLAG = "enable_llm_external_providers"
ROLES_FLAG = "enable_llm_role_mapping"
DEBUG_FLAG = "enable_llm_debug_events"
MAX_MESSAGES, MAX_CONTENT = 500, 200_000
_ROLES = ("system", "user", "assistant")
HEALTH_TIMEOUT = 5.0
CANCELLED = ComfyVNError("the call was cancelled", code="cancelled", details={"reason": "cancelled"})


def check_messages(messages: Any, field: str = "messages") -> tuple[dict[str, str], ...]:
    """OpenAI-shaped messages ``[{role: system|user|assistant, content: str}]``, bounded; `Invalid` otherwise."""
    if not isinstance(messages, list) or not messages:
        raise Invalid(f"{field}: must be a non-empty list", field=field, code="invalid_messages")
    if len(messages) > MAX_MESSAGES:
        raise Invalid(f"{field}: at most {MAX_MESSAGES} messages", field=field, code="invalid_messages")
    checked: list[dict[str, str]] = []
    total = 0
    for index, message in enumerate(messages):
        where = f"{field}[{index}]"
        if not isinstance(message, dict) or set(message) - {"role", "content", "name"}:
            raise Invalid(f"{where}: must be {{role, content}}", field=where, code="invalid_messages")
        if message.get("role") not in _ROLES:
            raise Invalid(f"{where}.role: must be system, user or assistant", field=f"{where}.role")
        if not isinstance(message.get("content"), str):
            raise Invalid(f"{where}.content: must be a string", field=f"{where}.content")
        total += len(message["content"])
        checked.append({"role": message["role"], "content": message["content"]})
    if total > MAX_CONTENT:
        raise Invalid(f"{field}: at most {MAX_CONTENT} characters in all", field=field, code="too_large")
    if not any(m["content"].strip() for m in checked):
        # Nothing to answer: a provider would bill for (or invent) a reply to an empty prompt.
        raise Invalid(f"{field}: every message is empty; give a prompt", field=field, code="empty_prompt")
    return tuple(checked)


# Each sampling parameter's accepted range, as the OpenAI-compatible APIs define them: (low, high, low_open).
_RANGES: dict[str, tuple[float, float, bool]] = {
    "temperature": (0.0, 2.0, False),
    "top_p": (0.0, 1.0, True),
    "presence_penalty": (-2.0, 2.0, False),
    "frequency_penalty": (-2.0, 2.0, False),
}
MAX_TOKENS_LIMIT = 1_000_000


def _range_text(low: float, high: float, low_open: bool) -> str:
    return f"greater than {low:g} and at most {high:g}" if low_open else f"between {low:g} and {high:g}"


def check_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The sampling kwargs a caller may pass through: temperature (0-2), top_p (over 0, at most 1),
    presence_penalty and frequency_penalty (-2 to 2), max_tokens (1 to 1,000,000), seed, stop, response_format.
    `Invalid` naming the parameter and its range otherwise."""
    checked: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if key not in PARAMS:
            raise Invalid(f"{key}: unknown parameter", field=key, code="invalid_request")
        if key in _RANGES:
            low, high, low_open = _RANGES[key]
            number = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
            if not number or value > high or value < low or (low_open and value == low):
                raise Invalid(
                    f"{key}: must be a number {_range_text(low, high, low_open)}", field=key, code="invalid_request"
                )
        if key == "max_tokens" and (
            isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOKENS_LIMIT
        ):
            raise Invalid(
                f"{key}: must be an integer between 1 and {MAX_TOKENS_LIMIT:,}", field=key, code="invalid_request"
            )
        if key == "seed" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise Invalid(f"{key}: must be a positive integer", field=key, code="invalid_request")
        checked[key] = value
    return checked


class LLMService:
    """Calls through the registry for one kernel (see the module docstring)."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.registry = Registry(kernel.paths.config / "llm_registry.json", kernel.env)
        self.roles = RoleBook(kernel.paths.config / "llm_roles.json")

    # -- resolution ---------------------------------------------------------------------------------------
    def provider(self, registry_id: str | None) -> Provider:
        """The provider to call (``offline`` when none is named); external ones need the external flag."""
        provider = self.registry.get(registry_id or "offline")
        if provider.external and not self.kernel.flags.is_enabled(EXTERNAL_FLAG):
            raise FeatureDisabled(EXTERNAL_FLAG)
        return provider

    def describe(self, provider: Provider) -> dict[str, Any]:
        """``provider.to_wire()`` plus ``key_configured``: for one that needs a key, whether one is set (true,
        false, or null when the vault cannot be opened); null for one that needs none. Never the key."""
        wire = provider.to_wire()
        wire["key_configured"] = (
            self.registry.key_configured(provider, self.kernel.secrets) if provider.needs_key else None
        )
        return wire

    def _missing_key(self, provider: Provider) -> Unprocessable:
        return Unprocessable(
            f"provider {provider.id!r} needs an API key and none is configured; set it with "
            f"{self.registry.key_hint(provider)}",
            field="registry_id",
            code="api_key_missing",
            details={"provider": provider.id},
        )

    def _adapter(self, provider: Provider) -> Any:
        key = None if provider.adapter == "offline" else self.registry.api_key(provider, self.kernel.secrets)
        if key is None and provider.needs_key:
            raise self._missing_key(provider)
        return make_adapter(provider, key)

    def require_key(self, provider: Provider) -> None:
        """`Unprocessable` ``api_key_missing`` (naming the vault command) when ``provider`` needs a key and has
        none: refused before any network use, any gate or event."""
        if provider.needs_key and self.registry.key_configured(provider, self.kernel.secrets) is False:
            raise self._missing_key(provider)

    def prepare(
        self,
        registry_id: str | None,
        model: str | None,
        messages: Any,
        params: Mapping[str, Any],
        context: Mapping[str, Any] | None = None,
    ) -> tuple[Provider, ChatRequest]:
        """Validate a call: the provider, its defaults under the caller's params, a model (the provider's first
        when none is given)."""
        provider = self.provider(registry_id)
        self.require_key(provider)
        checked = check_messages(messages)
        chosen = model or provider.default_model
        if not chosen:
            raise Invalid(
                f"model: provider {provider.id!r} lists no models; name one", field="model", code="model_required"
            )
        merged = {**provider.defaults, **check_params(params)}
        return provider, ChatRequest(chosen, checked, merged, dict(context or {}))

    # -- events -------------------------------------------------------------------------------------------
    def _emit_request(self, call_id: str, provider: Provider, request: ChatRequest, stream: bool, extra: Any) -> None:
        payload: dict[str, Any] = {
            "call_id": call_id,
            "provider": provider.id,
            "adapter": provider.adapter,
            "model": request.model,
            "stream": stream,
            "messages": len(request.messages),
            **extra,
        }
        if self.kernel.flags.is_enabled(DEBUG_FLAG):
            payload["content"] = [dict(m) for m in request.messages]
        self.kernel.events.emit("on_llm_request", payload)

    def _emit_response(
        self,
        call_id: str,
        provider: Provider,
        request: ChatRequest,
        started: float,
        result: ChatResult | None,
        error: ComfyVNError | None,
        extra: Any,
    ) -> float:
        latency = round((time.perf_counter() - started) * 1000, 3)
        payload: dict[str, Any] = {
            "call_id": call_id,
            "provider": provider.id,
            "adapter": provider.adapter,
            "model": result.model if result else request.model,
            "ok": error is None,
            "latency_ms": latency,
            "usage": dict(result.usage) if result else None,
            "finish_reason": result.finish_reason if result else None,
            **extra,
        }
        if error is not None:
            payload["error"] = {"code": error.code, "reason": error.details.get("reason")}
        if result is not None and self.kernel.flags.is_enabled(DEBUG_FLAG):
            payload["content"] = result.reply
        self.kernel.events.emit("on_llm_response", payload)
        log.info(
            "llm.call",
            provider=provider.id,
            model=payload["model"],
            ok=error is None,
            latency_ms=latency,
            code=error.code if error else None,
        )
        return latency

    # -- calls --------------------------------------------------------------------------------------------
    def gate(
        self,
        provider: Provider,
        request: ChatRequest,
        gate: Mapping[str, Any],
        role: str | None,
        subject: str | None = None,
    ) -> Any:
        """Ask the ``llm_call_gate`` hooks (raises `comfyvn.errors.Blocked`). They judge ``subject`` when a caller
        that renders its own template gives one (the story's strings, not the template's wording and machine
        keys), else every message's content."""
        options = {**gate, "provider": provider.id, "model": request.model}
        if role:
            options["role"] = role
        return check_gate(self.kernel, prompt_of(request.messages) if subject is None else subject, options)

    async def call(
        self,
        provider: Provider,
        request: ChatRequest,
        *,
        gate: Mapping[str, Any] | None = None,
        role: str | None = None,
        subject: str | None = None,
    ) -> dict[str, Any]:
        """One whole reply: ``{reply, raw, usage, provider, adapter, model, finish_reason, latency_ms, gate}``."""
        verdict = await anyio.to_thread.run_sync(self.gate, provider, request, gate or {}, role, subject)
        call_id, extra = uuid.uuid4().hex, {"role": role} if role else {}
        self._emit_request(call_id, provider, request, False, extra)
        started = time.perf_counter()
        adapter = await anyio.to_thread.run_sync(self._adapter, provider)
        try:
            result = await adapter.chat(request)
        except ComfyVNError as exc:
            self._emit_response(call_id, provider, request, started, None, exc, extra)
            raise
        finally:
            await adapter.aclose()
        latency = self._emit_response(call_id, provider, request, started, result, None, extra)
        return {
            "reply": result.reply,
            "raw": dict(result.raw),
            "usage": dict(result.usage),
            "provider": provider.id,
            "adapter": provider.adapter,
            "model": result.model,
            "finish_reason": result.finish_reason,
            "latency_ms": latency,
            "gate": verdict,
            "call_id": call_id,
        }

    async def stream(
        self,
        provider: Provider,
        request: ChatRequest,
        *,
        gate: Mapping[str, Any] | None = None,
        role: str | None = None,
        subject: str | None = None,
    ) -> AsyncGenerator[StreamEvent, None]:
        """Deltas then ``done``. The gate runs before the first event, so a block is an error, not a stream."""
        await anyio.to_thread.run_sync(self.gate, provider, request, gate or {}, role, subject)
        return self._stream(provider, request, role)

    async def _stream(
        self, provider: Provider, request: ChatRequest, role: str | None
    ) -> AsyncGenerator[StreamEvent, None]:
        call_id, extra = uuid.uuid4().hex, {"role": role} if role else {}
        self._emit_request(call_id, provider, request, True, extra)
        started = time.perf_counter()
        adapter = await anyio.to_thread.run_sync(self._adapter, provider)
        result: ChatResult | None = None
        failed = False
        try:
            async for event in adapter.stream(request):
                if event.kind == "done":
                    result = event.result
                yield event
        except ComfyVNError as exc:
            failed = True
            self._emit_response(call_id, provider, request, started, None, exc, extra)
            raise
        finally:
            with anyio.CancelScope(shield=True):  # closing must finish even while the caller is cancelled
                await adapter.aclose()
            if result is None and not failed:
                # The consumer went away (a client disconnect, Ctrl-C): say so on the bus; no usage is known.
                self._emit_response(call_id, provider, request, started, None, CANCELLED, extra)
        self._emit_response(call_id, provider, request, started, result, None, extra)

    async def models(self, provider: Provider) -> list[str]:
        """The models the provider's server lists."""
        adapter = await anyio.to_thread.run_sync(self._adapter, provider)
        try:
            found: list[str] = await adapter.models()
            return found
        finally:
            await adapter.aclose()

    async def health(self) -> list[dict[str, Any]]:
        """Every provider probed concurrently: ``{id, adapter, base_url, requires_key, key_configured, status:
        ok|unreachable|error|disabled|no_key, reachable, models, latency_ms, message?}``; external ones are not
        probed while their flag is off, nor one that needs a key and has none (``no_key``)."""
        providers = self.registry.all()
        answers: dict[str, dict[str, Any]] = {}
        external_on = self.kernel.flags.is_enabled(EXTERNAL_FLAG)

        async def probe(provider: Provider) -> None:
            entry: dict[str, Any] = {
                "id": provider.id,
                "adapter": provider.adapter,
                "base_url": provider.base_url,
                "requires_key": provider.needs_key,
                "key_configured": (
                    await anyio.to_thread.run_sync(self.registry.key_configured, provider, self.kernel.secrets)
                    if provider.needs_key
                    else None
                ),
            }
            if provider.external and not external_on:
                answers[provider.id] = {**entry, "status": "disabled", "reachable": None, "models": []}
                return
            if entry["key_configured"] is False:
                # Probing a hosted API without a key only spends a round trip to learn it says 401.
                answers[provider.id] = {
                    **entry,
                    "status": "no_key",
                    "reachable": None,
                    "models": [],
                    "message": self._missing_key(provider).message,
                }
                return
            started = time.perf_counter()
            try:
                with anyio.fail_after(min(provider.timeout, HEALTH_TIMEOUT) + 1):
                    found = await self.models(_probe_copy(provider))
                answers[provider.id] = {**entry, "status": "ok", "reachable": True, "models": found}
            except ComfyVNError as exc:
                reason = exc.details.get("reason")
                status = "unreachable" if reason in ("unreachable", "timeout") else "error"
                answers[provider.id] = {
                    **entry,
                    "status": status,
                    "reachable": status != "unreachable",
                    "models": [],
                    "message": exc.message,
                }
            except TimeoutError:
                answers[provider.id] = {**entry, "status": "unreachable", "reachable": False, "models": []}
            answers[provider.id]["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)

        async with anyio.create_task_group() as group:
            for provider in providers:
                group.start_soon(probe, provider)
        return [answers[p.id] for p in providers]


def _probe_copy(provider: Provider) -> Provider:
    return attrs.evolve(provider, timeout=min(provider.timeout, HEALTH_TIMEOUT), max_retries=0)


_SERVICES: weakref.WeakKeyDictionary[Kernel, LLMService] = weakref.WeakKeyDictionary()
_SERVICES_LOCK = threading.Lock()


def service_for(kernel: Kernel) -> LLMService:
    """The service of ``kernel`` (one per kernel, so runtime adapters live as long as it does)."""
    with _SERVICES_LOCK:
        service = _SERVICES.get(kernel)
        if service is None:
            service = _SERVICES[kernel] = LLMService(kernel)
        return service
