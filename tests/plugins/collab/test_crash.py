"""Kill -9 the real server (``comfyvn serve`` in a subprocess) after edits and before any flush: after a
restart on the same data root the room has every edit older than one second, and a flush stores them.

Automatic flushes are pushed out of reach (``collab.quiet_seconds`` / ``max_dirty_seconds`` of an hour)
so what survives the kill can only come from the update log, not from the project store.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from comfyvn import RuntimePaths
from comfyvn_scenario import Project, validate_scene
from comfyvn_scenario.store import ProjectStore

from .yclient import YClient

SCENE = {
    "id": "intro",
    "start": "a",
    "nodes": [
        {"id": "a", "type": "narration", "text": "Once", "choices": [{"id": "go", "target": "b"}]},
        {"id": "b", "type": "narration", "text": "The end.", "end": True},
    ],
}
TYPED = " upon a time, before the crash"


def _serve(runtime: Path) -> tuple[subprocess.Popen[str], str]:
    env = {
        **os.environ,
        "COMFYVN_RUNTIME_ROOT": str(runtime),
        "COMFYVN_PLUGINS": "server,scenario,collab",
        "COMFYVN_SERVER_PORT": "0",
    }
    env.pop("COMFYVN_SERVER_HOST", None)
    process = subprocess.Popen(
        [sys.executable, "-c", "from comfyvn.cli import main; main()", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    state_file = runtime / "config" / "runtime_state.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited early: {process.communicate()[0][-3000:]}")
        try:
            state: dict[str, Any] = json.loads(state_file.read_text())
        except (FileNotFoundError, ValueError):
            state = {}
        # after a kill -9 the file still says "running" for the dead process: wait for this one's
        if state.get("running") and state.get("pid") == process.pid:
            return process, str(state["base_url"])
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"the server did not start: {process.communicate()[0][-3000:]}")


def _stop(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            process.kill()
    return process.communicate()[0]


def _snapshot(base_url: str) -> dict[str, Any]:
    response = httpx.get(f"{base_url}/api/collab/snapshot/story/intro", timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_room_survives_kill_9_with_every_edit_older_than_a_second(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    paths = RuntimePaths.under(runtime)
    paths.config.mkdir(parents=True, exist_ok=True)
    (paths.config / "comfyvn.json").write_text(
        json.dumps({"collab": {"quiet_seconds": 3600, "max_dirty_seconds": 3600}})
    )
    store = ProjectStore(paths.data / "projects")
    store.create(
        Project(meta={"id": "story", "title": "Story", "start": "intro"}, scenes={"intro": SCENE}), project_id="story"
    )
    before = store.scene("story", "intro")
    first_version = before[1]

    process, base_url = _serve(runtime)
    try:

        async def edit() -> None:
            url = base_url.replace("http://", "ws://", 1) + "/api/collab/yjs/story/intro"
            async with YClient(url) as client:
                await client.type_text("a", TYPED)
                client.add_node({"id": "c", "type": "narration", "text": "Added before the crash"})
                await client.wait_for(lambda: "c" in {n["id"] for n in _snapshot(base_url)["scene"]["nodes"]})
                await asyncio.sleep(1.5)  # now every edit above is older than a second
                # still typing when the server dies: these may or may not survive, but must not break the room
                typing = asyncio.create_task(client.type_text("a", " and after", delay=0.01))
                await asyncio.sleep(0.05)
                process.kill()
                process.wait(10)
                await asyncio.gather(typing, return_exceptions=True)

        asyncio.run(edit())
    finally:
        if process.poll() is None:
            process.kill()
        output = process.communicate()[0]
    assert process.returncode == -signal.SIGKILL, output[-3000:]
    # Nothing was flushed: the store still has the scene as it was, so what follows comes from the log.
    assert store.scene("story", "intro") == before

    process, base_url = _serve(runtime)
    try:
        restored = _snapshot(base_url)
        nodes = {node["id"]: node for node in restored["scene"]["nodes"]}
        assert nodes["a"]["text"].startswith("Once" + TYPED), nodes["a"]["text"]
        assert nodes["c"] == {"id": "c", "type": "narration", "text": "Added before the crash"}
        assert [node["id"] for node in restored["scene"]["nodes"]] == ["a", "b", "c"]
        assert restored["dirty"] is True
        flushed = httpx.post(f"{base_url}/api/collab/flush", json={"room": "story/intro"}, timeout=30)
        assert flushed.status_code == 200, flushed.text
        assert flushed.json()["flushed"][0]["flushed"] is True
    finally:
        output = _stop(process)
    stored, version = store.scene("story", "intro")
    assert version > first_version, output[-3000:]
    assert stored == restored["scene"]
    assert validate_scene(stored).valid
