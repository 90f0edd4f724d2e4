"""Issue 11 #2: playtests are bounded server-side, in work and in memory, and named in their refusals."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest
from comfyvn.errors import TooLarge
from comfyvn_scenario.playtest import MAX_DEPTH, MAX_STATES, MAX_STEPS, explore, run_playtest
from comfyvn_server.errors import http_status


def _loop(variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """One node, three choices back to itself, each moving a counter: every state is new."""
    bump = [
        {"id": "n1", "target": "a", "actions": [{"type": "increment", "key": "n"}]},
        {"id": "m1", "target": "a", "actions": [{"type": "increment", "key": "m"}]},
        {"id": "n2", "target": "a", "actions": [{"type": "increment", "key": "n", "amount": 2}]},
    ]
    return {
        "id": "loop",
        "start": "a",
        "variables": variables or {"n": 0, "m": 0},
        "nodes": [{"id": "a", "choices": bump}],
    }


@pytest.mark.parametrize(
    ("bounds", "field"),
    [
        ({"max_depth": MAX_DEPTH + 1}, "max_depth"),
        ({"max_states": MAX_STATES + 1}, "max_states"),
        ({"max_depth": 100_000, "max_states": 100_000}, "max_depth"),
    ],
)
def test_explore_refuses_bounds_past_the_hard_caps(bounds: dict[str, int], field: str) -> None:
    with pytest.raises(TooLarge) as info:
        explore(_loop(), **bounds)
    assert info.value.field == field and http_status(info.value) == 413


def test_playtest_refuses_max_steps_past_the_cap() -> None:
    with pytest.raises(TooLarge) as info:
        run_playtest(_loop(), max_steps=MAX_STEPS + 1)
    assert info.value.field == "max_steps"


def test_explore_memory_grows_with_states_not_with_depth_times_states() -> None:
    # Before: every stacked state carried a copy of its whole path and every seen state its variables
    # as text, so memory grew with depth x states (20,000 states at depth 20,000 took 3.8 GB). Now a
    # seen state is a 32-byte digest, paths are shared and children are stepped one at a time.
    tracemalloc.start()
    try:
        report = explore(_loop({"n": 0, "m": 0, "notes": "x" * 2048}), max_depth=MAX_DEPTH, max_states=10_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.data["truncated"] is True and report.data["states"] == 10_000
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_explore_path_to_an_ending_is_the_choices_taken() -> None:
    scene = _loop()
    scene["nodes"][0]["choices"].append(
        {"id": "out", "target": "end", "conditions": [{"key": "m", "operator": "gte", "value": 2}]}
    )
    scene["nodes"].append({"id": "end", "end": True})
    report = explore(scene, max_depth=4)
    (ending,) = report.data["endings"]
    # Depth-first in scene order: n1 first, then two m1 to open the way out, within depth 4.
    assert ending["node"] == "end" and ending["path"] == ["n1", "m1", "m1", "out"]


def test_trace_with_huge_variables_is_refused_not_multiplied() -> None:
    big = {"n": 0, "m": 0, "blob": "x" * 2**20}
    with pytest.raises(TooLarge) as info:
        run_playtest(_loop(big), policy="first", max_steps=MAX_STEPS)
    assert info.value.field == "max_steps"
    # A small trace with the same variables still runs.
    assert run_playtest(_loop(big), policy="first", max_steps=3).data["outcome"] == "max_steps"


def test_route_answers_413_naming_the_field(client: Any) -> None:
    body = {"scene": _loop(), "policy": "explore", "max_states": 100_000, "max_depth": 100_000}
    response = client.post("/api/playtest/run", json=body)
    assert response.status_code == 413, response.text
    assert response.json()["error"]["field"] in ("max_depth", "max_states")
    small = client.post("/api/playtest/run", json={"scene": _loop(), "policy": "explore", "max_depth": 3})
    assert small.status_code == 200 and small.json()["report"]["truncated"] is True
