"""Answers of the shipped packs without a model, and the checks each pack's answers must pass beyond the schema.

When only the offline adapter would serve, `answer` builds the pack's answer from its inputs: the same inputs give
the same answer in any process (the narration reuses the llm offline adapter's templates, picked by a SHA-256 of
the request), every answer fits the pack's schema, and nothing is invented that the inputs do not hold — the
offline clean-up and POV rewrite keep the text (whitespace tidied), the offline battle narration tells the
resolved outcome in plain beats.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from comfyvn.errors import Unprocessable
from comfyvn_llm.adapters import ChatRequest
from comfyvn_llm.adapters.offline import offline_reply

__all__ = ["answer", "tidy"]

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


_OOC = re.compile(r"\(\(.*?\)\)|[\(\[]\s*OOC\s*:.*?[\)\]]", re.IGNORECASE | re.DOTALL)


def tidy(text: str, level: str = "low") -> str:
    """``text`` with runs of spaces collapsed and each line trimmed (paragraph breaks kept); from ``medium`` on,
    out-of-character remarks (``((…))``, ``(OOC: …)``, ``[OOC: …]``) removed too. Never empty for non-blank
    text: a line that was only a remark is kept as it was."""

    def spaces(value: str) -> str:
        lines = [" ".join(line.split()) for line in value.splitlines()]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()

    cleaned = spaces(text)
    if level in ("medium", "high"):
        without = spaces(_OOC.sub("", cleaned))
        cleaned = without or cleaned
    return cleaned


def _lines(inputs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [line for line in inputs.get("lines") or [] if isinstance(line, Mapping)]


def _roleplay_cleanup(inputs: Mapping[str, Any]) -> dict[str, Any]:
    level = str(inputs.get("detail_level") or "low")
    return {"nodes": {str(line["id"]): tidy(str(line.get("text") or ""), level) for line in _lines(inputs)}}


def _pov_rewrite(inputs: Mapping[str, Any]) -> dict[str, Any]:
    # Restyling prose needs a model; offline the narration is kept (tidied) and nothing is claimed about the POV.
    narration = {str(line["id"]): tidy(str(line.get("text") or "")) for line in _lines(inputs) if line.get("rewrite")}
    return {"narration": narration, "monologue": "", "observations": []}


def _short(name: Any) -> str:
    text = " ".join(str(name).split())
    return text if len(text) <= 32 else text[:31] + "…"


def _battle_narration(inputs: Mapping[str, Any]) -> dict[str, Any]:
    outcome = str(inputs["outcome"])
    fighters = [str(f.get("id")) for f in inputs.get("fighters") or [] if isinstance(f, Mapping)]
    others = [f for f in fighters if f != outcome] or ["the opposition"]
    winner, opponent = _short(outcome), _short(others[0])
    pov = str(inputs.get("pov") or "narrator")
    speaker = pov if pov in fighters else "narrator"
    names = [_short(f) for f in fighters] or [winner]
    opening = f"{', '.join(names[:-1])} and {names[-1]} square off." if len(names) > 1 else f"{names[0]} stands ready."
    bank = (
        f"{winner} takes the first real opening against {opponent}.",
        f"{opponent} answers, but {winner} keeps the pressure on.",
        f"{opponent} tries a feint; {winner} reads it in time.",
        f"{winner} changes the angle of the fight and {opponent} gives ground.",
    )
    rounds = inputs.get("rounds")
    count = min(max(rounds, 2), 6) if isinstance(rounds, int) else 2
    middle = [bank[i % len(bank)] for i in range(count)]
    beats = [{"speaker": "narrator", "text": opening}]
    beats += [{"speaker": speaker, "text": text} for text in middle]
    beats.append({"speaker": "narrator", "text": f"The fight is decided: {winner} wins."})
    while len(beats) > 4 and sum(len(b["text"]) for b in beats) >= 800:
        del beats[-2]
    return {"outcome": outcome, "beats": beats, "vars_patch": {"battle_outcome": outcome}}


_BUILDERS: dict[str, Builder] = {
    "NARRATOR_TURN": _narrator_turn,
    "ROLEPLAY_CLEANUP": _roleplay_cleanup,
    "POV_REWRITE": _pov_rewrite,
    "BATTLE_NARRATION": _battle_narration,
}


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
