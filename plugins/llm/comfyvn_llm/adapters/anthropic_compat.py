"""Anthropic messages through the ``anthropic`` client (``x-api-key``, ``anthropic-version``, its event stream)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import anyio

from ..registry import Provider
from .base import ChatRequest, ChatResult, StreamEvent, sdk_error, tls_context, upstream, usage_of

__all__ = ["AnthropicAdapter"]

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024


class AnthropicAdapter:
    """System messages become ``system``; ``max_tokens`` is required by the API (1024 unless given)."""

    def __init__(self, provider: Provider, api_key: str | None, **_: Any) -> None:
        self.provider, self._key = provider, api_key
        # The documented messages protocol: ``x-api-key`` and a pinned ``anthropic-version``. Newer clients send
        # the key as a bearer token and a newer version by default; proxies and compatible servers expect these.
        headers: dict[str, Any] = {"anthropic-version": API_VERSION, **provider.headers}
        headers["x-api-key"] = api_key if api_key else anthropic.Omit()
        headers["Authorization"] = anthropic.Omit()  # never a bearer copy of the key
        self.client = anthropic.AsyncAnthropic(
            base_url=provider.base_url,
            api_key=None,
            timeout=provider.timeout,
            max_retries=provider.max_retries,
            default_headers=headers,
            http_client=anthropic.DefaultAsyncHttpxClient(verify=tls_context()),
        )

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        system = "\n\n".join(str(m["content"]) for m in request.messages if m.get("role") == "system")
        messages = [{"role": m["role"], "content": m["content"]} for m in request.messages if m.get("role") != "system"]
        body: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "max_tokens": int(request.params.get("max_tokens") or DEFAULT_MAX_TOKENS),
        }
        if system:
            body["system"] = system
        # Recent clients no longer take sampling keywords; the API still reads them from the body.
        sampling = {k: request.params[k] for k in ("temperature", "top_p") if request.params.get(k) is not None}
        if sampling:
            body["extra_body"] = sampling
        if request.params.get("stop"):
            stop = request.params["stop"]
            body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        return body

    async def chat(self, request: ChatRequest) -> ChatResult:
        try:
            answer = await self.client.messages.create(**self._body(request))
        except anthropic.AnthropicError as exc:
            raise sdk_error(self.provider, exc, [self._key]) from None
        text = "".join(getattr(block, "text", "") for block in answer.content if block.type == "text")
        return ChatResult(
            reply=text,
            model=answer.model,
            usage=usage_of(answer.usage.input_tokens, answer.usage.output_tokens),
            finish_reason=answer.stop_reason,
            raw=answer.model_dump(mode="json"),
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        parts: list[str] = []
        prompt = completion = 0
        stop: str | None = None
        finished = False
        model = request.model
        try:
            stream = await self.client.messages.create(**self._body(request), stream=True)
        except anthropic.AnthropicError as exc:
            raise sdk_error(self.provider, exc, [self._key]) from None
        try:
            async for event in stream:
                if event.type == "message_start":
                    model = event.message.model or model
                    prompt = event.message.usage.input_tokens
                    completion = event.message.usage.output_tokens
                elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                    parts.append(event.delta.text)
                    yield StreamEvent("delta", event.delta.text)
                elif event.type == "message_delta":
                    completion = event.usage.output_tokens
                    stop = event.delta.stop_reason or stop
                elif event.type == "message_stop":
                    finished = True
        except Exception as exc:  # an ``error`` event, or the transport's own error on a broken connection
            raise sdk_error(self.provider, exc, [self._key], midstream=True) from None
        finally:
            with anyio.CancelScope(shield=True):
                await stream.close()
        if not finished:
            raise upstream(
                self.provider,
                f"the stream from {self.provider.base_url} ended before message_stop",
                secrets=[self._key],
                reason="broken_stream",
            )
        yield StreamEvent("done", result=ChatResult("".join(parts), model, usage_of(prompt, completion), stop))

    async def models(self) -> list[str]:
        try:
            page = await self.client.models.list()
            return [m.id async for m in page]
        except anthropic.AnthropicError as exc:
            raise sdk_error(self.provider, exc, [self._key]) from None

    async def aclose(self) -> None:
        await self.client.close()
