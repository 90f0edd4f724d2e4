"""``/api/schedule/*``, ``/api/jobs`` and ``WS /jobs/ws`` on the embedded cluster, and cost telemetry."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from comfyvn import Kernel, RuntimePaths
from comfyvn_jobs import jobs_for
from comfyvn_jobs.cost import Provider, Providers, estimate


def _enqueue(http: Any, **body: Any) -> dict[str, Any]:
    answer = http.post("/api/schedule/enqueue", json=body)
    assert answer.status_code == 202, answer.text
    job: dict[str, Any] = answer.json()["job"]
    return job


def test_enqueue_then_read_the_job_state_board_and_health(
    jobs_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], Any]
) -> None:
    kernel = jobs_kernel()
    http = http_for(kernel)
    assert http.get("/api/schedule/health").json()["started"] is False  # Dask starts on the first job
    job = _enqueue(http, kind="test.sleep", params={"seconds": 0.1, "steps": 2}, priority=5, key="k1")
    assert job["status"] in ("queued", "running") and job["priority"] == 5 and job["key"] == "k1"
    assert _enqueue(http, kind="test.sleep", params={"seconds": 0.1, "steps": 2}, key="k1")["id"] == job["id"]
    done = jobs_for(kernel).wait(job["id"], timeout=30)
    assert done["status"] == "done"
    record = http.get(f"/api/jobs/{job['id']}").json()
    assert record["result"]["steps"] == 2 and record["cost"]["provider"] is None
    assert [j["id"] for j in http.get("/api/jobs?status=done").json()["jobs"]] == [job["id"]]
    assert http.get("/api/jobs?status=failed,cancelled").json()["jobs"] == []
    state = http.get("/api/schedule/state").json()
    assert state["counts"]["done"] == 1 and state["completed"][0]["id"] == job["id"]
    assert {"test.noop", "test.sleep", "test.fail"} <= {k["name"] for k in state["kinds"]}
    board = http.get("/api/schedule/board").json()
    assert board["scheduler"] == "embedded"
    (lane,) = board["workers"]
    assert lane["name"] == "embedded" and lane["connected"] and lane["nthreads"] >= 1
    assert [bar["id"] for bar in lane["recent"]] == [job["id"]]
    assert lane["recent"][0]["duration_sec"] >= 0.1
    health = http.get("/api/schedule/health").json()
    assert health["ok"] and health["workers"] == 1 and health["engine"] == "dask"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("post", "/api/schedule/enqueue", {"kind": "no.such"}, 400, "kind"),
        ("post", "/api/schedule/enqueue", {"kind": "test.noop", "extra": 1}, 400, "extra"),
        ("post", "/api/schedule/enqueue", {"kind": "test.noop", "params": {"token": "x"}}, 400, "params.token"),
        ("post", "/api/schedule/enqueue", {"kind": "test.sleep", "params": {"seconds": "1"}}, 400, "params.seconds"),
        ("post", "/api/schedule/enqueue", {"kind": "test.noop", "priority": 1.5}, 400, "priority"),
        ("post", "/api/schedule/cancel", {"job_id": "../../etc/passwd"}, 404, "job_id"),
        ("post", "/api/schedule/cancel", {"job_id": "job-" + "a" * 32}, 404, "job_id"),
        ("post", "/api/schedule/cancel", {}, 400, "job_id"),
        ("get", "/api/jobs/job-" + "b" * 32, None, 404, "job_id"),
        ("get", "/api/jobs/nope", None, 404, "job_id"),
        ("get", "/api/jobs?status=running,lost", None, 400, "status"),
        ("get", "/api/jobs?limit=0", None, 400, "limit"),
    ],
)
def test_client_mistakes_are_4xx_naming_the_field(
    jobs_kernel: Callable[..., Kernel],
    http_for: Callable[[Kernel], Any],
    method: str,
    path: str,
    body: Any,
    status: int,
    field: str,
) -> None:
    http = http_for(jobs_kernel())
    answer = http.post(path, json=body) if method == "post" else http.get(path)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["field"] == field
    assert "passwd" not in answer.text


def test_cancel_over_http(jobs_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], Any]) -> None:
    kernel = jobs_kernel()
    http = http_for(kernel)
    job = _enqueue(http, kind="test.sleep", params={"seconds": 20, "steps": 200})
    answer = http.post("/api/schedule/cancel", json={"job_id": job["id"]})
    assert answer.status_code == 200 and answer.json()["job"]["status"] == "cancelled"
    assert http.get(f"/api/jobs/{job['id']}").json()["status"] == "cancelled"


def test_the_websocket_streams_one_jobs_events(
    jobs_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], Any]
) -> None:
    kernel = jobs_kernel()
    http = http_for(kernel)
    service = jobs_for(kernel)
    other = service.submit("test.noop")
    service.wait(other, timeout=30)
    job_id = service.submit("test.sleep", {"seconds": 0.3, "steps": 3}, key="watched")
    with http.websocket_connect(f"/jobs/ws?job={job_id}") as ws:
        assert ws.receive_json()["topic"] == "ready"
        messages = []
        while not messages or messages[-1]["event"] != "on_job_finished":
            message = ws.receive_json()
            if message["topic"] != "heartbeat":
                messages.append(message)
    # The socket opened after queueing; it sees the run from (at the latest) its progress on.
    assert {m["payload"]["id"] for m in messages} == {job_id}
    assert all(m["topic"] == f"jobs.{m['event']}" and m["seq"] > 0 for m in messages)
    progress = [m["payload"]["progress"] for m in messages if m["event"] == "on_job_progress"]
    assert progress and progress[-1] == 1.0
    assert messages[-1]["payload"]["cost"]["duration_sec"] >= 0.29


def test_the_websocket_refuses_a_malformed_job_filter(
    jobs_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], Any]
) -> None:
    http = http_for(jobs_kernel())
    with pytest.raises(Exception), http.websocket_connect("/jobs/ws?job=../x") as ws:  # noqa: B017
        ws.receive_json()


def test_costs_come_from_the_providers_file(
    jobs_kernel: Callable[..., Kernel], runtime: RuntimePaths, http_for: Callable[[Kernel], Any]
) -> None:
    runtime.config.mkdir(parents=True, exist_ok=True)
    (runtime.config / "compute_providers.json").write_text(
        json.dumps(
            {
                "default": "studio",
                "providers": {
                    "studio": {"cost_per_minute": 60.0, "egress_per_gb": 1e9, "ingress_per_gb": 2e9},
                    "cloud": {"cost_per_minute": 1.0, "workers": ["gpu-*"]},
                },
            }
        )
    )
    kernel = jobs_kernel()
    service = jobs_for(kernel)
    record = service.wait(service.submit("test.sleep", {"seconds": 0.1, "steps": 1}), timeout=30)
    cost = record["cost"]
    assert cost["provider"] == "studio"
    # 60 per minute = 1 per second; 1e9 per GB = 1 per byte sent; 2 per byte received.
    expected = cost["duration_sec"] * 1.0 + cost["bytes_tx"] * 1.0 + cost["bytes_rx"] * 2.0
    assert cost["cost_estimate"] == pytest.approx(expected, rel=1e-6)
    assert cost["bytes_rx"] == len('{"seconds":0.1,"steps":1}')
    lane = http_for(kernel).get("/api/schedule/board").json()["workers"][0]
    assert lane["cost_estimate"] == pytest.approx(cost["cost_estimate"], rel=1e-6)


def test_provider_matching_and_estimates(tmp_path: Any) -> None:
    providers = Providers(tmp_path)
    assert providers.for_worker("w1") is None and providers.error is None  # no file: no rates
    (tmp_path / "compute_providers.json").write_text(
        '{"providers": {"b": {"cost_per_minute": 2, "workers": ["gpu-*"]}, "a": {"workers": ["gpu-1"]}}}'
    )
    assert providers.for_worker("gpu-1") == Provider("a", workers=("gpu-1",))  # first by name
    assert providers.for_worker("gpu-7") == Provider("b", cost_per_minute=2.0, workers=("gpu-*",))
    assert providers.for_worker("laptop") is None
    assert estimate(Provider("b", cost_per_minute=2.0), 90, 0, 0)["cost_estimate"] == 3.0
    assert estimate(None, 90, 5, 6) == {
        "duration_sec": 90,
        "bytes_tx": 5,
        "bytes_rx": 6,
        "cost_estimate": 0.0,
        "provider": None,
    }


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[]", "(root)"),
        ('{"providers": {"x": {"cost_per_minute": -1}}}', "providers.x.cost_per_minute"),
        ('{"providers": {"x": {"workers": "gpu"}}}', "providers.x.workers"),
        ('{"default": "nobody"}', "default"),
        ('{"providers": {"x": {"cost_per_minute": NaN}}}', "file.providers.x.cost_per_minute"),
        ('{"providers": ', "file"),
    ],
)
def test_a_broken_providers_file_means_no_rates_and_says_why(
    jobs_kernel: Callable[..., Kernel], runtime: RuntimePaths, http_for: Callable[[Kernel], Any], text: str, field: str
) -> None:
    runtime.config.mkdir(parents=True, exist_ok=True)
    (runtime.config / "compute_providers.json").write_text(text)
    kernel = jobs_kernel()
    providers = jobs_for(kernel).providers
    assert providers.for_worker("w1") is None
    assert providers.error is not None and f"({field})" in providers.error
    health = http_for(kernel).get("/api/schedule/health").json()
    assert not health["ok"] and health["problems"] == [providers.error]
    assert str(runtime.config) not in json.dumps(health)
