"""Ren'Py export of a generated 10,000-node project: validation + build + write (what `run_export` does
without its gates), target < 1 s, against a baseline in the same run (serialising the same project to
indented JSON), plus the real engine's lint time of the output. One node in ten holds a long message
that is paged, one in a hundred CJK text that needs a shipped font.

Both targets are taken as the best of several rounds: the machine is shared, and the best round is the
one least disturbed by other work.

* Absolute: the best export round < 1.0 s.
* Ratio: the best export round < 3.0x the best JSON-dump round. The dump is pure Python (``indent``
  turns off the C encoder), so other load slows both alike and the ratio holds still where seconds do
  not: on the shared machine it stayed within 2.1-2.5x while the same export took 0.8-1.3 s. Before this
  work the export was 6.5-8.3x the dump (4.6-4.9 s then, 2.6-2.9 s on a quieter machine, where the dump
  takes about 0.37 s); 1 s on that machine is 2.7x, and 3.0x leaves room for noise without letting a
  real slowdown (a quadratic pass, a validation gone slow again) through.

python3 -m pytest tests/bench/test_bench_renpy.py --benchmark-enable -q -s
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bench_targets import at_most
from comfyvn_renpy import ExportOptions, build_bundle, find_engine, write_bundle
from comfyvn_scenario import Project, validate_project

SCENES, NODES = 100, 100


def generated_project() -> Project:
    """100 scenes x 100 nodes: dialogue, a conditional two-way menu per node, a jump to the next scene."""
    scenes: dict[str, dict[str, Any]] = {}
    for s in range(SCENES):
        nodes = []
        for n in range(NODES):
            last = n == NODES - 1
            target = f"s{s + 1}:n0" if last and s + 1 < SCENES else f"n{min(n + 1, NODES - 1)}"
            choices = (
                []
                if last and s + 1 == SCENES
                else [
                    {
                        "id": "a",
                        "label": f"Go on [{n}] 100%",
                        "target": target,
                        "actions": [{"type": "increment", "key": "score"}],
                    },
                    {
                        "id": "b",
                        "label": 'Loop "back"',
                        "target": f"n{max(n - 1, 0)}",
                        "conditions": [{"key": "score", "operator": "gte", "value": 3}],
                    },
                ]
            )
            text = f'Line {n} of scene {s}: {{quotes}} "and" [brackets]'
            if n % 10 == 5:  # one line in ten is a long message: paged at sentence ends, with emphasis
                text = " ".join(
                    f'*She waits.* "Line {n}, sentence {i}: you *were* going to say 100%?"' for i in range(12)
                )
            elif n % 100 == 7:  # and some CJK: measured and covered by a shipped subset font
                text = f"第{s}场\uff1a她推开了那扇沉重的木门\uff0c屋里弥漫着檀香的味道。"
            node: dict[str, Any] = {"id": f"n{n}", "type": "dialogue", "speaker": "hero", "text": text}
            if choices:
                node["choices"] = choices
            else:
                node["end"] = True
            nodes.append(node)
        scenes[f"s{s}"] = {"id": f"s{s}", "start": "n0", "nodes": nodes}
    meta = {
        "id": "bench",
        "title": "Bench",
        "start": "s0",
        "variables": {"score": 0},
        "characters": {"hero": {"name": "Hero", "color": "#336699"}},
    }
    return Project(meta=meta, scenes=scenes)


ROUNDS = 5
TARGET_S = 1.0
RATIO_LIMIT = 3.0


def _best_of(rounds: int, run: Any) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def test_bench_export_10k_nodes(benchmark: Any, tmp_path: Path) -> None:
    project = generated_project()
    dumps: list[float] = []

    def dump() -> None:
        # Timed here, untimed by the benchmark: each export round follows a dump round, so both see
        # the same moment's load.
        started = time.perf_counter()
        json.dumps({"meta": project.meta, "scenes": project.scenes}, indent=2)
        dumps.append(time.perf_counter() - started)

    exports: list[float] = []

    def export() -> None:
        started = time.perf_counter()
        # build_bundle validates the project first (the plain path: no store stamp to skip it).
        write_bundle(build_bundle(project, ExportOptions()), tmp_path / "out")
        exports.append(time.perf_counter() - started)

    export()  # the first export loads fonts and fills caches that every later export reuses
    exports.clear()
    # With --benchmark-disable (the normal test run) pedantic runs once and keeps no stats.
    benchmark.pedantic(export, setup=dump, rounds=ROUNDS, iterations=1)
    best, baseline = min(exports), min(dumps)
    validation = _best_of(3, lambda: validate_project(project))
    print(
        f"\nexport of {SCENES * NODES} nodes (validate + build + write): best {best:.3f} s of {len(exports)} "
        f"(target < {TARGET_S} s), of which {validation:.3f} s is comfyvn_scenario.validate_project; "
        f"{best / baseline:.2f}x the JSON dump baseline ({baseline:.3f} s; limit {RATIO_LIMIT}x)"
    )
    if benchmark.stats:
        at_most("10k-node export (validate + build + write), best", best, TARGET_S, " s")
        at_most("10k-node export / JSON dump baseline", best / baseline, RATIO_LIMIT, "x")
        at_most("validation share of the export", validation / best, 0.5)
    engine = find_engine()
    if engine is None:
        print("lint: no Ren'Py engine installed, not measured")
        return
    lint = engine.lint(tmp_path / "out", timeout=600)
    print(f"real Ren'Py lint of the output: {lint.run.seconds:.2f} s, ok={lint.ok}, problems={len(lint.problems)}")
    assert lint.ok, lint.problems[:5]
