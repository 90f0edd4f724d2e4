"""Ollama's native API over httpx: ``POST /api/chat`` (NDJSON when streaming), ``GET /api/tags``.

Ollama has no client-side retry of its own here, so this adapter retries 429 and 5xx answers (and refused
connections) with exponential backoff, honouring ``Retry-After`` up to `MAX_WAIT`; it never retries once a
stream has started, since the model has already produced text.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx

from ..registry import Provider
from .base import (
    ChatRequest,
    ChatResult,
    StreamEvent,
    provider_message,
    sdk_error,
    tls_context,
    upstream,
    usage_of,
)

__all__ = ["OllamaAdapter"]

BACKOFF, MAX_WAIT = 0.25, 8.0
MAX_LINE = 1 << 20


def _wait(attempt: int, response: httpx.Response | None) -> float:
    header = response.headers.get("retry-after") if response is not None else None
    try:
        if header is not None:
            return min(max(float(header), 0.0), MAX_WAIT)
    except ValueError:
        pass
    return float(min(BACKOFF * 2**attempt, MAX_WAIT))


class OllamaAdapter:
    """Chat and streaming over ``/api/chat``; ``options`` carry temperature, top_p and ``num_predict``."""

    def __init__(self, provider: Provider, api_key: str | None, **_: Any) -> None:
        self.provider, self._key = provider, api_key
        headers = dict(provider.headers)
        if api_key:  # Ollama behind an authenticating proxy
            headers["Authorization"] = f"Bearer {api_key}"
        self.client = httpx.AsyncClient(
            base_url=provider.base_url, timeout=provider.timeout, headers=headers, verify=tls_context()
        )

    def _body(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        options: dict[str, Any] = {}
        for ours, theirs in (("temperature", "temperature"), ("top_p", "top_p"), ("max_tokens", "num_predict")):
            if request.params.get(ours) is not None:
                options[theirs] = request.params[ours]
        if request.params.get("stop"):
            options["stop"] = request.params["stop"]
        body: dict[str, Any] = {"model": request.model, "messages": [dict(m) for m in request.messages]}
        body["stream"] = stream
        if options:
            body["options"] = options
        fmt = request.params.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_object":
            body["format"] = "json"
        return body

    def _status_error(self, response: httpx.Response, text: str) -> Exception:
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        message = provider_message(body, text[:300] or response.reason_phrase)
        return upstream(
            self.provider,
            f"HTTP {response.status_code}: {message}",
            secrets=[self._key],
            status=response.status_code,
            reason="http_status",
        )

    @asynccontextmanager
    async def _post(self, body: dict[str, Any]) -> AsyncIterator[httpx.Response]:
        """A successful streamed response to ``POST /api/chat``, after retries."""
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                request = self.client.build_request("POST", "/api/chat", json=body)
                response = await self.client.send(request, stream=True)
            except httpx.ConnectError as exc:
                if attempt >= self.provider.max_retries:
                    raise sdk_error(self.provider, exc, [self._key]) from None
            except httpx.HTTPError as exc:
                raise sdk_error(self.provider, exc, [self._key]) from None
            if response is not None:
                if response.status_code < 400:
                    try:
                        yield response
                    finally:
                        await response.aclose()
                    return
                text = (await response.aread()).decode("utf-8", "replace")
                await response.aclose()
                retry = response.status_code == 429 or response.status_code >= 500
                if not retry or attempt >= self.provider.max_retries:
                    raise self._status_error(response, text)
            await anyio.sleep(_wait(attempt, response))
            attempt += 1

    async def chat(self, request: ChatRequest) -> ChatResult:
        result: ChatResult | None = None
        async for event in self._run(request, stream=False):
            result = event.result if event.kind == "done" else result
        assert result is not None  # _run ends with a done event or raises
        return result

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        return self._run(request, stream=True)

    async def _run(self, request: ChatRequest, *, stream: bool) -> AsyncIterator[StreamEvent]:
        parts: list[str] = []
        final: dict[str, Any] | None = None
        async with self._post(self._body(request, stream)) as response:
            try:
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    if len(line) > MAX_LINE:
                        raise upstream(self.provider, "an NDJSON line is too long", reason="bad_answer")
                    try:
                        item = json.loads(line)
                    except ValueError:
                        raise upstream(self.provider, "an answer line is not JSON", reason="bad_answer") from None
                    if not isinstance(item, dict):
                        raise upstream(self.provider, "an answer line is not an object", reason="bad_answer")
                    if "error" in item:
                        raise upstream(self.provider, provider_message(item, "error"), secrets=[self._key])
                    content = (item.get("message") or {}).get("content") or ""
                    if content:
                        parts.append(content)
                        if stream:
                            yield StreamEvent("delta", content)
                    if item.get("done"):
                        final = item
                        break
            except httpx.HTTPError as exc:
                raise sdk_error(self.provider, exc, [self._key], midstream=True) from None
        if final is None:
            raise upstream(
                self.provider,
                f"the answer from {self.provider.base_url} ended before done: true",
                secrets=[self._key],
                reason="broken_stream",
            )
        usage = usage_of(final.get("prompt_eval_count"), final.get("eval_count"))
        raw = {k: v for k, v in final.items() if k != "message"}
        model = str(final.get("model") or request.model)
        yield StreamEvent("done", result=ChatResult("".join(parts), model, usage, final.get("done_reason"), raw))

    async def models(self) -> list[str]:
        try:
            response = await self.client.get("/api/tags")
        except httpx.HTTPError as exc:
            raise sdk_error(self.provider, exc, [self._key]) from None
        if response.status_code >= 400:
            raise self._status_error(response, response.text)
        models = response.json().get("models") or []
        return [str(m.get("name")) for m in models if isinstance(m, dict) and m.get("name")]

    async def aclose(self) -> None:
        await self.client.aclose()
