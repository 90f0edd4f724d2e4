"""Interop with the real JavaScript client: Node running ``yjs`` 13.6 + ``y-websocket`` 3 (js/client.mjs),
a pycrdt client and the original JSON protocol in one room of the real app on real hypercorn (loopback).

Without Node or the pinned npm packages these tests fail (never skip): ``nox -s tests`` installs them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import comfyvn_collab.plugin
import comfyvn_scenario.plugin
import comfyvn_server.plugin
import httpx
import pytest
from comfyvn import Kernel
from comfyvn_collab.hub import Hub
from comfyvn_scenario import Project, validate_scene
from comfyvn_scenario.store import ProjectStore
from websockets.asyncio.client import ClientConnection, connect

from .jsclient import JSClient, node_executable
from .yclient import YClient

INTRO = {
    "id": "intro",
    "title": "Intro",
    "start": "a",
    "variables": {"trust": 0},
    "nodes": [
        {"id": "a", "type": "dialogue", "speaker": "ann", "text": "Hello", "choices": [{"id": "go", "target": "b"}]},
        {"id": "b", "type": "narration", "text": "The end.", "end": True},
    ],
}
# What each client types into node a, all starting at the same place (after "Hello") at the same time.
RUNS = {
    "js1": "[first JS client typing: one two three four five]",
    "js2": "<second JS client typing: six seven eight nine ten>",
    "py": "{the pycrdt client typing: eleven twelve thirteen}",
}


@pytest.fixture
def kernel(make_kernel: Callable[..., Kernel]) -> Iterator[Kernel]:
    node_executable()  # fail first, and clearly, when Node or the npm packages are missing
    kernel = make_kernel(comfyvn_server.plugin, comfyvn_scenario.plugin, comfyvn_collab.plugin)
    project = Project(
        meta={"id": "story", "title": "Story", "start": "intro", "characters": {"ann": {"name": "Ann"}}},
        scenes={"intro": INTRO},
    )
    ProjectStore.for_kernel(kernel).create(project, project_id="story")
    yield kernel
    Hub.forget(kernel)


def _yjs_base(base_url: str) -> str:
    return base_url.replace("http://", "ws://", 1) + "/api/collab/yjs/story"


def _nodes_by_id(scene: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["id"]: node for node in scene["nodes"]}


async def _converged(clients: list[JSClient], py: YClient, timeout: float = 30.0) -> dict[str, Any]:
    """Poll until both JS clients and the pycrdt client hold the same document with every edit in it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        docs = [(await client.dump())["doc"] for client in clients]
        mine = py.to_json()
        complete = all(node in mine["nodes"] for node in ("j1", "j2", "p1")) and len(mine["nodes"]["a"]["text"]) == len(
            "Hello"
        ) + sum(map(len, RUNS.values()))
        if complete and all(doc == mine for doc in docs):
            return mine
        py.check()
        if loop.time() > deadline:
            raise AssertionError(f"no convergence within {timeout}s:\nJS: {docs}\npy: {mine}")
        await asyncio.sleep(0.1)


def test_two_js_clients_and_a_pycrdt_client_converge_and_flush_to_the_store(
    kernel: Kernel, live_server: Callable[[Kernel], AbstractContextManager[str]]
) -> None:
    async def scenario(base_url: str) -> dict[str, Any]:
        server = _yjs_base(base_url)
        js1 = await JSClient(server, "intro").start()
        js2 = await JSClient(server, "intro").start()
        try:
            async with YClient(f"{server}/intro") as py:
                # All three type into node a's text at once, from the same position.
                for client, name in ((js1, "js1"), (js2, "js2")):
                    await client.send(cmd="type", node="a", text=RUNS[name], pos=5, delay_ms=2)
                await py.type_text("a", RUNS["py"], 5, delay=0.002)
                for client in (js1, js2):
                    assert (await client.answer())["length"] >= 5 + len(RUNS["js1"])
                # Each adds a node.
                await js1.command(cmd="add_node", node={"id": "j1", "type": "narration", "text": "Added by js1"})
                await js2.command(cmd="add_node", node={"id": "j2", "type": "narration", "text": "Added by js2"})
                py.add_node({"id": "p1", "type": "narration", "text": "Added by pycrdt"})
                presence = {"user": {"id": "u-ada", "name": "Ada", "color": "#e91e63"}, "node": "a", "selected": ["a"]}
                await js1.command(cmd="awareness", state=presence)

                doc = await _converged([js1, js2], py)
                text = doc["nodes"]["a"]["text"]
                assert text.startswith("Hello")
                for run in RUNS.values():
                    assert run in text, f"{run!r} was split or lost in {text!r}"
                # The JS client's presence reaches the pycrdt client (and the room's presence view).
                states = await py.wait_for(
                    lambda: [s for s in py.awareness_states().values() if s.get("user", {}).get("id") == "u-ada"]
                )
                assert states == [presence]
                # and the other way round
                mine = {"user": {"id": "u-py", "name": "Py", "color": "#3366ff"}, "node": "p1", "selected": ["p1"]}
                py.set_awareness(mine)
                for _ in range(200):
                    if mine in [entry["state"] for entry in (await js2.dump())["awareness"]]:
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError("the JS client never saw the pycrdt client's presence")
                async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
                    seen = (await http.get("/api/collab/presence/story/intro")).json()
                    assert presence in [entry["state"] for entry in seen["awareness"]]
                    roster = [p for p in seen["presence"]["participants"] if p["actor"] == "u-ada"]
                    assert [(p["name"], p["color"], p["node"], p["source"]) for p in roster] == [
                        ("Ada", "#e91e63", "a", "yjs")
                    ]
                    snapshot = (await http.get("/api/collab/snapshot/story/intro")).json()
                    flushed = await http.post("/api/collab/flush", json={"room": "story/intro"})
                    assert flushed.status_code == 200, flushed.text
                return {"doc": doc, "snapshot": snapshot}
        finally:
            await js1.close()
            await js2.close()

    with live_server(kernel) as base_url:
        result = asyncio.run(scenario(base_url))

    doc, snapshot = result["doc"], result["snapshot"]
    scene = snapshot["scene"]
    nodes = _nodes_by_id(scene)
    assert [node["id"] for node in scene["nodes"]][:2] == ["a", "b"]
    assert set(nodes) == {"a", "b", "j1", "j2", "p1"}
    assert nodes["a"]["text"] == doc["nodes"]["a"]["text"]
    assert nodes["a"]["choices"] == [{"id": "go", "target": "b"}] and nodes["a"]["speaker"] == "ann"
    assert {nodes[n]["text"] for n in ("j1", "j2", "p1")} == {"Added by js1", "Added by js2", "Added by pycrdt"}
    assert [nid for nid in doc["order"]] == [node["id"] for node in scene["nodes"]]
    assert scene["variables"] == {"trust": 0} and scene["title"] == "Intro"

    stored, version = ProjectStore.for_kernel(kernel).scene("story", "intro")
    assert version > 1, "the flush did not write a new version"
    assert stored == scene
    report = validate_scene(stored)
    assert report.valid, report.errors


async def _json_messages(ws: ClientConnection, wanted: Callable[[dict[str, Any]], bool], timeout: float) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError("the JSON client never got the message it waited for")
        message = json.loads(await asyncio.wait_for(ws.recv(), remaining))
        assert message["type"] != "error", message
        if wanted(message):
            return message


def test_json_protocol_and_js_client_see_each_others_nodes(
    kernel: Kernel, live_server: Callable[[Kernel], AbstractContextManager[str]]
) -> None:
    async def scenario(base_url: str) -> None:
        js = await JSClient(_yjs_base(base_url), "intro").start()
        try:
            url = base_url.replace("http://", "ws://", 1) + "/api/collab/ws?scene_id=story/intro"
            async with connect(url, additional_headers={"X-ComfyVN-User": "jo", "X-ComfyVN-Name": "Jo"}) as ws:
                joined = json.loads(await ws.recv())
                assert joined["type"] == "room.joined" and joined["scene_id"] == "story/intro"
                # JSON -> JS
                node = {"id": "from-json", "type": "narration", "text": "Written over the JSON protocol"}
                operation = {"op_id": "jo-1", "kind": "graph.node.upsert", "payload": {"node": node}}
                await ws.send(json.dumps({"type": "doc.apply", "operations": [operation]}))
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 20
                while True:
                    doc = (await js.dump())["doc"]
                    if "from-json" in doc["nodes"]:
                        break
                    assert loop.time() < deadline, f"the JS client never saw the JSON client's node: {doc}"
                    await asyncio.sleep(0.05)
                assert doc["nodes"]["from-json"] == node
                assert doc["order"][-1] == "from-json"
                # JS -> JSON
                await js.command(cmd="add_node", node={"id": "from-js", "type": "narration", "text": "Typed in Node"})
                update = await _json_messages(
                    ws,
                    lambda m: (
                        m["type"] == "doc.update"
                        and "from-js" in [n["id"] for n in (m.get("snapshot") or {}).get("nodes", [])]
                    ),
                    20,
                )
                added = _nodes_by_id(update["snapshot"])["from-js"]
                assert added == {"id": "from-js", "type": "narration", "text": "Typed in Node"}
                assert [n["id"] for n in update["snapshot"]["nodes"]] == ["a", "b", "from-json", "from-js"]
        finally:
            await js.close()

    with live_server(kernel) as base_url:
        asyncio.run(scenario(base_url))


def test_missing_node_or_npm_packages_fail_with_the_way_to_install_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from . import jsclient

    monkeypatch.setattr(jsclient, "JS_DIR", tmp_path)
    with pytest.raises(AssertionError, match=r"nox -s tests.*npm ci"):
        jsclient.node_executable()
    monkeypatch.setattr(jsclient.shutil, "which", lambda name: None)
    with pytest.raises(AssertionError, match=r"Node.js is not installed: run `nox -s tests`"):
        jsclient.node_executable()
