"""Narration: the template contract, and the ``narrate_battle`` hook with its fallback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from comfyvn import Kernel, hookimpl
from comfyvn.wire import parse_request
from comfyvn_battle import service
from comfyvn_battle.engine import parse_stats, simulate
from comfyvn_battle.narration import NarrationRequest, check_narration, compose_log, template_narration
from comfyvn_battle.wire import SimRequest
from comfyvn_server.errors import http_status
from hypothesis import given
from hypothesis import strategies as st


def request_for(
    stats: dict[str, Any],
    seed: int,
    *,
    pov: str = "narrator",
    rounds: int = 3,
    mode: str = "sim",
    outcome: str | None = None,
) -> NarrationRequest:
    sim = simulate(parse_stats(stats), seed)
    return NarrationRequest(
        mode=mode,
        outcome=outcome or sim.outcome,
        contenders=tuple(b.name for b in sim.breakdown),
        pov=pov,
        rounds=rounds,
        seed=seed,
        rng=sim.rng,
        weights=sim.weights,
    )


names = st.text(min_size=1, max_size=60).filter(str.strip).map(str.strip)


@given(
    st.lists(names, min_size=1, max_size=6, unique_by=str.lower),
    st.integers(0, 2**32 - 1),
    st.integers(1, 50),
    st.sampled_from(["sim", "choice"]),
)
def test_template_narration_keeps_the_prompt_pack_contract(
    people: list[str], seed: int, rounds: int, mode: str
) -> None:
    request = request_for({name: 10 for name in people}, seed, rounds=rounds, mode=mode, pov=people[0])
    narration = template_narration(request)
    assert check_narration(narration, request.outcome) is None
    assert 4 <= len(narration["beats"]) <= 8
    assert sum(len(b["text"]) for b in narration["beats"]) < 800
    assert narration["vars_patch"] == {"battle_outcome": request.outcome}
    assert narration["source"] == "template" and narration["mode"] == mode
    assert narration == template_narration(request)
    assert len(compose_log(request)) == rounds


def test_narration_never_moves_the_reported_rng() -> None:
    request = request_for({"a": 1, "b": 2}, 9)
    before = request.rng
    template_narration(request)
    compose_log(request)
    assert request.rng == before and before.uses == 2


def test_pov_picks_first_person_lines() -> None:
    stats = {"hero": {"base": 100, "rng": 0}, "villain": {"base": 1, "rng": 0}}
    winner = template_narration(request_for(stats, 3, pov="hero"))
    loser = template_narration(request_for(stats, 3, pov="villain"))
    narrator = template_narration(request_for(stats, 3))
    assert {b["speaker"] for b in winner["beats"][1:-1]} == {"hero"}
    assert {b["speaker"] for b in loser["beats"][1:-1]} == {"villain"}
    assert {b["speaker"] for b in narrator["beats"]} == {"narrator"}
    assert winner["beats"][1:-1] != loser["beats"][1:-1]


@pytest.mark.parametrize(
    ("candidate", "problem"),
    [
        (None, "object"),
        ({"outcome": "b"}, "differs"),
        ({"outcome": "a", "beats": [{"speaker": "n", "text": "x"}] * 3, "vars_patch": {"battle_outcome": "a"}}, "4-8"),
        (
            {"outcome": "a", "beats": [{"speaker": "n", "text": "x" * 300}] * 4, "vars_patch": {"battle_outcome": "a"}},
            "800",
        ),
        (
            {"outcome": "a", "beats": [{"speaker": "n", "text": "x"}] * 4, "vars_patch": {"battle_outcome": "b"}},
            "vars_patch",
        ),
        (
            {"outcome": "a", "beats": [{"speaker": "", "text": "x"}] * 4, "vars_patch": {"battle_outcome": "a"}},
            "speaker",
        ),
    ],
)
def test_check_narration_explains_contract_breaks(candidate: Any, problem: str) -> None:
    assert problem in (check_narration(candidate, "a") or "")


class GoodNarrator:
    @hookimpl
    def narrate_battle(self, request: NarrationRequest) -> dict[str, Any]:
        beats = [{"speaker": "narrator", "text": f"beat {i} for {request.outcome}"} for i in range(5)]
        return {
            "outcome": request.outcome,
            "beats": beats,
            "vars_patch": {"battle_outcome": request.outcome},
            "source": "llm",
        }


class LyingNarrator:
    @hookimpl
    def narrate_battle(self, request: NarrationRequest) -> dict[str, Any]:
        return {"outcome": "somebody else", "beats": [], "vars_patch": {}}


class BrokenNarrator:
    @hookimpl
    def narrate_battle(self, request: NarrationRequest) -> dict[str, Any]:
        raise RuntimeError("model offline")


SIM = {"stats": {"a": 10, "b": 9}, "seed": 5, "narrate": True}


def test_hook_narrate_battle(battle_kernel: Callable[..., Kernel]) -> None:
    result = service.simulate_battle(battle_kernel(GoodNarrator()), parse_request(SIM, SimRequest))
    assert result["narration"]["source"] == "llm"
    assert result["narration"]["beats"][0]["text"] == f"beat 0 for {result['outcome']}"
    assert result["narration"]["next_choice_hint"] is None


@pytest.mark.parametrize("narrator", [LyingNarrator(), BrokenNarrator()])
def test_a_contract_breaking_narrator_falls_back_to_the_template(
    battle_kernel: Callable[..., Kernel], narrator: object
) -> None:
    kernel = battle_kernel(narrator)
    result = service.simulate_battle(kernel, parse_request(SIM, SimRequest))
    assert result["narration"]["source"] == "template"
    assert result["narration"]["warnings"][0].startswith("template used:")
    plain = service.simulate_battle(battle_kernel(), parse_request(SIM, SimRequest))
    assert {k: v for k, v in result["narration"].items() if k != "warnings"} == plain["narration"]


json_leaf = st.none() | st.booleans() | st.integers(-5, 2**65) | st.floats() | st.text(max_size=6)
json_any = st.recursive(
    json_leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3), max_leaves=8
)
bodies = st.dictionaries(
    st.sampled_from(
        [
            "winner",
            "stats",
            "seed",
            "state",
            "persist_state",
            "pov",
            "narrate",
            "rounds",
            "scene_id",
            "node_id",
            "extra",
        ]
    ),
    json_any,
    max_size=6,
)


@given(bodies)
def test_fuzzed_requests_succeed_or_fail_as_client_errors(
    battle_kernel: Callable[..., Kernel], body: dict[str, Any]
) -> None:
    from comfyvn.errors import ComfyVNError
    from comfyvn_battle.wire import ResolveRequest

    kernel = battle_kernel()
    for cls, run in ((SimRequest, service.simulate_battle), (ResolveRequest, service.resolve_battle)):
        try:
            run(kernel, parse_request(body, cls))
        except ComfyVNError as exc:
            assert exc.field and 400 <= http_status(exc) < 500
