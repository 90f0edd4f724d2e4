"""The worker side: the task Dask runs for every job, and the worker plugin that holds the ComfyVN kernel.

`run_job` is a module-level function, so any worker with ``comfyvn-jobs`` installed can import it. It
finds the kernel in the worker's `KernelPlugin` (the server's own kernel on the embedded cluster, the
worker process's kernel under ``comfyvn worker``; a plain ``dask worker`` builds one from its
environment on first use), looks the kind up, and tells the server what happens through Dask's event
topic `TOPIC` (``started``, ``progress``, ``finished``, ``attempt_failed``). A message names its worker
under ``name``: the scheduler overwrites ``worker`` in every worker event with the worker's address.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from comfyvn import create_kernel
from comfyvn.errors import ComfyVNError
from comfyvn.wire import dumps
from distributed import get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from .kinds import JobCancelled, JobContext, kinds_for

if TYPE_CHECKING:
    from comfyvn import Kernel
    from distributed import Worker

__all__ = [
    "MAX_RESULT_BYTES",
    "PLUGIN_NAME",
    "TOPIC",
    "JobFailed",
    "KernelPlugin",
    "dask_key",
    "job_of",
    "run_job",
]

TOPIC = "comfyvn.jobs"
PLUGIN_NAME = "comfyvn"
MAX_RESULT_BYTES = 64 * 1024
_GONE = frozenset({"cancelled", "released", "forgotten"})
_lock = threading.Lock()


class JobFailed(Exception):
    """A job's failure as it crosses processes: ``args == (code, message, field, error_type, result)`` (pickles
    as is).

    ``error_type`` names the `comfyvn.errors` class the body raised (``Blocked``, ``NotFound``…) and ``field``
    its field, so a command waiting on the job fails as the work itself would have (same exit code). A body
    may raise it with a ``result`` (a JSON object, bounded like any result): the failed record keeps it, so
    work made of many pieces that all failed still says how each one ended."""

    def __init__(
        self,
        code: str,
        message: str,
        field: str | None = None,
        error_type: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(code, message, field, error_type, result)
        self.code, self.message, self.field, self.error_type = code, message, field, error_type
        self.result = result

    def to_error(self) -> dict[str, str]:
        """The record's ``error``: ``{code, message}`` plus ``field`` and ``type`` when known."""
        error = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        if self.error_type is not None:
            error["type"] = self.error_type
        return error

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class KernelPlugin(WorkerPlugin):
    """Holds the kernel job bodies run with, and the worker's options (``name``, ``comfyui_url``).

    ``deliver``, on the embedded cluster's worker only, hands a job's messages straight to the service in
    the same process (its recorder's queue) instead of sending them through the scheduler's event topic:
    two messages fewer across Dask per job, in the same order."""

    name = PLUGIN_NAME

    def __init__(
        self,
        kernel: Kernel | None = None,
        options: Mapping[str, str] | None = None,
        deliver: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.kernel = kernel
        self.options = dict(options or {})
        self.deliver = deliver

    def __getstate__(self) -> dict[str, Any]:
        # A kernel never travels: a worker that receives this plugin builds its own from its environment.
        # Nor does `deliver`: it reaches into this process.
        return {"kernel": None, "options": self.options, "deliver": None}

    def setup(self, worker: Worker) -> None:
        if self.kernel is None:
            self.kernel = create_kernel()


def dask_key(job_id: str, run: str) -> str:
    """The Dask key of one submission of a job: a job submitted again (same key, after a failure) must not
    meet the old run's result still held under the old key."""
    return f"{job_id}@{run}"


def job_of(key: Any) -> str:
    """The job id of a Dask key made by `dask_key`."""
    return str(key).partition("@")[0]


def _plugin(worker: Worker) -> KernelPlugin:
    plugin = worker.plugins.get(PLUGIN_NAME)
    if isinstance(plugin, KernelPlugin) and plugin.kernel is not None:
        return plugin
    with _lock:
        plugin = worker.plugins.get(PLUGIN_NAME)
        if not isinstance(plugin, KernelPlugin) or plugin.kernel is None:
            plugin = KernelPlugin(create_kernel())
            worker.plugins[PLUGIN_NAME] = plugin
        return plugin


def _error(exc: Exception) -> dict[str, str]:
    if isinstance(exc, JobFailed):
        return exc.to_error()
    if isinstance(exc, ComfyVNError):
        # The nearest kernel class: a plugin's own subclass is known by what it means, not by its name.
        kind = next(c.__name__ for c in type(exc).__mro__ if c.__module__ == ComfyVNError.__module__)
        return JobFailed(exc.code, exc.message, exc.field, kind).to_error()
    if isinstance(exc, JobCancelled):
        return {"code": "cancelled", "message": "the job was cancelled"}
    # An unexpected exception's text may quote anything; its type and a clipped message are enough.
    return {"code": "job_error", "message": f"{type(exc).__name__}: {str(exc)[:300]}"}


def _size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON: what a job's params and result cost to move."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8"))


def _checked_size(result: Any) -> int:
    """The JSON size of a body's result; `JobFailed` when it breaks the storage policy (not strict JSON: NaN,
    a lone surrogate…; over `MAX_RESULT_BYTES`)."""
    try:
        dumps(result)  # the storage policy: no NaN, no lone surrogates
        size = _size(result)
    except (TypeError, ValueError, ComfyVNError) as exc:
        raise JobFailed("invalid_result", f"the result is not strict JSON: {str(exc)[:200]}") from None
    if size > MAX_RESULT_BYTES:
        raise JobFailed("result_too_large", f"the result is over {MAX_RESULT_BYTES} bytes of JSON")
    return size


def run_job(job_id: str, kind: str, params: dict[str, Any]) -> Any:
    """Run one job on this worker (the Dask task of every job; its Dask key is `dask_key` of the run)."""
    worker = get_worker()
    plugin = _plugin(worker)
    assert plugin.kernel is not None
    label = plugin.options.get("name") or str(worker.name)

    def send_to_topic(message: dict[str, Any]) -> None:
        worker.log_event(TOPIC, message)

    send = plugin.deliver or send_to_topic

    key = worker.get_current_task()

    def is_cancelled() -> bool:
        state = worker.state.tasks.get(key)
        return state is None or state.state in _GONE

    started = time.monotonic()
    send({"type": "started", "job": job_id, "name": label, "address": worker.address, "at": time.time()})
    ctx = JobContext(job_id, kind, plugin.kernel, label, plugin.options, send, is_cancelled)
    ctx.add_transfer(rx=_size(params))
    try:
        job_kind = kinds_for(plugin.kernel).get(kind)
        if job_kind is None:
            raise JobFailed("unknown_kind", f"no plugin on worker {label} runs jobs of kind {kind}")
        try:
            result = job_kind.run(ctx, params)
        except JobFailed as failed:
            if failed.result is None:
                raise
            try:
                ctx.add_transfer(tx=_checked_size(failed.result))
            except JobFailed:
                # A failure's result that breaks the storage policy is dropped: the failure itself stands.
                raise JobFailed(failed.code, failed.message, failed.field, failed.error_type) from None
            raise
        ctx.add_transfer(tx=_checked_size(result))
    except Exception as exc:
        error = _error(exc)
        send({"type": "attempt_failed", "job": job_id, "name": label, "at": time.time(), "error": error})
        if isinstance(exc, JobFailed | JobCancelled):
            raise
        # Dask sends the exception back to the server: one that always pickles, without local state.
        raise JobFailed(error["code"], error["message"], error.get("field"), error.get("type")) from None
    send(
        {
            "type": "finished",
            "job": job_id,
            "name": label,
            "at": time.time(),
            "result": result,
            "duration_sec": time.monotonic() - started,
            "bytes_tx": ctx.bytes_tx,
            "bytes_rx": ctx.bytes_rx,
        }
    )
    return result
