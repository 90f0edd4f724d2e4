"""The project folder (load/save) and ``comfyvn scenario validate|playtest``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from comfyvn import Kernel
from comfyvn.cli import make_cli
from comfyvn.errors import ComfyVNError, NotFound
from comfyvn_scenario import Project, load_project, project_from_payload, save_project
from scenario_support import DEMO, tiny_scene


def test_save_then_load_round_trips(tmp_path: Path, demo: Project) -> None:
    save_project(demo, tmp_path / "copy")
    again = load_project(tmp_path / "copy" / "project.json")
    assert again.meta == demo.meta and again.scenes == demo.scenes and again.scene_order == ["platform", "night_train"]
    text = (tmp_path / "copy" / "scenes" / "platform.json").read_text(encoding="utf-8")
    assert text.index('"id"') < text.index('"nodes"')  # the author's key order is kept
    assert again.start_pointer() == ("platform", None) and again.default_pov == "alice"


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        load_project(tmp_path)
    (tmp_path / "project.json").write_text('{"id": "p", "scenes": ["a"]}', encoding="utf-8")
    with pytest.raises(NotFound) as info:
        load_project(tmp_path)
    assert info.value.field == "scenes/a.json"
    (tmp_path / "scenes").mkdir()
    (tmp_path / "scenes" / "a.json").write_text("{oops", encoding="utf-8")
    with pytest.raises(ComfyVNError) as info:
        load_project(tmp_path)
    assert info.value.code == "invalid_json" and "line 1" in info.value.message
    (tmp_path / "project.json").write_text('{"id": "p", "scenes": ["../x"]}', encoding="utf-8")
    with pytest.raises(ComfyVNError) as info:
        load_project(tmp_path)
    assert info.value.field == "scenes/0"


def test_save_refuses_mismatched_ids(tmp_path: Path) -> None:
    with pytest.raises(ComfyVNError):
        save_project(Project({"id": "p"}, {"a": {"id": "b", "start": "x", "nodes": []}}), tmp_path)


def test_project_from_payload_accepts_list_or_map() -> None:
    scene = tiny_scene()
    as_list = project_from_payload({"id": "p", "scenes": [scene]}, None)
    as_map = project_from_payload({"id": "p", "scenes": ["tiny"]}, {"tiny": scene})
    assert as_list.scenes == as_map.scenes == {"tiny": scene}
    with pytest.raises(ComfyVNError):
        project_from_payload({"id": "p"}, [scene, scene])


def _run(kernel: Kernel, *args: str) -> Any:
    return CliRunner().invoke(make_cli(kernel), list(args), catch_exceptions=False)


def test_cli_validate(kernel: Kernel, tmp_path: Path) -> None:
    ok = _run(kernel, "scenario", "validate", str(DEMO))
    assert ok.exit_code == 0 and "valid: 0 error(s), 0 warning(s)" in ok.output
    bad = tiny_scene()
    bad["start"] = "zz"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    result = _run(kernel, "scenario", "validate", str(path), "--json")
    assert result.exit_code == 1 and json.loads(result.output)["errors"][0]["path"] == "/start"
    path.write_text("{", encoding="utf-8")
    broken = _run(kernel, "scenario", "validate", str(path))
    assert broken.exit_code == 2 and "not valid JSON" in broken.output


def test_cli_playtest_and_golden(kernel: Kernel, tmp_path: Path) -> None:
    golden = tmp_path / "golden.json"
    first = _run(kernel, "scenario", "playtest", str(DEMO), "--seed", "7", "--out", str(golden))
    assert first.exit_code == 0 and "digest:" in first.output
    # The run's path, step by step, as the golden trace records it.
    steps = json.loads(golden.read_text(encoding="utf-8"))["steps"]
    assert f"path: {' > '.join(s['choice'] for s in steps)}\n" in first.output
    same = _run(kernel, "scenario", "playtest", str(DEMO), "--seed", "7", "--golden", str(golden))
    assert same.exit_code == 0 and "golden: equal" in same.output
    other = _run(kernel, "scenario", "playtest", str(DEMO), "--seed", "7", "--policy", "first", "--golden", str(golden))
    assert other.exit_code == 1 and "first divergence at step" in other.output
    explored = _run(kernel, "scenario", "playtest", str(DEMO), "--policy", "explore")
    assert explored.exit_code == 0 and "unvisited: none" in explored.output
    bad = _run(kernel, "scenario", "playtest", str(DEMO), "--policy", "scripted", "--choice", "fly")
    assert bad.exit_code == 2 and "available: look_around" in bad.output


def test_golden_file_is_read_under_the_json_policy(kernel: Kernel, tmp_path: Path) -> None:
    # NaN is not JSON: a golden trace holding one is refused with its field, not compared.
    golden = tmp_path / "golden.json"
    golden.write_text('{"steps": [], "digest": NaN}', encoding="utf-8")
    result = _run(kernel, "scenario", "playtest", str(DEMO), "--seed", "7", "--golden", str(golden))
    assert result.exit_code == 2 and "golden.digest: NaN is not a JSON number" in result.output
