"""The job table's writes: what each returns is the row as stored, and closing a run in the same
write as the job's end (`finish(run=...)`) stores what `run_ended` then `finish` store."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from comfyvn_jobs.records import JobRecords
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_ids = itertools.count()
WORKERS = st.sampled_from(["w1", "w2", "w3"])
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("started"), WORKERS),
        st.tuples(st.just("progress"), st.floats(0, 1)),
        st.tuples(st.just("run_ended"), WORKERS, st.sampled_from(["failed", "cancelled"])),
        st.tuples(st.just("finish"), st.sampled_from(["done", "failed", "cancelled"]), st.one_of(st.none(), WORKERS)),
    ),
    max_size=8,
)


def _job(job_id: str) -> dict[str, Any]:
    return {
        "id": job_id,
        "key": None,
        "kind": "test.noop",
        "params": {"n": 1},
        "priority": 0,
        "retries": 0,
        "resources": {},
        "owner": "me",
        "submitted_at": 1000.0,
    }


def _stable(record: dict[str, Any] | None) -> dict[str, Any] | None:
    # duration_sec of a running job is measured against the clock when the record is built.
    return None if record is None else {k: v for k, v in record.items() if k != "duration_sec"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_each_write_returns_the_stored_row_and_finish_closes_the_run_as_run_ended_does(
    tmp_path: Path, ops: list[tuple[Any, ...]]
) -> None:
    one, two = JobRecords(tmp_path / "one.sqlite3"), JobRecords(tmp_path / "two.sqlite3")
    job_id = f"job{next(_ids)}"
    try:
        for records in (one, two):
            records.submit(_job(job_id), same=lambda old: True)
        for step, op in enumerate(ops):
            at = 2000.0 + step
            if op[0] == "started":
                for records in (one, two):
                    returned = records.started(job_id, op[1], at)
                    assert returned is None or _stable(returned) == _stable(records.get(job_id))
            elif op[0] == "progress":
                for records in (one, two):
                    returned = records.progress(job_id, op[1], "half")
                    assert returned is None or _stable(returned) == _stable(records.get(job_id))
            elif op[0] == "run_ended":
                for records in (one, two):
                    records.run_ended(job_id, op[1], at, op[2], {"code": op[2]})
            else:
                status, worker = op[1], op[2]
                outcome = "done" if status == "done" else status
                result = {"ok": True} if status == "done" else None
                if worker is not None:
                    one.run_ended(job_id, worker, at, outcome, None)
                first = one.finish(job_id, status, at=at, result=result)
                run = None if worker is None else (worker, at, outcome)
                second = two.finish(job_id, status, at=at, result=result, run=run)
                assert _stable(first) == _stable(second)
                assert second is None or _stable(second) == _stable(two.get(job_id))
            assert _stable(one.get(job_id)) == _stable(two.get(job_id))
    finally:
        one.close()
        two.close()


def test_a_finished_job_keeps_its_runs_and_a_late_finish_only_closes_the_run(tmp_path: Path) -> None:
    records = JobRecords(tmp_path / "jobs.sqlite3")
    records.submit(_job("j1"), same=lambda old: True)
    records.started("j1", "w1", 10.0)
    done = records.finish("j1", "done", at=12.0, result=[1], run=("w1", 11.5, "done"))
    assert done is not None and done["status"] == "done" and done["progress"] == 1 and done["result"] == [1]
    assert done["runs"] == [{"worker": "w1", "started_at": 10.0, "ended_at": 11.5, "outcome": "done"}]
    assert done["duration_sec"] == 2.0 and done["attempts"] == 1
    # Ended already: nothing changes but an open run being closed (none is open here).
    assert records.finish("j1", "failed", at=13.0, run=("w1", 13.0, "failed")) is None
    assert records.get("j1")["status"] == "done" and records.get("j1")["runs"] == done["runs"]
    records.close()
