"""The issue's "Must hold" on real processes: a ``dask scheduler``, ``comfyvn worker`` processes, the server
connected to that scheduler — jobs finish, resources steer them, a SIGKILLed worker's jobs finish exactly
once elsewhere, and a server killed mid-job never leaves a record "running"."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from comfyvn import Kernel
from comfyvn_jobs import jobs_for

from .conftest import Cluster, Processes, free_port, stop, wait_for


def _subscribe(kernel: Kernel) -> list[tuple[str, dict[str, Any]]]:
    seen: list[tuple[str, dict[str, Any]]] = []
    kernel.events.subscribe(lambda env: seen.append((env.event, dict(env.payload))))
    return seen


def test_forty_jobs_finish_resources_steer_them_and_the_board_shows_both_workers(
    cluster: Cluster, jobs_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], Any]
) -> None:
    kernel = jobs_kernel(env={"COMFYVN_DASK_SCHEDULER": cluster.address})
    seen = _subscribe(kernel)
    http = http_for(kernel)
    ids, comfy = [], set()
    for n in range(40):
        body: dict[str, Any] = {"kind": "test.sleep", "params": {"seconds": 0.3, "steps": 3}}
        if n % 4 == 0:
            body["resources"] = {"COMFYUI": 1}
        answer = http.post("/api/schedule/enqueue", json=body)
        assert answer.status_code == 202, answer.text
        job = answer.json()["job"]
        assert job["status"] in ("queued", "running")
        ids.append(job["id"])
        if n % 4 == 0:
            comfy.add(job["id"])
    service = jobs_for(kernel)
    records = {job_id: service.wait(job_id, timeout=60) for job_id in ids}
    assert Counter(r["status"] for r in records.values()) == {"done": 40}
    for job_id in comfy:
        assert {run["worker"] for run in records[job_id]["runs"]} == {"w1"}, records[job_id]["runs"]
    assert {r["worker"] for r in records.values()} == {"w1", "w2"}  # the others spread over both
    finished = Counter(p["id"] for name, p in seen if name == "on_job_finished")
    assert finished == Counter(ids)
    progressed = {p["id"] for name, p in seen if name == "on_job_progress"}
    assert progressed == set(ids)
    assert all(r["cost"]["duration_sec"] >= 0.29 for r in records.values())
    board = http.get("/api/schedule/board").json()
    lanes = {lane["name"]: lane for lane in board["workers"]}
    assert {"w1", "w2"} <= set(lanes) and lanes["w1"]["connected"] and lanes["w2"]["connected"]
    assert lanes["w1"]["resources"] == {"COMFYUI": 1}
    assert sum(len(lanes[n]["recent"]) for n in ("w1", "w2")) == 40
    health = http.get("/api/schedule/health").json()
    assert health["ok"] and health["workers"] >= 2 and health["scheduler"] == cluster.address


def test_a_sigkilled_worker_leaves_every_job_finished_exactly_once_with_the_retry_recorded(
    cluster: Cluster, jobs_kernel: Callable[..., Kernel]
) -> None:
    victim = cluster.start_worker("victim")
    try:
        cluster.wait_workers("victim")
        kernel = jobs_kernel(env={"COMFYVN_DASK_SCHEDULER": cluster.address})
        seen = _subscribe(kernel)
        service = jobs_for(kernel)
        ids = [service.submit("test.sleep", {"seconds": 2.0, "steps": 20}, key=f"kill-{n}") for n in range(16)]

        def on_victim() -> list[str]:
            return [i for i in ids if (r := service.get(i))["status"] == "running" and r["worker"] == "victim"]

        killed = wait_for(on_victim, 30, "jobs running on the victim")
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        records = {job_id: service.wait(job_id, timeout=90) for job_id in ids}
    finally:
        stop(victim, signal.SIGKILL)
    assert Counter(r["status"] for r in records.values()) == {"done": 16}
    assert Counter(p["id"] for name, p in seen if name == "on_job_finished") == Counter(ids)
    for job_id in killed:
        record = records[job_id]
        assert record["attempts"] >= 2 and record["worker"] != "victim", record
        outcomes = [(run["worker"], run["outcome"]) for run in record["runs"]]
        assert outcomes[0] == ("victim", "lost") and outcomes[-1][1] == "done", outcomes
    # Re-submitting a finished key is the same job: nothing runs again.
    assert service.submit("test.sleep", {"seconds": 2.0, "steps": 20}, key="kill-0") == ids[0]
    assert service.get(ids[0])["status"] == "done"


def _serve(processes: Processes, name: str, root: Path, port: int, scheduler: str) -> subprocess.Popen[bytes]:
    env = {
        "COMFYVN_RUNTIME_ROOT": str(root),
        "COMFYVN_PLUGINS": "jobs,server",
        "COMFYVN_DASK_SCHEDULER": scheduler,
    }
    return processes.start(name, "-m", "comfyvn", "serve", "--port", str(port), env=env)


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None


def test_a_server_killed_mid_job_never_leaves_the_record_running(cluster: Cluster, tmp_path: Path) -> None:
    processes, root, port = Processes(tmp_path), tmp_path / "server", free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        first = _serve(processes, "serve-1", root, port, cluster.address)
        wait_for(lambda: _get(f"{base}/health"), 60, "the server", interval=0.2)
        job = httpx.post(
            f"{base}/api/schedule/enqueue", json={"kind": "test.sleep", "params": {"seconds": 30, "steps": 300}}
        ).json()["job"]

        def running() -> bool:
            answer = _get(f"{base}/api/jobs/{job['id']}")
            return answer is not None and answer.json()["status"] == "running"

        wait_for(running, 30, "the job to run", interval=0.1)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        _serve(processes, "serve-2", root, port, cluster.address)
        wait_for(lambda: _get(f"{base}/health"), 60, "the restarted server", interval=0.2)
        record = httpx.get(f"{base}/api/jobs/{job['id']}").json()
        assert record["status"] == "failed" and record["error"]["code"] == "interrupted", record
        assert record["runs"][0]["worker"] in ("w1", "w2")
        # The scheduler dropped the dead client's task; the worker's thread stops at its next report.
        time.sleep(0.5)
        again = httpx.post(
            f"{base}/api/schedule/enqueue", json={"kind": "test.sleep", "params": {"seconds": 0.2, "steps": 2}}
        ).json()["job"]
        wait_for(lambda: httpx.get(f"{base}/api/jobs/{again['id']}").json()["status"] == "done", 30, "a new job")
    finally:
        processes.stop_all()
