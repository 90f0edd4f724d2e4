"""What every adapter takes and gives, and the error translation they share.

A provider's failure becomes `UpstreamError` (HTTP 502, CLI exit 1) carrying the provider's own message with
every known secret replaced by ``[redacted]``; an unreachable server names the URL that failed.
"""

from __future__ import annotations

import functools
import re
import ssl
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, Protocol

import attrs
from comfyvn.errors import UpstreamError, clip

from ..registry import Provider

__all__ = [
    "PARAMS",
    "Adapter",
    "ChatRequest",
    "ChatResult",
    "StreamEvent",
    "redact",
    "tls_context",
    "upstream",
    "usage_of",
]

#: The sampling parameters a call may carry (the service checks them; adapters pass on what they support).
PARAMS = (
    "temperature",
    "top_p",
    "max_tokens",
    "stop",
    "response_format",
    "seed",
    "presence_penalty",
    "frequency_penalty",
)

_KEYLIKE = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|sk-ant-[A-Za-z0-9_\-]{8,}|Bearer\s+[A-Za-z0-9_\-.=]{8,})")


@attrs.frozen
class ChatRequest:
    """One chat call: OpenAI-shaped ``messages``, sampling ``params`` (temperature, top_p, max_tokens, stop,
    response_format) and the structured ``context`` (scene, speaker, last_lines, role) the offline adapter uses."""

    model: str
    messages: tuple[Mapping[str, str], ...]
    params: Mapping[str, Any] = attrs.field(factory=dict)
    context: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class ChatResult:
    """A finished reply. ``usage``: prompt_tokens, completion_tokens, total_tokens (as the provider counted)."""

    reply: str
    model: str
    usage: Mapping[str, int]
    finish_reason: str | None
    raw: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class StreamEvent:
    """``delta`` events carry text; the last event is ``done`` with the whole `ChatResult`."""

    kind: str
    text: str = ""
    result: ChatResult | None = None


class Adapter(Protocol):
    provider: Provider

    async def chat(self, request: ChatRequest) -> ChatResult: ...

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]: ...

    async def models(self) -> list[str]: ...

    async def aclose(self) -> None: ...


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every client: building one loads the CA bundle, which costs more than the
    whole call to a local server (about 100 ms on a loaded machine), and clients are made per call."""
    return ssl.create_default_context()


def usage_of(prompt: int | None, completion: int | None) -> dict[str, int]:
    """Usage in the OpenAI shape from two counts (a missing count is 0)."""
    p, c = int(prompt or 0), int(completion or 0)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with each secret (and anything shaped like a bearer token or ``sk-`` key) replaced."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return _KEYLIKE.sub("[redacted]", text)


def provider_message(body: Any, fallback: str) -> str:
    """The human message inside an error body: ``{"error": {"message"}}``, ``{"error": "..."}``, ``{"message"}``."""
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return fallback


def upstream(
    provider: Provider,
    what: str,
    *,
    secrets: Iterable[str | None] = (),
    status: int | None = None,
    reason: str = "provider_error",
) -> UpstreamError:
    """The 502 for a provider failure: ``llm <id>: <what>`` with secrets redacted; details name the provider."""
    message = redact(f"llm provider {provider.id!r}: {what}", [*secrets, *provider.headers.values()])
    details: dict[str, Any] = {"provider": provider.id, "reason": reason}
    if status is not None:
        details["status"] = status
    return UpstreamError(clip(message, 400), field="registry_id", code="llm_upstream_error", details=details)


def sdk_error(
    provider: Provider, exc: BaseException, secrets: Iterable[str | None], *, midstream: bool = False
) -> UpstreamError:
    """Translate an exception of the ``openai`` or ``anthropic`` client (same class names) or httpx.
    ``midstream``: the answer had begun, so a connection error means the server broke off, not that it is down."""
    name = type(exc).__name__
    if midstream and not isinstance(getattr(exc, "status_code", None), int):
        return upstream(
            provider,
            f"the connection to {provider.base_url} broke off mid-answer ({name})",
            secrets=secrets,
            reason="broken_stream",
        )
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        message = provider_message(getattr(exc, "body", None), getattr(exc, "message", str(exc)))
        return upstream(provider, f"HTTP {status}: {message}", secrets=secrets, status=status, reason="http_status")
    if "Timeout" in name:
        return upstream(
            provider,
            f"no answer from {provider.base_url} within {provider.timeout:g}s",
            secrets=secrets,
            reason="timeout",
        )
    if "Connection" in name or "ConnectError" in name:
        return upstream(provider, f"cannot reach {provider.base_url}", secrets=secrets, reason="unreachable")
    return upstream(
        provider,
        f"the connection to {provider.base_url} failed mid-answer ({name})",
        secrets=secrets,
        reason="broken_stream",
    )
