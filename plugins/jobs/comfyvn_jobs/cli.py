"""``comfyvn jobs list|show|cancel|board|run`` and ``comfyvn worker``: parse options → `Jobs` → print.

`run_with_progress` is the piece long commands use to run their work as a job with a progress bar, and
`local_jobs` opens the service for a one-shot command whose work is a ``local`` job kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click
from comfyvn import errors
from comfyvn.errors import ComfyVNError, OperationFailed
from comfyvn.wire import loads

from . import views
from .records import STATUSES, TERMINAL
from .service import Jobs, close_jobs, jobs_for
from .settings import JobSettings, check_address, parse_resources
from .worker import serve_worker

if TYPE_CHECKING:
    from comfyvn import Kernel
    from comfyvn.events import Envelope

__all__ = ["job_error", "jobs_group", "local_jobs", "run_with_progress", "worker_command"]

_STEPS = 1000


@contextlib.contextmanager
def _service(kernel: Kernel) -> Iterator[Jobs]:
    """The kernel's job service, closed when the command ends (a one-shot command owns its cluster)."""
    service = jobs_for(kernel)
    try:
        yield service
    finally:
        close_jobs(kernel)


def jobs_loaded(kernel: Kernel) -> bool:
    """Whether ``kernel`` has the jobs plugin (its events, its hook) loaded."""
    from . import plugin  # the plugin module imports this one

    return bool(kernel.plugins.pm.is_registered(plugin))


@contextlib.contextmanager
def local_jobs(kernel: Kernel, *, enabled: bool = True) -> Iterator[Jobs | None]:
    """The job service for a one-shot command whose work is a ``local`` job kind, closed when the command
    ends (the command owns its embedded cluster and the jobs on it). None — the command then does its work
    in-process — when ``enabled`` is false (``--no-job``), when ``kernel`` has no jobs plugin, or when a Dask
    scheduler is configured: a local kind's files are this machine's, so it runs on the embedded cluster only
    (a note on stderr says so)."""
    if not enabled or not jobs_loaded(kernel):
        yield None
        return
    if JobSettings.from_kernel(kernel).scheduler is not None:
        click.echo(
            "note: a Dask scheduler is configured, and this command's files are on this machine: it runs here,"
            " not as a job",
            err=True,
        )
        yield None
        return
    with _service(kernel) as service:
        yield service


def job_error(record: dict[str, Any]) -> ComfyVNError:
    """What a command raises for a job that did not finish well: the `comfyvn.errors` class its body raised
    (so the exit code is the one the work gives in-process: 2 bad input, 3 blocked…), else `OperationFailed`."""
    job_id, status = record["id"], record["status"]
    error = record.get("error") or {"message": status}
    message = f"job {job_id} {status}: {error.get('message') or status}"
    name = error.get("type") if status == "failed" else None
    cls = getattr(errors, name, None) if isinstance(name, str) and name in errors.__all__ else None
    if isinstance(cls, type) and issubclass(cls, ComfyVNError):
        exc = cls.__new__(cls)
        # The base initialiser: a subclass's own (FeatureDisabled takes a flag name) would rebuild the message.
        ComfyVNError.__init__(exc, message, field=error.get("field"), code=error.get("code"))
        return exc
    return OperationFailed(message, code="job_failed")


def _print(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))


def run_with_progress(
    jobs: Jobs, kind: str, params: dict[str, Any], *, label: str, show: bool = True, **submit: Any
) -> dict[str, Any]:
    """Submit a job and wait for it, drawing a click progress bar on stderr from its progress events
    (``show=False``: no bar, for ``--json``). Returns the final record; raises `job_error` of the record if
    the job did not finish well."""
    updates: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()

    def on_progress(envelope: Envelope) -> None:
        updates.put(dict(envelope.payload))

    subscription = jobs.kernel.events.subscribe(on_progress, events=["on_job_progress"])
    try:
        job_id = jobs.submit(kind, params, **submit)
        out = sys.stderr if show else open(os.devnull, "w")  # noqa: SIM115 - closed below
        try:
            with click.progressbar(length=_STEPS, label=label, file=out) as bar:
                shown = 0
                while True:
                    record = jobs.wait(job_id, timeout=0.1)
                    while not updates.empty():
                        update = updates.get()
                        if update["id"] == job_id:
                            step = int(update["progress"] * _STEPS)
                            bar.update(max(0, step - shown))
                            shown = max(shown, step)
                    if record["status"] in TERMINAL:
                        if record["status"] == "done":
                            bar.update(_STEPS - shown)
                        break
        finally:
            if out is not sys.stderr:
                out.close()
    finally:
        subscription.close()
    if record["status"] != "done":
        raise job_error(record)
    return record


@click.group("jobs")
def jobs_group() -> None:
    """Jobs: list, inspect, cancel and run them; the per-worker board."""


@jobs_group.command("list")
@click.option("--status", type=click.Choice(STATUSES), multiple=True, help="Only these statuses (repeatable).")
@click.option("--kind", help="Only this kind.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
@click.pass_obj
def list_cmd(kernel: Kernel, status: tuple[str, ...], kind: str | None, limit: int, as_json: bool) -> None:
    """Job records, newest first."""
    with _service(kernel) as service:
        rows = service.list(status=status or None, kind=kind, limit=limit)
    if as_json:
        _print(rows)
        return
    for row in rows:
        duration = "" if row["duration_sec"] is None else f"{row['duration_sec']:.2f}s"
        click.echo(
            f"{row['id']}  {row['status']:<9} {row['kind']:<20} {row['progress'] * 100:5.1f}%"
            f"  {row['worker'] or '-':<12} {duration}"
        )


@jobs_group.command("show")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
@click.pass_obj
def show_cmd(kernel: Kernel, job_id: str, as_json: bool) -> None:
    """One job's record."""
    with _service(kernel) as service:
        record = service.get(job_id)
    if as_json:
        _print(record)
        return
    for key in ("id", "kind", "key", "status", "progress", "message", "worker", "attempts", "error", "cost"):
        value = record[key]
        click.echo(f"{key + ':':<10} {json.dumps(value) if isinstance(value, dict) else value}")
    for run in record["runs"]:
        click.echo(f"  run on {run['worker']}: {run['outcome'] or 'running'}")


@jobs_group.command("cancel")
@click.argument("job_id")
@click.pass_obj
def cancel_cmd(kernel: Kernel, job_id: str) -> None:
    """Cancel a job (the process running it is asked when it is not this one)."""
    with _service(kernel) as service:
        record = service.cancel(job_id)
    state = "cancel requested" if record["status"] in ("queued", "running") else record["status"]
    click.echo(f"{record['id']} {state}")


@jobs_group.command("board")
@click.option("--json", "as_json", is_flag=True, help="Print the board as JSON.")
@click.pass_obj
def board_cmd(kernel: Kernel, as_json: bool) -> None:
    """Per worker: running, assigned and recent jobs with durations and costs."""
    with _service(kernel) as service:
        if not service.embedded:
            service.client()  # a shared scheduler knows the workers; the embedded one would be empty
        data = views.board(service)
    if as_json:
        _print(data)
        return
    click.echo(f"scheduler: {data['scheduler']}")
    for lane in data["workers"]:
        state = "" if lane["connected"] else " (gone)"
        click.echo(
            f"{lane['name']}{state}: {len(lane['running'])} running, {len(lane['queued'])} assigned,"
            f" {len(lane['recent'])} recent, cost {lane['cost_estimate']:.4f}"
        )
        for bar in lane["running"]:
            click.echo(f"  {bar['id']} {bar['kind']} {bar['progress'] * 100:.0f}% {bar['duration_sec'] or 0:.1f}s")
    click.echo(f"not yet on a worker: {len(data['queued'])}")


@jobs_group.command("run")
@click.argument("kind")
@click.option("--params", default="{}", show_default=True, help="The job's params as JSON.")
@click.option("--key", help="Idempotency key: the same key never runs twice.")
@click.option("--priority", type=int, default=0, show_default=True)
@click.option("--retries", type=click.IntRange(0, 10))
@click.option("--resources", default="", help="Worker resources it needs, e.g. COMFYUI=1,GPU=1.")
@click.option("--json", "as_json", is_flag=True, help="No progress bar; print the final record as JSON.")
@click.pass_obj
def run_cmd(
    kernel: Kernel,
    kind: str,
    params: str,
    key: str | None,
    priority: int,
    retries: int | None,
    resources: str,
    as_json: bool,
) -> None:
    """Run a job of KIND and wait for it, with a progress bar."""
    parsed = loads(params, field="params")
    if not isinstance(parsed, dict):
        raise ComfyVNError("--params must be a JSON object", field="params")
    with _service(kernel) as service:
        record = run_with_progress(
            service,
            kind,
            parsed,
            label=kind,
            show=not as_json,
            key=key,
            priority=priority,
            retries=retries,
            resources=parse_resources(resources),
        )
    if as_json:
        _print(record)
    else:
        click.echo(f"{record['id']} done: {json.dumps(record['result'], ensure_ascii=False)}")


@click.command("worker")
@click.option("--scheduler", required=True, help="The Dask scheduler, e.g. tcp://10.0.0.5:8786.")
@click.option("--resources", default="", help="What this worker offers, e.g. COMFYUI=1,GPU=1.")
@click.option("--comfyui-url", help="The ComfyUI server next to this worker (jobs read it as ctx.comfyui_url).")
@click.option("--name", help="The worker's name on the board (default: its address).")
@click.option("--nthreads", type=click.IntRange(1, 256), default=2, show_default=True, help="Jobs run at once.")
@click.pass_obj
def worker_command(
    kernel: Kernel, scheduler: str, resources: str, comfyui_url: str | None, name: str | None, nthreads: int
) -> None:
    """Run a Dask worker with ComfyVN's kernel and plugins loaded (stop it with Ctrl-C or SIGTERM)."""
    check_address(scheduler, "scheduler")
    offered = parse_resources(resources)

    def ready(worker: Any) -> None:
        click.echo(f"worker {name or worker.address} at {worker.address} joined {scheduler}", err=True)

    asyncio.run(
        serve_worker(
            kernel, scheduler, resources=offered, name=name, nthreads=nthreads, comfyui_url=comfyui_url, ready=ready
        )
    )
