"""Validation: schema + semantic errors with JSON-pointer paths, warnings, projects, the schema files."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from comfyvn_scenario import Project, load_project, save_project, validate_project, validate_scene
from comfyvn_scenario.schemas import SCHEMA_NAMES, load_schema
from comfyvn_scenario.validation import validate_project_dir
from scenario_support import DEMO, ROOT, tiny_scene


def _paths(report: Any) -> list[str]:
    return [i.path for i in report.errors]


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_repository_schemas_equal_packaged_ones(name: str) -> None:
    packaged = load_schema(name)
    jsonschema.Draft202012Validator.check_schema(packaged)
    assert json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8")) == packaged


def test_demo_is_valid_without_warnings(demo: Project) -> None:
    report = validate_project(demo)
    assert report.valid and report.warnings == ()
    assert len(demo.scenes) == 2 and len(demo.characters) == 3 and len(demo.povs) == 2


def test_demo_assets_exist(demo: Project) -> None:
    text = json.dumps({"p": demo.meta, "s": demo.scenes})
    paths = {p for p in text.replace('"', " ").split() if p.startswith("assets/")}
    assert paths and all((DEMO / p).is_file() for p in paths)


@pytest.mark.parametrize(
    ("edit", "path", "code"),
    [
        (lambda s: s.update(start="zz"), "/start", "missing_start"),
        (lambda s: s["nodes"][1].update(id="a"), "/nodes/1/id", "duplicate_node"),
        (lambda s: s["nodes"][1]["choices"][0].update(target="zz"), "/nodes/1/choices/0/target", "unknown_target"),
        (lambda s: s["nodes"][0]["choices"][1].update(id="left"), "/nodes/0/choices/1/id", "duplicate_choice"),
        (
            lambda s: s["nodes"][0]["choices"][2]["conditions"][0].update(key="silver"),
            "/nodes/0/choices/2/conditions/0/key",
            "undeclared_variable",
        ),
        (lambda s: s["nodes"][0]["choices"][0].update(weight=-1), "/nodes/0/choices/0/weight", "schema_minimum"),
        (
            lambda s: s["nodes"][0]["choices"][2]["conditions"][0].update(operator="like"),
            "/nodes/0/choices/2/conditions/0/operator",
            "schema_enum",
        ),
        (lambda s: s["nodes"][2].pop("id"), "/nodes/2/id", "schema_required"),
        (
            lambda s: s["nodes"][0]["choices"][0]["actions"][0].update(amount="x"),
            "/nodes/0/choices/0/actions/0/amount",
            "schema_type",
        ),
        (lambda s: s["nodes"][0]["choices"][0].update(target="other:x"), "/nodes/0/choices/0/target", "unknown_target"),
        (lambda s: s.update(variables={"gold": "lots"}), "/nodes/0/choices/0/actions/0/key", "non_numeric_variable"),
    ],
)
def test_errors_point_at_the_edit(edit: Any, path: str, code: str) -> None:
    scene = tiny_scene()
    edit(scene)
    report = validate_scene(scene)
    assert not report.valid
    assert any(i.path == path and i.code == code for i in report.errors), report.to_wire()


def test_warnings_unreachable_trap_and_undeclared() -> None:
    scene = {
        "id": "w",
        "start": "a",
        "nodes": [
            {"id": "a", "choices": [{"target": "b"}, {"target": "c"}]},
            {"id": "b", "choices": [{"target": "b2"}]},
            {"id": "b2", "choices": [{"target": "b", "actions": [{"type": "set", "key": "seen", "value": True}]}]},
            {"id": "c", "end": True, "choices": [{"target": "a"}]},
            {"id": "island", "type": "mystery"},
        ],
    }
    report = validate_scene(scene)
    assert report.valid
    codes = {(i.code, i.path) for i in report.warnings}
    assert ("unreachable_node", "/nodes/4") in codes
    assert ("trapped_cycle", "/nodes/1") in codes
    assert ("undeclared_variable", "/nodes/2/choices/0/actions/0/key") in codes
    assert ("unknown_node_type", "/nodes/4/type") in codes
    assert not any(i.code == "trapped_cycle" and i.path == "/nodes/0" for i in report.warnings)


@pytest.mark.parametrize(
    "junk",
    [
        None,
        3,
        "x",
        [],
        {"nodes": 5},
        {"id": 1, "start": [], "nodes": [1, None, {}]},
        {"id": "x", "start": "a", "nodes": [{"id": "a", "choices": [None, {"target": 3}]}]},
    ],
)
def test_junk_gives_a_report_not_an_exception(junk: Any) -> None:
    assert not validate_scene(junk).valid


def _demo_copy(tmp_path: Path) -> Project:
    project = load_project(DEMO)
    save_project(project, tmp_path / "p")
    return load_project(tmp_path / "p")


def test_project_semantics(tmp_path: Path) -> None:
    project = _demo_copy(tmp_path)
    meta = copy.deepcopy(project.meta)
    scenes = copy.deepcopy(project.scenes)
    scenes["platform"]["nodes"][1]["speaker"] = "dave"
    scenes["platform"]["nodes"][8]["choices"][0]["target"] = "night_train:nowhere"
    scenes["night_train"]["nodes"][4]["choices"][0]["conditions"][0]["key"] = "trust.carol"
    meta["default_pov"] = "cora"
    meta["povs"][0]["character"] = "zed"
    report = validate_project(Project(meta, scenes))
    found = {(i.document, i.path, i.code) for i in report.errors}
    assert ("scenes/platform.json", "/nodes/1/speaker", "unknown_character") in found
    assert ("scenes/platform.json", "/nodes/8/choices/0/target", "unknown_target") in found
    assert ("scenes/night_train.json", "/nodes/4/choices/0/conditions/0/key", "undeclared_variable") in found
    assert ("project.json", "/default_pov", "unknown_pov") in found
    assert ("project.json", "/povs/0/character", "unknown_character") in found


def test_project_unreachable_scene_and_unlisted_file(tmp_path: Path) -> None:
    project = _demo_copy(tmp_path)
    project.scenes["platform"]["nodes"][8]["choices"][0]["target"] = "left_behind"
    save_project(project, tmp_path / "p")
    (tmp_path / "p" / "scenes" / "draft.json").write_text("{}", encoding="utf-8")
    _, report = validate_project_dir(tmp_path / "p")
    codes = {(i.code, i.path) for i in report.warnings}
    assert ("unreachable_scene", "/scenes/1") in codes and ("unlisted_scene_file", "/scenes") in codes
