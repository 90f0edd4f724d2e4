"""``/api/battle/*`` over HTTP: shapes, flags, aliases, events and 4xx naming the field."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from comfyvn import Kernel

Http = Any


STATS = {"team_a": {"base": 12, "str": 4, "agi": 3, "weapon_tier": 2}, "team_b": {"base": 10, "str": 5, "agi": 2}}


def test_resolve_without_stats_is_the_editor_pick(client: Http) -> None:
    state = {"scene_id": "s1", "variables": {"gold": 3}}
    sent = copy.deepcopy(state)
    body = client.post("/api/battle/resolve", json={"winner": "team_b", "state": state}).json()
    assert body["outcome"] == "team_b" and body["vars"] == {"battle_outcome": "team_b"}
    assert body["editor_prompt"] == "Pick winner" and body["persisted"] is True
    assert body["formula"] == "base + STR*1.0 + AGI*0.5 + weapon_tier*0.75 + status_mod + rng(seed)"
    assert body["state"] == {"scene_id": "s1", "variables": {"gold": 3, "battle_outcome": "team_b"}}
    assert state == sent
    assert "breakdown" not in body and "narration" not in body


def test_resolve_with_stats_adds_the_roll_sheet(client: Http) -> None:
    body = client.post(
        "/api/battle/resolve",
        json={"winner": "team_b", "stats": STATS, "seed": 404, "scene_id": "s1", "node_id": "n2", "pov": "team_b"},
    ).json()
    assert body["editor_prompt"] == "Pick winner" and body["outcome"] == "team_b"
    assert body["seed"] == 404 and body["rng"]["uses"] == 2
    assert body["predicted_outcome"] in STATS and set(body["weights"]) == set(STATS)
    assert body["provenance"]["resolved_outcome"] == "team_b"
    assert body["provenance"]["predicted_outcome"] == body["predicted_outcome"]
    assert body["persisted"] is False and "state" not in body
    assert body["context"] == {"scene_id": "s1", "node_id": "n2", "pov": "team_b"}
    assert len(body["log"]) == 1 and body["log"][0]["pov"] == "team_b"
    assert body["narration"]["vars_patch"] == {"battle_outcome": "team_b"}
    assert body["narration"]["source"] == "template" and body["narration"]["mode"] == "choice"


def test_sim_and_its_alias_give_the_same_answer(client: Http) -> None:
    request = {"stats": STATS, "seed": 42, "rounds": 4, "narrate": True}
    sim = client.post("/api/battle/sim", json=request).json()
    alias = client.post("/api/battle/simulate", json=request).json()
    assert sim == alias
    assert set(sim) >= {
        "outcome",
        "seed",
        "weights",
        "rng",
        "breakdown",
        "formula",
        "provenance",
        "log",
        "narration",
        "persisted",
    }
    assert sim["provenance"]["seed_source"] == "request" and len(sim["log"]) == 4
    assert [row["name"] for row in sim["breakdown"]] == ["team_a", "team_b"]
    assert set(sim["breakdown"][0]["components"]) == {"base", "strength", "agility", "weapon_tier", "status_mod", "rng"}


def test_sim_narrates_only_when_asked(client: Http) -> None:
    body = client.post("/api/battle/sim", json={"stats": STATS, "seed": 1}).json()
    assert body["narration"] is None and body["log"] == []


def test_sim_seed_comes_from_the_environment_then_random(
    battle_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], Http]
) -> None:
    seeded = http_for(battle_kernel(env={"COMFYVN_BATTLE_SEED": "77"}))
    first = seeded.post("/api/battle/sim", json={"stats": STATS}).json()
    assert first["seed"] == 77 and first["provenance"]["seed_source"] == "env"
    assert seeded.post("/api/battle/sim", json={"stats": STATS}).json() == first
    broken = http_for(battle_kernel(env={"COMFYVN_BATTLE_SEED": "soon"}))
    body = broken.post("/api/battle/sim", json={"stats": STATS}).json()
    assert body["provenance"]["seed_source"] == "random" and 0 <= body["seed"] < 2**32


def test_sim_persists_only_when_asked(client: Http) -> None:
    state = {"variables": {}}
    kept = client.post("/api/battle/sim", json={"stats": STATS, "seed": 3, "state": state}).json()
    assert kept["persisted"] is False and kept["state"] == state
    stored = client.post(
        "/api/battle/sim", json={"stats": STATS, "seed": 3, "state": state, "persist_state": True}
    ).json()
    assert stored["persisted"] is True and stored["state"]["variables"]["battle_outcome"] == stored["outcome"]


def test_flags_gate_sim_and_plan(battle_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], Http]) -> None:
    kernel = battle_kernel(env={"COMFYVN_FEATURE_ENABLE_BATTLE_SIM": "0", "COMFYVN_FEATURE_ENABLE_BATTLE": "0"})
    http = http_for(kernel)
    for path, body in [
        ("/api/battle/sim", {"stats": STATS}),
        ("/api/battle/simulate", {"stats": STATS}),
        ("/api/battle/plan", {"contenders": ["a"]}),
    ]:
        response = http.post(path, json=body)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "feature_disabled"
    assert http.post("/api/battle/resolve", json={"winner": "a"}).status_code == 200


def test_plan_is_a_deterministic_three_phase_timeline(client: Http) -> None:
    request = {"stats": STATS, "rounds": 2, "world": {"weather": "rain", "location": "bridge"}}
    body = client.post("/api/battle/plan", json=request).json()
    assert body == client.post("/api/battle/plan", json=request).json()
    plan = body["plan"]
    assert [p["id"] for p in plan["phases"]] == ["setup", "engagement", "resolution"]
    assert plan["contenders"] == ["team_a", "team_b"] and plan["duration"] == 2.0 + 2 * 2.5 + 2.0
    assert [s["round"] for s in plan["phases"][1]["steps"]] == [1, 2]
    assert body["feature"] == {"enable_battle": True, "enable_battle_sim": True}
    other = client.post("/api/battle/plan", json={**request, "rounds": 3}).json()
    assert other["plan"]["hash"] != plan["hash"]


def test_events_carry_the_response_without_state(
    battle_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], Http]
) -> None:
    kernel = battle_kernel()
    seen: list[Any] = []
    kernel.events.subscribe(seen.append, events=["on_battle_simulated", "on_battle_resolved"])
    http = http_for(kernel)
    sim = http.post("/api/battle/sim", json={"stats": STATS, "seed": 8, "state": {}, "narrate": True}).json()
    http.post("/api/battle/resolve", json={"winner": "team_a", "stats": STATS, "seed": 8})
    assert [e.event for e in seen] == ["on_battle_simulated", "on_battle_resolved"]
    payload = dict(seen[0].payload)
    assert "state" not in payload and payload.pop("narrate") is True and payload.pop("rounds") == 3
    assert payload == {k: v for k, v in sim.items() if k != "state"}
    assert seen[1].payload["editor_prompt"] == "Pick winner"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/battle/resolve", {}, "winner"),
        ("/api/battle/resolve", {"winner": ""}, "winner"),
        ("/api/battle/resolve", {"winner": 3}, "winner"),
        ("/api/battle/resolve", {"winner": "a", "narrate": "yes"}, "narrate"),
        ("/api/battle/resolve", {"winner": "a", "turbo": True}, "turbo"),
        ("/api/battle/resolve", {"winner": "a", "stats": {"a": {"str": -2}}}, "stats.a.str"),
        ("/api/battle/resolve", {"winner": "a", "state": []}, "state"),
        ("/api/battle/sim", {}, "stats"),
        ("/api/battle/sim", {"stats": {}}, "stats"),
        ("/api/battle/sim", {"stats": {"a": 1}, "seed": "7"}, "seed"),
        ("/api/battle/sim", {"stats": {"a": 1}, "seed": -1}, "seed"),
        ("/api/battle/sim", {"stats": {"a": 1}, "rounds": 0}, "rounds"),
        ("/api/battle/sim", {"stats": {"a": {"agility": "fast"}}}, "stats.a.agility"),
        ("/api/battle/simulate", {"stats": {"a": -1}}, "stats.a"),
        ("/api/battle/plan", {}, "contenders"),
        ("/api/battle/plan", {"contenders": ["a", "A"]}, "contenders[1]"),
        ("/api/battle/plan", {"contenders": ["a"], "world": {"weather": 1}}, "world['weather']"),
        ("/api/battle/sim", [1, 2], "body"),
    ],
)
def test_invalid_input_is_a_4xx_naming_the_field(client: Http, path: str, body: Any, field: str) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field


def test_malformed_json_is_a_400(client: Http) -> None:
    response = client.post("/api/battle/sim", content=b"{nope", headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["field"] == "body"
