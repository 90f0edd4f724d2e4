"""Issue 11 #10: CPU-heavy scenario requests run off the event loop, and a request's size is bounded."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
from comfyvn import Kernel
from comfyvn_scenario.service import MAX_NODES


def _chain(count: int) -> dict[str, Any]:
    nodes = [{"id": f"n{i}", "text": "line", "choices": [{"id": "go", "target": f"n{i + 1}"}]} for i in range(count)]
    nodes.append({"id": f"n{count}", "end": True})
    return {"id": "big", "start": "n0", "nodes": nodes}


def test_health_answers_while_a_big_validate_runs(kernel: Kernel, live_server: Any) -> None:
    # Before: validation ran on the event loop and a /health sent meanwhile waited for all of it.
    scene = _chain(40_000)
    result: dict[str, Any] = {}
    with live_server(kernel) as base:

        def validate() -> None:
            started = time.monotonic()
            response = httpx.post(f"{base}/api/scenario/validate", json={"scene": scene}, timeout=300)
            result.update(status=response.status_code, valid=response.json().get("valid"))
            result["seconds"] = time.monotonic() - started

        worker = threading.Thread(target=validate)
        worker.start()
        latencies: list[float] = []
        with httpx.Client(base_url=base, timeout=120) as http:
            while worker.is_alive():
                sent = time.monotonic()
                assert http.get("/health").status_code == 200
                latencies.append(time.monotonic() - sent)
                time.sleep(0.05)
        worker.join()
    assert result["status"] == 200 and result["valid"] is True
    assert max(latencies) < 1.0, f"/health waited {max(latencies):.2f} s behind a validation"
    # Only meaningful when the validation lasted long enough for several probes to overlap it.
    assert len(latencies) >= 3, f"validation took only {result['seconds']:.2f} s; the check saw nothing"


def test_validate_refuses_more_nodes_than_one_request_may_hold(client: Any) -> None:
    response = client.post("/api/scenario/validate", json={"scene": _chain(MAX_NODES)})
    assert response.status_code == 413
    assert response.json()["error"]["field"] == "scene.nodes"
