"""Adapters: one per wire protocol (offline, OpenAI-compatible, Ollama native, Anthropic messages)."""

from __future__ import annotations

from typing import Any

from comfyvn.errors import Invalid

from ..registry import Provider
from .base import Adapter, ChatRequest, ChatResult, StreamEvent

__all__ = ["Adapter", "ChatRequest", "ChatResult", "StreamEvent", "make_adapter"]


def make_adapter(provider: Provider, api_key: str | None, **options: Any) -> Adapter:
    """The adapter for ``provider`` (imports its client library only when used)."""
    if provider.adapter == "offline":
        from .offline import OfflineAdapter

        return OfflineAdapter(provider)
    if provider.adapter == "openai":
        from .openai_compat import OpenAIAdapter

        return OpenAIAdapter(provider, api_key, **options)
    if provider.adapter == "ollama":
        from .ollama import OllamaAdapter

        return OllamaAdapter(provider, api_key, **options)
    if provider.adapter == "anthropic":
        from .anthropic_compat import AnthropicAdapter

        return AnthropicAdapter(provider, api_key, **options)
    raise Invalid(f"unknown adapter {provider.adapter!r}", field="adapter", code="invalid_provider")
