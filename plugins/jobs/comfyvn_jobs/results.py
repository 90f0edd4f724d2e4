"""Results bigger than a record holds, for *local* kinds: the whole result goes to a file on this machine and
the record keeps a summary naming it; the command that waited on the job reads the whole back.

A record keeps at most 64 KiB of result. A local kind (``register(..., local=True)``) runs on the embedded
cluster of the process that submitted it, so a file its body writes is one that process can read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from comfyvn.errors import OperationFailed
from comfyvn.paths import atomic_write_text, safe_join
from comfyvn.wire import dumps, loads

if TYPE_CHECKING:
    from .kinds import JobContext

__all__ = ["MAX_INLINE_BYTES", "RESULTS_DIR", "bounded_result", "full_result"]

# Under the record's 64 KiB, leaving room for the summary fields a caller adds.
MAX_INLINE_BYTES = 48 * 1024
RESULTS_DIR = "results"
KEEP_RESULTS = 64


def bounded_result(
    ctx: JobContext, result: dict[str, Any], summary: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    """``result`` when it is small enough for the record, else ``summary(result)`` plus ``summary: true`` and
    ``full_result`` (the path of ``<data>/plugins/jobs/results/<job id>.json``, holding ``result``). The newest
    `KEEP_RESULTS` files are kept."""
    data = dumps(result)
    if len(data.encode("utf-8")) <= MAX_INLINE_BYTES:
        return result
    folder = ctx.kernel.paths.plugin_dir("jobs") / RESULTS_DIR
    path = safe_join(folder, f"{ctx.job_id}.json", field="job_id")
    atomic_write_text(path, data)
    kept = sorted(folder.glob("job-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in kept[KEEP_RESULTS:]:
        old.unlink(missing_ok=True)
    return {**summary(result), "summary": True, "full_result": str(path)}


def full_result(record: Mapping[str, Any]) -> dict[str, Any]:
    """The whole result of a finished job whose body used `bounded_result` (read back from its file when the
    record holds a summary)."""
    result = record["result"]
    if not (isinstance(result, dict) and result.get("summary") is True and "full_result" in result):
        return dict(result)
    try:
        data = Path(result["full_result"]).read_bytes()
    except OSError:
        raise OperationFailed(
            f"the full result of job {record['id']} is gone; `comfyvn jobs show {record['id']}` has its summary",
            code="result_missing",
        ) from None
    full: dict[str, Any] = loads(data, field="result")
    return full
