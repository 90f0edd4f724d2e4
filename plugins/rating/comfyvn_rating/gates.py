"""The rating gates: the Ren'Py exporter's ``renpy_export_gate`` and the call gate for language-model calls.

Both answer in the exporter's gate protocol: None to allow with nothing to say, ``{"allow": True, ...}`` to
allow and record (the rating, warnings), or ``{"reason": ..., "ack_token": ...}`` to block (HTTP 423, CLI
exit 3). Modes: ``sfw`` blocks M/Adult until an acknowledged token is presented; ``warn`` lets them through
with a warning; ``unrestricted`` lets everything through silently. With ``enable_rating_api`` off, nothing
is gated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from comfyvn.errors import Blocked, Invalid

from .matrix import RISKY
from .service import API_FLAG, RatingService
from .store import MODES

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["block_message", "export_gate", "llm_call_gate", "require_llm_call"]

EXPORT_ACTION = "export.renpy"
LLM_ACTION = "llm.call"


def _terms(rating: Mapping[str, Any], limit: int = 2) -> str:
    hits = [h for h in rating.get("reasons") or () if isinstance(h, str)][:limit]
    return ", ".join(hits) if hits else str(rating.get("source"))


def block_message(decision: Mapping[str, Any], *, what: str, llm: bool = False) -> str:
    """How a blocked decision reads, with the way out: acknowledge the token, then repeat with it. Kept
    short: it must survive a prefix (``job … failed: export blocked by …``) within an error's 400 characters.

    ``llm``: the repeat is an LLM call, which takes the token as gate options (``comfyvn llm … --gate KEY=VALUE``,
    the HTTP body's ``gate`` object) rather than the exporter's ``--rating-ack-token``/``--rating-acknowledged``.
    """
    rating = decision["rating"]
    token = decision["ack_token"]
    pending = decision["ack_status"] == "pending"
    head = f"rated {rating['rating']} ({_terms(rating)}) in sfw mode" + (
        " and the token is not acknowledged for it" if pending else ""
    )
    if llm:
        flags = f"--gate rating_ack_token={token} --gate rating_acknowledged=true"
        http = "gate.rating_ack_token, gate.rating_acknowledged: true"
    else:
        flags = f"--rating-ack-token {token} --rating-acknowledged"
        http = "rating_ack_token, rating_acknowledged"
    hint = "" if pending else f" (HTTP: POST /api/rating/ack; {http})"
    return f"{head}: acknowledge with `comfyvn rating ack {token}`, then {what} with {flags}{hint}"


def _ack_options(options: Mapping[str, Any]) -> tuple[str | None, bool]:
    token = options.get("rating_ack_token")
    acknowledged = options.get("rating_acknowledged")
    if token is not None and not isinstance(token, str):
        raise Invalid("rating_ack_token must be a string", field="rating_ack_token", code="invalid_type")
    if acknowledged is not None and not isinstance(acknowledged, bool):
        raise Invalid("rating_acknowledged must be true or false", field="rating_acknowledged", code="invalid_type")
    return token, bool(acknowledged)


def export_gate(kernel: Kernel, project: Any, options: Mapping[str, Any]) -> dict[str, Any] | None:
    """``renpy_export_gate``: rate the project; block, warn or pass by the mode. The allowing answer carries
    ``rating`` (it becomes ``export_manifest.rating``) and the gate status (``rating_gate``)."""
    if not kernel.flags.is_enabled(API_FLAG):
        return None
    token, acknowledged = _ack_options(options)
    service = RatingService(kernel)
    decision, rated = service.evaluate_project(
        project, action=EXPORT_ACTION, acknowledged=acknowledged, ack_token=token
    )
    status = {
        "mode": decision["mode"],
        "ack_status": decision["ack_status"],
        "ack_token": decision["ack_token"],
        "requires_ack": decision["requires_ack"],
        "drivers": list(rated.drivers[:10]),
        "drivers_total": rated.drivers_total,
    }
    if not decision["allowed"]:
        return {"reason": block_message(decision, what="export again"), "rating": decision["rating"], **status}
    answer: dict[str, Any] = {"allow": True, "rating": decision["rating"], **status}
    if decision["mode"] == "warn" and rated.result.rating in RISKY:
        answer["warnings"] = [
            f"rating: the project is rated {rated.result.rating} ({_terms(decision['rating'])}); "
            "exported because the rating mode is warn"
        ]
    return answer


def llm_call_gate(kernel: Kernel, prompt: str, options: Mapping[str, Any]) -> dict[str, Any] | None:
    """The gate the llm plugin's call gate hook is meant to answer with (see docs/rating.md).

    ``options``: ``item_id`` (default ``llm:prompt``), ``tags``, ``meta``, ``mode`` (only ever stricter than
    the installation's: a caller may ask for ``sfw`` under ``warn``, never the reverse), ``rating_ack_token``,
    ``rating_acknowledged``. Returns None when allowed silently, the allowing answer with a warning in
    ``warn`` mode, or a blocking answer with ``ack_token``.
    """
    if not kernel.flags.is_enabled(API_FLAG):
        return None
    token, acknowledged = _ack_options(options)
    item_id = options.get("item_id") if isinstance(options.get("item_id"), str) else "llm:prompt"
    mode = options.get("mode")
    if mode is not None and mode not in MODES:
        raise Invalid(f"mode must be one of {', '.join(MODES)}", field="mode", code="invalid_mode")
    service = RatingService(kernel)
    installed = service.mode()
    # A call may tighten the mode, never loosen it: the installation's choice is not the caller's to undo.
    effective = mode if mode is not None and MODES.index(mode) < MODES.index(installed) else installed
    payload = {"prompt": prompt, "tags": options.get("tags") or [], "meta": options.get("meta") or {}}
    result = service.classify(str(item_id), payload, service.store.overrides())
    decision = service.decide(result, mode=effective, acknowledged=acknowledged, action=LLM_ACTION, ack_token=token)
    if not decision["allowed"]:
        return {"reason": block_message(decision, what="call again", llm=True), **_gate_fields(decision)}
    if decision["mode"] == "warn" and result.rating in RISKY:
        return {"allow": True, "warnings": [f"rating: the prompt is rated {result.rating}"], **_gate_fields(decision)}
    return None


def _gate_fields(decision: Mapping[str, Any]) -> dict[str, Any]:
    return {key: decision[key] for key in ("rating", "mode", "ack_token", "ack_status", "requires_ack")}


def require_llm_call(kernel: Kernel, prompt: str, options: Mapping[str, Any]) -> dict[str, Any] | None:
    """`llm_call_gate`, raising `Blocked` (HTTP 423 ``llm_blocked``, CLI exit 3) instead of answering a block."""
    answer = llm_call_gate(kernel, prompt, options)
    if answer is not None and not answer.get("allow"):
        details = {k: v for k, v in answer.items() if k != "reason"}
        raise Blocked(f"LLM call blocked: {answer['reason']}", field="prompt", code="llm_blocked", details=details)
    return answer
