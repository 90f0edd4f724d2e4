"""The `Jobs` service on the embedded cluster: submit, progress, results, failures and retries, cancel,
idempotent keys, refusals, recovery of a dead process's jobs, and the ``register_job_kinds`` hook."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from comfyvn import Kernel, RuntimePaths, hookimpl
from comfyvn.errors import ComfyVNError, Conflict, Invalid, NotFound, TooLarge
from comfyvn_jobs import JobContext, JobFailed, jobs_for
from comfyvn_jobs.records import JobRecords, owner_alive, this_owner

from .conftest import wait_for


def _events(kernel: Kernel) -> list[tuple[str, dict[str, Any]]]:
    seen: list[tuple[str, dict[str, Any]]] = []
    kernel.events.subscribe(lambda env: seen.append((env.event, dict(env.payload))))
    return seen


def test_a_job_runs_reports_progress_and_keeps_its_result_and_cost(jobs_kernel: Callable[..., Kernel]) -> None:
    kernel = jobs_kernel()
    seen = _events(kernel)
    service = jobs_for(kernel)
    job_id = service.submit("test.sleep", {"seconds": 0.2, "steps": 4})
    record = service.wait(job_id, timeout=30)
    assert record["status"] == "done" and record["progress"] == 1
    assert record["result"] == {"seconds": 0.2, "steps": 4, "worker": "embedded"}
    assert record["attempts"] == 1 and record["worker"] == "embedded"
    assert [r["outcome"] for r in record["runs"]] == ["done"]
    assert record["cost"]["duration_sec"] >= 0.2 and record["cost"]["cost_estimate"] == 0
    assert record["cost"]["bytes_rx"] == len('{"seconds":0.2,"steps":4}')
    names = [name for name, payload in seen if payload.get("id") == job_id]
    assert names[0] == "on_job_queued" and names[1] == "on_job_started" and names[-1] == "on_job_finished"
    progress = [p["progress"] for name, p in seen if name == "on_job_progress"]
    assert progress == [0.25, 0.5, 0.75, 1.0]
    assert record["started_at"] <= record["finished_at"] and record["duration_sec"] >= 0.2


def test_failures_are_retried_by_dask_and_every_attempt_is_recorded(jobs_kernel: Callable[..., Kernel]) -> None:
    kernel = jobs_kernel()
    seen = _events(kernel)
    service = jobs_for(kernel)
    record = service.wait(service.submit("test.fail", {"message": "no luck"}, retries=2), timeout=30)
    assert record["status"] == "failed" and record["attempts"] == 3
    # The kernel class travels with the error, so a command waiting on the job exits as the work itself would.
    assert record["error"] == {"code": "job_failed", "message": "no luck", "type": "OperationFailed"}
    assert [r["outcome"] for r in record["runs"]] == ["failed", "failed", "failed"]
    failed = [p for name, p in seen if name == "on_job_failed"]
    assert failed == [{"id": record["id"], "kind": "test.fail", "attempts": 3, "error": record["error"]}]


def test_cancel_stops_a_running_job_at_its_next_report(jobs_kernel: Callable[..., Kernel]) -> None:
    service = jobs_for(jobs_kernel())
    job_id = service.submit("test.sleep", {"seconds": 20, "steps": 200})
    wait_for(lambda: service.get(job_id)["status"] == "running", 20, "the job to start")
    assert service.cancel(job_id)["status"] == "cancelled"
    assert service.cancel(job_id)["status"] == "cancelled"  # cancelling an ended job changes nothing
    # The body notices at its next report and its run closes as cancelled.
    wait_for(lambda: service.get(job_id)["runs"][-1]["outcome"] == "cancelled", 10, "the body to stop")
    assert service.get(job_id)["status"] == "cancelled"


def test_a_key_makes_submitting_idempotent(jobs_kernel: Callable[..., Kernel]) -> None:
    kernel = jobs_kernel()
    seen = _events(kernel)
    service = jobs_for(kernel)
    first = service.submit("test.sleep", {"seconds": 0.05, "steps": 1}, key="render:mira:smile")
    assert service.submit("test.sleep", {"seconds": 0.05, "steps": 1}, key="render:mira:smile") == first
    service.wait(first, timeout=30)
    assert service.submit("test.sleep", {"seconds": 0.05, "steps": 1}, key="render:mira:smile") == first
    assert [name for name, p in seen if name == "on_job_started"] == ["on_job_started"]
    with pytest.raises(Conflict) as info:
        service.submit("test.sleep", {"seconds": 0.1, "steps": 1}, key="render:mira:smile")
    assert info.value.field == "key"
    # A failed keyed job runs again when submitted again: the same record, one more attempt.
    failing = service.submit("test.fail", {}, key="flaky")
    assert service.wait(failing, timeout=30)["status"] == "failed"
    assert service.submit("test.fail", {}, key="flaky") == failing
    record = service.wait(failing, timeout=30)
    assert record["status"] == "failed" and record["attempts"] == 2


@pytest.mark.parametrize(
    ("call", "error", "field"),
    [
        (lambda s: s.submit("test.nothing", {}), Invalid, "kind"),
        (lambda s: s.submit("test.sleep", {"seconds": 61}), ComfyVNError, "params.seconds"),
        (lambda s: s.submit("test.sleep", {"minutes": 1}), ComfyVNError, "params.minutes"),
        (lambda s: s.submit("test.noop", {"auth": {"api_key": "x"}}), Invalid, "params.auth.api_key"),
        (lambda s: s.submit("test.noop", [1]), Invalid, "params"),
        (lambda s: s.submit("test.noop", priority=True), Invalid, "priority"),
        (lambda s: s.submit("test.noop", retries=11), Invalid, "retries"),
        (lambda s: s.submit("test.noop", resources={"GPU": 0}), Invalid, "resources.GPU"),
        (lambda s: s.submit("test.noop", resources={"a b": 1}), Invalid, "resources.a b"),
        (lambda s: s.submit("test.noop", key="has space"), Invalid, "key"),
        (lambda s: s.get("job-" + "0" * 32), NotFound, "job_id"),
    ],
)
def test_bad_requests_are_refused_naming_the_field(
    jobs_kernel: Callable[..., Kernel], call: Callable[[Any], Any], error: type[Exception], field: str
) -> None:
    service = jobs_for(jobs_kernel())
    with pytest.raises(error) as info:
        call(service)
    assert getattr(info.value, "field", None) == field
    assert service.list() == []  # nothing refused was recorded


def test_params_are_bounded(jobs_kernel: Callable[..., Kernel]) -> None:
    class Echo:
        @hookimpl
        def register_job_kinds(self, register: Any) -> None:
            register("echo.text", lambda ctx, params: params, "Echo.")

    service = jobs_for(jobs_kernel(Echo()))
    with pytest.raises(TooLarge):
        service.submit("echo.text", {"text": "x" * 70_000})


def test_hook_register_job_kinds(jobs_kernel: Callable[..., Kernel], runtime: RuntimePaths) -> None:
    class Painter:
        @hookimpl
        def register_job_kinds(self, register: Any) -> None:
            register("painter.paint", self.paint, "Paints.", resources={"BRUSH": 1}, retries=1, check=self.check)

        @staticmethod
        def check(params: dict[str, Any]) -> dict[str, Any]:
            if not isinstance(params.get("colour"), str):
                raise Invalid("colour is a string", field="params.colour")
            return {"colour": params["colour"], "coats": 2}

        @staticmethod
        def paint(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
            ctx.report(0.5, "first coat")
            ctx.add_transfer(tx=1000)
            root = ctx.kernel.paths.plugin_dir("painter")
            root.mkdir(parents=True, exist_ok=True)
            # Idempotent by job id: a rerun writes the same file.
            (root / f"{ctx.job_id}.txt").write_text(params["colour"])
            return {"painted": params["colour"], "coats": params["coats"], "worker": ctx.worker}

    kernel = jobs_kernel(Painter(), env={})
    (runtime.config).mkdir(parents=True, exist_ok=True)
    (runtime.config / "comfyvn.json").write_text('{"jobs": {"resources": {"BRUSH": 1}}}')
    kernel.flags.refresh()
    service = jobs_for(kernel)
    kinds = service.kinds()
    assert kinds["painter.paint"].owner != "jobs" and kinds["painter.paint"].resources == {"BRUSH": 1.0}
    assert {"test.noop", "test.sleep", "test.fail"} <= set(kinds)
    with pytest.raises(Invalid):
        service.submit("painter.paint", {"colour": 3})
    record = service.wait(service.submit("painter.paint", {"colour": "teal"}), timeout=30)
    assert record["status"] == "done", record
    assert record["params"] == {"colour": "teal", "coats": 2} and record["resources"] == {"BRUSH": 1.0}
    assert record["retries"] == 1 and record["result"]["painted"] == "teal"
    assert record["cost"]["bytes_tx"] == 1000 + len('{"painted":"teal","coats":2,"worker":"embedded"}')
    assert (runtime.data / "plugins" / "painter" / f"{record['id']}.txt").read_text() == "teal"


def test_hook_jobs_embedded_resources(jobs_kernel: Callable[..., Kernel], runtime: RuntimePaths) -> None:
    """A plugin offers resources on the embedded worker (jobs.resources wins per name); a job asking
    for an offered resource runs, a bad answer is ignored, not fatal."""

    class Easel:
        count = 2

        @hookimpl
        def jobs_embedded_resources(self, kernel: Kernel) -> dict[str, float]:
            assert isinstance(kernel, Kernel)
            return {"EASEL": self.count, "BRUSH": 5}

        @hookimpl
        def register_job_kinds(self, register: Any) -> None:
            register("easel.paint", lambda ctx, params: "painted", "Paints on an easel.", resources={"EASEL": 1})

    class Broken:
        @hookimpl
        def jobs_embedded_resources(self) -> dict[str, Any]:
            return {"bad name!": 1}

    (runtime.config).mkdir(parents=True, exist_ok=True)
    (runtime.config / "comfyvn.json").write_text('{"jobs": {"resources": {"BRUSH": 1}}}')
    service = jobs_for(jobs_kernel(Easel(), Broken(), env={}))
    assert service.wait(service.submit("easel.paint"), timeout=30)["result"] == "painted"
    (worker,) = service.workers()
    assert worker["resources"] == {"EASEL": 2.0, "BRUSH": 1.0}
    # What a plugin offers can change while the cluster runs (a ComfyUI server added): refresh_resources.
    Easel.count = 4
    assert service.refresh_resources() == {"EASEL": 4.0, "BRUSH": 1.0}
    (worker,) = service.workers()
    assert worker["resources"] == {"EASEL": 4.0, "BRUSH": 1.0}


def test_a_plugin_reusing_a_kind_name_registers_none_of_its_kinds(jobs_kernel: Callable[..., Kernel]) -> None:
    class Copycat:
        @hookimpl
        def register_job_kinds(self, register: Any) -> None:
            register("copycat.own", lambda ctx, params: None, "Its own kind.")
            register("test.noop", lambda ctx, params: None, "A second noop.")

    kernel = jobs_kernel(Copycat())
    kinds = jobs_for(kernel).kinds()
    assert kinds["test.noop"].description.startswith("Does nothing")
    assert "copycat.own" not in kinds
    record = kernel.plugins.records["copycat"]
    assert (record.error or "").startswith("register_job_kinds: ValueError: job kind 'test.noop' is already registered")


def test_a_result_that_is_not_json_fails_the_job(jobs_kernel: Callable[..., Kernel]) -> None:
    class Bad:
        @hookimpl
        def register_job_kinds(self, register: Any) -> None:
            register("bad.nan", lambda ctx, params: {"x": float("nan")}, "NaN.")
            register("bad.big", lambda ctx, params: "x" * 70_000, "Too big.")
            register("bad.crash", lambda ctx, params: 1 / 0, "Crashes.")

    service = jobs_for(jobs_kernel(Bad()))
    codes = {kind: service.wait(service.submit(kind), timeout=30)["error"]["code"] for kind in ("bad.nan", "bad.big")}
    assert codes == {"bad.nan": "invalid_result", "bad.big": "result_too_large"}
    crash = service.wait(service.submit("bad.crash"), timeout=30)
    assert crash["error"] == {"code": "job_error", "message": "ZeroDivisionError: division by zero"}


def test_a_failure_may_keep_a_result_and_one_that_breaks_the_storage_policy_is_dropped(
    jobs_kernel: Callable[..., Kernel],
) -> None:
    def pieces(ctx: JobContext, params: dict[str, Any]) -> None:
        result = {"blob": "x" * 70_000} if params.get("big") else params
        raise JobFailed("render_failed", "0 of 2 pieces rendered: down", "servers", "UpstreamError", result)

    class Partial:
        @hookimpl
        def register_job_kinds(self, register: Any) -> None:
            register("pieces.fail", pieces, "Fails, keeping what each piece did.", retries=0)

    service = jobs_for(jobs_kernel(Partial()))
    kept = service.wait(service.submit("pieces.fail", {"rendered": 0, "failed": 2}), timeout=30)
    assert kept["status"] == "failed"
    assert kept["error"] == {
        "code": "render_failed",
        "message": "0 of 2 pieces rendered: down",
        "field": "servers",
        "type": "UpstreamError",
    }
    assert kept["result"] == {"rendered": 0, "failed": 2}
    too_big = service.wait(service.submit("pieces.fail", {"big": True}), timeout=30)
    assert too_big["status"] == "failed" and too_big["error"]["code"] == "render_failed"
    assert too_big["result"] is None


_DYING_OWNER = """
import sys, time
from comfyvn import create_kernel, RuntimePaths
import comfyvn_jobs.plugin as plugin
from comfyvn_jobs import jobs_for
kernel = create_kernel(plugins=[plugin], paths=RuntimePaths.under(sys.argv[1]), env={})
service = jobs_for(kernel)
job = service.submit("test.sleep", {"seconds": 60, "steps": 600})
while service.get(job)["status"] != "running":
    time.sleep(0.05)
print(job, flush=True)
time.sleep(120)
"""


def test_jobs_of_a_process_that_died_become_failed_on_the_next_open(
    jobs_kernel: Callable[..., Kernel], runtime: RuntimePaths, tmp_path: Path
) -> None:
    script = tmp_path / "owner.py"
    script.write_text(textwrap.dedent(_DYING_OWNER))
    root = runtime.config.parent
    process = subprocess.Popen([sys.executable, str(script), str(root)], stdout=subprocess.PIPE, env=dict(os.environ))
    try:
        assert process.stdout is not None
        job_id = process.stdout.readline().decode().strip()
        records = JobRecords(runtime.data / "plugins" / "jobs" / "jobs.sqlite3")
        assert records.get(job_id)["status"] == "running"
        assert records.orphans() == []  # its owner is alive: not ours to touch
        process.kill()
        process.wait(10)
        assert records.orphans() == [job_id]
        records.close()
    finally:
        process.kill()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
    kernel = jobs_kernel()
    seen = _events(kernel)
    service = jobs_for(kernel)  # opening the service recovers
    record = service.get(job_id)
    assert record["status"] == "failed" and record["error"]["code"] == "interrupted"
    assert seen == [("on_job_failed", {"id": job_id, "kind": "test.sleep", "attempts": 1, "error": record["error"]})]


def test_owner_liveness_tells_a_reused_pid_apart() -> None:
    me = this_owner()
    host, pid, started = me.split("/")
    assert owner_alive(me)
    assert not owner_alive(f"{host}/{pid}/{float(started) - 100:.2f}")
    assert not owner_alive(f"{host}/notapid/1")
    assert owner_alive(f"not-{socket.gethostname()}/1/1")  # another machine: unknowable, left alone


def test_wait_returns_the_active_record_after_its_timeout(jobs_kernel: Callable[..., Kernel]) -> None:
    service = jobs_for(jobs_kernel())
    job_id = service.submit("test.sleep", {"seconds": 5, "steps": 50})
    started = time.monotonic()
    assert service.wait(job_id, timeout=0.3)["status"] in ("queued", "running")
    assert time.monotonic() - started < 2
    service.cancel(job_id)


def test_a_finished_job_whose_last_message_is_lost_takes_its_result_from_dask(
    jobs_kernel: Callable[..., Kernel],
) -> None:
    """The recorder ends a job from the worker's ``finished`` message; when that message never comes, the
    future Dask settled is read at two looks in a row (`VERDICTS` apart) and the job still ends done."""
    kernel = jobs_kernel()
    seen = _events(kernel)
    service = jobs_for(kernel)
    service.wait(service.submit("test.noop"), timeout=30)  # the embedded cluster is up
    # The embedded worker hands its messages over in-process (`KernelPlugin.deliver`).
    plugin = next(iter(service._cluster.workers.values())).plugins["comfyvn"]
    deliver = plugin.deliver

    def drop_finished(message: dict[str, Any]) -> None:
        if message.get("type") != "finished":
            deliver(message)

    plugin.deliver = drop_finished
    try:
        job_id = service.submit("test.noop")
        record = service.wait(job_id, timeout=30)
    finally:
        plugin.deliver = deliver
    assert record["status"] == "done" and record["result"] == {"worker": "embedded"}
    # What only the message carries is missing, and nothing claims otherwise: no cost, the run left open.
    assert record["cost"] is None and record["runs"][-1]["outcome"] is None
    finished = [p for name, p in seen if name == "on_job_finished" and p["id"] == job_id]
    assert finished == [{"id": job_id, "kind": "test.noop", "attempts": 1, "worker": "embedded", "cost": None}]


def test_a_job_cancelled_while_dask_is_being_told_stays_cancelled(
    jobs_kernel: Callable[..., Kernel], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`submit` does not hold the service's lock across Dask's submit: a cancel arriving then ends the job,
    and the future Dask returns afterwards is cancelled, not recorded as running."""
    kernel = jobs_kernel()
    seen = _events(kernel)
    service = jobs_for(kernel)
    client = service.client()
    dask_submit = client.submit
    cancelled: list[dict[str, Any]] = []

    def submit_meanwhile_cancelled(fn: Any, job_id: str, *args: Any, **kwargs: Any) -> Any:
        cancelled.append(service.cancel(job_id))
        return dask_submit(fn, job_id, *args, **kwargs)

    monkeypatch.setattr(client, "submit", submit_meanwhile_cancelled)
    job_id = service.submit("test.sleep", {"seconds": 5, "steps": 50})
    monkeypatch.undo()
    assert cancelled[0]["status"] == "cancelled"
    time.sleep(0.5)  # long enough for a run to start and report, were the future not cancelled
    record = service.get(job_id)
    assert record["status"] == "cancelled" and record["started_at"] is None
    assert [name for name, p in seen if p.get("id") == job_id] == ["on_job_queued", "on_job_cancelled"]
    assert all(job_id not in ids for ids in service.processing().values())


def test_the_embedded_worker_hands_messages_over_in_process_and_the_event_topic_still_works(
    jobs_kernel: Callable[..., Kernel],
) -> None:
    """On the embedded cluster a job's messages skip the scheduler; a worker without that hand-over (any
    other worker) reports through Dask's event topic, and the record is the same either way."""
    kernel = jobs_kernel()
    service = jobs_for(kernel)
    service.wait(service.submit("test.noop"), timeout=30)
    plugin = next(iter(service._cluster.workers.values())).plugins["comfyvn"]
    handed: list[str] = []
    deliver = plugin.deliver

    def counting(message: dict[str, Any]) -> None:
        handed.append(message["type"])
        deliver(message)

    plugin.deliver = counting
    direct = service.wait(service.submit("test.sleep", {"seconds": 0.05, "steps": 2}), timeout=30)
    plugin.deliver = None  # as on a worker in another process: Dask's event topic
    try:
        topic = service.wait(service.submit("test.sleep", {"seconds": 0.05, "steps": 2}), timeout=30)
    finally:
        plugin.deliver = deliver
    assert handed == ["started", "progress", "progress", "finished"]
    for record in (direct, topic):
        assert record["status"] == "done" and record["worker"] == "embedded" and record["progress"] == 1
        assert record["cost"]["duration_sec"] >= 0.05 and [r["outcome"] for r in record["runs"]] == ["done"]
