"""Hook implementations of the rating plugin (wiring only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from comfyvn import hookimpl

from . import hookspecs, routes
from .cli import rating_group
from .gates import export_gate, llm_call_gate
from .service import API_FLAG, STREAM_FLAG

if TYPE_CHECKING:
    import click
    import pluggy
    from comfyvn import Kernel

_LEVEL = {"enum": ["E", "T", "M", "Adult"]}
_STATUS = {"enum": ["not_required", "issued", "pending", "verified"]}
DECISION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["item_id", "rating", "nsfw", "confidence", "mode", "source", "matched", "ack_status", "allowed"],
    "properties": {
        "item_id": {"type": "string"},
        "rating": _LEVEL,
        "nsfw": {"type": "boolean"},
        "confidence": {"type": "number"},
        "mode": {"enum": ["sfw", "warn", "unrestricted"]},
        "source": {"enum": ["classifier", "override"]},
        "matched": {"type": "object"},
        "ack_status": _STATUS,
        "allowed": {"type": "boolean"},
        "action": {"type": "string"},
    },
}
OVERRIDE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["item_id", "rating", "reviewer", "reason", "scope", "timestamp", "removed"],
    "properties": {"item_id": {"type": "string"}, "rating": _LEVEL, "removed": {"type": "boolean"}},
}
ACK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["token", "item_id", "action", "rating", "user", "acknowledged_at"],
    "properties": {"token": {"type": "string"}, "user": {"type": "string"}, "acknowledged_at": {"type": "number"}},
}


@hookimpl
def add_hookspecs(pm: pluggy.PluginManager) -> None:
    pm.add_hookspecs(hookspecs)


@hookimpl
def register_events(register: Any) -> None:
    register(
        "on_rating_decision",
        "A rating decision (classify, an export gate, an LLM call gate); needs enable_rating_modder_stream.",
        DECISION_SCHEMA,
    )
    register(
        "on_rating_override",
        "A reviewer pinned (removed: false) or removed (removed: true) an item's rating; needs the stream flag.",
        OVERRIDE_SCHEMA,
    )
    register(
        "on_rating_acknowledged",
        "Someone acknowledged a rating token (who, when, for which item and rating); needs the stream flag.",
        ACK_SCHEMA,
    )


@hookimpl
def register_flags(register: Any) -> None:
    register(API_FLAG, True, "The /api/rating routes and rating gating of exports and LLM calls.")
    register(
        STREAM_FLAG,
        False,
        "Emit on_rating_decision, on_rating_override and on_rating_acknowledged on the modder hook bus.",
    )


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(rating_group)


@hookimpl
def register_routes(kernel: Kernel) -> list[Any]:
    return routes.make_routes(kernel)


# optionalhook: the rating plugin works without the Ren'Py exporter installed.
@hookimpl(optionalhook=True)
def renpy_export_gate(project: Any, options: dict[str, Any], kernel: Kernel) -> dict[str, Any] | None:
    """Rate the project before an export; sfw mode blocks M/Adult until acknowledged (docs/rating.md)."""
    return export_gate(kernel, project, options)


# optionalhook: published by the llm plugin (comfyvn-llm) when it is installed.
@hookimpl(optionalhook=True, specname="llm_call_gate")
def rate_llm_call(prompt: str, options: dict[str, Any], kernel: Kernel) -> dict[str, Any] | None:
    """Rate the prompt before a language-model call; sfw mode blocks M/Adult until acknowledged."""
    return llm_call_gate(kernel, prompt, options)
