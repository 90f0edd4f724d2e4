"""Property tests: generated valid scenes validate and run; determinism; save/restore; invalid edits."""

from __future__ import annotations

import copy
import json
from typing import Any

from comfyvn_scenario import compile_scenario, initial_state, step, validate_scene
from comfyvn_scenario.playtest import run_playtest
from comfyvn_scenario.saves import save_payload, state_from_save
from hypothesis import given
from hypothesis import strategies as st

VARS = {"gold": 0, "hp": 3, "flags": {"met": False}}
NUMERIC = ["gold", "hp"]
POVS = ["alice", "bob"]


@st.composite
def scenes(draw: st.DrawFn) -> dict[str, Any]:
    """A valid scene: unique ids, resolvable targets, conditions and actions on declared variables."""
    count = draw(st.integers(1, 10))
    ids = [f"n{i}" for i in range(count)]
    condition = st.one_of(
        st.builds(
            lambda k, op, v: {"key": k, "operator": op, "value": v},
            st.sampled_from(NUMERIC),
            st.sampled_from(["eq", "neq", "gt", "gte", "lt", "lte"]),
            st.integers(-2, 5),
        ),
        st.builds(
            lambda op, v: {"key": "flags.met", "operator": op, "value": v},
            st.sampled_from(["eq", "neq"]),
            st.booleans(),
        ),
        st.builds(lambda op: {"key": "gold", "operator": op}, st.sampled_from(["exists", "not_exists"])),
        st.builds(lambda v: {"key": "hp", "operator": "in", "value": v}, st.lists(st.integers(0, 5), max_size=3)),
    )
    action = st.one_of(
        st.builds(
            lambda t, k, a: {"type": t, "key": k, "amount": a},
            st.sampled_from(["increment", "decrement"]),
            st.sampled_from(NUMERIC),
            st.integers(1, 3),
        ),
        st.builds(lambda v: {"type": "set", "key": "flags.met", "value": v}, st.booleans()),
        st.builds(lambda k, v: {"type": "set", "key": k, "value": v}, st.sampled_from(NUMERIC), st.integers(0, 4)),
    )
    nodes = []
    for node_id in ids:
        node: dict[str, Any] = {"id": node_id, "text": f"text of {node_id}"}
        if draw(st.booleans()):
            node["actions"] = draw(st.lists(action, max_size=2))
        choices = []
        for j in range(draw(st.integers(0, 3))):
            choice: dict[str, Any] = {
                "id": f"c{j}",
                "target": draw(st.sampled_from(ids)),
                "weight": draw(st.sampled_from([0, 0.5, 1, 2, 3])),
            }
            if draw(st.booleans()):
                choice["conditions"] = draw(st.lists(condition, max_size=2))
            if draw(st.booleans()):
                choice["actions"] = draw(st.lists(action, max_size=2))
            if draw(st.integers(0, 4)) == 0:
                choice["visible_to"] = draw(st.lists(st.sampled_from(POVS), min_size=1, max_size=2, unique=True))
            choices.append(choice)
        if choices:
            node["choices"] = choices
        if draw(st.integers(0, 5)) == 0:
            node["end"] = True
        nodes.append(node)
    return {"id": "gen", "start": draw(st.sampled_from(ids)), "variables": copy.deepcopy(VARS), "nodes": nodes}


seeds = st.integers(0, 2**32 - 1)
povs = st.sampled_from([None, *POVS])


@given(scenes())
def test_generated_scenes_are_valid(scene: dict[str, Any]) -> None:
    report = validate_scene(scene)
    assert report.valid, report.to_wire()


@given(scenes(), seeds, povs)
def test_runner_never_crashes_and_same_seed_same_trace(scene: dict[str, Any], seed: int, pov: str | None) -> None:
    first = run_playtest(scene, seed=seed, pov=pov, max_steps=40)
    second = run_playtest(copy.deepcopy(scene), seed=seed, pov=pov, max_steps=40)
    assert first.digest == second.digest and first.data == second.data
    assert first.data["outcome"] in ("finished", "max_steps")
    for entry in first.data["steps"]:
        assert entry["choice"] in entry["available"]


@given(scenes(), seeds, povs, st.integers(0, 15), st.integers(1, 15))
def test_save_restore_continue_equals_continue(
    scene: dict[str, Any], seed: int, pov: str | None, before: int, after: int
) -> None:
    scenario = compile_scenario(scene)
    state = initial_state(scenario, seed=seed, pov=pov).state
    for _ in range(before):
        state = step(scenario, state).state
    restored = state_from_save(scenario, json.loads(json.dumps(save_payload(state))))
    assert restored.to_wire() == state.to_wire()
    for _ in range(after):
        state = step(scenario, state).state
        restored = step(scenario, restored).state
    assert restored.to_wire() == state.to_wire()


@given(scenes(), seeds)
def test_wire_round_trip_steps_identically(scene: dict[str, Any], seed: int) -> None:
    direct = step(scene, None, seed=seed)
    via_wire = step(scene, json.loads(json.dumps(direct.to_wire()["state"])))
    assert via_wire.to_wire() == step(scene, direct.state).to_wire()


EDITS = ("target", "duplicate", "start", "undeclared", "weight", "operator", "drop_id", "action_type")


@given(scenes(), st.sampled_from(EDITS), st.data())
def test_invalid_edits_are_rejected_at_the_edit(scene: dict[str, Any], edit: str, data: st.DataObject) -> None:
    nodes = scene["nodes"]
    with_choices = [i for i, n in enumerate(nodes) if n.get("choices")]
    if edit in ("target", "weight", "undeclared", "operator") and not with_choices:
        edit = "start"
    if edit == "duplicate" and len(nodes) < 2:
        edit = "drop_id"
    if edit == "target":
        i = data.draw(st.sampled_from(with_choices))
        j = data.draw(st.integers(0, len(nodes[i]["choices"]) - 1))
        nodes[i]["choices"][j]["target"] = "no_such_node"
        path = f"/nodes/{i}/choices/{j}/target"
    elif edit == "weight":
        i = data.draw(st.sampled_from(with_choices))
        nodes[i]["choices"][0]["weight"] = -data.draw(st.integers(1, 5))
        path = f"/nodes/{i}/choices/0/weight"
    elif edit in ("undeclared", "operator"):
        i = data.draw(st.sampled_from(with_choices))
        conditions = nodes[i]["choices"][0].setdefault("conditions", [])
        conditions.append({"key": "gold", "operator": "eq", "value": 1})
        k = len(conditions) - 1
        if edit == "undeclared":
            conditions[k]["key"] = "nobody.knows"
            path = f"/nodes/{i}/choices/0/conditions/{k}/key"
        else:
            conditions[k]["operator"] = "approximately"
            path = f"/nodes/{i}/choices/0/conditions/{k}/operator"
    elif edit == "duplicate":
        i = data.draw(st.integers(1, len(nodes) - 1))
        nodes[i]["id"] = nodes[0]["id"]
        path = f"/nodes/{i}/id"
    elif edit == "drop_id":
        i = data.draw(st.integers(0, len(nodes) - 1))
        del nodes[i]["id"]
        path = f"/nodes/{i}/id"
    elif edit == "action_type":
        i = data.draw(st.integers(0, len(nodes) - 1))
        nodes[i]["actions"] = [{"type": "explode", "key": "gold"}]
        path = f"/nodes/{i}/actions/0/type"
    else:
        scene["start"] = "no_such_start"
        path = "/start"
    report = validate_scene(scene)
    assert not report.valid
    assert path in [issue.path for issue in report.errors], report.to_wire()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)


@given(scenes(), st.data())
def test_fuzzed_fields_never_crash_the_validator(scene: dict[str, Any], data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(scene["nodes"]) - 1))
    key = data.draw(st.sampled_from(["id", "choices", "actions", "end", "type", "speaker", "characters"]))
    scene["nodes"][i][key] = data.draw(json_values)
    report = validate_scene(scene)
    if not report.valid:
        assert all(issue.path.startswith("/") for issue in report.errors)
