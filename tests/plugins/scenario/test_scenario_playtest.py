"""Playtests: canonical traces and digests, policies, explore-all, golden comparisons, other processes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest
from comfyvn.errors import ComfyVNError
from comfyvn_scenario import Project, load_project
from comfyvn_scenario.playtest import canonical_json, compare_traces, explore, run_playtest
from scenario_support import DEMO, tiny_scene


def test_trace_is_canonical_and_digest_matches(demo: Project) -> None:
    trace = run_playtest(demo, seed=7)
    assert hashlib.sha256(canonical_json(trace.data).encode()).hexdigest() == trace.digest
    assert trace.data["steps"][0]["rng"] == {"seed": 7, "value": 1025555898, "uses": 1}
    assert trace.data["outcome"] == "finished" and trace.data["final"]["finished"] is True


def test_same_digest_in_another_process() -> None:
    code = (
        "from comfyvn_scenario import load_project; from comfyvn_scenario.playtest import run_playtest;"
        f"print(run_playtest(load_project({str(DEMO)!r}), seed=1234).digest)"
    )
    env = {**os.environ, "PYTHONHASHSEED": "987"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == run_playtest(load_project(DEMO), seed=1234).digest


def test_policies(demo: Project) -> None:
    first = run_playtest(demo, policy="first")
    assert [s["choice"] for s in first.data["steps"]][:3] == ["look_around", "help_bags", "continue"]
    assert all(s["rng"]["uses"] == 0 for s in first.data["steps"])
    scripted = run_playtest(demo, policy="scripted", choices=["look_around", "go_machine"])
    assert scripted.data["outcome"] == "script_exhausted" and len(scripted.data["steps"]) == 2
    capped = run_playtest(demo, policy="first", max_steps=3)
    assert capped.data["outcome"] == "max_steps" and capped.data["final"]["steps"] == 3
    with pytest.raises(ComfyVNError) as info:
        run_playtest(demo, policy="scripted", choices=["look_around", "fly"])
    assert info.value.field == "choices.1" and info.value.details["available"] == ["help_bags", "go_machine"]
    with pytest.raises(ComfyVNError):
        run_playtest(demo, policy="sideways")


def test_bob_pov_trace_differs(demo: Project) -> None:
    alice = run_playtest(demo, seed=5, policy="first")
    bob = run_playtest(demo, seed=5, policy="first", pov="bob")
    assert "bob_cards" in [s["node"] for s in bob.data["steps"]]
    assert "alice_window" in [s["node"] for s in alice.data["steps"]]


def test_explore_visits_every_node_of_the_demo(demo: Project) -> None:
    report = explore(demo)
    every = [f"{s}:{n['id']}" for s, scene in demo.scenes.items() for n in scene["nodes"]]
    assert report.unvisited == [] and sorted(report.visited) == sorted(every)
    assert not report.data["truncated"]
    endings = {(e["pov"], e["node"]) for e in report.data["endings"]}
    assert {("alice", "ending_friends"), ("alice", "left_behind"), ("bob", "ending_breakfast")} <= endings
    assert explore(demo).digest == report.digest


def test_explore_bounds_report_truncation() -> None:
    loop = {
        "id": "loop",
        "start": "a",
        "variables": {"n": 0},
        "nodes": [
            {"id": "a", "choices": [{"target": "a", "actions": [{"type": "increment", "key": "n"}]}, {"target": "b"}]},
            {"id": "b", "end": True},
        ],
    }
    report = explore(loop, max_depth=5)
    assert report.data["truncated"] is True and "b" in report.visited


def test_compare_traces_reads_well(demo: Project) -> None:
    golden = run_playtest(demo, seed=7, policy="first")
    assert compare_traces(run_playtest(demo, seed=7, policy="first"), golden.to_wire()).equal
    actual = run_playtest(demo, seed=7, policy="scripted", choices=["look_around", "go_machine"])
    diff = compare_traces(actual, golden)
    assert not diff.equal and diff.first_divergent_step == 1
    assert "first divergence at step 1" in diff.text and "'go_machine'" in diff.text
    assert "--- golden" in diff.text and "+++ actual" in diff.text
    assert any(d["path"] == "/steps/1/choice" for d in diff.differences)


def test_variables_override_is_deep(demo: Project) -> None:
    trace = run_playtest(demo, policy="first", variables={"trust": {"bob": 5}})
    assert trace.data["initial"]["variables"]["trust"] == {"alice": 0, "bob": 5}


def test_random_policy_follows_weights() -> None:
    # Consecutive small seeds give nearly equal first draws (a property of the original LCG), so spread them.
    picks = [run_playtest(tiny_scene(), seed=s * 7919).data["steps"][0]["choice"] for s in range(400)]
    assert 60 <= picks.count("left") <= 140  # weight 1 of 4
