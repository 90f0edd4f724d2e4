"""Battle narration through a model: the pack's 4-8 beats, the resolved outcome kept whatever the model says."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import comfyvn_battle.plugin
import comfyvn_narrator.plugin
from comfyvn import Kernel
from comfyvn_battle.narration import check_narration
from comfyvn_battle.service import resolve_battle
from comfyvn_battle.wire import ResolveRequest
from comfyvn_narrator.packs import load_pack, validate

from . import model_help
from .model_help import Script

scripted_base = model_help.scripted_base
script = model_help.script
model_kernel = model_help.model_kernel
offline_kernel = model_help.offline_kernel

STATS = {"team_a": {"base": 12, "str": 4, "agi": 3, "weapon_tier": 2}, "team_b": {"base": 10, "str": 5, "agi": 2}}


def _beats(speakers: list[str]) -> list[dict[str, Any]]:
    return [
        {"speaker": s, "text": f"Beat {i}: blades meet.", "sfx": "sfx/battle/strike"} for i, s in enumerate(speakers)
    ]


def _resolve(kernel: Kernel, winner: str = "team_a", **extra: Any) -> dict[str, Any]:
    return resolve_battle(kernel, ResolveRequest(winner=winner, stats=STATS, seed=7, rounds=3, **extra))


def test_a_model_narration_keeps_the_resolved_outcome(model_kernel: Callable[..., Kernel], script: Script) -> None:
    kernel = model_kernel(comfyvn_battle.plugin, comfyvn_narrator.plugin)
    # The model says team_b won; the editor chose team_a.
    answer = {
        "outcome": "team_b",
        "beats": _beats(["narrator", "team_a", "team_b", "narrator", "narrator"]),
        "vars_patch": {"battle_outcome": "team_b"},
    }
    script.replies(answer)
    response = _resolve(kernel, scene_id="arena", node_id="n1")
    narration = response["narration"]
    assert narration["outcome"] == "team_a" and narration["vars_patch"] == {"battle_outcome": "team_a"}
    assert narration["beats"] == answer["beats"]
    assert (narration["source"], narration["adapter"], narration["mode"]) == ("narrator", "openai", "choice")
    assert "warnings" not in narration
    assert check_narration(narration, "team_a") is None
    pack_answer = {k: narration[k] for k in ("outcome", "beats", "vars_patch", "next_choice_hint")}
    assert validate(load_pack("BATTLE_NARRATION"), pack_answer) == []
    [request] = script.log()
    assert "Outcome (decided by the editor): team_a" in request["messages"][1]["content"]


def test_too_few_beats_or_a_stranger_speaking_is_repaired(model_kernel: Callable[..., Kernel], script: Script) -> None:
    kernel = model_kernel(comfyvn_battle.plugin, comfyvn_narrator.plugin)
    three = {"outcome": "team_a", "beats": _beats(["narrator"] * 3), "vars_patch": {"battle_outcome": "team_a"}}
    stranger = {**three, "beats": _beats(["narrator", "zed", "narrator", "narrator"])}
    good = {**three, "beats": _beats(["narrator", "team_a", "team_b", "narrator"])}
    script.replies(three, good, stranger, good)
    assert _resolve(kernel)["narration"]["beats"] == good["beats"]
    repair = script.log()[1]["messages"][-1]["content"]
    assert "- beats: needs at least 4 items" in repair
    assert _resolve(kernel)["narration"]["beats"] == good["beats"]
    assert "beats/1/speaker: must be one of" in script.log()[3]["messages"][-1]["content"]


def test_over_800_characters_is_repaired(model_kernel: Callable[..., Kernel], script: Script) -> None:
    kernel = model_kernel(comfyvn_battle.plugin, comfyvn_narrator.plugin)
    long = [{"speaker": "narrator", "text": "x" * 250} for _ in range(4)]
    good = {"outcome": "team_a", "beats": _beats(["narrator"] * 4), "vars_patch": {"battle_outcome": "team_a"}}
    script.replies({**good, "beats": long}, good)
    assert _resolve(kernel)["narration"]["beats"] == good["beats"]
    assert "the texts total 1000 characters" in script.log()[1]["messages"][-1]["content"]


def test_an_invalid_model_answer_keeps_the_template(model_kernel: Callable[..., Kernel], script: Script) -> None:
    kernel = model_kernel(comfyvn_battle.plugin, comfyvn_narrator.plugin)
    script.replies("no", "still no")
    narration = _resolve(kernel)["narration"]
    assert narration["source"] == "template" and narration["adapter"] is None
    assert narration["warnings"] == [
        "template used: the narrator failed: the model's answer to BATTLE_NARRATION is not valid after one repair: "
        "(root): the answer is not JSON (Expecting value at line 1 column 1)"
    ]
    assert check_narration(narration, "team_a") is None


def test_offline_battle_narration_is_the_template_and_says_so(offline_kernel: Callable[..., Kernel]) -> None:
    with_narrator = _resolve(offline_kernel(comfyvn_battle.plugin, comfyvn_narrator.plugin))["narration"]
    template_only = _resolve(offline_kernel(comfyvn_battle.plugin))["narration"]
    assert with_narrator["adapter"] == "offline" and with_narrator["source"] == "template"
    assert template_only["adapter"] is None and template_only["source"] == "template"
    drop = ("adapter", "model")
    assert {k: v for k, v in with_narrator.items() if k not in drop} == {
        k: v for k, v in template_only.items() if k not in drop
    }
    assert with_narrator == _resolve(offline_kernel(comfyvn_battle.plugin, comfyvn_narrator.plugin))["narration"]
