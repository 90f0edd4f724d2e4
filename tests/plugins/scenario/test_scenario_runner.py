"""The runner's wire semantics: LCG reference, history, finished, choices, conditions, actions, POV."""

from __future__ import annotations

import copy
import operator
from typing import Any

import pytest
from comfyvn.errors import ComfyVNError
from comfyvn_scenario import Project, compile_scenario, initial_state, step
from comfyvn_scenario.rng import Rng, weighted_index
from comfyvn_scenario.rules import compile_action, compile_condition
from comfyvn_scenario.runner import linked_history
from comfyvn_server.errors import http_status
from scenario_support import tiny_scene


def test_lcg_reference_value() -> None:
    r, rng = Rng.from_seed(7).draw()
    assert rng.value == 1025555898 and rng.uses == 1 and rng.seed == 7
    assert r == 1025555898 / 2**32


def test_weighted_index_is_cumulative() -> None:
    assert [weighted_index([1, 3], r) for r in (0.0, 0.24, 0.25, 0.99)] == [0, 0, 1, 1]


def test_initial_step_matches_wire() -> None:
    result = step(tiny_scene(), None, seed=7).to_wire()
    state = result["state"]
    assert state["history"][0] == {"node": "a", "choice": None}
    assert state["history"][1]["node"] == "a" and len(state["history"]) == 2
    assert state["rng"] == {"seed": 7, "value": 1025555898, "uses": 1}
    assert state["pov"] == "narrator" and result["ok"] is True
    # 1025555898 / 2**32 = 0.2388 < 1/4 of the total weight 4 -> the first choice "left".
    assert state["current_node"] == "b" and state["variables"] == {"gold": 2}


def test_explicit_choice_takes_no_draw_and_actions_run() -> None:
    result = step(tiny_scene(), None, choice_id="right", seed=1)
    assert result.state.rng.uses == 0 and result.state.node_id == "c" and result.finished


def test_target_equal_to_id_when_no_id() -> None:
    first = step(tiny_scene(), None, choice_id="left")
    second = step(tiny_scene(), first.state, choice_id="c")
    assert second.state.history_list()[-1] == ("tiny", "b", "c")


def test_finished_state_is_returned_unchanged() -> None:
    done = step(tiny_scene(), None, choice_id="right").state
    assert step(tiny_scene(), done).state == done
    assert step(tiny_scene(), done.to_wire()).state.to_wire() == done.to_wire()


def test_condition_gates_a_choice() -> None:
    scene = tiny_scene()
    scene["variables"]["gold"] = 5
    start = initial_state(compile_scenario(scene))
    assert [c.key for c in start.choices] == ["left", "right", "rich"]
    with pytest.raises(ComfyVNError) as info:
        step(tiny_scene(), None, choice_id="rich")
    assert http_status(info.value) == 422 and info.value.details["available"] == ["left", "right"]


def test_seed_conflicting_with_state_is_409() -> None:
    state = step(tiny_scene(), None, seed=3, choice_id="left").state
    step(tiny_scene(), state, seed=3)
    with pytest.raises(ComfyVNError) as info:
        step(tiny_scene(), state, seed=4)
    assert http_status(info.value) == 409 and info.value.field == "seed"


def test_step_never_mutates_inputs() -> None:
    scene = tiny_scene()
    before = copy.deepcopy(scene)
    wire = step(scene, None, seed=9).to_wire()
    snapshot = copy.deepcopy(wire)
    step(scene, wire["state"])
    assert scene == before and wire == snapshot


@pytest.mark.parametrize(
    ("operator", "value", "current", "expected"),
    [
        ("eq", 3, 3, True),
        ("neq", 3, 3, False),
        ("gt", 2, 3, True),
        ("gte", "3", 3, True),
        ("lt", 2, 3, False),
        ("lte", 3, 3.0, True),
        ("in", [1, 3], 3, True),
        ("not_in", [1, 3], 3, False),
        ("in", "abc", "b", True),
        ("exists", None, 0, True),
        ("not_exists", None, 0, False),
        ("gt", "x", 3, False),
        ("in", 5, 3, False),
    ],
)
def test_condition_operators(operator: str, value: Any, current: Any, expected: bool) -> None:
    assert compile_condition({"key": "a.b", "operator": operator, "value": value})({"a": {"b": current}}) is expected


def test_missing_key_is_false_except_not_exists() -> None:
    for op in ("eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in", "exists"):
        assert compile_condition({"key": "x.y", "operator": op, "value": [1]})({"x": 1}) is False
    assert compile_condition({"key": "x.y", "operator": "not_exists"})({"x": 1}) is True


def test_actions_keep_ints_create_paths_and_share_nothing_mutable() -> None:
    base = {"a": {"n": 3}, "keep": {"x": 1}}
    after = compile_action({"type": "increment", "key": "a.n"})(base)
    assert after == {"a": {"n": 4}, "keep": {"x": 1}} and isinstance(after["a"]["n"], int)
    assert base == {"a": {"n": 3}, "keep": {"x": 1}} and after["keep"] is base["keep"]
    assert compile_action({"type": "decrement", "key": "m", "amount": 2.5})({}) == {"m": -2.5}
    assert compile_action({"type": "increment", "key": "m", "value": 4})({"m": "text"}) == {"m": 4}
    assert compile_action({"type": "set", "key": "p.q.r", "value": [1]})({"p": 1}) == {"p": {"q": {"r": [1]}}}
    assert compile_action({"type": "clear", "key": "a.n"})(base) == {"a": {}, "keep": {"x": 1}}
    assert compile_action({"type": "clear", "key": "zz"})(base) is base


def test_visible_to_filters_by_pov(demo: Project) -> None:
    scenario = compile_scenario(demo)
    carriage = scenario.node("night_train", "carriage")
    assert [c.key for c in carriage.available({}, "alice")] == ["watch_city", "doze"]
    assert [c.key for c in carriage.available({}, "bob")] == ["deal_cards", "doze"]
    assert [c.key for c in carriage.available({}, "narrator")] == ["doze"]


def test_jump_crosses_scenes_and_pov_switch(demo: Project) -> None:
    scenario = compile_scenario(demo)
    state = initial_state(scenario, seed=1).state
    for choice in (
        "look_around",
        "help_bags",
        "continue",
        "machine_works",
        "to_platform",
        "show_ticket",
        "depart",
        "jump_train",
    ):
        state = step(scenario, state, choice_id=choice).state
    assert (state.scene_id, state.node_id) == ("night_train", "carriage")
    assert state.to_wire(with_scene=True)["history"][-1] == {
        "node": "to_train",
        "choice": "jump_train",
        "scene_id": "platform",
    }
    bob = step(scenario, state, choice_id="deal_cards", pov="bob").state
    assert bob.pov == "bob" and bob.node_id == "bob_cards"


def test_invalid_scene_is_422_with_pointer() -> None:
    scene = tiny_scene()
    scene["start"] = "nope"
    with pytest.raises(ComfyVNError) as info:
        step(scene, None)
    assert http_status(info.value) == 422 and info.value.field == "/start"


# -- long runs: a state after thousands of steps compares, prints, pickles and copies --------------------

LOOP = {
    "id": "loop",
    "start": "a",
    "variables": {"laps": 0},
    "nodes": [
        {
            "id": "a",
            "text": "a",
            "choices": [
                {"id": "on", "target": "b", "weight": 3, "actions": [{"type": "increment", "key": "laps"}]},
                {"id": "stay", "target": "a"},
            ],
        },
        {"id": "b", "text": "b", "choices": [{"id": "back", "target": "a"}]},
    ],
}


def _walk(steps: int, seed: int = 11) -> Any:
    scenario = compile_scenario(LOOP)
    state = initial_state(scenario, seed=seed).state
    for _ in range(steps):
        state = step(scenario, state).state
    return state


def test_a_long_run_state_compares_prints_pickles_and_copies() -> None:
    import pickle

    steps = 5000  # tuple comparison, repr and pickle of the nested history fail past ~1,000 levels
    state, again = _walk(steps), _walk(steps)
    assert state.history is not again.history  # two runs: equal values, distinct objects
    assert state == again and operator.ne(state, again) is False
    assert state != _walk(steps, seed=12) and state != _walk(steps - 1)
    assert state != state._replace(pov="other") and state == state._replace()
    entries = state.history_list()
    # Histories alone: a different oldest entry, one step fewer, one more, none at all.
    oldest_changed = linked_history([("loop", "b", None), *entries[1:]])
    for history in (oldest_changed, linked_history(entries[:-1]), (entries[-1], state.history), None):
        other = state._replace(history=history)
        assert state != other and other != state and operator.eq(state, other) is False
    assert state == state._replace(history=linked_history(entries))  # rebuilt: equal, not the same object
    assert len(entries) == steps + 1 and entries[0] == ("loop", "a", None)
    text = repr(state)
    assert text.startswith("RunState(scene_id='loop', node_id=") and f"history={entries!r}" in text
    assert text.endswith(f"rng={state.rng!r}, finished=False, pov='narrator')")
    for copied in (pickle.loads(pickle.dumps(state)), copy.deepcopy(state), copy.copy(state)):
        assert type(copied) is type(state) and copied == state
        assert copied.history_list() == entries and copied.to_wire() == state.to_wire()
        assert step(compile_scenario(LOOP), copied).to_wire() == step(compile_scenario(LOOP), state).to_wire()
    deep = copy.deepcopy(state)
    assert deep.variables is not state.variables  # a deep copy, not a view


def test_a_state_still_compares_with_a_plain_tuple_as_before() -> None:
    state = _walk(3)
    assert state == tuple(state) and tuple(state) == state and operator.ne(state, tuple(state)) is False
    assert state != (*tuple(state)[:6], "someone else")
    with pytest.raises(TypeError, match="unhashable"):
        hash(state)
