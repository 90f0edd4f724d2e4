"""``comfyvn export renpy`` as a ``renpy.export`` job of the jobs plugin: on a fresh runtime root with no
configuration, the export runs on the embedded Dask cluster, its progress feeds the bar, and the job's
record holds the result; errors keep their exit codes; ``--no-job`` and a configured scheduler run it here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import comfyvn_jobs.plugin as jobs_plugin
import comfyvn_jobs.results
import comfyvn_renpy.jobs as renpy_jobs
import comfyvn_renpy.plugin as renpy_plugin
import comfyvn_scenario.plugin as scenario_plugin
import pytest
from click.testing import CliRunner
from comfyvn import Kernel, create_kernel, hookimpl
from comfyvn.cli import make_cli
from comfyvn.errors import ComfyVNError
from comfyvn_jobs import jobs_for
from comfyvn_jobs.records import JobRecords
from comfyvn_jobs.service import close_jobs
from comfyvn_scenario import ProjectStore


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Callable[..., Kernel]]:
    """``fresh(*extra, env=...)``: a kernel as ``comfyvn`` builds it on a fresh install, from the installed
    entry points (scenario, renpy, jobs) and nothing but ``COMFYVN_RUNTIME_ROOT`` (an empty tmp folder)."""
    made: list[Kernel] = []

    def factory(*extra: object, env: dict[str, str] | None = None) -> Kernel:
        base = {"COMFYVN_RUNTIME_ROOT": str(tmp_path / "runtime"), "COMFYVN_PLUGINS": "scenario,renpy,jobs"}
        kernel = create_kernel(extra or None, load_entrypoints=True, env={**base, **(env or {})}, strict=True)
        made.append(kernel)
        return kernel

    yield factory
    for kernel in made:
        close_jobs(kernel)


def _cli(kernel: Kernel, *args: str) -> Any:
    return CliRunner().invoke(make_cli(kernel), ["export", "renpy", *args], catch_exceptions=False)


def _progress(kernel: Kernel) -> list[tuple[float, str]]:
    seen: list[tuple[float, str]] = []
    kernel.events.subscribe(
        lambda env: seen.append((env.payload["progress"], env.payload["message"])), events=["on_job_progress"]
    )
    return seen


def _records(kernel: Kernel) -> list[dict[str, Any]]:
    # Read the SQLite file as another process would: the command closed its own service.
    records = JobRecords(kernel.paths.plugin_dir("jobs") / "jobs.sqlite3")
    try:
        return records.list()
    finally:
        records.close()


def test_a_store_project_exports_as_a_job_on_a_fresh_install(fresh: Callable[..., Kernel], demo_project: Path) -> None:
    kernel = fresh()
    assert kernel.paths.data.is_relative_to(demo_project.parent / "runtime")
    stored = ProjectStore.for_kernel(kernel).create_from_folder(demo_project, project_id="night-story")
    progress = _progress(kernel)
    result = _cli(kernel, "night-story", "--publish", "--json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    game = stored.path / "exports" / "renpy"
    assert Path(printed["out"]) == game.resolve() and (game / "game" / "script.rpy").is_file()
    assert (stored.path / "exports" / "night-story.zip").is_file() and printed["publish"]["written"] is True
    job = printed["job"]
    (record,) = _records(kernel)
    assert record["id"] == job["id"] and record["kind"] == job["kind"] == "renpy.export"
    assert (record["status"], record["progress"], record["worker"]) == ("done", 1.0, "embedded")
    assert job["status"] == "done" and "result" not in job  # the result is the top level of the answer
    assert record["result"] == {k: v for k, v in printed.items() if k != "job"}
    assert record["params"]["project_id"] == "night-story" and record["params"]["publish_out"].endswith(".zip")
    # The export's steps, in order, each reported at the share of the work done before it, then done.
    assert [message for _, message in progress] == ["load", "build", "write", "publish", "done"]
    fractions = [fraction for fraction, _ in progress]
    assert fractions == sorted(fractions) and fractions[0] == 0 and fractions[-1] == 1.0
    assert len(set(fractions)) == len(fractions)


class FakeBar:
    """Click's bar draws nothing when stderr is not a terminal: this one records what it was fed."""

    made: list[FakeBar] = []

    def __init__(self, length: int, label: str, file: Any) -> None:
        self.length, self.label, self.fed = length, label, [0]
        FakeBar.made.append(self)

    def __enter__(self) -> FakeBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def update(self, n: int) -> None:
        assert n >= 0
        self.fed.append(self.fed[-1] + n)


def test_a_folder_exports_as_a_job_behind_a_bar_fed_by_its_progress(
    fresh: Callable[..., Kernel], demo_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel = fresh()
    monkeypatch.setattr("comfyvn_jobs.cli.click.progressbar", FakeBar)
    FakeBar.made.clear()
    result = _cli(kernel, str(demo_project), "--out", str(tmp_path / "game"))
    assert result.exit_code == 0, result.output
    (record,) = _records(kernel)
    assert record["status"] == "done" and record["params"]["project_dir"] == str(demo_project)
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith(f"exported demo to {tmp_path / 'game'}: ")
    assert lines[-1].startswith(f"job {record['id']} done (")
    assert (tmp_path / "game" / "game" / "script.rpy").is_file()
    (bar,) = FakeBar.made
    # Moved step by step (load at 0 adds nothing), never backwards, and full once the job is done.
    assert bar.label == "exporting demo to game/" and bar.fed[-1] == bar.length and len(set(bar.fed)) >= 3


class Blocker:
    @hookimpl
    def renpy_export_gate(self, project: Any) -> dict[str, Any]:
        return {"reason": f"rating of {project.id} not acknowledged", "ack_token": "t-1"}


def test_errors_in_the_job_keep_their_exit_codes(
    fresh: Callable[..., Kernel], demo_project: Path, tmp_path: Path
) -> None:
    blocked = _cli(fresh(Blocker()), str(demo_project), "--out", str(tmp_path / "o"))
    assert blocked.exit_code == 3 and "not acknowledged (field: project)" in blocked.stderr, blocked.output
    assert not (tmp_path / "o").exists()
    (record,) = _records(fresh())
    assert record["status"] == "failed" and record["error"]["type"] == "Blocked"
    # A store project broken by hand: the job's load refuses it (422, exit 2) in one line.
    kernel = fresh()
    stored = ProjectStore.for_kernel(kernel).create_from_folder(demo_project, project_id="broken")
    scene = stored.path / "scenes" / "platform.json"
    scene.write_text(scene.read_text().replace('"target": "bags"', '"target": "nowhere"'))
    invalid = _cli(kernel, "broken", "--json")
    assert invalid.exit_code == 2 and invalid.stdout == "", invalid.output
    assert len([line for line in invalid.stderr.splitlines() if line.startswith("error: job ")]) == 1
    # Bad input the command can see is refused before any job is submitted.
    missing = _cli(kernel, "no-such-project", "--out", str(tmp_path / "g"))
    assert missing.exit_code == 2 and len(_records(kernel)) == 2


@pytest.mark.parametrize(
    ("args", "env"),
    [(("--no-job",), {}), ((), {"COMFYVN_DASK_SCHEDULER": "tcp://127.0.0.1:9"})],
    ids=["no-job", "scheduler-configured"],
)
def test_no_job_and_a_configured_scheduler_export_in_this_process(
    fresh: Callable[..., Kernel], demo_project: Path, tmp_path: Path, args: tuple[str, ...], env: dict[str, str]
) -> None:
    kernel = fresh(env=env)
    result = _cli(kernel, str(demo_project), "--out", str(tmp_path / "game"), "--json", *args)
    assert result.exit_code == 0, result.output
    assert "job" not in json.loads(result.stdout) and (tmp_path / "game" / "game" / "script.rpy").is_file()
    assert _records(kernel) == []


def test_a_big_result_is_kept_in_a_file_and_the_record_holds_a_summary(
    fresh: Callable[..., Kernel], demo_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel = fresh()
    monkeypatch.setattr(comfyvn_jobs.results, "MAX_INLINE_BYTES", 100)
    result = _cli(kernel, str(demo_project), "--out", str(tmp_path / "game"), "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    (record,) = _records(kernel)
    summary = record["result"]
    assert summary["summary"] is True and summary["files"] == printed["files"] > 5
    assert summary["warning_count"] == len(printed["warnings"]) and summary["dry_run"] is True
    kept = Path(summary["full_result"])
    assert kept == kernel.paths.data / "plugins" / "jobs" / "results" / f"{record['id']}.json"
    assert json.loads(kept.read_text()) == {k: v for k, v in printed.items() if k != "job"}
    assert printed["preview"]["summary"]["new"] > 5 and not (tmp_path / "game").exists()


def test_the_kind_is_local_and_its_params_are_checked(
    make_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], Any], tmp_path: Path
) -> None:
    kernel = make_kernel(scenario_plugin, renpy_plugin, jobs_plugin)
    try:
        kind = jobs_for(kernel).kinds()["renpy.export"]
        assert kind.local and kind.owner.endswith("renpy")
        over_http = http_for(kernel).post(
            "/api/schedule/enqueue", json={"kind": "renpy.export", "params": {"project_id": "x", "out": "/etc/x"}}
        )
        assert over_http.status_code == 400 and over_http.json()["error"]["code"] == "kind_is_local"
    finally:
        close_jobs(kernel)
    out = str(tmp_path / "g")
    assert renpy_jobs.check_export_params({"project_id": "p", "out": out})["pov_mode"] == "auto"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"out": out}, "project_id"),
        ({"project_id": "p", "project_dir": str(tmp_path), "out": out}, "project_id"),
        ({"project_id": "p", "out": "relative/game"}, "out"),
        ({"project_dir": "demo", "out": out}, "project_dir"),
        ({"project_id": "p", "out": out, "pov_mode": "sideways"}, "pov_mode"),
        ({"project_id": "p", "out": out, "resolution": "10x10"}, "resolution"),
        ({"project_id": "p", "out": out, "platforms": ["../x"]}, "platforms"),
        ({"project_id": "p", "out": out, "dry_run": "yes"}, "dry_run"),
        ({"project_id": "p", "out": out, "extra": 1}, "extra"),
    ]
    for params, field in cases:
        with pytest.raises(ComfyVNError) as caught:
            renpy_jobs.check_export_params(params)
        assert caught.value.field == field, (params, caught.value.field)


def test_the_comfyvn_command_exports_as_a_job_with_nothing_configured(demo_project: Path, tmp_path: Path) -> None:
    # A real `comfyvn` process on an empty runtime root: the must-hold of the jobs issue, end to end.
    root = tmp_path / "runtime"
    env = {**os.environ, "COMFYVN_RUNTIME_ROOT": str(root), "COMFYVN_PLUGINS": "scenario,renpy,jobs"}
    env.pop("COMFYVN_DASK_SCHEDULER", None)
    ran = subprocess.run(
        [sys.executable, "-m", "comfyvn", "export", "renpy", str(demo_project), "--out", str(tmp_path / "game")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    assert ran.stderr.startswith("export")  # the bar (click draws its label alone off a terminal)
    job_id = ran.stdout.strip().splitlines()[-1].split()[1]
    listed = subprocess.run(
        [sys.executable, "-m", "comfyvn", "jobs", "show", job_id, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    record = json.loads(listed.stdout)
    assert (record["kind"], record["status"], record["progress"], record["message"]) == (
        "renpy.export",
        "done",
        1.0,
        "done",
    )
    assert record["result"]["out"] == str((tmp_path / "game").resolve())
    assert (tmp_path / "game" / "game" / "script.rpy").is_file()
