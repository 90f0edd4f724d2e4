"""Job records in SQLite (WAL) under the data root: what was asked, where it ran, how it ended, what it cost.

One row per job. Status moves ``queued → running → done | failed | cancelled``; a terminal status is never
left again except by re-submitting the same key (a new run of the same record). Each write that reads
first runs in one ``BEGIN IMMEDIATE`` transaction, so the server, a CLI and a stale process never lose
each other's updates.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
from comfyvn.errors import NotFound
from comfyvn.wire import dumps

__all__ = ["ACTIVE", "STATUSES", "TERMINAL", "JobRecords", "owner_alive", "this_owner"]

STATUSES = ("queued", "running", "done", "failed", "cancelled")
ACTIVE = ("queued", "running")
TERMINAL = ("done", "failed", "cancelled")
MAX_RUNS = 50
KEEP_FINISHED = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    key TEXT UNIQUE,
    kind TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    priority INTEGER NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL DEFAULT 0,
    resources TEXT NOT NULL DEFAULT '{}',
    result TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    runs TEXT NOT NULL DEFAULT '[]',
    worker TEXT,
    owner TEXT NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    submitted_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    cost TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, submitted_at);
CREATE INDEX IF NOT EXISTS jobs_submitted ON jobs (submitted_at);
"""
_JSON_COLUMNS = ("params", "resources", "result", "error", "runs", "cost")


def _closed_runs(row: sqlite3.Row, worker: str, at: float, outcome: str, error: dict[str, Any] | None) -> str:
    """The ``runs`` column of ``row`` with ``worker``'s open run closed (unchanged when it has none)."""
    runs = json.loads(row["runs"])
    for run in reversed(runs):
        if run["worker"] == worker and run["outcome"] is None:
            run.update(ended_at=at, outcome=outcome, **({"error": error} if error else {}))
            return dumps(runs)
    return str(row["runs"])


def this_owner() -> str:
    """This process as a record owner: host, pid and process start time (a reused pid is told apart)."""
    pid = os.getpid()
    return f"{socket.gethostname()}/{pid}/{psutil.Process(pid).create_time():.2f}"


def owner_alive(owner: str) -> bool:
    """Whether the process that owns a record still runs; one on another host counts as alive (unknowable)."""
    host, _, rest = owner.partition("/")
    pid_text, _, started = rest.partition("/")
    if host != socket.gethostname():
        return True
    try:
        return f"{psutil.Process(int(pid_text)).create_time():.2f}" == started
    except (ValueError, psutil.Error):
        return False


class JobRecords:
    """The job table in ``path`` (created on first use, WAL journal)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.row_factory = sqlite3.Row
        # Switching to WAL does not wait on the busy timeout: two processes opening a new table at
        # once could see "database is locked", so the set-up runs under an exclusive flock.
        fd = os.open(path.with_name(path.name + ".init-lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        finally:
            os.close(fd)
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._inserts = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._db.in_transaction:  # inside `batch`: one commit for the lot
                yield self._db
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def batch(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """Several writes in one transaction (the recorder applies a burst of worker messages at once)."""
        return self._write()

    # -- reads -----------------------------------------------------------------------------------------
    @staticmethod
    def _record(row: sqlite3.Row) -> dict[str, Any]:
        record = dict(row)
        for column in _JSON_COLUMNS:
            if record[column] is not None:
                record[column] = json.loads(record[column])
        record["cancel_requested"] = bool(record["cancel_requested"])
        started, finished = record["started_at"], record["finished_at"]
        end = finished if finished is not None else (time.time() if record["status"] == "running" else None)
        record["duration_sec"] = None if started is None or end is None else round(max(0.0, end - started), 3)
        return record

    def _row(self, db: sqlite3.Connection, job_id: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return row

    def get(self, job_id: str) -> dict[str, Any]:
        """The record of ``job_id``; `NotFound` when there is none."""
        with self._lock:
            row = self._row(self._db, job_id)
        if row is None:
            raise NotFound(f"no job {job_id}", field="job_id", code="job_not_found")
        return self._record(row)

    def find(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._row(self._db, job_id)
        return None if row is None else self._record(row)

    def list(
        self, *, status: tuple[str, ...] | None = None, kind: str | None = None, limit: int = 100
    ) -> builtins.list[dict[str, Any]]:
        """Records, newest first, optionally of some statuses or one kind."""
        where: builtins.list[str] = []
        args: builtins.list[Any] = []
        if status:
            where.append(f"status IN ({','.join('?' * len(status))})")
            args.extend(status)
        if kind:
            where.append("kind = ?")
            args.append(kind)
        sql = "SELECT * FROM jobs" + (f" WHERE {' AND '.join(where)}" if where else "")
        with self._lock:
            rows = self._db.execute(f"{sql} ORDER BY submitted_at DESC, id LIMIT ?", (*args, limit)).fetchall()
        return [self._record(r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        return {status: 0 for status in STATUSES} | {r[0]: r[1] for r in rows}

    def cancel_requests(self, owner: str) -> builtins.list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM jobs WHERE owner = ? AND cancel_requested = 1 AND status IN ('queued', 'running')",
                (owner,),
            ).fetchall()
        return [r[0] for r in rows]

    # -- writes ----------------------------------------------------------------------------------------
    def submit(self, job: dict[str, Any], *, same: Callable[[dict[str, Any]], bool]) -> tuple[dict[str, Any], bool]:
        """Insert ``job`` as queued; with a key already recorded, return that record unless it ended in
        failure or cancellation (then it is queued again). ``same(existing)`` says whether the existing
        record asked for the same work; `Conflict` is the caller's to raise. Returns (record, created);
        a created record is returned as given (the caller's ``job``), not read back."""
        values = (
            job["id"],
            job["key"],
            job["kind"],
            dumps(job["params"]),
            job["priority"],
            job["retries"],
            dumps(job["resources"]),
            job["owner"],
            job["submitted_at"],
        )
        insert = (
            "INSERT INTO jobs (id, key, kind, params, status, priority, retries, resources, owner,"
            " submitted_at) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)"
        )
        self._inserts += 1
        if self._inserts % 500 == 0:
            self._prune()
        if job["key"] is None:
            # A fresh id cannot exist yet: one statement, one commit (the no-op benchmark's hot path).
            with self._lock:
                self._db.execute(insert, values)
            return job, True
        with self._write() as db:
            row = self._row(db, job["id"])
            if row is None:
                db.execute(insert, values)
                return job, True
            existing = self._record(row)
            if existing["status"] not in ("failed", "cancelled") or not same(existing):
                return existing, False
            db.execute(
                "UPDATE jobs SET status='queued', progress=0, message='', result=NULL, error=NULL, worker=NULL,"
                " owner=?, cancel_requested=0, submitted_at=?, started_at=NULL, finished_at=NULL, cost=NULL,"
                " priority=?, retries=?, resources=? WHERE id=?",
                (
                    job["owner"],
                    job["submitted_at"],
                    job["priority"],
                    job["retries"],
                    dumps(job["resources"]),
                    job["id"],
                ),
            )
            return job, True

    def _prune(self) -> None:
        with self._write() as db:
            db.execute(
                "DELETE FROM jobs WHERE status IN ('done', 'failed', 'cancelled') AND id NOT IN"
                " (SELECT id FROM jobs ORDER BY submitted_at DESC LIMIT ?)",
                (KEEP_FINISHED,),
            )

    def started(self, job_id: str, worker: str, at: float) -> dict[str, Any] | None:
        """A run began on ``worker``: one more attempt. Returns the record, or None when the job is over
        (Dask recomputing a finished job whose result a dead worker held changes nothing here)."""
        with self._write() as db:
            row = self._row(db, job_id)
            if row is None or row["status"] not in ACTIVE:
                return None
            runs = [*json.loads(row["runs"]), {"worker": worker, "started_at": at, "ended_at": None, "outcome": None}]
            for run in runs[:-1]:
                if run["outcome"] is None:
                    run["outcome"] = "lost"  # its worker died or lost the task; Dask moved it elsewhere
            changed = {
                "status": "running",
                "worker": worker,
                "started_at": at,
                "attempts": row["attempts"] + 1,
                "runs": dumps(runs[-MAX_RUNS:]),
            }
            db.execute(
                "UPDATE jobs SET status=?, worker=?, started_at=?, attempts=?, runs=? WHERE id=?",
                (*changed.values(), job_id),
            )
            # The row as it now stands, without reading it back (this runs for every job).
            return self._record({**dict(row), **changed})

    def progress(self, job_id: str, fraction: float, message: str) -> dict[str, Any] | None:
        with self._write() as db:
            cursor = db.execute(
                "UPDATE jobs SET progress=?, message=? WHERE id=? AND status IN ('queued', 'running')",
                (fraction, message, job_id),
            )
            return None if cursor.rowcount == 0 else self._record(self._row(db, job_id))  # type: ignore[arg-type]

    def run_ended(self, job_id: str, worker: str, at: float, outcome: str, error: dict[str, Any] | None) -> None:
        """Close the open run of ``worker`` (a failed attempt Dask may retry, or the final one)."""
        with self._write() as db:
            row = self._row(db, job_id)
            if row is None:
                return
            db.execute("UPDATE jobs SET runs=? WHERE id=?", (_closed_runs(row, worker, at, outcome, error), job_id))

    def finish(
        self,
        job_id: str,
        status: str,
        *,
        at: float,
        result: Any = None,
        error: dict[str, Any] | None = None,
        cost: dict[str, Any] | None = None,
        run: tuple[str, float, str] | None = None,
    ) -> dict[str, Any] | None:
        """Move an active job to ``status`` (done, failed or cancelled); None when it had already ended.
        ``run`` = (worker, ended at, outcome) also closes that worker's open run, in the same write (as
        `run_ended` would, whether or not the job was still active)."""
        assert status in TERMINAL
        with self._write() as db:
            row = self._row(db, job_id)
            if row is None:
                return None
            runs = row["runs"] if run is None else _closed_runs(row, *run, None)
            if row["status"] not in ACTIVE:
                if runs != row["runs"]:
                    db.execute("UPDATE jobs SET runs=? WHERE id=?", (runs, job_id))
                return None
            changed = {
                "status": status,
                "finished_at": at,
                "result": None if result is None else dumps(result),
                "error": None if error is None else dumps(error),
                "cost": None if cost is None else dumps(cost),
                "progress": 1 if status == "done" else row["progress"],
                "runs": runs,
            }
            db.execute(
                "UPDATE jobs SET status=?, finished_at=?, result=?, error=?, cost=?, progress=?, runs=? WHERE id=?",
                (*changed.values(), job_id),
            )
            return self._record({**dict(row), **changed})

    def request_cancel(self, job_id: str) -> dict[str, Any]:
        with self._write() as db:
            if self._row(db, job_id) is None:
                raise NotFound(f"no job {job_id}", field="job_id", code="job_not_found")
            db.execute("UPDATE jobs SET cancel_requested=1 WHERE id=? AND status IN ('queued', 'running')", (job_id,))
            return self._record(self._row(db, job_id))  # type: ignore[arg-type]

    def orphans(self, alive: Callable[[str], bool] = owner_alive) -> builtins.list[str]:
        """Active jobs whose owning process is gone (a server that died mid-job)."""
        with self._lock:
            rows = self._db.execute("SELECT id, owner FROM jobs WHERE status IN ('queued', 'running')").fetchall()
        dead: dict[str, bool] = {}
        return [r["id"] for r in rows if dead.setdefault(r["owner"], not alive(r["owner"]))]
