"""Battle narration through the BATTLE_NARRATION pack (the narrator's answer to battle's ``narrate_battle`` hook).

The battle is already decided: whatever the model writes, ``outcome`` and ``vars_patch.battle_outcome`` are the
resolved outcome. With only the offline adapter the battle plugin's own deterministic template narration is the
answer (``adapter: "offline"``, ``source: "template"``). The call gate (rating) judges the story's words
(`NarrationRequest.story_text`), not the roll sheet's keys, and takes ``request.gate`` (an acknowledgement). A
model that cannot produce a valid answer after one repair raises, and the battle plugin keeps its template
narration with a warning saying why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from comfyvn_battle.engine import VARIABLE_KEY
from comfyvn_battle.narration import NarrationRequest, template_narration

from .ask import ask_pack

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["PACK", "narrate_battle"]

PACK = "BATTLE_NARRATION"
_ANSWER_KEYS = ("outcome", "beats", "vars_patch", "next_choice_hint")


def narrate_battle(kernel: Kernel, request: NarrationRequest) -> dict[str, Any]:
    """``{outcome, beats[4..8]{speaker, text, sfx?}, vars_patch{battle_outcome}, next_choice_hint, mode, source,
    adapter, model}`` for ``request``, asked of the narrator role (sticky per ``context.scene_id``)."""

    def template() -> dict[str, Any]:
        narration = template_narration(request)
        return {key: narration[key] for key in _ANSWER_KEYS if key in narration}

    scene = request.context.get("scene_id")
    answer = ask_pack(
        kernel,
        PACK,
        request.prompt_inputs(),
        role="narrator",
        scene_id=scene if isinstance(scene, str) and scene else None,
        gate=request.gate,
        offline_answer=template,
        # The gate judges the story (names, outcome, context), not the roll sheet's formula keys.
        subject=request.story_text(),
    )
    result = dict(answer.answer)
    # The roll (or the editor) decided the battle; a model that names another winner does not change it.
    result["outcome"] = request.outcome
    result["vars_patch"] = {**result["vars_patch"], VARIABLE_KEY: request.outcome}
    result.setdefault("next_choice_hint", None)
    result["mode"] = request.mode
    result["source"] = "template" if answer.adapter == "offline" else "narrator"
    result["adapter"] = answer.adapter
    result["model"] = answer.model
    return result
