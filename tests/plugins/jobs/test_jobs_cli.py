"""``comfyvn jobs run|list|show|cancel|board`` and ``comfyvn worker`` argument checks, through the real CLI root."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner
from comfyvn import Kernel, hookimpl
from comfyvn.cli import make_cli
from comfyvn.errors import Blocked, Invalid, NotFound
from comfyvn_jobs import jobs_for
from comfyvn_jobs.cli import local_jobs, run_with_progress


def _run(kernel: Kernel, *args: str) -> Any:
    return CliRunner().invoke(make_cli(kernel), list(args), catch_exceptions=False)


def test_run_a_job_from_the_cli_then_list_show_and_board_it(jobs_kernel: Callable[..., Kernel]) -> None:
    kernel = jobs_kernel()
    ran = _run(kernel, "jobs", "run", "test.sleep", "--params", '{"seconds": 0.1, "steps": 2}', "--json")
    assert ran.exit_code == 0, ran.output
    record = json.loads(ran.stdout)
    assert record["status"] == "done" and record["result"]["steps"] == 2
    listed = _run(kernel, "jobs", "list", "--json")
    assert [r["id"] for r in json.loads(listed.stdout)] == [record["id"]]
    assert record["id"] in _run(kernel, "jobs", "list").stdout
    shown = _run(kernel, "jobs", "show", record["id"])
    assert "status:    done" in shown.stdout and "run on embedded: done" in shown.stdout
    board = json.loads(_run(kernel, "jobs", "board", "--json").stdout)
    # The CLI's embedded cluster is gone once its command ended; its worker shows from the records.
    assert [(lane["name"], lane["connected"], len(lane["recent"])) for lane in board["workers"]] == [
        ("embedded", False, 1)
    ]


def test_a_failed_job_exits_1_with_its_error(jobs_kernel: Callable[..., Kernel]) -> None:
    result = _run(jobs_kernel(), "jobs", "run", "test.fail", "--params", '{"message": "nope"}')
    assert result.exit_code == 1
    assert result.stderr.strip().endswith("failed: nope")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("jobs", "run", "test.noop", "--params", "[1]"), "--params must be a JSON object"),
        (("jobs", "run", "test.noop", "--params", "{"), "(field: params)"),
        (("jobs", "run", "test.noop", "--resources", "GPU"), "expected NAME=AMOUNT"),
        (("jobs", "run", "no.such"), "unknown job kind"),
        (("jobs", "show", "job-" + "c" * 32), "no job"),
        (("worker", "--scheduler", "localhost"), "tcp://host:8786"),
        (("worker", "--scheduler", "tcp://127.0.0.1:1", "--resources", "GPU=x"), "expected NAME=AMOUNT"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    jobs_kernel: Callable[..., Kernel], args: tuple[str, ...], needle: str
) -> None:
    result = _run(jobs_kernel(), *args)
    assert result.exit_code == 2, result.output
    assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cancel_from_another_process_is_a_request_its_owner_carries_out(jobs_kernel: Callable[..., Kernel]) -> None:
    kernel = jobs_kernel()
    service = jobs_for(kernel)
    job_id = service.submit("test.sleep", {"seconds": 20, "steps": 200})
    # Another process (here: a second service on the same records, as `comfyvn jobs cancel` would open).
    other = jobs_for(jobs_kernel())
    other.owner = "elsewhere"  # not this service's jobs: it may only ask
    other.records = type(service.records)(service.records.path)
    assert other.cancel(job_id)["cancel_requested"] is True
    assert service.wait(job_id, timeout=10)["status"] == "cancelled"


class FakeBar:
    """Stands in for click's bar, which draws nothing when its stream is not a terminal."""

    def __init__(self, length: int, label: str, file: Any) -> None:
        self.length, self.label = length, label
        self.steps: list[int] = []

    def __enter__(self) -> FakeBar:
        bars.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def update(self, n: int) -> None:
        self.steps.append(n)


bars: list[FakeBar] = []


def test_run_with_progress_feeds_the_bar_from_progress_events(
    jobs_kernel: Callable[..., Kernel], monkeypatch: pytest.MonkeyPatch
) -> None:
    service = jobs_for(jobs_kernel())
    monkeypatch.setattr("comfyvn_jobs.cli.click.progressbar", FakeBar)
    bars.clear()
    record = run_with_progress(service, "test.sleep", {"seconds": 0.4, "steps": 4}, label="working")
    assert record["status"] == "done"
    (bar,) = bars
    assert bar.label == "working" and sum(bar.steps) == bar.length == 1000
    # Fed as the job went: a quarter at a time (possibly merged when two arrive together), never backwards.
    moved = [n for n in bar.steps if n]
    assert len(moved) >= 2 and all(n % 250 == 0 and n > 0 for n in moved)


class LocalKinds:
    """A plugin with a local kind (its params name this machine's files) and kinds failing by meaning."""

    @hookimpl
    def register_job_kinds(self, register: Any) -> None:
        register("files.touch", lambda ctx, params: {"touched": params.get("path")}, "Touches a file.", local=True)
        register("files.blocked", _blocked, "Refused by a gate.")
        register("files.gone", _gone, "Names a missing thing.")


def _blocked(ctx: Any, params: dict[str, Any]) -> None:
    raise Blocked("export blocked by rating: not acknowledged", field="project", code="export_blocked")


def _gone(ctx: Any, params: dict[str, Any]) -> None:
    raise NotFound("no project 'x'", field="project", code="project_not_found")


def test_a_local_kind_runs_on_the_embedded_cluster_only_and_never_over_http(
    jobs_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], Any]
) -> None:
    kernel = jobs_kernel(LocalKinds())
    assert jobs_for(kernel).kinds()["files.touch"].as_dict()["local"] is True
    ran = _run(kernel, "jobs", "run", "files.touch", "--params", '{"path": "/tmp/x"}', "--json")
    assert ran.exit_code == 0 and json.loads(ran.stdout)["result"] == {"touched": "/tmp/x"}, ran.output
    refused = http_for(kernel).post("/api/schedule/enqueue", json={"kind": "files.touch", "params": {"path": "/etc"}})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "kind_is_local"
    assert [r["kind"] for r in jobs_for(kernel).list()] == ["files.touch"]  # the refused one was never recorded
    # With a scheduler configured, the workers may be other machines: refused before any connection is tried.
    remote = jobs_kernel(LocalKinds(), env={"COMFYVN_DASK_SCHEDULER": "tcp://127.0.0.1:9"})
    with pytest.raises(Invalid) as caught:
        jobs_for(remote).submit("files.touch", {"path": "/tmp/x"})
    assert caught.value.code == "kind_is_local" and not jobs_for(remote).started


@pytest.mark.parametrize(
    ("kind", "exit", "error"),
    [
        ("files.blocked", 3, {"code": "export_blocked", "field": "project", "type": "Blocked"}),
        ("files.gone", 2, {"code": "project_not_found", "field": "project", "type": "NotFound"}),
        ("test.fail", 1, {"code": "job_failed", "type": "OperationFailed"}),
    ],
)
def test_a_failed_job_fails_the_command_as_its_body_did(
    jobs_kernel: Callable[..., Kernel], kind: str, exit: int, error: dict[str, str]
) -> None:
    kernel = jobs_kernel(LocalKinds())
    result = _run(kernel, "jobs", "run", kind)
    assert result.exit_code == exit, result.output
    (record,) = jobs_for(kernel).list()
    assert {k: v for k, v in record["error"].items() if k != "message"} == error
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]  # after the bar's label
    assert line.startswith(f"error: job {record['id']} failed: ")
    if "field" in error:
        assert line.endswith(f"(field: {error['field']})")


def test_local_jobs_is_none_where_the_work_must_run_in_process(
    jobs_kernel: Callable[..., Kernel], make_kernel: Callable[..., Kernel], capsys: pytest.CaptureFixture[str]
) -> None:
    with local_jobs(jobs_kernel()) as service:
        assert service is not None and service.embedded
    with local_jobs(jobs_kernel(), enabled=False) as service:
        assert service is None  # --no-job
    with local_jobs(make_kernel()) as service:
        assert service is None  # no jobs plugin
    assert capsys.readouterr().err == ""
    with local_jobs(jobs_kernel(env={"COMFYVN_DASK_SCHEDULER": "tcp://127.0.0.1:9"})) as service:
        assert service is None
    assert "runs here, not as a job" in capsys.readouterr().err
