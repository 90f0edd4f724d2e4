"""The native viewer: with no engine it answers the fallback it chose; with Debian's Ren'Py it starts
(offscreen), reports running, writes its log, and stop ends the process; requests cannot name an
arbitrary executable unless comfyvn.json allows it."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import comfyvn_renpy.engine
import comfyvn_renpy.plugin
import comfyvn_scenario.plugin
import comfyvn_server.plugin
import comfyvn_viewer.plugin
import pytest
from comfyvn import Kernel
from comfyvn_renpy import find_engine
from comfyvn_scenario import ProjectStore
from starlette.testclient import TestClient

DEMO = Path(__file__).resolve().parents[3] / "examples" / "demo"
PLUGINS = (comfyvn_server.plugin, comfyvn_scenario.plugin, comfyvn_renpy.plugin, comfyvn_viewer.plugin)
OFFSCREEN = {"COMFYVN_VIEWER_VIDEO": "offscreen"}


@pytest.fixture
def make_client(
    make_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], TestClient]
) -> Iterator[Callable[..., TestClient]]:
    """``make_client(config=None, **env)``: the app of a strict kernel with the demo stored as ``demo``; any
    viewer still running at the end is stopped (the kernel's shutdown hook)."""
    kernels: list[Kernel] = []

    def factory(config: dict[str, Any] | None = None, **env: str) -> TestClient:
        kernel = make_kernel(*PLUGINS, env={**OFFSCREEN, **env})
        if config is not None:
            kernel.paths.config.mkdir(parents=True, exist_ok=True)
            (kernel.paths.config / "comfyvn.json").write_text(json.dumps(config))
        ProjectStore.for_kernel(kernel).create_from_folder(DEMO, project_id="demo")
        kernels.append(kernel)
        client = http_for(kernel)
        client.kernel = kernel  # type: ignore[attr-defined]
        return client

    yield factory
    for kernel in kernels:
        kernel.started = True  # shutdown runs the hooks only for a started host
        kernel.shutdown()


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without Ren'Py: no Debian launcher, no SDK or executable in the environment."""
    monkeypatch.setattr(comfyvn_renpy.engine, "DEBIAN_LAUNCHER", Path("/nonexistent/renpy"))
    monkeypatch.delenv("COMFYVN_RENPY_SDK", raising=False)
    monkeypatch.delenv("COMFYVN_RENPY_EXECUTABLE", raising=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for the user; /proc tells it apart from a running process.
    status = Path(f"/proc/{pid}/status")
    return not (status.is_file() and "\nState:\tZ" in status.read_text())


@pytest.mark.usefixtures("no_engine")
def test_without_an_engine_start_falls_back_to_the_web_player(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    answer = client.post("/api/viewer/start", json={"project_id": "demo"})
    assert answer.status_code == 200
    body = answer.json()
    assert (body["mode"], body["url"]) == ("web", "/play/demo")
    assert "no Ren'Py engine" in body["reason"]
    assert client.get("/api/viewer/status").json()["running"] is False


@pytest.mark.usefixtures("no_engine")
def test_without_an_engine_or_web_player_start_answers_a_mini_vn_still(make_client: Callable[..., TestClient]) -> None:
    client = make_client(COMFYVN_FEATURE_ENABLE_VIEWER_WEBMODE="0")
    body = client.post("/api/viewer/start", json={"project_id": "demo"}).json()
    assert body["mode"] == "mini" and "no Ren'Py engine" in body["reason"]
    assert (body["scene"], body["node"]) == ("platform", "arrival")
    still = client.get(body["thumbnail_url"])
    assert still.status_code == 200 and still.content.startswith(b"\x89PNG")


@pytest.mark.usefixtures("no_engine")
def test_with_every_fallback_off_start_names_the_flag(make_client: Callable[..., TestClient]) -> None:
    client = make_client(COMFYVN_FEATURE_ENABLE_VIEWER_WEBMODE="0", COMFYVN_FEATURE_ENABLE_MINI_VN="0")
    answer = client.post("/api/viewer/start", json={"project_id": "demo"})
    assert answer.status_code == 403
    assert answer.json()["error"]["field"] == "enable_viewer_webmode"


@pytest.mark.usefixtures("no_engine")
def test_an_engine_path_from_the_environment_that_is_not_there_falls_back(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    client = make_client(COMFYVN_RENPY_EXECUTABLE=str(tmp_path / "missing" / "renpy.sh"))
    body = client.post("/api/viewer/start", json={"project_id": "demo"}).json()
    assert body["mode"] == "web" and "COMFYVN_RENPY_EXECUTABLE" in body["reason"]


def test_debian_renpy_starts_offscreen_and_stop_ends_it(make_client: Callable[..., TestClient]) -> None:
    assert find_engine() is not None, "Debian's renpy is not installed (nox installs it)"
    client = make_client()
    kernel: Kernel = client.kernel  # type: ignore[attr-defined]
    started = client.post("/api/viewer/start", json={"project_id": "demo"})
    assert started.status_code == 200
    body = started.json()
    assert (body["mode"], body["engine"], body["running"], body["project"]) == ("native", "debian", True, "demo")
    pid = body["pid"]
    assert _alive(pid)
    # The game was exported for it, below the project's exports.
    game = ProjectStore.for_kernel(kernel).exports_dir("demo", "viewer", "game")
    assert (game / "script.rpy").is_file() or any(game.glob("*.rpy"))
    time.sleep(3)  # it keeps running (a broken game would have exited by now)
    status = client.get("/api/viewer/status").json()
    assert status["running"] is True and status["pid"] == pid and status["log"] == "viewer/renpy_viewer.log"
    log = kernel.paths.logs / "viewer" / "renpy_viewer.log"
    assert log.is_file() and "project demo" in log.read_text()
    # A second viewer is refused while the first runs.
    again = client.post("/api/viewer/start", json={"project_id": "demo"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "viewer_running"
    stopped = client.post("/api/viewer/stop").json()
    assert stopped["running"] is False and stopped["returncode"] is not None
    assert not _alive(pid)
    assert client.get("/api/viewer/status").json()["running"] is False


def test_a_request_cannot_name_an_arbitrary_executable(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    for field in ("renpy_executable", "renpy_sdk"):
        answer = client.post("/api/viewer/start", json={"project_id": "demo", field: "/bin/sh"})
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert (error["code"], error["field"]) == ("executable_not_allowed", field)
        assert "/bin/sh" not in error["message"]
    assert client.get("/api/viewer/status").json()["pid"] is None


def test_an_executable_listed_as_allowed_may_be_requested(make_client: Callable[..., TestClient]) -> None:
    launcher = comfyvn_renpy.engine.DEBIAN_LAUNCHER
    assert launcher.exists(), "Debian's renpy is not installed (nox installs it)"
    client = make_client(config={"viewer": {"allowed_executables": [str(launcher)]}})
    body = client.post("/api/viewer/start", json={"project_id": "demo", "renpy_executable": str(launcher)}).json()
    assert (body["mode"], body["engine"], body["running"]) == ("native", "request", True)
    assert client.post("/api/viewer/stop").json()["running"] is False


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 400, "project_id"),
        ({"project_id": "demo", "project_path": "demo"}, 400, "project_id"),
        ({"project_path": "../../etc"}, 400, "project_path"),
        ({"project_path": "demo/scenes"}, 400, "project_path"),
        ({"project_id": "nothing"}, 404, "project"),
        ({"project_id": 7}, 400, "project_id"),
        ({"project_id": "demo", "other": 1}, 400, "other"),
    ],
)
@pytest.mark.usefixtures("no_engine")
def test_bad_start_requests_are_answered_4xx_json(
    make_client: Callable[..., TestClient], body: dict[str, Any], status: int, field: str
) -> None:
    answer = make_client().post("/api/viewer/start", json=body)
    assert answer.status_code == status
    assert answer.json()["error"]["field"] == field


def test_stop_without_a_viewer_is_404(make_client: Callable[..., TestClient]) -> None:
    answer = make_client().post("/api/viewer/stop")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "viewer_not_running"
