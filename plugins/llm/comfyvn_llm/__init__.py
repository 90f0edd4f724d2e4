"""ComfyVN language models: provider registry, adapters, role orchestration and the ``/api/llm`` proxy."""

from __future__ import annotations

from .adapters import ChatRequest, ChatResult, StreamEvent
from .registry import Provider, Registry
from .service import LLMService, service_for

__all__ = ["ChatRequest", "ChatResult", "LLMService", "Provider", "Registry", "StreamEvent", "service_for"]
