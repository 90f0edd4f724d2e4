"""Asking every ``llm_call_gate`` implementation before a call; the llm plugin knows nothing of what they check."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import structlog
from comfyvn.errors import Blocked, ComfyVNError
from comfyvn.plugins import HookFailure

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["check_gate", "prompt_of"]

log = structlog.get_logger("comfyvn.llm")


def prompt_of(messages: Sequence[Mapping[str, str]]) -> str:
    """What a gate judges: every message's content, in order, separated by blank lines."""
    return "\n\n".join(str(m.get("content") or "") for m in messages)


def check_gate(kernel: Kernel, prompt: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """``{"allowed": True, "checked": n, "warnings"?, "notes"?}`` or `Blocked` (``llm_blocked``, 423 / exit 3)."""
    answers = kernel.plugins.call_each(
        "llm_call_gate",
        on_error="report",
        propagate=(ComfyVNError,),
        prompt=prompt,
        options=dict(options),
        kernel=kernel,
    )
    blocked: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    for plugin, answer in answers:
        if answer is None:
            continue
        if isinstance(answer, HookFailure):
            log.warning("llm.gate_failed", plugin=plugin, error=type(answer.error).__name__)
            blocked.append({"plugin": plugin, "reason": f"the gate failed ({type(answer.error).__name__})"})
        elif isinstance(answer, dict) and answer.get("allow") is True:
            notes.append({"plugin": plugin, **{k: v for k, v in answer.items() if k != "allow"}})
        else:
            body = answer if isinstance(answer, dict) else {}
            blocked.append({**body, "plugin": plugin, "reason": str(body.get("reason") or answer or "blocked")})
    if blocked:
        # A block is policy working, not a fault: the caller gets the error (one line in a CLI); the log file keeps it.
        log.info("llm.blocked", plugins=[b["plugin"] for b in blocked])
        reasons = "; ".join(f"{b['plugin']}: {b['reason']}" for b in blocked)
        details: dict[str, Any] = {"blocked_by": blocked}
        tokens = [b["ack_token"] for b in blocked if isinstance(b.get("ack_token"), str)]
        if tokens:
            details["ack_token"] = tokens[0]
        raise Blocked(f"LLM call blocked by {reasons}", field="messages", code="llm_blocked", details=details)
    gate: dict[str, Any] = {"allowed": True, "checked": len(answers)}
    if notes:
        gate["notes"] = notes
        warnings = [str(w) for n in notes for w in n.get("warnings") or () if isinstance(w, str)]
        if warnings:
            gate["warnings"] = warnings
    return gate
