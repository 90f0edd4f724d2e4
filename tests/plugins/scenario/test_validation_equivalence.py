"""The optimised validation reports exactly what it reported before (`reference_validation`).

`reference_validation` is validation as it was before the quick schema check and the single-pass
semantic checks. For generated projects and scenes, valid ones and randomly broken ones (the
documents of test_scenario_quickschema, mutated), both must give the same report: the same errors and
warnings, with the same codes, paths, messages and documents, in the same order.
"""

from __future__ import annotations

import copy
from typing import Any

import reference_validation as ref
from comfyvn_scenario import Project, validate_project, validate_scene
from hypothesis import given, settings
from hypothesis import strategies as st
from test_scenario_quickschema import DOCUMENTS, mutated


@st.composite
def projects(draw: st.DrawFn) -> Project:
    """A project from a generated project.json and scenes, each possibly broken; scene ids usually match."""
    meta = draw(st.one_of(DOCUMENTS["project"], mutated("project")))
    if not isinstance(meta, dict):
        meta = draw(DOCUMENTS["project"])
    listed = meta.pop("scenes", None)
    ids = [s for s in listed if isinstance(s, str)] if isinstance(listed, list) else []
    start = meta.get("start")
    start_scene = start.partition(":")[0] if isinstance(start, str) and start else (ids or ["s0"])[0]
    scenes: dict[str, Any] = {}
    for scene_id in ids or ["s0"]:
        scene = draw(st.one_of(DOCUMENTS["scene"], mutated("scene")))
        if not isinstance(scene, dict) and scene_id == start_scene:
            scene = draw(DOCUMENTS["scene"])  # the reference fails on a start scene that is no object
        if isinstance(scene, dict) and draw(st.integers(0, 4)) > 0:
            scene = {**scene, "id": scene_id}
        scenes[scene_id] = scene
    return Project(meta=meta, scenes=scenes)


@settings(max_examples=200)
@given(project=projects())
def test_project_reports_are_unchanged(project: Project) -> None:
    before = copy.deepcopy((project.meta, project.scenes))
    assert validate_project(project).to_wire() == ref.validate_project(project).to_wire()
    assert (project.meta, project.scenes) == before  # validation never edits what it checks


@settings(max_examples=200)
@given(scene=st.one_of(DOCUMENTS["scene"], mutated("scene")))
def test_scene_reports_are_unchanged(scene: Any) -> None:
    assert validate_scene(scene).to_wire() == ref.validate_scene(scene).to_wire()


def test_generated_projects_cover_errors_and_warnings() -> None:
    # The comparison is only worth something if the generated projects produce the issues it compares.
    codes: set[str] = set()

    @settings(max_examples=200, database=None)
    @given(project=projects())
    def collect(project: Project) -> None:
        report = ref.validate_project(project)
        codes.update(i.code for i in (*report.errors, *report.warnings))

    collect()
    expected = {"undeclared_variable", "unknown_target", "unknown_character", "schema_type", "unreachable_node"}
    assert expected <= codes, expected - codes


def test_a_start_scene_that_is_no_object_is_reported_not_raised() -> None:
    # The reference raised AttributeError here (it read the start scene's own start with .get).
    project = Project(meta={"id": "demo", "title": "T", "start": "s0"}, scenes={"s0": None})
    report = validate_project(project)
    assert [(i.document, i.code, i.path) for i in report.errors] == [("scenes/s0.json", "schema_type", "")]
