"""Answers of the shipped packs without a model, and the checks each pack's answers must pass beyond the schema.

When only the offline adapter would serve, `answer` builds the pack's answer from its inputs: the same inputs give
the same answer in any process (the narration reuses the llm offline adapter's templates, picked by a SHA-256 of
the request), every answer fits the pack's schema, and nothing is invented that the inputs do not hold — the
offline clean-up and POV rewrite keep the text (whitespace tidied), the offline battle narration tells the
resolved outcome in plain beats.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from comfyvn.errors import Unprocessable
from comfyvn_llm.adapters import ChatRequest
from comfyvn_llm.adapters.offline import offline_reply

__all__ = ["answer", "pack_checks"]

Builder = Callable[[Mapping[str, Any]], dict[str, Any]]


def _line(text: Any, limit: int) -> str:
    words = " ".join(str(text or "").split())
    return words if len(words) <= limit else words[: limit - 1].rstrip() + "…"


def _narrator_turn(inputs: Mapping[str, Any]) -> dict[str, Any]:
    scene = _line(inputs.get("scene_title") or inputs.get("scene_id"), 120)
    node_text = _line(inputs.get("node_text"), 240)
    message = _line(inputs.get("message"), 240)
    context: dict[str, Any] = {"role": "narrator", "scene": scene, "last_lines": [node_text or message or "…"]}
    if inputs.get("speaker"):
        context["speaker"] = _line(inputs.get("speaker"), 80)
    prompt = message or node_text or "…"
    narration = offline_reply(ChatRequest("offline", ({"role": "user", "content": prompt},), {}, context))
    return {
        "narration": narration[:2000],
        "rationale": "offline adapter: a template over the node text; no model chose a path or changed variables",
        "choice_id": None,
        "vars_patch": {},
    }


_BUILDERS: dict[str, Builder] = {"NARRATOR_TURN": _narrator_turn}


def answer(pack: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The deterministic offline answer of ``pack`` to ``inputs``; `Unprocessable` for a pack without one."""
    builder = _BUILDERS.get(pack)
    if builder is None:
        raise Unprocessable(
            f"pack {pack!r} has no offline answer: assign a model to the role (enable_llm_role_mapping)",
            field="pack",
            code="no_offline_answer",
        )
    return builder(inputs)


def _check_narrator_turn(inputs: Mapping[str, Any], value: Mapping[str, Any]) -> list[str]:
    choice = value.get("choice_id")
    offered = [str(c.get("id")) for c in inputs.get("choices") or [] if isinstance(c, Mapping)]
    if choice is not None and choice not in offered:
        listed = ", ".join(offered) or "none"
        return [f"choice_id: {str(choice)[:80]!r} is not an offered choice (offered: {listed}); use one or null"]
    return []


_CHECKS: dict[str, Callable[[Mapping[str, Any], Mapping[str, Any]], list[str]]] = {
    "NARRATOR_TURN": _check_narrator_turn,
}


def pack_checks(pack: str, inputs: Mapping[str, Any], value: Mapping[str, Any]) -> list[str]:
    """Problems of a schema-valid answer that the schema cannot see (they depend on the inputs)."""
    check = _CHECKS.get(pack)
    return [] if check is None else check(inputs, value)
