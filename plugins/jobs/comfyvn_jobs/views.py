"""Snapshots of the job system for people and dashboards: state, the per-worker board, health."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .records import ACTIVE, TERMINAL

if TYPE_CHECKING:
    from .service import Jobs

__all__ = ["board", "health", "state"]


def _bar(record: dict[str, Any]) -> dict[str, Any]:
    """One job as a Gantt bar: when it started and ended, how far it got, what it cost."""
    cost = record.get("cost") or {}
    return {
        "id": record["id"],
        "kind": record["kind"],
        "status": record["status"],
        "priority": record["priority"],
        "submitted_at": record["submitted_at"],
        "started_at": record["started_at"],
        "finished_at": record["finished_at"],
        "duration_sec": record["duration_sec"],
        "progress": record["progress"],
        "attempts": record["attempts"],
        "cost_estimate": cost.get("cost_estimate"),
    }


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    keep = ("id", "kind", "key", "status", "progress", "message", "worker", "attempts", "submitted_at")
    return {k: record[k] for k in keep}


def board(jobs: Jobs, *, recent: int = 50) -> dict[str, Any]:
    """Per worker: running jobs, jobs Dask handed it that have not started, recent finished ones, and the
    cost of those; plus jobs no worker has yet. Workers the records name but the scheduler no longer
    knows (a worker that died) are listed with ``connected: false``."""
    lanes: dict[str, dict[str, Any]] = {}

    def lane(name: str, connected: bool, **extra: Any) -> dict[str, Any]:
        if name not in lanes:
            lanes[name] = {"name": name, "connected": connected, **extra, "running": [], "queued": [], "recent": []}
        return lanes[name]

    addresses = {}
    for worker in jobs.workers():
        addresses[worker["address"]] = worker["name"]
        lane(
            worker["name"], True, address=worker["address"], nthreads=worker["nthreads"], resources=worker["resources"]
        )
    assigned = {job: addresses.get(address, address) for address, ids in jobs.processing().items() for job in ids}
    unassigned = []
    for record in jobs.list(status=ACTIVE, limit=1000):
        if record["status"] == "running" and record["worker"]:
            lane(record["worker"], False)["running"].append(_bar(record))
        elif record["id"] in assigned:
            lane(assigned[record["id"]], False)["queued"].append(_bar(record))
        else:
            unassigned.append(_bar(record))
    for record in jobs.list(status=TERMINAL, limit=recent):
        if record["worker"]:
            lane(record["worker"], False)["recent"].append(_bar(record))
    for row in lanes.values():
        row["cost_estimate"] = round(sum(b["cost_estimate"] or 0 for b in row["recent"]), 8)
    return {
        "scheduler": _scheduler(jobs),
        "workers": sorted(lanes.values(), key=lambda row: row["name"]),
        "queued": unassigned,
        "generated_at": _now(),
    }


def state(jobs: Jobs, *, recent: int = 50) -> dict[str, Any]:
    """The raw queues: active jobs, queued ones, recent history, and the kinds this server can submit."""
    active = jobs.list(status=ACTIVE, limit=1000)
    return {
        "scheduler": _scheduler(jobs),
        "started": jobs.started,
        "counts": jobs.records.counts(),
        "active": [_summary(r) for r in active if r["status"] == "running"],
        "queued": [_summary(r) for r in active if r["status"] == "queued"],
        "completed": [_summary(r) for r in jobs.list(status=TERMINAL, limit=recent)],
        "kinds": [k.as_dict() for k in sorted(jobs.kinds().values(), key=lambda k: k.name)],
        "workers": jobs.workers(),
    }


def health(jobs: Jobs) -> dict[str, Any]:
    """Whether jobs can run: the engine, its workers, and resources queued jobs need that no worker has."""
    workers = jobs.workers()
    offered = {name for w in workers for name in w["resources"]}
    needed = {name for r in jobs.list(status=("queued",), limit=1000) for name in r["resources"]}
    problems = []
    if jobs.started and not workers:
        problems.append("the scheduler has no workers")
    missing = sorted(needed - offered) if jobs.started else []
    if missing:
        problems.append(f"queued jobs need resources no worker offers: {', '.join(missing)}")
    if jobs.providers.error:
        problems.append(jobs.providers.error)
    return {
        "ok": not problems,
        "engine": "dask",
        "scheduler": _scheduler(jobs),
        "started": jobs.started,
        "workers": len(workers),
        "counts": jobs.records.counts(),
        "missing_resources": missing,
        "problems": problems,
    }


def _scheduler(jobs: Jobs) -> str:
    return "embedded" if jobs.embedded else str(jobs.settings.scheduler)


def _now() -> float:
    return time.time()
