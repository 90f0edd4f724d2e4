"""ComfyVN jobs on Dask distributed: long work runs as jobs with progress, records and cost telemetry.

`jobs_for(kernel)` gives a kernel's `Jobs` service (``submit``, ``get``, ``list``, ``cancel``, ``wait``);
plugins declare what can run through the ``register_job_kinds`` hook, and job bodies report progress
with `JobContext.report`. `records` keeps the SQLite records, `runtime` is the worker side, `views` the
board, state and health snapshots; `routes` and `cli` are thin edges.
"""

from __future__ import annotations

from .kinds import JobCancelled, JobContext, JobKind, KindRegistrar
from .runtime import JobFailed
from .service import Jobs, jobs_for

__all__ = ["JobCancelled", "JobContext", "JobFailed", "JobKind", "Jobs", "KindRegistrar", "jobs_for"]
