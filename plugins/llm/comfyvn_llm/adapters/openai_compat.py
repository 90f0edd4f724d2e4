"""OpenAI-compatible servers (OpenAI, OpenRouter, LM Studio, llama.cpp, vLLM, KoboldCpp) through the ``openai``
client: its retries (429/5xx, with backoff and ``Retry-After``), timeouts and SSE parsing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import openai

from ..registry import Provider
from .base import PARAMS, ChatRequest, ChatResult, StreamEvent, sdk_error, tls_context, upstream, usage_of

__all__ = ["OpenAIAdapter"]

# Sent when no key is configured: local servers ignore the key, but the openai client refuses to start
# without one. It grants nothing, so it is not a secret.
NO_KEY = "comfyvn-no-key"


class OpenAIAdapter:
    """Chat, streaming (``stream_options.include_usage``) and model listing for OpenAI-compatible servers."""

    def __init__(self, provider: Provider, api_key: str | None, **_: Any) -> None:
        self.provider, self._key = provider, api_key
        self.client = openai.AsyncOpenAI(
            base_url=provider.base_url,
            api_key=api_key or NO_KEY,
            timeout=provider.timeout,
            max_retries=provider.max_retries,
            default_headers=dict(provider.headers) or None,
            http_client=openai.DefaultAsyncHttpxClient(verify=tls_context()),
        )

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        params = {k: request.params[k] for k in PARAMS if request.params.get(k) is not None}
        return {"model": request.model, "messages": [dict(m) for m in request.messages], **params}

    async def chat(self, request: ChatRequest) -> ChatResult:
        try:
            answer = await self.client.chat.completions.create(**self._body(request))
        except openai.OpenAIError as exc:
            raise sdk_error(self.provider, exc, [self._key]) from None
        if not answer.choices:
            raise upstream(self.provider, "the answer has no choices", secrets=[self._key], reason="bad_answer")
        choice = answer.choices[0]
        usage = answer.usage
        return ChatResult(
            reply=choice.message.content or "",
            model=answer.model,
            usage=usage_of(usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0),
            finish_reason=choice.finish_reason,
            raw=answer.model_dump(mode="json"),
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        parts: list[str] = []
        finish: str | None = None
        usage: dict[str, int] | None = None
        model = request.model
        try:
            stream = await self.client.chat.completions.create(
                **self._body(request), stream=True, stream_options={"include_usage": True}
            )
        except openai.OpenAIError as exc:
            raise sdk_error(self.provider, exc, [self._key]) from None
        try:
            async for chunk in stream:
                model = chunk.model or model
                if chunk.usage is not None:
                    usage = usage_of(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                for choice in chunk.choices:
                    if choice.delta.content:
                        parts.append(choice.delta.content)
                        yield StreamEvent("delta", choice.delta.content)
                    finish = choice.finish_reason or finish
        except Exception as exc:  # the client lets a broken connection through as the transport's own error
            raise sdk_error(self.provider, exc, [self._key], midstream=True) from None
        finally:
            with anyio.CancelScope(shield=True):
                await stream.close()  # on cancellation too: the provider stops generating
        if finish is None:
            raise upstream(
                self.provider,
                f"the stream from {self.provider.base_url} ended before the model finished",
                secrets=[self._key],
                reason="broken_stream",
            )
        result = ChatResult("".join(parts), model, usage or usage_of(0, 0), finish, {"streamed": True})
        yield StreamEvent("done", result=result)

    async def models(self) -> list[str]:
        try:
            page = await self.client.models.list()
            return [m.id async for m in page]
        except openai.OpenAIError as exc:
            raise sdk_error(self.provider, exc, [self._key]) from None

    async def aclose(self) -> None:
        await self.client.close()
