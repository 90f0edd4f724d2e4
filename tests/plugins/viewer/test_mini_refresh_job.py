"""``POST /api/viewer/mini/refresh`` through the real jobs plugin: the job draws every node's still, the
stills are served by the digests in its result, and a second refresh draws nothing new."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import comfyvn_jobs.plugin
import comfyvn_renpy.plugin
import comfyvn_scenario.plugin
import comfyvn_server.plugin
import comfyvn_viewer.plugin
import pytest
from comfyvn import Kernel
from comfyvn_jobs import jobs_for
from comfyvn_jobs.service import close_jobs
from comfyvn_scenario import ProjectStore
from PIL import Image
from starlette.testclient import TestClient

DEMO = Path(__file__).resolve().parents[3] / "examples" / "demo"


@pytest.fixture
def client(make_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], TestClient]) -> Iterator[TestClient]:
    kernel = make_kernel(
        comfyvn_server.plugin,
        comfyvn_scenario.plugin,
        comfyvn_renpy.plugin,
        comfyvn_jobs.plugin,
        comfyvn_viewer.plugin,
    )
    ProjectStore.for_kernel(kernel).create_from_folder(DEMO, project_id="demo")
    client = http_for(kernel)
    client.kernel = kernel  # type: ignore[attr-defined]
    yield client
    close_jobs(kernel)


def _refresh(client: TestClient) -> dict[str, Any]:
    accepted = client.post("/api/viewer/mini/refresh", json={"project": "demo", "size": "320x180", "seed": 2})
    assert accepted.status_code == 202, accepted.text
    record = jobs_for(client.kernel).wait(accepted.json()["id"], timeout=180)  # type: ignore[attr-defined]
    assert record["status"] == "done", record
    result: dict[str, Any] = record["result"]
    return result


def test_a_refresh_job_draws_every_node_and_serves_each_still(client: TestClient) -> None:
    kernel: Kernel = client.kernel  # type: ignore[attr-defined]
    project = ProjectStore.for_kernel(kernel).load("demo").project
    nodes = [(s, n["id"]) for s, scene in project.scenes.items() for n in scene["nodes"]]
    first = _refresh(client)
    thumbnails = first["thumbnails"]
    assert isinstance(thumbnails, list)
    assert [(t["scene"], t["node"]) for t in thumbnails] == nodes
    assert first["count"] == first["drawn"] == len(nodes)
    for entry in thumbnails[:3]:
        got = client.get(entry["thumbnail_url"])
        assert got.status_code == 200 and got.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(got.content))
        assert image.size == (320, 180)
    again = _refresh(client)
    assert again["drawn"] == 0
    assert [t["mini_digest"] for t in again["thumbnails"]] == [t["mini_digest"] for t in thumbnails]


def test_a_refresh_of_an_unknown_project_is_404_before_any_job(client: TestClient) -> None:
    answer = client.post("/api/viewer/mini/refresh", json={"project": "nope"})
    assert answer.status_code == 404 and answer.json()["error"]["field"] == "project"
    assert jobs_for(client.kernel).list() == []  # type: ignore[attr-defined]
