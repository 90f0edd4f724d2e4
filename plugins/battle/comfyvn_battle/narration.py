"""Battle logs and the deterministic template narration (the Battle Narration prompt-pack contract).

A narration is ``{outcome, beats[4..8]{speaker, text, sfx?}, vars_patch{battle_outcome},
next_choice_hint, mode, source}`` with fewer than 800 characters of beat text. The template
narrator here is the fallback an LLM plugin replaces through the ``narrate_battle`` hook; every
draw it makes continues the RNG *after* the contender rolls on a copy, so narrating never changes
the reported roll sheet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .engine import VARIABLE_KEY
from .rng import Lcg, RngState

__all__ = [
    "DEFAULT_POV",
    "MAX_BEATS",
    "MAX_CHARS",
    "MIN_BEATS",
    "NarrationRequest",
    "check_narration",
    "compose_log",
    "template_narration",
]

DEFAULT_POV = "narrator"
MIN_BEATS = 4
MAX_BEATS = 8
MAX_CHARS = 800
_NAME_LIMIT = 32
_NO_OPPONENT = "the opposition"

_NARRATOR_BANK = (
    "{winner} takes the first real opening against {opponent}.",
    "{opponent} answers, but {winner} keeps the pressure on.",
    "Steel rings out as {winner} forces {opponent} back a step.",
    "{opponent} tries a feint; {winner} reads it in time.",
    "{winner} changes the angle of the fight and {opponent} gives ground.",
)
_WINNER_BANK = (
    "I find the gap in {opponent}'s guard and take it.",
    "{opponent} is slowing. I am not.",
    "I let {opponent} overreach, then answer hard.",
    "Every exchange leaves me a step closer to ending this.",
)
_LOSER_BANK = (
    "{winner} is faster than I planned for.",
    "I commit to the strike and {winner} is already gone.",
    "Each time I find my feet, {winner} takes the ground again.",
    "I am losing the rhythm of this fight to {winner}.",
)
_ENGAGE_SFX = ("sfx/battle/strike", "sfx/battle/parry", "sfx/battle/footwork", "sfx/battle/impact")


@attrs.frozen
class NarrationRequest:
    """What a narrator gets: the decided outcome and the roll sheet it must stay faithful to.

    ``mode`` is ``choice`` (an editor picked the winner) or ``sim`` (the formula did).
    ``rng`` is the generator state after the contender draws; ``weights`` maps name to weight.
    ``gate``: the options a narrator that calls a model hands the llm call gate (a rating acknowledgement:
    ``rating_ack_token``, ``rating_acknowledged``).
    """

    mode: str
    outcome: str
    contenders: tuple[str, ...]
    pov: str
    rounds: int
    seed: int
    rng: RngState
    weights: tuple[tuple[str, float], ...] = ()
    breakdown: tuple[Mapping[str, Any], ...] = ()
    context: Mapping[str, Any] = attrs.field(factory=dict)
    gate: Mapping[str, Any] = attrs.field(factory=dict)

    def story_text(self) -> str:
        """The story's words in this request, one a line: the fighters, the outcome, the point of view and the
        scene context's strings. What a content gate should judge; the roll sheet's keys (``weapon_tier``…)
        are the formula's vocabulary, not the story's."""
        words = [*self.contenders, self.outcome, self.pov]
        words += [v for v in self.context.values() if isinstance(v, str)]
        return "\n".join(dict.fromkeys(w for w in words if w.strip()))

    def prompt_inputs(self) -> dict[str, Any]:
        """The prompt pack's inputs (``pov``, ``fighters``, ``chosen_outcome``, ``odds``, ``seed``)."""
        return {
            "mode": self.mode,
            "pov": self.pov,
            "fighters": [{"id": name, "name": name} for name in self.contenders],
            "chosen_outcome": self.outcome if self.mode == "choice" else None,
            "outcome": self.outcome,
            "odds": {name: weight for name, weight in self.weights},
            "breakdown": [dict(row) for row in self.breakdown],
            "rounds": self.rounds,
            "seed": self.seed,
            "context": dict(self.context),
        }


def _short(name: str) -> str:
    return name if len(name) <= _NAME_LIMIT else name[: _NAME_LIMIT - 1] + "…"


def _opponent(outcome: str, contenders: Sequence[str], weights: Sequence[tuple[str, float]]) -> str:
    # The strongest other side makes the most plausible foil; ties go to the first name.
    by_weight = dict(weights)
    others = [n for n in contenders if n != outcome]
    if not others:
        return _NO_OPPONENT
    return min(others, key=lambda n: (-by_weight.get(n, 0.0), n.lower()))


def _bank(pov: str, outcome: str, contenders: Sequence[str]) -> tuple[str, ...]:
    if pov == outcome and pov in contenders:
        return _WINNER_BANK
    if pov in contenders:
        return _LOSER_BANK
    return _NARRATOR_BANK


def compose_log(request: NarrationRequest, turns: int | None = None) -> list[dict[str, Any]]:
    """``[{turn, pov, text}]``, one entry per round, picked with draws continuing ``request.rng``."""
    rng = Lcg.from_state(request.rng)
    bank = _bank(request.pov, request.outcome, request.contenders)
    winner = _short(request.outcome)
    opponent = _short(_opponent(request.outcome, request.contenders, request.weights))
    entries = []
    previous = -1
    for turn in range(1, (request.rounds if turns is None else turns) + 1):
        index = int(rng.random() * len(bank)) % len(bank)
        # The same line twice in a row reads as a glitch; step to the next one instead.
        index = (index + 1) % len(bank) if index == previous else index
        previous = index
        template = bank[index]
        entries.append({"turn": turn, "pov": request.pov, "text": template.format(winner=winner, opponent=opponent)})
    return entries


def _opening(contenders: Sequence[str], outcome: str) -> str:
    names = [_short(n) for n in contenders] or [_short(outcome)]
    if len(names) == 1:
        return f"{names[0]} stands ready against {_NO_OPPONENT}."
    if len(names) > 4:
        return f"{', '.join(names[:3])} and {len(names) - 3} more square off."
    return f"{', '.join(names[:-1])} and {names[-1]} square off."


def template_narration(request: NarrationRequest) -> dict[str, Any]:
    """The deterministic 4-8 beat narration for ``request`` (``source: "template"``, ``adapter: None``).

    One opening beat, ``rounds`` engagement beats (at least 2, at most 6, taken from the same
    picks as the log) and one closing beat naming the winner.
    """
    engagement = compose_log(request, turns=min(max(request.rounds, 2), MAX_BEATS - 2))
    speaker = request.pov if request.pov in request.contenders else DEFAULT_POV
    winner = _short(request.outcome)
    closing = (
        f"The fight is decided: {winner} wins."
        if request.mode == "choice"
        else f"By the numbers and the roll, {winner} carries the battle."
    )
    beats = [
        {"speaker": DEFAULT_POV, "text": _opening(request.contenders, request.outcome), "sfx": "sfx/battle/clash_start"}
    ]
    beats += [
        {"speaker": speaker, "text": entry["text"], "sfx": _ENGAGE_SFX[i % len(_ENGAGE_SFX)]}
        for i, entry in enumerate(engagement)
    ]
    beats.append({"speaker": DEFAULT_POV, "text": closing, "sfx": "sfx/battle/victory"})
    # Long names can push the pack's 800-character budget; shed middle beats, never the ends.
    while len(beats) > MIN_BEATS and sum(len(b["text"]) for b in beats) >= MAX_CHARS:
        del beats[-2]
    return {
        "outcome": request.outcome,
        "beats": beats,
        "vars_patch": {VARIABLE_KEY: request.outcome},
        "next_choice_hint": None,
        "mode": request.mode,
        "source": "template",
        # No model wrote this: a narrator that asked one (even the offline adapter) reports its adapter instead.
        "adapter": None,
    }


def check_narration(candidate: Any, outcome: str) -> str | None:
    """Why ``candidate`` breaks the prompt-pack contract for ``outcome``, or None when it holds."""
    if not isinstance(candidate, Mapping):
        return "narration must be an object"
    if candidate.get("outcome") != outcome:
        return f"narration outcome {candidate.get('outcome')!r} differs from the battle outcome {outcome!r}"
    beats = candidate.get("beats")
    if not isinstance(beats, list) or not MIN_BEATS <= len(beats) <= MAX_BEATS:
        return f"narration needs {MIN_BEATS}-{MAX_BEATS} beats"
    for index, beat in enumerate(beats):
        if not (
            isinstance(beat, Mapping)
            and isinstance(beat.get("speaker"), str)
            and beat["speaker"]
            and isinstance(beat.get("text"), str)
            and beat["text"].strip()
        ):
            return f"beats[{index}] needs a non-empty speaker and text"
        if "sfx" in beat and not isinstance(beat["sfx"], str):
            return f"beats[{index}].sfx must be a string"
    if sum(len(beat["text"]) for beat in beats) >= MAX_CHARS:
        return f"narration beats must total fewer than {MAX_CHARS} characters"
    patch = candidate.get("vars_patch")
    if not isinstance(patch, Mapping) or patch.get(VARIABLE_KEY) != outcome:
        return f"vars_patch.{VARIABLE_KEY} must equal the outcome"
    return None
