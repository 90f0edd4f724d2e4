"""The v0 formula: exact values, validation, weights, ties (domain only)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from comfyvn.errors import ComfyVNError
from comfyvn_battle.engine import Contender, parse_stats, resolve_state, simulate
from comfyvn_battle.rng import Lcg
from comfyvn_server.errors import http_status
from hypothesis import given
from hypothesis import strategies as st

M = 2**32


def lcg_draws(seed: int, n: int) -> list[int]:
    """The wire's recurrence, written out independently of the code under test."""
    values, value = [], seed
    for _ in range(n):
        value = (1664525 * value + 1013904223) % M
        values.append(value)
    return values


def test_reference_value_from_the_wire() -> None:
    rng = Lcg(7)
    rng.random()
    assert rng.state().as_dict() == {"seed": 7, "value": 1025555898, "uses": 1}


def test_formula_and_breakdown_match_the_wire() -> None:
    stats = {"team_a": {"base": 12, "str": 4, "agi": 3, "weapon_tier": 2, "status_mod": -1, "rng": 0.5}, "team_b": 10}
    sim = simulate(parse_stats(stats), 404)
    v1, v2 = lcg_draws(404, 2)
    j1, j2 = (v1 / M * 2 - 1) * 0.5, (v2 / M * 2 - 1) * 1.0
    total_a = 12 + 4 * 1.0 + 3 * 0.5 + 2 * 0.75 - 1 + j1
    total_b = 10 + j2
    rows = {b.name: b for b in sim.breakdown}
    assert rows["team_a"].total == pytest.approx(total_a, abs=1e-12)
    assert rows["team_b"].total == pytest.approx(total_b, abs=1e-12)
    assert rows["team_a"].as_dict()["components"] == {
        "base": 12.0,
        "strength": 4.0,
        "agility": 1.5,
        "weapon_tier": 1.5,
        "status_mod": -1.0,
        "rng": round(j1, 6),
    }
    assert sim.outcome == ("team_a" if total_a > total_b else "team_b")
    low = min(total_a, total_b)
    norm = (total_a - low + 1) + (total_b - low + 1)
    assert sim.weights_dict() == {
        "team_a": round((total_a - low + 1) / norm, 6),
        "team_b": round((total_b - low + 1) / norm, 6),
    }
    assert sim.rng.as_dict() == {"seed": 404, "value": v2, "uses": 2}


def test_alias_spellings_mean_the_same() -> None:
    short = parse_stats({"a": {"base": 1, "str": 2, "agi": 3, "weapon_tier": 4, "status_mod": 5, "rng": 0.5}})
    long = parse_stats({"a": {"base": 1, "strength": 2, "agility": 3, "weapon": 4, "status": 5, "rng_variance": 0.5}})
    assert short == long
    assert parse_stats({"a": 7}) == (Contender("a", base=7.0),)


def test_ties_go_to_the_first_name_case_insensitively() -> None:
    sim = simulate(parse_stats({"Bob": {"base": 5, "rng": 0}, "alice": {"base": 4, "str": 1, "rng": 0}}), 1)
    assert sim.outcome == "alice"
    # float noise must not decide a tie: 1.0 + 0.5 vs 0.75 * 2
    sim = simulate(parse_stats({"zed": {"str": 1, "agi": 1, "rng": 0}, "amy": {"weapon_tier": 2, "rng": 0}}), 1)
    assert sim.outcome == "amy"


@pytest.mark.parametrize(
    "key", ["base", "str", "strength", "agi", "agility", "weapon_tier", "weapon", "rng", "rng_variance"]
)
def test_negative_stats_are_rejected_naming_the_field(key: str) -> None:
    with pytest.raises(ComfyVNError) as info:
        parse_stats({"hero": {key: -1}})
    assert info.value.field == f"stats.hero.{key}"
    assert info.value.code == "negative_stat"
    assert 400 <= http_status(info.value) < 500


def test_status_mod_may_be_negative() -> None:
    assert parse_stats({"hero": {"status_mod": -3}})[0].status_mod == -3.0


@pytest.mark.parametrize(
    ("stats", "field"),
    [
        ({}, "stats"),
        ([], "stats"),
        (5, "stats"),
        ({"a": "strong"}, "stats.a"),
        ({"a": True}, "stats.a"),
        ({"a": {"luck": 1}}, "stats.a.luck"),
        ({"a": {"str": 1, "strength": 2}}, "stats.a.strength"),
        ({"a": 1, "A": 2}, "stats.A"),
        ({" ": 1}, "stats. "),
        ({"a": float("nan")}, "stats.a"),
        ({"a": {"agi": "3"}}, "stats.a.agi"),
    ],
)
def test_invalid_stats_name_the_field(stats: Any, field: str) -> None:
    with pytest.raises(ComfyVNError) as info:
        parse_stats(stats)
    assert info.value.field == field


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)


@given(json_values)
def test_fuzzed_stats_either_parse_or_raise_a_client_error(raw: Any) -> None:
    try:
        contenders = parse_stats(raw)
    except ComfyVNError as exc:
        assert exc.field is not None and exc.field.startswith("stats")
        assert 400 <= http_status(exc) < 500
    else:
        assert contenders and all(c.name for c in contenders)


stat_value = st.floats(min_value=0, max_value=1000, allow_nan=False)
contender_stats = st.fixed_dictionaries(
    {},
    optional={
        "base": stat_value,
        "str": stat_value,
        "agi": stat_value,
        "weapon_tier": stat_value,
        "status_mod": st.floats(min_value=-100, max_value=100),
        "rng": st.floats(min_value=0, max_value=50),
    },
)
stats_tables = st.dictionaries(
    st.text(min_size=1, max_size=12).filter(str.strip), contender_stats | stat_value, min_size=1, max_size=6
).filter(lambda d: len({k.strip().lower() for k in d}) == len(d))


@given(stats_tables, st.integers(min_value=0, max_value=2**64 - 1))
def test_simulation_invariants(stats: dict[str, Any], seed: int) -> None:
    contenders = parse_stats(stats)
    sim = simulate(contenders, seed)
    assert sim == simulate(contenders, seed)
    assert sim.rng.uses == len(contenders)
    assert [b.name for b in sim.breakdown] == [c.name for c in contenders]
    assert math.isclose(sum(w for _, w in sim.weights), 1.0, rel_tol=1e-9)
    best = max(round(b.total, 9) for b in sim.breakdown)
    assert round({b.name: b.total for b in sim.breakdown}[sim.outcome], 9) == best
    for c, b in zip(contenders, sim.breakdown, strict=True):
        assert abs(b.components.rng) <= c.variance
        assert b.total == pytest.approx(c.fixed + b.components.rng)


def test_resolve_state_copies_and_never_mutates() -> None:
    state = {"variables": {"hp": 3}, "current_node": "n1"}
    copy, persisted = resolve_state(state, "hero", persist=True)
    assert persisted and copy == {"variables": {"hp": 3, "battle_outcome": "hero"}, "current_node": "n1"}
    assert state == {"variables": {"hp": 3}, "current_node": "n1"}
    assert resolve_state(state, "hero", persist=False) == (state, False)
    assert resolve_state(None, "hero", persist=True) == (None, False)
    with pytest.raises(ComfyVNError) as info:
        resolve_state({"variables": []}, "hero", persist=True)
    assert info.value.field == "state.variables"


@pytest.mark.parametrize(
    "stats",
    [
        {"hero": 10**4000},  # float() of it overflows
        {"hero": {"base": 1, "str": -(10**400)}},
        {"hero": {"base": 1e308, "str": 1e308, "agi": 1e308}},  # each finite, the total is not
        {"hero": float("inf")},
        {"hero": float("nan")},
    ],
)
def test_stats_too_large_for_a_finite_total_are_client_errors(stats: dict[str, Any]) -> None:
    with pytest.raises(ComfyVNError) as info:
        simulate(parse_stats(stats), 7)
    assert info.value.field is not None and info.value.field.startswith("stats.hero")
    assert http_status(info.value) == 400


def test_large_but_bounded_stats_give_finite_totals() -> None:
    sim = simulate(parse_stats({"hero": {"base": 1e15, "str": 1e15, "agi": 1e15}, "rival": 10**15}), 7)
    assert all(math.isfinite(row.total) for row in sim.breakdown)
