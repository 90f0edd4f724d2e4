"""The runner's fast path changes nothing: every step equals the pre-optimisation runner's.

`reference_runner` is the runner as it was before the step fast path (the project's own code, copied
verbatim). For generated scenes and projects -- conditions of every operator, actions of every type,
weights (0 included), POV-restricted choices, node actions, endings, several scenes with cross-scene
targets -- a random sequence of operations (seeded draws, explicit choices, unavailable choices, POV
switches, wire round trips, seed mismatches) must give the same wire result, the same choices, the
same state repr and the same error (class, code, field, message, details) step after step.

The pinned digest (a walk of the benchmark's scene) was produced by the pre-optimisation runner and is
cross-checked here against the reference copy, so it does not merely echo the code under test.

Where the plugin's setup.py compiled the runner (C classes, C arithmetic, a C tuple constructor), the
checks run twice: on the module imports find, and on runner.py loaded from its source without the
compiled tuple helper. Both must equal the reference.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import pickle
import random
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import comfyvn_scenario.runner
import pytest
import reference_runner as ref
from comfyvn.digest import canonical_json
from comfyvn.errors import ComfyVNError
from comfyvn_scenario import Project, compile_scenario, initial_state, load_project, step
from comfyvn_scenario.playtest import explore, run_playtest
from comfyvn_scenario.rng import Rng
from comfyvn_scenario.validation import validate_project, validate_scene
from hypothesis import assume, given
from hypothesis import strategies as st
from scenario_support import DEMO


def _runner_from_source() -> ModuleType:
    """runner.py loaded from its source, even where the compiled module is what imports find, and with
    ``tuple.__new__`` in place of the compiled tuple helper."""
    path = Path(comfyvn_scenario.runner.__file__).with_name("runner.py")
    spec = importlib.util.spec_from_file_location("comfyvn_scenario._runner_source", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # importable by name, as pickle needs its classes to be
    spec.loader.exec_module(module)
    module._make = tuple.__new__  # type: ignore[attr-defined]
    return module


RUNNERS = [
    pytest.param(comfyvn_scenario.runner, id="imported"),
    pytest.param(_runner_from_source(), id="source"),
]

VARS: dict[str, Any] = {"gold": 0, "hp": 3, "flags": {"met": False, "name": "ann"}, "items": ["key"], "ratio": 0.5}
NUMERIC = ["gold", "hp", "ratio", "flags.met"]
POVS = ["alice", "bob"]

conditions = st.one_of(
    st.builds(
        lambda k, op, v: {"key": k, "operator": op, "value": v},
        st.sampled_from([*NUMERIC, "flags.name"]),
        st.sampled_from(["eq", "neq", "gt", "gte", "lt", "lte"]),
        st.one_of(st.integers(-2, 5), st.sampled_from([0.5, "3", "x", True, None])),
    ),
    st.builds(
        lambda k, op: {"key": k, "operator": op},
        st.sampled_from(["gold", "flags.met", "flags.name", "items"]),
        st.sampled_from(["exists", "not_exists"]),
    ),
    st.builds(
        lambda k, op, v: {"key": k, "operator": op, "value": v},
        st.sampled_from(["hp", "flags.name", "gold"]),
        st.sampled_from(["in", "not_in"]),
        st.one_of(st.lists(st.integers(0, 5), max_size=3), st.sampled_from(["annabel", "bob", ""])),
    ),
)
actions = st.one_of(
    st.builds(
        lambda t, k, a: {"type": t, "key": k, "amount": a},
        st.sampled_from(["increment", "decrement"]),
        st.sampled_from(["gold", "hp", "ratio"]),
        st.sampled_from([1, 2, 3, 0.5]),
    ),
    st.builds(lambda k: {"type": "increment", "key": k}, st.sampled_from(["gold", "hp", "ratio"])),
    st.builds(lambda k: {"type": "clear", "key": k}, st.sampled_from([*NUMERIC, "flags", "flags.name"])),
    st.builds(
        lambda k, v: {"type": "set", "key": k, "value": v},
        st.sampled_from(["flags.met", "flags.name", "gold", "hp"]),
        st.one_of(st.booleans(), st.integers(0, 4), st.sampled_from(["ann", "bo", {"deep": 1}])),
    ),
)


def _scene(draw: st.DrawFn, scene_id: str, ids: list[str], targets: list[str]) -> dict[str, Any]:
    nodes = []
    for node_id in ids:
        node: dict[str, Any] = {"id": node_id, "text": f"text of {node_id}"}
        if draw(st.integers(0, 3)) == 0:
            node["actions"] = draw(st.lists(actions, max_size=2))
        choices = []
        for j in range(draw(st.integers(0, 4))):
            choice: dict[str, Any] = {"target": draw(st.sampled_from(targets))}
            if j or draw(st.booleans()):  # the first choice may be keyed by its target
                choice["id"] = f"c{j}"
            weight = draw(st.sampled_from([None, 0, 0.1, 0.5, 1, 2, 3, 7]))
            if weight is not None:
                choice["weight"] = weight
            if draw(st.booleans()):
                choice["conditions"] = draw(st.lists(conditions, max_size=3))
            if draw(st.booleans()):
                choice["actions"] = draw(st.lists(actions, max_size=2))
            if draw(st.integers(0, 3)) == 0:
                visible = draw(st.lists(st.sampled_from(POVS), min_size=1, max_size=2, unique=True))
                choice["visible_to"] = visible[0] if len(visible) == 1 and draw(st.booleans()) else visible
            choices.append(choice)
        if choices:
            node["choices"] = choices
        if draw(st.integers(0, 5)) == 0:
            node["end"] = True
        nodes.append(node)
    return {"id": scene_id, "start": draw(st.sampled_from(ids)), "variables": copy.deepcopy(VARS), "nodes": nodes}


@st.composite
def stories(draw: st.DrawFn) -> dict[str, Any] | Project:
    """A valid scene, or a project of up to three scenes whose choices also jump across scenes."""
    count = draw(st.integers(0, 3))
    if count == 0:
        ids = [f"n{i}" for i in range(draw(st.integers(1, 8)))]
        scene = _scene(draw, "gen", ids, ids)
        assume(validate_scene(scene).valid)
        return scene
    layout = {f"s{s}": [f"n{i}" for i in range(draw(st.integers(1, 5)))] for s in range(count)}
    scenes = {}
    for scene_id, ids in layout.items():
        foreign = [f"{other}:{n}" for other, others in layout.items() if other != scene_id for n in others]
        scenes[scene_id] = _scene(draw, scene_id, ids, ids + foreign)
        del scenes[scene_id]["variables"]
    meta = {
        "id": "gen",
        "title": "Generated",
        "start": draw(st.sampled_from(list(layout))),
        "variables": copy.deepcopy(VARS),
        "povs": [{"id": p} for p in POVS],
    }
    if draw(st.booleans()):
        meta["default_pov"] = draw(st.sampled_from(POVS))
    project = Project(meta=meta, scenes=scenes)
    assume(validate_project(project).valid)
    return project


operations = st.lists(
    st.one_of(
        st.just(("draw", None)),
        st.tuples(st.just("pick"), st.integers(0, 5)),
        st.just(("unavailable", "no-such-choice")),
        st.tuples(st.just("pov"), st.sampled_from([*POVS, "narrator", "zoe"])),
        st.just(("wire", None)),
        st.tuples(st.just("seed"), st.sampled_from([0, 7, 2**32 + 7])),
    ),
    max_size=40,
)


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return "ok", call()
    except ComfyVNError as exc:
        return "error", (type(exc).__name__, exc.code, exc.field, str(exc), exc.details)


def _state_repr(state: Any) -> str:
    """The state's repr. The runner's prints the history as its list of entries (the linked list would
    recurse past Python's limit on long runs); the reference's attrs repr prints the linked list, so
    for it the list is put in the linked list's place."""
    if isinstance(state, ref.RunState):
        bare = repr(attrs.evolve(state, history=None))
        assert bare.count("history=None") == 1
        return bare.replace("history=None", f"history={state.history_list()!r}")
    return repr(state)


def _view(result: Any) -> dict[str, Any]:
    return {
        "wire": result.to_wire(),
        "keys": [c.key for c in result.choices],
        "finished": result.finished,
        "repr": _state_repr(result.state),
        "history_list": result.state.history_list(),
    }


@pytest.mark.parametrize("runner", RUNNERS)
@given(stories(), st.integers(0, 2**32 + 5), st.sampled_from([None, *POVS]), st.booleans(), operations)
def test_fast_runner_equals_reference(
    runner: Any,
    story: dict[str, Any] | Project,
    seed: int,
    pov: str | None,
    override: bool,
    ops: list[tuple[str, Any]],
) -> None:
    fast, slow = runner.compile_scenario(story), ref.compile_scenario(story)
    variables = {"gold": 4, "flags": {"met": True}} if override else None
    first_fast = runner.initial_state(fast, seed=seed, pov=pov, variables=variables)
    first_slow = ref.initial_state(slow, seed=seed, pov=pov, variables=variables)
    assert _view(first_fast) == _view(first_slow)
    # The same start through step(state=None), from the raw story (compiled inside step).
    started = _outcome(lambda: _view(runner.step(story, None, seed=seed, pov=pov)))
    assert started == _outcome(lambda: _view(ref.step(story, None, seed=seed, pov=pov)))
    state_fast, state_slow = first_fast.state, first_slow.state
    keys = [c.key for c in first_slow.choices]
    for kind, arg in ops:
        kwargs: dict[str, Any] = {}
        given_fast: Any = state_fast
        given_slow: Any = state_slow
        if kind == "pick":
            kwargs["choice_id"] = keys[arg % len(keys)] if keys else "nothing-available"
        elif kind == "unavailable":
            kwargs["choice_id"] = arg
        elif kind == "pov":
            kwargs["pov"] = arg
        elif kind == "seed":
            kwargs["seed"] = arg
        elif kind == "wire":
            with_scene = isinstance(story, Project)
            given_fast = state_fast.to_wire(with_scene=with_scene)
            given_slow = state_slow.to_wire(with_scene=with_scene)
            assert given_fast == given_slow
        got_fast = _outcome(lambda: runner.step(fast, given_fast, **kwargs))  # noqa: B023 - called at once
        got_slow = _outcome(lambda: ref.step(slow, given_slow, **kwargs))  # noqa: B023
        assert got_fast[0] == got_slow[0], (got_fast, got_slow)
        if got_fast[0] == "error":
            assert got_fast == got_slow
            continue
        result_fast, result_slow = got_fast[1], got_slow[1]
        assert _view(result_fast) == _view(result_slow)
        # A state survives pickling (its own __reduce__) as an equal value (its own __eq__).
        assert pickle.loads(pickle.dumps(result_fast.state)) == result_fast.state
        # The service tells "entered a node" from a new history object; that must agree too.
        moved_fast = result_fast.state.history is not state_fast.history
        moved_slow = result_slow.state.history is not state_slow.history
        assert kind == "wire" or moved_fast == moved_slow
        state_fast, state_slow = result_fast.state, result_slow.state
        keys = [c.key for c in result_slow.choices]


@given(stories(), st.data())
def test_available_equals_reference_for_any_variables(story: dict[str, Any] | Project, data: st.DataObject) -> None:
    fast, slow = compile_scenario(story), ref.compile_scenario(story)
    values = data.draw(
        st.fixed_dictionaries(
            {},
            optional={
                "gold": st.one_of(st.integers(-3, 6), st.text(max_size=2), st.none()),
                "hp": st.one_of(st.integers(-3, 6), st.floats(allow_nan=True), st.booleans()),
                "flags": st.one_of(
                    st.fixed_dictionaries({}, optional={"met": st.booleans(), "name": st.sampled_from(["a", "ann"])}),
                    st.integers(),
                    st.lists(st.integers(), max_size=2),
                ),
                "items": st.lists(st.integers(0, 3), max_size=2),
            },
        )
    )
    pov = data.draw(st.sampled_from([*POVS, "narrator", "zoe"]))
    for scene_id, nodes in slow.nodes.items():
        for node_id, node in nodes.items():
            expected = [c.key for c in node.available(values, pov)]
            assert [c.key for c in fast.nodes[scene_id][node_id].available(values, pov)] == expected


def bench_like_scene(count: int, seed: int) -> dict[str, Any]:
    """The benchmark's generated scene (tests/bench/test_bench_scenario.py), at a size a unit test affords."""
    rng = random.Random(seed)
    nodes = []
    for i in range(count):
        choices: list[dict[str, Any]] = [{"id": "next", "target": f"n{(i + 1) % count}", "weight": 2}]
        for j in range(rng.randint(1, 2)):
            choice: dict[str, Any] = {"id": f"c{j}", "target": f"n{rng.randrange(count)}", "weight": rng.choice([1, 3])}
            if rng.random() < 0.33:
                choice["conditions"] = [{"key": "stats.steps", "operator": "gte", "value": 0}]
            if rng.random() < 0.25:
                choice["actions"] = [{"type": "increment", "key": "stats.steps"}]
            choices.append(choice)
        nodes.append(
            {"id": f"n{i}", "type": "dialogue", "speaker": "narrator", "text": f"line {i}", "choices": choices}
        )
    return {"id": "bench", "start": "n0", "variables": {"stats": {"steps": 0}}, "nodes": nodes}


def _walk_digest(module: Any, scene: dict[str, Any], seed: int, steps: int) -> str:
    scenario = module.compile_scenario(scene)
    state = module.initial_state(scenario, seed=seed).state
    digest = hashlib.sha256()
    for _ in range(steps):
        result = module.step(scenario, state)
        state = result.state
        digest.update(canonical_json(result.to_wire()).encode())
    return digest.hexdigest()


# Produced by the runner before the fast path (commit 8637416), walking the scene `bench_like_scene` builds.
PINNED_WALK = "b79a1f51b0643dcd879571ab403fb8f1eec09db3137e4a442840cbd6ec5a1024"


@pytest.mark.parametrize("module", [pytest.param(ref, id="reference"), *RUNNERS])
def test_bench_scene_walk_matches_the_pinned_digest(module: Any) -> None:
    assert _walk_digest(module, bench_like_scene(500, 3), seed=11, steps=3000) == PINNED_WALK


class CountingRng(Rng):
    """An `Rng` subclass: the runner must draw through its `draw`."""

    __slots__ = ()

    def draw(self) -> tuple[float, Any]:
        r, new = super().draw()
        return r, new


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize(
    "rng",
    [
        Rng(3, 5, 0),
        tuple.__new__(Rng, (3, -5, 0)),  # values put in past the constructor's normalising
        tuple.__new__(Rng, (3, 2**70 + 9, 4)),
        CountingRng(3, 5, 0),
    ],
    ids=["rng", "negative-value", "huge-value", "subclass"],
)
def test_any_rng_state_draws_as_rng_draw_does(runner: Any, rng: Rng) -> None:
    # The inlined draw takes only in-range ints; every other RNG state draws through Rng.draw, in the
    # compiled runner as in the source: value' = (1664525 * value + 1013904223) mod 2**32.
    scenario = runner.compile_scenario(bench_like_scene(20, 5))
    state = runner.initial_state(scenario, seed=3).state._replace(rng=rng)
    value, uses = rng.value, rng.uses
    for _ in range(4):
        state = runner.step(scenario, state).state
        value, uses = (1664525 * value + 1013904223) % 2**32, uses + 1
        assert (state.rng.seed, state.rng.value, state.rng.uses) == (3, value, uses)
        assert type(state.rng) is type(rng)


PLAYTESTS = [
    (0, None, "random"),
    (0, "bob", "first"),
    (1, "alice", "random"),
    (7, "bob", "random"),
    (1234, None, "first"),
]


def test_demo_playtests_and_explore_equal_the_reference_runners(monkeypatch: pytest.MonkeyPatch) -> None:
    # Whole traces and their digests, through the real playtest code, with the reference runner
    # patched in and then the real one; the demo as it is on disk (no pinned digests, so an edit of
    # the demo does not break this test, while any change in what the runner does would).
    import comfyvn_scenario.playtest as playtest

    demo = load_project(DEMO)
    fast = [run_playtest(demo, seed=seed, pov=pov, policy=policy).digest for seed, pov, policy in PLAYTESTS]
    fast_explore = explore(demo).digest
    monkeypatch.setattr(playtest, "Scenario", ref.Scenario)
    monkeypatch.setattr(playtest, "compile_scenario", ref.compile_scenario)
    monkeypatch.setattr(playtest, "initial_state", ref.initial_state)
    monkeypatch.setattr(playtest, "step", ref.step)
    slow = [run_playtest(demo, seed=seed, pov=pov, policy=policy).digest for seed, pov, policy in PLAYTESTS]
    assert fast == slow
    assert fast_explore == explore(demo).digest
    assert len(set(fast)) == len(PLAYTESTS)  # the runs differ from each other: the check has teeth


@pytest.mark.parametrize("runner", RUNNERS)
def test_demo_random_walks_match_the_reference(runner: Any) -> None:
    demo = load_project(DEMO)
    fast, slow = runner.compile_scenario(demo), ref.compile_scenario(demo)
    for seed, pov in ((0, None), (1, "alice"), (1234, "bob")):
        a, b = runner.initial_state(fast, seed=seed, pov=pov), ref.initial_state(slow, seed=seed, pov=pov)
        for _ in range(60):
            assert a.to_wire() == b.to_wire()
            a, b = runner.step(fast, a.state), ref.step(slow, b.state)


@pytest.mark.parametrize("runner", RUNNERS)
@given(stories(), st.lists(st.tuples(st.integers(0, 2), st.integers(0, 5)), min_size=20, max_size=60), st.data())
def test_interleaved_runs_on_one_compiled_scenario_equal_the_reference(
    runner: Any, story: dict[str, Any] | Project, moves: list[tuple[int, int]], data: st.DataObject
) -> None:
    """Three runs with different variables, stepped in any interleaving on one compiled scenario, each
    equal a run of the reference runner alone: a condition's remembered answer for one run's variables
    never reaches another run (the scenario compiles each distinct condition once, shared by all runs)."""
    fast = runner.compile_scenario(story)
    # Every variable a generated condition reads differs between the runs.
    starts = [
        None,
        {
            "gold": data.draw(st.integers(1, 6)),
            "hp": -1,
            "ratio": 3,
            "items": [1],
            "flags": {"met": True, "name": "bo"},
        },
        {"gold": "x", "hp": data.draw(st.integers(4, 9)), "ratio": None, "items": [], "flags": {"name": "annabel"}},
    ]
    runs_fast = [runner.initial_state(fast, seed=n, variables=v) for n, v in enumerate(starts)]
    runs_slow = [ref.initial_state(ref.compile_scenario(story), seed=n, variables=v) for n, v in enumerate(starts)]
    slow_scenarios = [ref.compile_scenario(story) for _ in starts]
    for run, pick in moves:
        keys = [c.key for c in runs_slow[run].choices]
        choice_id = keys[pick % len(keys)] if keys and pick < 3 else None
        got_fast = _outcome(lambda: runner.step(fast, runs_fast[run].state, choice_id=choice_id))  # noqa: B023
        got_slow = _outcome(lambda: ref.step(slow_scenarios[run], runs_slow[run].state, choice_id=choice_id))  # noqa: B023
        assert got_fast[0] == got_slow[0]
        if got_fast[0] == "error":
            assert got_fast == got_slow
            continue
        assert _view(got_fast[1]) == _view(got_slow[1])
        runs_fast[run], runs_slow[run] = got_fast[1], got_slow[1]


def test_a_repeated_condition_is_compiled_once_and_answers_each_variables_version() -> None:
    gate = {"key": "stats.trust", "operator": "gte", "value": 2}
    scene = {
        "id": "gate",
        "start": "a",
        "variables": {"stats": {"trust": 0}},
        "nodes": [
            {
                "id": "a",
                "choices": [
                    {"id": "open", "target": "b", "conditions": [dict(gate)]},
                    {"id": "talk", "target": "a", "actions": [{"type": "increment", "key": "stats.trust"}]},
                ],
            },
            {"id": "b", "choices": [{"id": "back", "target": "a", "conditions": [dict(gate), dict(gate)]}]},
        ],
    }
    scenario = compile_scenario(scene)
    node_a, node_b = scenario.nodes["gate"]["a"], scenario.nodes["gate"]["b"]
    # One function for the three copies, and one check for the two on the same choice.
    assert node_a.choices[0].check is node_b.choices[0].check
    assert node_b.choices[0].conditions[0] is node_b.choices[0].conditions[1]
    state = initial_state(scenario).state
    assert [c.key for c in step(scenario, state, choice_id="talk").choices] == ["talk"]  # trust 1: still closed
    state = step(scenario, state, choice_id="talk").state
    state = step(scenario, state, choice_id="talk").state
    assert [c.key for c in step(scenario, state).choices] in (["open", "talk"], ["back"])
    # The earlier state (trust 0) still answers for its own variables after the later one was asked.
    early = initial_state(scenario).state
    assert [c.key for c in initial_state(scenario).choices] == ["talk"]
    assert step(scenario, early, choice_id="talk").state.variables["stats"]["trust"] == 1
    # A different bound is a different condition.
    other = compile_scenario(
        {
            **scene,
            "nodes": [
                scene["nodes"][0],
                {**scene["nodes"][1], "choices": [{"id": "back", "target": "a", "conditions": [{**gate, "value": 3}]}]},
            ],
        }
    )
    assert other.nodes["gate"]["a"].choices[0].check is not other.nodes["gate"]["b"].choices[0].check
