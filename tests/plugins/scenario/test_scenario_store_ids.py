"""Validate, playtest, run step and POV candidates name a store project by id (``"project": "<id>"``), over
HTTP and in ``comfyvn scenario validate|playtest``; the store's validation stamp spares validating again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import comfyvn_scenario.service as service_module
import pytest
from click.testing import CliRunner
from comfyvn import Kernel
from comfyvn.cli import make_cli
from comfyvn_scenario import Project, ProjectStore
from scenario_support import DEMO


@pytest.fixture
def stored(kernel: Kernel) -> str:
    return ProjectStore.for_kernel(kernel).create_from_folder(DEMO, project_id="demo-story").id


def _inline(demo: Project) -> dict[str, Any]:
    return {"project": demo.document(), "scenes": demo.scenes}


def test_validate_by_id_trusts_the_stamp_and_checks_a_hand_edit(
    client: Any, kernel: Kernel, stored: str, demo: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = client.post("/api/scenario/validate", json=_inline(demo)).json()
    assert client.post("/api/scenario/validate", json={"project": stored}).json() == expected
    # The files are the ones the store validated: the stamp answers, the validator is not run again.
    monkeypatch.setattr(service_module, "validate_project", _refuse_to_validate)
    assert client.post("/api/scenario/validate", json={"project": stored}).json() == expected
    monkeypatch.undo()
    scene_file = ProjectStore.for_kernel(kernel).path(stored) / "scenes" / "platform.json"
    scene_file.write_text(scene_file.read_text().replace('"target": "bags"', '"target": "nowhere"'))
    edited = client.post("/api/scenario/validate", json={"project": stored}).json()
    assert edited["valid"] is False and any("nowhere" in e["message"] for e in edited["errors"]), edited


def _refuse_to_validate(*_args: Any, **_kwargs: Any) -> Any:
    raise AssertionError("validated a project the store had stamped")


def test_playtest_step_and_candidates_by_id_match_the_inline_project(client: Any, stored: str, demo: Project) -> None:
    for path, extra in (("/api/playtest/run", {"seed": 7}), ("/api/scenario/run/step", {"seed": 3})):
        by_id = client.post(path, json={"project": stored, **extra})
        inline = client.post(path, json={**_inline(demo), **extra})
        assert by_id.status_code == 200, by_id.text
        assert by_id.json() == inline.json()
    state = client.post("/api/scenario/run/step", json={"project": stored, "seed": 3}).json()
    following = client.post(
        "/api/scenario/run/step",
        json={"project": stored, "state": state["state"], "choice_id": state["choices"][0]["id"]},
    )
    assert following.status_code == 200 and following.json()["state"]["history"], following.text
    candidates = client.post("/api/pov/candidates", json={"project": stored})
    assert candidates.json() == client.post("/api/pov/candidates", json=_inline(demo)).json()
    assert {c["id"] for c in candidates.json()["candidates"]} >= {"alice"}


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/api/scenario/validate", {"project": "nope"}, 404, "project"),
        ("/api/playtest/run", {"project": "nope"}, 404, "project"),
        ("/api/scenario/run/step", {"project": "../etc"}, 400, "project"),
        ("/api/pov/candidates", {"project": "nope"}, 404, "project"),
        ("/api/playtest/run", {"project": "demo-story", "scenes": []}, 400, "scenes"),
        ("/api/scenario/run/step", {"project": 7}, 400, "project"),
    ],
)
def test_store_ids_that_do_not_name_a_project(
    client: Any, kernel: Kernel, stored: str, path: str, body: dict[str, Any], status: int, field: str
) -> None:
    answer = client.post(path, json=body)
    assert answer.status_code == status and answer.json()["error"]["field"] == field, answer.text
    assert str(kernel.paths.data) not in answer.text


def test_the_playtest_flag_still_guards_a_store_project(scenario_kernel: Any, http_for: Any) -> None:
    kernel = scenario_kernel()
    ProjectStore.for_kernel(kernel).create_from_folder(DEMO, project_id="demo-story")
    answer = http_for(kernel).post("/api/playtest/run", json={"project": "demo-story"})
    assert answer.status_code == 403


def test_cli_validate_and_playtest_take_a_store_id(
    kernel: Kernel, stored: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = make_cli(kernel)
    valid = CliRunner().invoke(cli, ["scenario", "validate", stored, "--json"])
    assert valid.exit_code == 0 and json.loads(valid.stdout)["valid"] is True, valid.output
    by_id = CliRunner().invoke(cli, ["scenario", "playtest", stored, "--seed", "7", "--json"])
    by_folder = CliRunner().invoke(cli, ["scenario", "playtest", str(DEMO), "--seed", "7", "--json"])
    assert by_id.exit_code == 0 and json.loads(by_id.stdout)["digest"] == json.loads(by_folder.stdout)["digest"]
    missing = CliRunner().invoke(cli, ["scenario", "validate", "no-such-project"])
    assert missing.exit_code == 2 and "no-such-project" in missing.output
    # A folder on disk wins over a store id of the same name, as the shell reads it.
    monkeypatch.chdir(tmp_path)
    shutil.copytree(DEMO, tmp_path / stored)
    broken = tmp_path / stored / "scenes" / "platform.json"
    broken.write_text(broken.read_text().replace('"target": "bags"', '"target": "nowhere"'))
    assert CliRunner().invoke(cli, ["scenario", "validate", stored]).exit_code == 1
