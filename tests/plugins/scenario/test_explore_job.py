"""``comfyvn scenario playtest --policy explore`` as a ``scenario.explore`` job: on a fresh runtime root with
no configuration the walk runs on the embedded Dask cluster and its record holds the report; an invalid
story still prints its issues and exits 1; ``--no-job`` and the other policies play in this process."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from comfyvn import Kernel, create_kernel
from comfyvn.cli import make_cli
from comfyvn.errors import ComfyVNError
from comfyvn_jobs.records import JobRecords
from comfyvn_jobs.service import close_jobs
from comfyvn_scenario.jobs import LOADED, check_explore_params
from scenario_support import DEMO


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Kernel]:
    """A kernel as ``comfyvn`` builds it on a fresh install: the installed entry points (scenario, jobs) and
    nothing but ``COMFYVN_RUNTIME_ROOT`` (an empty tmp folder)."""
    env = {"COMFYVN_RUNTIME_ROOT": str(tmp_path / "runtime"), "COMFYVN_PLUGINS": "scenario,jobs"}
    kernel = create_kernel(load_entrypoints=True, env=env, strict=True)
    yield kernel
    close_jobs(kernel)


def _playtest(kernel: Kernel, *args: str) -> Any:
    return CliRunner().invoke(make_cli(kernel), ["scenario", "playtest", *args], catch_exceptions=False)


def _records(kernel: Kernel) -> list[dict[str, Any]]:
    records = JobRecords(kernel.paths.plugin_dir("jobs") / "jobs.sqlite3")
    try:
        return records.list()
    finally:
        records.close()


def test_explore_runs_as_a_job_and_answers_as_in_process(fresh: Kernel, tmp_path: Path) -> None:
    progress: list[tuple[float, str]] = []
    fresh.events.subscribe(
        lambda env: progress.append((env.payload["progress"], env.payload["message"])), events=["on_job_progress"]
    )
    result = _playtest(fresh, str(DEMO), "--policy", "explore", "--seed", "4", "--json", "--out", str(tmp_path / "r"))
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    (record,) = _records(fresh)
    assert record["id"] == printed["job"]["id"] and record["kind"] == "scenario.explore"
    assert (record["status"], record["progress"]) == ("done", 1.0)
    assert record["params"] == {
        "path": str(DEMO.resolve()),
        "playtest": {
            "seed": 4,
            "policy": "explore",
            "choices": [],
            "max_steps": 500,
            "max_depth": 200,
            "persist": False,
        },
    }
    response = {k: v for k, v in printed.items() if k != "job"}
    assert record["result"] == {"valid": True, "response": response}
    assert progress == [(0.0, "loading"), (LOADED, "exploring"), (1.0, "done")]
    assert json.loads((tmp_path / "r").read_text()) == response["report"]
    # The same walk in this process: the same report, digest and all.
    here = _playtest(fresh, str(DEMO), "--policy", "explore", "--seed", "4", "--json", "--no-job")
    assert here.exit_code == 0 and json.loads(here.stdout)["report"] == response["report"], here.output
    human = _playtest(fresh, str(DEMO), "--policy", "explore")
    assert human.exit_code == 0 and "unvisited: none" in human.stdout
    assert human.stdout.strip().splitlines()[-1].startswith(f"job {_records(fresh)[0]['id']} done (")
    # Only explore is a job: a single seeded run stays in this process.
    single = _playtest(fresh, str(DEMO), "--seed", "3", "--json")
    assert single.exit_code == 0 and "job" not in json.loads(single.stdout) and len(_records(fresh)) == 2


def test_an_invalid_story_prints_its_issues_and_exits_1(fresh: Kernel, tmp_path: Path) -> None:
    project = tmp_path / "broken"
    shutil.copytree(DEMO, project)
    scene = project / "scenes" / "platform.json"
    scene.write_text(scene.read_text().replace('"target": "bags"', '"target": "nowhere"'))
    result = _playtest(fresh, str(project), "--policy", "explore")
    assert result.exit_code == 1 and "nowhere" in result.stdout and "invalid: 1 error(s)" in result.stdout
    (record,) = _records(fresh)
    assert record["status"] == "done" and record["result"]["valid"] is False


def test_params_are_checked(tmp_path: Path) -> None:
    path = str(tmp_path)
    assert check_explore_params({"path": path, "playtest": {"policy": "explore"}})["path"] == path
    cases: list[tuple[dict[str, Any], str]] = [
        ({"path": "demo", "playtest": {"policy": "explore"}}, "path"),
        ({"path": path, "playtest": {"policy": "first"}}, "playtest.policy"),
        ({"path": path, "playtest": {"policy": "explore", "scene": {}}}, "playtest.scene"),
        ({"path": path, "playtest": {"policy": "explore", "seed": "1"}}, "seed"),
        ({"path": path, "extra": 1}, "extra"),
    ]
    for params, field in cases:
        with pytest.raises(ComfyVNError) as caught:
            check_explore_params(params)
        assert caught.value.field == field, (params, caught.value.field)
