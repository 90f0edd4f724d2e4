"""Jobs on the embedded Dask cluster: the cost of a no-op job through `Jobs.submit` against a bare
``client.submit`` on the same cluster (target ≤ 2x), and jobs per second with 1,000 no-op jobs.

Run: ``python3 -m pytest tests/bench/test_bench_jobs.py --benchmark-enable -q -s``. Both sides go through
the same in-process cluster and client; rounds alternate between them to share the machine's noise, and
the best round of each is compared. `Jobs.submit` adds the record (SQLite), the queued/started/finished
events, the worker's messages over Dask's event topic and the kernel's kind lookup on the worker.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bench_targets import at_most
from comfyvn import Kernel, RuntimePaths, create_kernel
from comfyvn_jobs import Jobs, jobs_for
from comfyvn_jobs import plugin as jobs_plugin
from comfyvn_jobs.service import close_jobs

BATCH = 200
ROUNDS = 5
MANY = 1_000


def bare_noop() -> dict[str, Any]:
    return {"worker": "bare"}


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Kernel]:
    # Not strict: production kernels skip the payload schema checks tests run on every emit.
    made = create_kernel(plugins=[jobs_plugin], paths=RuntimePaths.under(tmp_path), env={})
    yield made
    close_jobs(made)


def _bare(service: Jobs, n: int) -> float:
    client = service.client()
    started = time.perf_counter()
    futures = [client.submit(bare_noop, pure=False) for _ in range(n)]
    client.gather(futures)
    return time.perf_counter() - started


def _jobs(service: Jobs, n: int) -> float:
    started = time.perf_counter()
    ids = [service.submit("test.noop") for _ in range(n)]
    for job_id in ids:
        assert service.wait(job_id, timeout=120)["status"] == "done"
    return time.perf_counter() - started


def test_bench_jobs_overhead_against_bare_dask(kernel: Kernel, benchmark: Any) -> None:
    benchmark.group = "jobs"
    service = jobs_for(kernel)
    _bare(service, 20), _jobs(service, 20)  # warm both paths (cluster start, imports, SQLite file)
    bare, ours = [], []
    for n in range(ROUNDS):  # in turn first: a slow stretch of the machine does not always fall on one side
        if n % 2:
            ours.append(_jobs(service, BATCH))
            bare.append(_bare(service, BATCH))
        else:
            bare.append(_bare(service, BATCH))
            ours.append(_jobs(service, BATCH))
    benchmark.pedantic(_jobs, args=(service, BATCH), rounds=1, iterations=1)
    ratio = min(ours) / min(bare)
    benchmark.extra_info.update(
        bare_ms_per_job=round(min(bare) / BATCH * 1000, 3),
        jobs_ms_per_job=round(min(ours) / BATCH * 1000, 3),
        ratio=round(ratio, 2),
    )
    print(f"\njobs: {min(ours) / BATCH * 1e3:.2f} ms/job vs bare Dask {min(bare) / BATCH * 1e3:.2f} ms ({ratio:.2f}x)")
    by_round = {name: [round(t / BATCH * 1e3, 2) for t in times] for name, times in (("jobs", ours), ("bare", bare))}
    print(f"  ms/job by round: jobs {by_round['jobs']}, bare {by_round['bare']}")
    at_most("Jobs.submit time / bare client.submit time", ratio, 2.0, "x")


def test_bench_jobs_throughput_of_a_thousand_noops(kernel: Kernel, benchmark: Any) -> None:
    benchmark.group = "jobs"
    service = jobs_for(kernel)
    _jobs(service, 20)
    seconds = benchmark.pedantic(_jobs, args=(service, MANY), rounds=1, iterations=1)
    rate = MANY / seconds
    benchmark.extra_info["jobs_per_second"] = round(rate)
    print(f"\njobs: {MANY} no-op jobs in {seconds:.2f} s ({rate:.0f} jobs/s)")
    assert service.records.counts()["done"] == MANY + 20
