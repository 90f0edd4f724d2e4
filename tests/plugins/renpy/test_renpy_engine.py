"""With the real engine (Debian's renpy 8.0.3): lint of the demo and of generated nasty projects, headless
playthroughs of testcases derived from playtest traces, ``--check`` and ``comfyvn demo``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from comfyvn import Kernel
from comfyvn.cli import make_cli
from comfyvn_renpy import ExportOptions, ExportRequest, build_bundle, run_export, write_bundle
from comfyvn_renpy.engine import Engine
from comfyvn_renpy.testcases import MARKER
from comfyvn_scenario import Project, validate_project
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

NASTY = st.sampled_from(
    [
        '"quoted" \\back\\slash',
        "[var] {b}bold{/b} 100% done %s %(x)s",
        "line one\nline two",
        "emoji 🚂✨ and ünïcödé ß 漢字",
        "tab\tand  spaces",
        "\\n literal",
        "'single' \"double\"",
        "trailing backslash \\",
        "{",
        "[",
        "%",
        "\u200bzero\u200dwidth",
        "\x07bell",
        "",
    ]
)
IDS = st.sampled_from(
    [
        "start",
        "return",
        "if",
        "menu",
        "label",
        "1st",
        "9",
        "a.b",
        "a-b",
        "a.b-c",
        "_hidden",
        "screen",
        "with",
        "Über",
        "node",
        "NODE",
        "x" * 40,
        "jump",
        "pass",
        "init",
        "python",
    ]
)
SCENE_IDS = st.sampled_from(["scene", "1intro", "a.b", "a-b", "return", "menu", "Chapter_1", "ch.2-final"])


@st.composite
def projects(draw: Any) -> Project:
    """Valid projects with hostile ids and texts, empty scenes, cycles and cross-scene jumps."""
    characters = {
        cid: {"name": draw(NASTY) or cid, "color": "#a0b0c0"}
        for cid in draw(
            st.lists(
                st.sampled_from(["if", "return", "_x", "narrator", "e", "config", "Alice"]),
                min_size=1,
                max_size=4,
                unique=True,
            )
        )
    }
    variables = {"score": 0, "if": False, "len": "a[b]", "class": {"deep": 1}}
    scene_ids = draw(st.lists(SCENE_IDS, min_size=1, max_size=4, unique=True))
    node_ids = {sid: draw(st.lists(IDS, min_size=1, max_size=6, unique=True)) for sid in scene_ids}
    scenes: dict[str, dict[str, Any]] = {}
    for sid in scene_ids:
        nodes = []
        for nid in node_ids[sid]:
            node: dict[str, Any] = {"id": nid, "type": draw(st.sampled_from(["dialogue", "narration", "choice"]))}
            if text := draw(NASTY):
                node["text"] = text
            if node["type"] == "dialogue" and draw(st.booleans()):
                node["speaker"] = draw(st.sampled_from(sorted(characters)))
            choices = []
            for index in range(draw(st.integers(0, 3))):
                other = draw(st.sampled_from(scene_ids))
                target = draw(st.sampled_from(node_ids[other]))
                choice: dict[str, Any] = {
                    "id": f"c{index}",
                    "target": target if other == sid else f"{other}:{target}",
                    "label": draw(NASTY) or f"go {index}",
                }
                if draw(st.booleans()):
                    operator = draw(st.sampled_from(["eq", "neq", "gt", "lte", "in", "exists", "not_exists"]))
                    value = {"gt": 1, "lte": 0, "in": ["a[b]", "%"]}.get(
                        operator, draw(st.sampled_from([0, "a[b]", True, 'it\'s "q"']))
                    )
                    choice["conditions"] = [
                        {
                            "key": draw(st.sampled_from(["score", "if", "len", "class.deep"])),
                            "operator": operator,
                            "value": value,
                        }
                    ]
                if draw(st.booleans()):
                    kind = draw(st.sampled_from(["set", "increment", "decrement", "clear"]))
                    value = (
                        2
                        if kind in ("increment", "decrement")
                        else draw(st.sampled_from([1, "x%y", None, {"k": "[v]"}]))
                    )
                    choice["actions"] = [
                        {
                            "type": kind,
                            "value": value,
                            "key": draw(st.sampled_from(["score", "class.deep", "new.path"])),
                        }
                    ]
                choices.append(choice)
            if choices:
                node["choices"] = choices
            else:
                node["end"] = draw(st.booleans())
            nodes.append(node)
        scenes[sid] = {
            "id": sid,
            "start": node_ids[sid][0],
            "title": draw(NASTY),
            "nodes": nodes,
            "background": draw(st.sampled_from([None, "assets/missing bg (1).png", "dark"])),
        }
    meta = {
        "id": "gen",
        "title": draw(NASTY) or "Generated",
        "start": scene_ids[0],
        "characters": characters,
        "variables": variables,
        "povs": [{"id": "p-1", "name": "One"}, {"id": "if", "name": "[Two]"}],
    }
    return Project(meta=meta, scenes=scenes)


def test_demo_export_lints_clean_with_the_real_engine(
    renpy_kernel: Callable[..., Kernel], demo_project: Path, tmp_path: Path
) -> None:
    result = run_export(renpy_kernel(), ExportRequest(project=demo_project, out=tmp_path / "out", check=True))
    check = result["check"]
    assert check["configured"] and check["ok"], check
    assert set(check["builds"]) == {".", "forks/alice", "forks/bob"}
    assert "lint report" in check["builds"]["."]["output"]


def test_lint_failure_is_reported(engine: Engine, demo_project: Path, tmp_path: Path) -> None:
    bundle = build_bundle(_load(demo_project), ExportOptions())
    write_bundle(bundle, tmp_path / "out")
    script = tmp_path / "out/game/script.rpy"
    script.write_text(script.read_text() + "\nlabel broken:\n    jump nowhere_at_all\n")
    lint = engine.lint(tmp_path / "out")
    assert not lint.ok and any("nowhere_at_all" in p for p in lint.problems)


def _load(path: Path) -> Project:
    from comfyvn_scenario import load_project

    return load_project(path)


# Each example is one real lint run (seconds): few examples, no shrinking (a failure prints its project).
@settings(max_examples=10, deadline=None, phases=[Phase.explicit, Phase.generate])
@given(projects())
def test_generated_projects_lint_clean(
    engine: Engine, tmp_path_factory: pytest.TempPathFactory, project: Project
) -> None:
    assert validate_project(project).valid, validate_project(project).errors
    out = tmp_path_factory.mktemp("gen")
    bundle = build_bundle(project, ExportOptions(pov_mode="master", per_scene=len(project.scenes) % 2 == 0))
    write_bundle(bundle, out)
    lint = engine.lint(out)
    assert lint.ok, (lint.problems, lint.run.stdout[-2000:], lint.run.stderr[-2000:])


@pytest.mark.parametrize("case", ["cvn_path_1", "cvn_path_6"])
def test_headless_playthrough_walks_branches_and_asserts_variables(
    engine: Engine, demo_project: Path, tmp_path: Path, case: str
) -> None:
    bundle = build_bundle(_load(demo_project), ExportOptions(testcases=True, pov_mode="master"))
    cases = {c.name: c for c in bundle.testcases}
    # Two different branches: Alice's ticket run and Bob's cards.
    assert cases["cvn_path_1"].pov == "alice" and cases["cvn_path_6"].pov == "bob"
    assert cases["cvn_path_1"].choices != cases["cvn_path_6"].choices
    write_bundle(bundle, tmp_path / "out")
    run = engine.test(tmp_path / "out", case, timeout=120)
    assert run.returncode == 0 and f"{MARKER} {case}" in run.stdout, (run.stdout[-2000:], run.stderr[-3000:])


def test_a_wrong_variable_assertion_fails_the_playthrough(engine: Engine, demo_project: Path, tmp_path: Path) -> None:
    bundle = build_bundle(_load(demo_project), ExportOptions(testcases=True, pov_mode="master"))
    write_bundle(bundle, tmp_path / "out")
    tests = tmp_path / "out/game/tests.rpy"
    text = tests.read_text()
    first = text.index("assert v_trust == {'alice': 1, 'bob': 0}")
    tests.write_text(text[:first] + "assert v_trust == {'alice': 5, 'bob': 0}" + text[first + 40 :])
    run = engine.test(tmp_path / "out", "cvn_path_1", timeout=120)
    assert run.returncode != 0 and MARKER not in run.stdout


def test_demo_command(renpy_kernel: Callable[..., Kernel], tmp_path: Path) -> None:
    result = CliRunner().invoke(make_cli(renpy_kernel()), ["demo", "--out", str(tmp_path / "game"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] and report["steps"]["lint"]["ok"] and report["steps"]["playtest"]["unvisited"] == []
    assert str(tmp_path / "game") in report["play"] and (tmp_path / "game/game/script.rpy").is_file()
    human = CliRunner().invoke(make_cli(renpy_kernel()), ["demo", "--out", str(tmp_path / "game")])
    assert "Your game is in" in human.output and "Play it:" in human.output
    # Lint lines name the game folder (the main game was shown as ".").
    assert "4/4 lint      game: clean" in human.output and "4/4 lint      .:" not in human.output


def test_invoke_sdk_runs_distribute_and_captures_output(
    renpy_kernel: Callable[..., Kernel], demo_project: Path, tmp_path: Path
) -> None:
    sdk = tmp_path / "sdk"
    (sdk / "launcher").mkdir(parents=True)
    (sdk / "renpy.sh").write_text('#!/bin/sh\necho "distribute called with: $*"\necho oops >&2\nexit 0\n')
    (sdk / "renpy.sh").chmod(0o755)
    result = run_export(
        renpy_kernel(), ExportRequest(project=demo_project, out=tmp_path / "out", invoke_sdk=True, renpy_sdk=str(sdk))
    )
    assert result["sdk"]["returncode"] == 0
    assert f"{sdk / 'launcher'} distribute {tmp_path / 'out'}" in result["sdk"]["stdout"]
    assert result["sdk"]["stderr"] == "oops\n"
