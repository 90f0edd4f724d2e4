"""Corrections count the nodes they really change (and a no-op writes and announces nothing); import
events name no server path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from comfyvn.cli import make_cli
from comfyvn_roleplay.convert import ImportOptions
from comfyvn_roleplay.service import EVENTS, apply_corrections, load_scene, run_import
from comfyvn_server import create_app
from rp_fixtures import EXAMPLES
from starlette.testclient import TestClient

CHAT = EXAMPLES / "Mira Vale - 2024-09-28@14h05m07s.jsonl"


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_repeated_patches_of_one_node_that_change_nothing_are_a_no_op(kernel: Any) -> None:
    events: list[Any] = []
    kernel.events.subscribe(events.append, ["on_roleplay_corrected"])
    client = TestClient(create_app(kernel))
    body = client.post("/api/roleplay/import", json={"text": CHAT.read_text(encoding="utf-8")}).json()
    uid = body["scenes"][1]["scene_uid"]
    before = client.get(f"/api/roleplay/preview/{uid}").json()
    node = before["scene"]["nodes"][0]
    reply = client.post("/api/roleplay/apply_corrections", json={"scene_uid": uid, "nodes": [{"id": node["id"]}] * 3})
    assert reply.status_code == 200, reply.text
    assert reply.json()["nodes_changed"] == 0 and reply.json()["version"] == before["version"]
    same_text = [{"id": node["id"], "text": node["text"]}]
    assert (
        client.post("/api/roleplay/apply_corrections", json={"scene_uid": uid, "nodes": same_text}).json()[
            "nodes_changed"
        ]
        == 0
    )
    whole = client.post("/api/roleplay/apply_corrections", json={"scene_uid": uid, "scene": before["scene"]}).json()
    assert whole["nodes_changed"] == 0 and whole["version"] == before["version"]
    assert events == []
    assert client.get(f"/api/roleplay/preview/{uid}").json()["version"] == before["version"]


def test_nodes_changed_counts_distinct_nodes_that_differ(kernel: Any) -> None:
    events: list[Any] = []
    kernel.events.subscribe(events.append, ["on_roleplay_corrected"])
    result = run_import(kernel, CHAT.read_bytes(), CHAT.name, ImportOptions())
    uid = f"{result.import_id}:{result.scene_ids[0]}"
    _, scene = load_scene(kernel, uid)
    first, second = scene["nodes"][0], scene["nodes"][1]
    patches = [
        {"id": first["id"], "text": "One."},
        {"id": first["id"], "text": "Two."},  # the same node twice: one node changed
        {"id": second["id"], "text": second["text"]},  # unchanged
    ]
    answer = apply_corrections(kernel, uid, nodes=patches)
    assert answer["nodes_changed"] == 1 and answer["version"] == 2
    assert [e.payload["nodes_changed"] for e in events] == [1]
    # A whole scene: two nodes edited, the rest as they were.
    _, now = load_scene(kernel, uid)
    edited = json.loads(json.dumps(now))
    edited["nodes"][0]["text"] = "Three."
    edited["nodes"][-1]["text"] = "The end, corrected."
    whole = apply_corrections(kernel, uid, scene=edited)
    assert whole["nodes_changed"] == 2 and len(edited["nodes"]) > 2
    assert [e.payload["nodes_changed"] for e in events] == [1, 2]


def test_a_no_op_on_a_folder_import_writes_nothing(kernel: Any, tmp_path: Path) -> None:
    events: list[Any] = []
    kernel.events.subscribe(events.append, ["on_roleplay_corrected"])
    out = tmp_path / "p"
    result = run_import(kernel, CHAT.read_bytes(), CHAT.name, ImportOptions(), out_dir=out)
    uid = f"{result.import_id}:{result.scene_ids[0]}"
    path = out / "scenes" / f"{result.scene_ids[0]}.json"
    data, stamp = path.read_bytes(), path.stat().st_mtime_ns
    node = json.loads(data)["nodes"][0]["id"]
    answer = apply_corrections(kernel, uid, nodes=[{"id": node}, {"id": node}])
    assert answer["nodes_changed"] == 0 and "version" not in answer
    assert path.read_bytes() == data and path.stat().st_mtime_ns == stamp and events == []


def test_import_events_carry_no_server_path(kernel: Any, tmp_path: Path) -> None:
    events: list[Any] = []
    kernel.events.subscribe(events.append, ["on_roleplay_imported"])
    TestClient(create_app(kernel)).post("/api/roleplay/import", json={"text": CHAT.read_text(encoding="utf-8")})
    out = tmp_path / "folder"
    cli = CliRunner().invoke(
        make_cli(kernel), ["import", "sillytavern", str(CHAT), "--no-job", "--out", str(out), "--no-progress"]
    )
    assert cli.exit_code == 0, cli.output
    assert len(events) == 2
    for event in events:
        for text in _strings(event.payload):
            assert not text.startswith("/") and str(tmp_path) not in text, text
    assert [e.payload["store"] for e in events] == [True, False]
    schema = EVENTS["on_roleplay_imported"][1]
    assert "project_path" not in schema["properties"] and "store" in schema["required"]
