"""The `Jobs` service: submit work to Dask, keep its record, relay its progress onto the bus.

Dask decides where and when a job runs (priorities, retries, worker resources, cancellation); this
service only names the work (a registered kind and JSON params), records it, and listens. Everything
workers say arrives on Dask's event topic; those messages are applied to the records by one recorder
thread, in the order Dask delivered them, so Dask's IO loop never waits on SQLite and a job's record moves
through its states in order. What only Dask knows (a job failed for good after its retries, was cancelled
or lost) the recorder reads from the futures' states every `VERDICTS` seconds.
"""

from __future__ import annotations

import builtins
import hashlib
import logging
import queue
import re
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import distributed
import structlog
from comfyvn.errors import Conflict, Invalid, OperationFailed, TooLarge
from comfyvn.wire import dumps

from .cost import Providers, estimate
from .kinds import MAX_RETRIES, JobKind, check_resources, kinds_for
from .records import ACTIVE, TERMINAL, JobRecords, this_owner
from .runtime import PLUGIN_NAME, TOPIC, JobFailed, KernelPlugin, dask_key, job_of, run_job
from .settings import JobSettings

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["MAX_PARAMS_BYTES", "Jobs", "jobs_for"]

MAX_PARAMS_BYTES = 64 * 1024
_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
_SECRET = re.compile(r"(secret|token|password|passphrase|api[_-]?key|authorization|cookie|credential)", re.I)
EMBEDDED = "embedded"
# Worker messages applied per SQLite transaction at most (a burst of 1,000 no-op jobs commits a few times).
BURST = 256
RECENT = 10_000
# Seconds between the recorder's looks at Dask's verdicts on active jobs (`Jobs._settled`): a failure,
# a cancellation or a loss Dask decided is recorded within this. A callback per future costs a coroutine
# and a thread hop per job, a sixth of a no-op job's time; a look costs a status read per active job.
VERDICTS = 0.1
_DASK: Any = distributed  # its API is untyped; calls through it are checked by the tests
log = structlog.get_logger("comfyvn.jobs")


def _secret_key(value: Any, path: str = "params") -> str | None:
    """The path of the first key that names a credential (params are stored and shown: never secrets)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            here = f"{path}.{key}"
            if _SECRET.search(str(key)):
                return here
            if (found := _secret_key(item, here)) is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (found := _secret_key(item, f"{path}[{index}]")) is not None:
                return found
    return None


def job_id_for(key: str | None) -> str:
    """A job's id: derived from its idempotency key, else fresh."""
    if key is None:
        return f"job-{uuid.uuid4().hex}"
    return f"job-{hashlib.sha256(key.encode()).hexdigest()[:32]}"


class _ComputeFailed(logging.Filter):
    """Drops Dask's "Compute Failed" log records: a job's failure is in its record and on the bus."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Compute Failed")


def _quiet_compute_failures() -> None:
    logger = logging.getLogger("distributed.worker")
    if not any(isinstance(f, _ComputeFailed) for f in logger.filters):
        logger.addFilter(_ComputeFailed())


class Jobs:
    """Jobs of one kernel. Use `jobs_for(kernel)`; the Dask client starts on first submit."""

    def __init__(self, kernel: Kernel, *, settings: JobSettings | None = None) -> None:
        self.kernel = kernel
        self.settings = settings or JobSettings.from_kernel(kernel)
        self.records = JobRecords(kernel.paths.plugin_dir("jobs") / "jobs.sqlite3")
        self.providers = Providers(kernel.paths.config)
        self.owner = this_owner()
        self._client: Any = None  # distributed's API is untyped: its objects are Any here
        self._cluster: Any = None
        self._futures: dict[str, Any] = {}
        self._cancelling: set[str] = set()
        self._ended: dict[str, None] = {}  # insertion-ordered: the RECENT jobs this process ended last
        self._lock = threading.RLock()
        self._changed = threading.Condition()
        self._version = 0
        self._inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._recorder: threading.Thread | None = None
        self._finished_seen: set[str] = set()  # see `_settled`
        self._burst = threading.local()  # `held`: what the recorder does once its burst is committed
        self._closed = False
        self.recover()

    # -- the engine ------------------------------------------------------------------------------------
    @property
    def embedded(self) -> bool:
        return self.settings.scheduler is None

    @property
    def started(self) -> bool:
        return self._client is not None

    def client(self) -> Any:
        """The Dask client, started on first use (an in-process cluster unless a scheduler is configured)."""
        with self._lock:
            if self._closed:
                raise OperationFailed("the job service was shut down", code="jobs_closed")
            if self._client is None:
                self._client = self._connect()
                self._recorder = threading.Thread(target=self._record_loop, name="comfyvn-jobs-recorder", daemon=True)
                self._recorder.start()
            return self._client

    def _connect(self) -> Any:
        if self.settings.scheduler is not None:
            try:
                client = _DASK.Client(
                    self.settings.scheduler, timeout=self.settings.connect_timeout, set_as_default=False
                )
            except (OSError, TimeoutError) as exc:
                raise OperationFailed(
                    f"cannot reach the Dask scheduler {self.settings.scheduler}: {type(exc).__name__}",
                    field="jobs.scheduler",
                    code="scheduler_unreachable",
                ) from None
        else:
            _quiet_compute_failures()
            self._cluster = _DASK.LocalCluster(
                processes=False,
                n_workers=1,
                threads_per_worker=self.settings.threads,
                # Dask always serves HTTP (metrics, health) from the scheduler and the worker: loopback only.
                dashboard_address="127.0.0.1:0",
                worker_dashboard_address="127.0.0.1:0",
                local_directory=str(self.kernel.paths.cache / "dask"),
                resources=self._embedded_resources() or None,
                silence_logs=logging.CRITICAL,
            )
            # The in-process worker runs jobs with this very kernel (same plugins, paths and flags).
            for worker in self._cluster.workers.values():
                worker.plugins[PLUGIN_NAME] = KernelPlugin(self.kernel, {"name": EMBEDDED}, deliver=self._deliver)
            client = _DASK.Client(self._cluster, set_as_default=False)
        client.subscribe_topic(TOPIC, lambda event: self._inbox.put(("event", event[1])))
        return client

    def _deliver(self, message: dict[str, Any]) -> None:
        """A message of a job running on the embedded worker, handed over in-process."""
        self._inbox.put(("event", message))

    def _embedded_resources(self) -> dict[str, float]:
        """What plugins offer through ``jobs_embedded_resources``, then ``jobs.resources`` (which wins)."""
        offered: dict[str, float] = {}
        for plugin, answer in self.kernel.plugins.call_each(
            "jobs_embedded_resources", on_error="log", kernel=self.kernel
        ):
            try:
                offered.update(check_resources(answer, "resources"))
            except Invalid as exc:
                log.warning("jobs_embedded_resources answer ignored", plugin=plugin, error=str(exc))
        return {**offered, **self.settings.resources}

    def refresh_resources(self) -> dict[str, float] | None:
        """Ask ``jobs_embedded_resources`` again and give the running embedded worker the answer (a ComfyUI
        server added while the server runs becomes a ``COMFYUI`` slot at once, so render jobs do not wait for
        a resource no worker offers). Returns the resources set; None with a configured scheduler or before
        the embedded cluster started (it starts with the current answer)."""
        with self._lock:
            if not self.embedded or self._client is None:
                return None
            resources = self._embedded_resources()
            client = self._client
        client.run(_set_worker_resources, resources=resources)
        return resources

    def close(self) -> None:
        """Stop listening and close the client (and the embedded cluster: its running jobs stop)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            client, cluster = self._client, self._cluster
        self._inbox.put(("stop", None))
        if self._recorder is not None:
            self._recorder.join(timeout=10)
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        self.records.close()

    # -- submitting ------------------------------------------------------------------------------------
    def kinds(self) -> dict[str, JobKind]:
        return kinds_for(self.kernel)

    def submit(
        self,
        kind: str,
        params: Mapping[str, Any] | None = None,
        *,
        resources: Mapping[str, float] | None = None,
        priority: int = 0,
        retries: int | None = None,
        key: str | None = None,
    ) -> str:
        """Queue a job of ``kind``; returns its id. With ``key``, a job already recorded under that key
        is returned instead (run again only if it failed or was cancelled), so submitting twice never
        runs the work twice."""
        job_kind = self.kinds().get(kind) if isinstance(kind, str) else None
        if job_kind is None:
            raise Invalid(f"unknown job kind {str(kind)[:80]!r}", field="kind", code="unknown_kind")
        if job_kind.local and not self.embedded:
            raise Invalid(
                f"jobs of kind {kind} read and write this machine's files: they run on the embedded cluster only,"
                " not on the configured scheduler's workers",
                field="kind",
                code="kind_is_local",
            )
        clean = self._params(job_kind, params)
        wanted = {**job_kind.resources, **check_resources(resources)}
        if isinstance(priority, bool) or not isinstance(priority, int) or not -1_000_000 <= priority <= 1_000_000:
            raise Invalid("priority must be a whole number from -1000000 to 1000000", field="priority")
        retries = job_kind.retries if retries is None else retries
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
            raise Invalid(f"retries must be a whole number from 0 to {MAX_RETRIES}", field="retries")
        if key is not None and (not isinstance(key, str) or not _KEY.match(key)):
            raise Invalid("key must be 1-200 printable ASCII characters without spaces", field="key")
        client = self.client()
        job = {
            "id": job_id_for(key),
            "key": key,
            "kind": kind,
            "params": clean,
            "priority": priority,
            "retries": retries,
            "resources": wanted,
            "owner": self.owner,
            "submitted_at": time.time(),
        }
        record, created = self.records.submit(job, same=lambda old: old["kind"] == kind and old["params"] == clean)
        if not created:
            if record["kind"] != kind or record["params"] != clean:
                raise Conflict(f"key {key} is already used by a different job", field="key", code="key_conflict")
            return str(record["id"])
        job_id = str(record["id"])
        self._emit(
            "on_job_queued",
            {
                "id": job_id,
                "kind": kind,
                "key": key,
                "priority": priority,
                "retries": retries,
                "resources": wanted,
            },
        )
        # The job is ours before Dask has it: a worker's first message may arrive before `client.submit`
        # returns. The lock is not held across that call (a few hundred µs): the recorder takes it per message.
        with self._lock:
            self._futures[job_id] = None
        try:
            future = client.submit(
                run_job,
                job_id,
                kind,
                clean,
                key=dask_key(job_id, uuid.uuid4().hex[:12]),
                priority=priority,
                retries=retries,
                resources=wanted or None,
                pure=False,
            )
        except Exception as exc:
            self._end(job_id, "failed", error={"code": "dask_error", "message": f"{type(exc).__name__}: {exc}"[:300]})
            raise
        with self._lock:
            ended = job_id not in self._futures  # cancelled while Dask was being told
            if not ended:
                self._futures[job_id] = future
        if ended:
            future.cancel(reason="cancelled by request")
        return job_id

    def _params(self, kind: JobKind, params: Mapping[str, Any] | None) -> dict[str, Any]:
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise Invalid("params must be a JSON object", field="params")
        if (where := _secret_key(params)) is not None:
            raise Invalid(
                "job params are stored and shown: pass the name of a vault secret, never a credential",
                field=where,
                code="secret_in_params",
            )
        clean = dict(params) if kind.check is None else kind.check(dict(params))
        if len(dumps(clean).encode("utf-8")) > MAX_PARAMS_BYTES:
            raise TooLarge(f"params are over {MAX_PARAMS_BYTES} bytes of JSON", field="params")
        return clean

    # -- reading, cancelling, waiting ------------------------------------------------------------------
    def get(self, job_id: str) -> dict[str, Any]:
        """The record of ``job_id`` (`NotFound` when unknown)."""
        return self.records.get(job_id)

    def list(
        self, *, status: tuple[str, ...] | None = None, kind: str | None = None, limit: int = 100
    ) -> builtins.list[dict[str, Any]]:
        """Records, newest first."""
        return self.records.list(status=status, kind=kind, limit=limit)

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job; an ended job is returned unchanged. A job this process does
        not own (another server's, or the CLI asking) is flagged and its owner cancels it."""
        record = self.records.get(job_id)
        if record["status"] in TERMINAL:
            return record
        with self._lock:
            future = self._futures.get(job_id)
            if future is not None:
                self._cancelling.add(job_id)
        if future is not None:
            future.cancel(reason="cancelled by request")
            return self._end(job_id, "cancelled") or self.records.get(job_id)
        if record["owner"] == self.owner or job_id in self.records.orphans():
            return self._end(job_id, "cancelled") or self.records.get(job_id)
        return self.records.request_cancel(job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Block until ``job_id`` ends (or ``timeout`` seconds pass); returns its record either way."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            # The record is read outside the condition: the recorder takes the records lock, then this one.
            with self._changed:
                seen = self._version
            record = self.records.get(job_id)
            left = None if deadline is None else deadline - time.monotonic()
            if record["status"] not in ACTIVE or (left is not None and left <= 0):
                return record
            with self._changed:
                if self._version == seen:
                    # Another process's job changes without telling us: look again now and then.
                    self._changed.wait(0.25 if left is None else min(0.25, left))
                # A job of ours leaves `_futures` when it ends: until then, the ends of others that wake
                # this wait need no read of its record.
                while job_id in self._futures and (deadline is None or time.monotonic() < deadline):
                    self._changed.wait(0.25 if deadline is None else max(0.0, min(0.25, deadline - time.monotonic())))

    def recover(self) -> builtins.list[str]:
        """Fail the active jobs of processes that died (a server killed mid-job); returns their ids."""
        failed = []
        for job_id in self.records.orphans():
            error = {
                "code": "interrupted",
                "message": "the process that ran this job stopped before the job ended; submit it again",
            }
            if self._end(job_id, "failed", error=error) is not None:
                failed.append(job_id)
        return failed

    # -- applying what Dask reports --------------------------------------------------------------------
    def _emit(self, name: str, payload: dict[str, Any]) -> None:
        self._after_commit(lambda: self._publish(name, payload))

    def _publish(self, name: str, payload: dict[str, Any]) -> None:
        try:
            self.kernel.events.emit(name, payload)
        except Exception:  # a payload the bus refuses must not stop the recorder
            log.exception("job event refused", event_name=name)

    def _after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` now, or, on the recorder while it applies a burst, once the burst is committed:
        subscribers and waiters then see the records as the event says, and the records stay locked only
        for the SQL (`submit` inserts under the same lock)."""
        held: list[Callable[[], None]] | None = getattr(self._burst, "held", None)
        if held is None:
            action()
        else:
            held.append(action)

    def _changed_now(self) -> None:
        with self._changed:
            self._version += 1
            self._changed.notify_all()

    def _end(self, job_id: str, status: str, **fields: Any) -> dict[str, Any] | None:
        record = self.records.finish(job_id, status, at=time.time(), **fields)
        with self._lock:
            if job_id in self._futures:
                del self._futures[job_id]
                self._ended[job_id] = None
                while len(self._ended) > RECENT:
                    del self._ended[next(iter(self._ended))]
            self._cancelling.discard(job_id)
        if record is not None:
            base = {"id": job_id, "kind": record["kind"], "attempts": record["attempts"]}
            if status == "done":
                self._emit("on_job_finished", {**base, "worker": record["worker"], "cost": record["cost"]})
            elif status == "failed":
                self._emit("on_job_failed", {**base, "error": record["error"]})
            else:
                self._emit("on_job_cancelled", base)
            if getattr(self._burst, "held", None) is None:
                self._changed_now()  # on the recorder, waiters are woken once per burst, after its commit
        return record

    def _record_loop(self) -> None:
        last_poll = last_verdicts = time.monotonic()
        while True:
            try:
                burst = [self._inbox.get(timeout=VERDICTS if self._futures else 1.0)]
            except queue.Empty:
                burst = []
            if time.monotonic() - last_verdicts >= VERDICTS:
                last_verdicts = time.monotonic()
                burst.extend(("done", future) for future in self._settled())
            while burst and len(burst) < BURST:
                try:
                    burst.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            if burst and not self._apply_burst(burst):
                return
            if time.monotonic() - last_poll >= 1.0:
                last_poll = time.monotonic()
                self._poll_cancel_requests()

    def _apply_burst(self, burst: builtins.list[tuple[str, Any]]) -> bool:
        """Apply ``burst`` in one transaction, then publish its events and wake the waiters; False at
        ``stop`` (what came before it is still applied)."""
        held: builtins.list[Callable[[], None]] = []
        self._burst.held = held
        going = True
        try:
            with self.records.batch():
                for what, item in burst:
                    if what == "stop":
                        going = False
                        break
                    self._handle(what, item)
        finally:
            self._burst.held = None
        for action in held:
            action()
        self._changed_now()
        return going

    def _settled(self) -> builtins.list[Any]:
        """Futures of active jobs that Dask has settled, for `_done`. A job the worker ends itself (its
        ``finished`` message, queued before Dask settles the future) is not taken from Dask until its
        future has been finished at two looks in a row: the message is then lost, not late."""
        with self._lock:
            settled = [(job_id, f) for job_id, f in self._futures.items() if f is not None and f.status != "pending"]
        finished_before, self._finished_seen = self._finished_seen, set()
        found = []
        for job_id, future in settled:
            if future.status == "finished" and job_id not in finished_before:
                self._finished_seen.add(job_id)
            else:
                found.append(future)
        return found

    def _handle(self, what: str, item: Any) -> None:
        try:
            if what == "event" and isinstance(item, dict) and self._mine(item.get("job")):
                self._apply(item)
            elif what == "done":
                self._done(item)
        except Exception:
            log.exception("job recorder failed on a message", kind=what)

    def _poll_cancel_requests(self) -> None:
        try:
            if self._futures:
                for job_id in self.records.cancel_requests(self.owner):
                    self.cancel(job_id)
        except Exception:
            log.exception("job recorder failed polling cancel requests")

    def _mine(self, job_id: Any) -> bool:
        # Under the lock: `submit` holds it from Dask's submit until the future is known. Jobs ended
        # lately still count: a cancelled body reports its run's end after the job itself ended.
        with self._lock:
            return job_id in self._futures or job_id in self._ended

    def _apply(self, message: dict[str, Any]) -> None:
        job_id, what = str(message["job"]), message.get("type")
        if what == "started":
            record = self.records.started(job_id, str(message["name"]), float(message["at"]))
            if record is not None:
                self._emit(
                    "on_job_started",
                    {"id": job_id, "kind": record["kind"], "worker": record["worker"], "attempt": record["attempts"]},
                )
        elif what == "progress":
            record = self.records.progress(job_id, float(message["progress"]), str(message["message"]))
            if record is not None:
                self._emit(
                    "on_job_progress",
                    {
                        "id": job_id,
                        "kind": record["kind"],
                        "progress": record["progress"],
                        "message": record["message"],
                    },
                )
        elif what == "attempt_failed":
            error = message.get("error") or {}
            outcome = "cancelled" if error.get("code") == "cancelled" else "failed"
            self.records.run_ended(job_id, str(message["name"]), float(message["at"]), outcome, error)
        elif what == "finished":
            worker = str(message["name"])
            cost = estimate(
                self.providers.for_worker(worker),
                float(message["duration_sec"]),
                int(message["bytes_tx"]),
                int(message["bytes_rx"]),
            )
            # The run is closed in the same write that ends the job.
            run = (worker, float(message["at"]), "done")
            self._end(job_id, "done", result=message.get("result"), cost=cost, run=run)

    def _done(self, future: Any) -> None:
        job_id = job_of(future.key)
        with self._lock:
            current = self._futures.get(job_id)
            if current is None or current is not future:
                return  # already ended (its finished message came first) or re-submitted since
            cancelling = job_id in self._cancelling
        if future.status == "finished":
            # The worker's finished message was lost (never expected): take the result from Dask.
            self._end(job_id, "done", result=future.result(timeout=30))
        elif future.status == "cancelled" and cancelling:
            self._end(job_id, "cancelled")
        elif future.status == "cancelled":
            error = {"code": "lost", "message": "Dask dropped the job (the scheduler connection was lost)"}
            self._end(job_id, "failed", error=error)
        else:
            exc = future.exception(timeout=30)
            result = None
            if isinstance(exc, JobFailed):
                error, result = exc.to_error(), exc.result
            else:  # KilledWorker and the like: Dask gave up on it
                error = {"code": "dask_error", "message": f"{type(exc).__name__}: {str(exc)[:300]}"}
            self._end(job_id, "failed", error=error, result=result)

    # -- the cluster as seen by the scheduler ----------------------------------------------------------
    def workers(self) -> builtins.list[dict[str, Any]]:
        """The workers the scheduler knows (none before the client started)."""
        if self._client is None:
            return []
        info = self._client.scheduler_info(n_workers=-1)
        local = set() if self._cluster is None else {w.address for w in self._cluster.workers.values()}
        rows = []
        for address, worker in sorted(info.get("workers", {}).items()):
            rows.append(
                {
                    "address": address,
                    "name": EMBEDDED if address in local else str(worker.get("name", address)),
                    "nthreads": worker.get("nthreads"),
                    "resources": worker.get("resources", {}),
                }
            )
        return rows

    def processing(self) -> dict[str, builtins.list[str]]:
        """Job ids the scheduler has handed to each worker (by address)."""
        if self._client is None:
            return {}
        return {str(a): [job_of(k) for k in keys] for a, keys in self._client.processing().items()}


_SERVICES: weakref.WeakKeyDictionary[Kernel, Jobs] = weakref.WeakKeyDictionary()
_SERVICES_LOCK = threading.Lock()


def jobs_for(kernel: Kernel) -> Jobs:
    """The `Jobs` service of ``kernel`` (one per kernel; closed by the plugin's ``shutdown``)."""
    with _SERVICES_LOCK:
        service = _SERVICES.get(kernel)
        if service is None or service._closed:
            service = _SERVICES[kernel] = Jobs(kernel)
        return service


async def _set_worker_resources(dask_worker: Any, resources: dict[str, float]) -> None:
    await dask_worker.set_resources(**resources)


def close_jobs(kernel: Kernel) -> None:
    """Close ``kernel``'s service if it was opened."""
    with _SERVICES_LOCK:
        service = _SERVICES.pop(kernel, None)
    if service is not None:
        service.close()
