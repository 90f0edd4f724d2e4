"""Runner steps on a generated 10,000-node scene against a bare dict walk over the same graph in the same
run; target: `step` takes at most ``RATIO_LIMIT`` (3) times as long as the walk.

Run: ``python3 -m pytest tests/bench/test_bench_scenario.py --benchmark-enable -q`` (or ``nox -s bench``).
The baseline follows choice targets through an id -> node dict with the same LCG draw, but checks no
POV, no weights, no conditions, runs no actions and keeps no history; the ratio is what the real
`step` (availability, weighted pick, copy-on-write actions, immutable state and history) costs on
top of it. Both are timed in CPU time (time the process was descheduled on a shared machine does not
count). Rounds come in pairs, one walk of each side by side and in turn first, so that a pair sees the
same state of the machine; the figure is the median of the pairs' ratios, so that noise lasting a
round or two does not decide it (the ratio of the best rounds is printed too).
"""

from __future__ import annotations

import random
import statistics
import time
import timeit
from typing import Any

from bench_targets import at_most
from comfyvn_scenario import compile_scenario, initial_state, step

NODES = 10_000
STEPS = 20_000
RATIO_LIMIT = 3.0
ROUNDS = 15  # pairs of walks, about 1.5 s in all


def generated_scene(count: int = NODES, seed: int = 42) -> dict[str, Any]:
    """A strongly connected scene (no endings): node i always links to i+1, plus 1-2 random links; a
    third of the choices carry a condition and some an action, as written scenes do."""
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


SCENE = generated_scene()
SCENARIO = compile_scenario(SCENE)  # validated once, as a caller stepping repeatedly would
BY_ID = {node["id"]: node for node in SCENE["nodes"]}


def runner_walk() -> str:
    state = initial_state(SCENARIO, seed=7).state
    for _ in range(STEPS):
        state = step(SCENARIO, state).state
    return state.node_id


def baseline_walk() -> str:
    node, value = BY_ID["n0"], 7
    for _ in range(STEPS):
        value = (1664525 * value + 1013904223) % 2**32
        choices = node["choices"]
        node = BY_ID[choices[int(value / 2**32 * len(choices))]["target"]]
    return str(node["id"])


def test_bench_scenario_dict_walk_baseline(benchmark: Any) -> None:
    benchmark.group = "scenario"
    assert benchmark(baseline_walk) in BY_ID


def test_bench_scenario_runner_steps(benchmark: Any) -> None:
    benchmark.group = "scenario"
    assert benchmark(runner_walk) in BY_ID
    runner_timer = timeit.Timer(runner_walk, timer=time.process_time)
    baseline_timer = timeit.Timer(baseline_walk, timer=time.process_time)
    reals, bases = [], []
    for index in range(ROUNDS):
        if index % 2:
            bases.append(baseline_timer.timeit(1))
            reals.append(runner_timer.timeit(1))
        else:
            reals.append(runner_timer.timeit(1))
            bases.append(baseline_timer.timeit(1))
    real, base = min(reals), min(bases)
    ratio = statistics.median(r / b for r, b in zip(reals, bases, strict=True))
    benchmark.extra_info["steps_per_second"] = round(STEPS / real)
    benchmark.extra_info["baseline_steps_per_second"] = round(STEPS / base)
    benchmark.extra_info["ratio_to_baseline"] = round(ratio, 2)
    print(
        f"\nrunner {STEPS / real:,.0f} steps/s; dict walk {STEPS / base:,.0f} steps/s (CPU time, best rounds; "
        f"their ratio {real / base:.2f}x); median ratio of {ROUNDS} pairs {ratio:.2f}x"
    )
    at_most("runner step / bare dict walk, time per step (median of pairs)", ratio, RATIO_LIMIT, "x")
