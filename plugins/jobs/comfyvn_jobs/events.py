"""The events the jobs plugin declares, with their payload schemas."""

from __future__ import annotations

from typing import Any

__all__ = ["EVENTS", "JOB_EVENTS"]

_ID = {"type": "string", "pattern": "^job-[0-9a-f]{32}$"}
_ERROR = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
}
_COST = {
    "type": ["object", "null"],
    "required": ["duration_sec", "bytes_tx", "bytes_rx", "cost_estimate", "provider"],
    "properties": {
        "duration_sec": {"type": "number", "minimum": 0},
        "bytes_tx": {"type": "integer", "minimum": 0},
        "bytes_rx": {"type": "integer", "minimum": 0},
        "cost_estimate": {"type": "number", "minimum": 0},
        "provider": {"type": ["string", "null"]},
    },
}
_BASE = {"id": _ID, "kind": {"type": "string"}}
_ATTEMPTS = {"type": "integer", "minimum": 0}


def _schema(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": ["id", "kind", *required], "properties": {**_BASE, **properties}}


EVENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "on_job_queued": (
        "A job was submitted to Dask: its kind, idempotency key, priority, retries and the resources it needs.",
        _schema(
            ["key", "priority", "retries", "resources"],
            key={"type": ["string", "null"]},
            priority={"type": "integer"},
            retries={"type": "integer", "minimum": 0},
            resources={"type": "object", "additionalProperties": {"type": "number"}},
        ),
    ),
    "on_job_started": (
        "A worker began a run of a job (attempt counts every run, retries and reruns after a lost worker too).",
        _schema(["worker", "attempt"], worker={"type": "string"}, attempt={"type": "integer", "minimum": 1}),
    ),
    "on_job_progress": (
        "A running job reported progress (0 to 1) with a short message.",
        _schema(
            ["progress", "message"],
            progress={"type": "number", "minimum": 0, "maximum": 1},
            message={"type": "string", "maxLength": 200},
        ),
    ),
    "on_job_finished": (
        "A job ended well, once per job: where it ran, how many runs it took, and its cost telemetry.",
        _schema(["worker", "attempts", "cost"], worker={"type": ["string", "null"]}, attempts=_ATTEMPTS, cost=_COST),
    ),
    "on_job_failed": (
        "A job ended in failure (its last run failed, Dask gave up, or its process died mid-job).",
        _schema(["attempts", "error"], attempts=_ATTEMPTS, error=_ERROR),
    ),
    "on_job_cancelled": ("A job was cancelled before it ended.", _schema(["attempts"], attempts=_ATTEMPTS)),
}

JOB_EVENTS = tuple(EVENTS)
