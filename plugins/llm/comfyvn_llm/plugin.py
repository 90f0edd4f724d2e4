"""Hook implementations of the llm plugin (wiring only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from comfyvn import hookimpl

from . import hookspecs, routes
from .cli import llm_group
from .service import DEBUG_FLAG, EXTERNAL_FLAG, PROXY_FLAG, ROLES_FLAG

if TYPE_CHECKING:
    import click
    import pluggy
    from comfyvn import Kernel

_COMMON = {
    "call_id": {"type": "string"},
    "provider": {"type": "string"},
    "adapter": {"enum": ["offline", "openai", "ollama", "anthropic"]},
    "model": {"type": "string"},
    "role": {"type": "string"},
}
REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["call_id", "provider", "adapter", "model", "stream", "messages"],
    "properties": {**_COMMON, "stream": {"type": "boolean"}, "messages": {"type": "integer"}, "content": {}},
}
RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["call_id", "provider", "adapter", "model", "ok", "latency_ms", "usage"],
    "properties": {
        **_COMMON,
        "ok": {"type": "boolean"},
        "latency_ms": {"type": "number"},
        "usage": {"type": ["object", "null"]},
        "error": {"type": "object", "required": ["code"]},
        "content": {"type": "string"},
    },
}


@hookimpl
def add_hookspecs(pm: pluggy.PluginManager) -> None:
    pm.add_hookspecs(hookspecs)


@hookimpl
def register_events(register: Any) -> None:
    register(
        "on_llm_request",
        f"A language-model call is about to be sent: provider, model, message count (content only with {DEBUG_FLAG}).",
        REQUEST_SCHEMA,
    )
    register(
        "on_llm_response",
        "A language-model call ended: ok, usage, latency_ms, error code (reply only with the debug flag).",
        RESPONSE_SCHEMA,
    )


@hookimpl
def register_flags(register: Any) -> None:
    register(PROXY_FLAG, True, "The /api/llm routes (calls go to the offline adapter unless a provider is named).")
    register(
        EXTERNAL_FLAG,
        False,
        "Allow calls to providers whose server is not this machine (OpenAI, OpenRouter, Anthropic, remote URLs).",
    )
    register(ROLES_FLAG, False, "Role orchestration: /api/llm/roles and /api/llm/assign, role calls in chat.")
    register(DEBUG_FLAG, False, "Put message content and replies into on_llm_request/on_llm_response events.")


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(llm_group)


@hookimpl
def register_routes(kernel: Kernel) -> list[Any]:
    return routes.make_routes(kernel)
