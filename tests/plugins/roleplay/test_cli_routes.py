"""CLI (`comfyvn import …`), HTTP routes, events, hooks and storage, through a strict kernel."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import comfyvn_roleplay.plugin
import pytest
from click.testing import CliRunner
from comfyvn import hookimpl
from comfyvn.cli import make_cli
from comfyvn_roleplay.cards import embed_card_png
from comfyvn_scenario import ProjectStore, validate_project_dir
from comfyvn_server import create_app
from rp_fixtures import EXAMPLES, jsonl
from starlette.testclient import TestClient

CHAT = EXAMPLES / "Mira Vale - 2024-09-28@14h05m07s.jsonl"


def client_for(kernel: Any) -> TestClient:
    """The full server app (its JSON errors, auth and middleware) around the roleplay routes."""
    return TestClient(create_app(kernel))


def test_cli_sillytavern_with_card_world_sprites(kernel: Any, tmp_path: Path) -> None:
    events = []
    kernel.events.subscribe(events.append, ["on_roleplay_imported"])
    out = tmp_path / "proj"
    result = CliRunner().invoke(
        make_cli(kernel),
        [
            "import",
            "sillytavern",
            str(CHAT),
            "--card",
            str(EXAMPLES / "Mira Vale.png"),
            "--world",
            str(EXAMPLES / "Saltmere.json"),
            "--sprites",
            str(EXAMPLES / "sprites"),
            "--swipes-as-choices",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["stats"]["messages"] == 11 and body["source_format"] == "st_jsonl"
    assert validate_project_dir(out)[1].valid
    raw_dir = kernel.paths.plugin_dir("roleplay") / "raw"
    assert Path(body["raw"]["path"]).parent == raw_dir and Path(body["raw"]["path"]).read_bytes() == CHAT.read_bytes()
    assert [e.payload["import_id"] for e in events] == [body["import_id"]]


def test_cli_text_human_output_and_skips(kernel: Any, tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    log.write_text("Alice: hi\nBob: yo\nAlice: bye\n")
    result = CliRunner().invoke(
        make_cli(kernel), ["import", "text", str(log), "--out", str(tmp_path / "p"), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert "imported 3 messages into 1 scene (" in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text(jsonl([{"name": "A", "mes": "x"}]) + "\nnot json")
    runner = CliRunner()
    ok = runner.invoke(
        make_cli(kernel), ["import", "sillytavern", str(bad), "--out", str(tmp_path / "q"), "--no-progress"]
    )
    assert ok.exit_code == 0 and "line 2: not valid JSON" in ok.output
    strict = runner.invoke(
        make_cli(kernel), ["import", "sillytavern", str(bad), "--out", str(tmp_path / "r"), "--strict"]
    )
    assert strict.exit_code == 2 and "line 2" in strict.output


def test_cli_png_without_card_exits_2(kernel: Any, tmp_path: Path) -> None:
    png = tmp_path / "plain.png"
    png.write_bytes(embed_card_png(None))
    result = CliRunner().invoke(
        make_cli(kernel), ["import", "sillytavern", str(CHAT), "--card", str(png), "--out", str(tmp_path / "p")]
    )
    assert result.exit_code == 2 and "plain.png has no character card data (no chara/ccv3 chunk)" in result.output


def test_routes_import_json_preview_corrections_llm(kernel: Any) -> None:
    client = client_for(kernel)
    card = {
        "data_base64": base64.b64encode((EXAMPLES / "Mira Vale.png").read_bytes()).decode(),
        "filename": "Mira Vale.png",
    }
    world = json.loads((EXAMPLES / "Saltmere.json").read_text())
    resp = client.post(
        "/api/roleplay/import",
        json={
            "text": CHAT.read_text(),
            "filename": CHAT.name,
            "cards": [card],
            "world": world,
            "detail_level": "high",
            "blocking": False,
        },
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    # The import is a store project whose id is the import id, and the answer names no server path.
    store = ProjectStore.for_kernel(kernel)
    assert body["project"]["id"] == body["import_id"] and store.exists(body["import_id"])
    assert body["project"]["version"] == 1 and "path" not in body["project"] and "path" not in body["raw"]
    assert str(kernel.paths.data) not in resp.text
    stored = store.load(body["import_id"])
    assert [s["id"] for s in body["scenes"]] == list(stored.project.scenes)
    report = json.loads((stored.path / "roleplay_import.json").read_text(encoding="utf-8"))
    assert report["import_id"] == body["import_id"] and str(kernel.paths.data) not in json.dumps(report)
    uid = body["scenes"][0]["scene_uid"]
    previewed = client.get(f"/api/roleplay/preview/{uid}")
    scene = previewed.json()["scene"]
    assert previewed.json()["version"] == 1 and previewed.headers["etag"] == '"1"'
    node = next(n for n in scene["nodes"] if n["type"] == "dialogue")
    fixed = client.post(
        "/api/roleplay/apply_corrections", json={"scene_uid": uid, "nodes": [{"id": node["id"], "text": "Fixed."}]}
    )
    assert fixed.status_code == 200 and fixed.json()["nodes_changed"] == 1
    assert fixed.json()["version"] == 2 and fixed.headers["etag"] == '"2"'
    assert (
        next(n for n in client.get(f"/api/roleplay/preview/{uid}").json()["scene"]["nodes"] if n["id"] == node["id"])[
            "text"
        ]
        == "Fixed."
    )
    scene_id = body["scenes"][0]["id"]
    assert [h["version"] for h in store.history(body["import_id"], scene_id)] == [2, 1]
    # An editor that saw version 1 may not overwrite version 2 (header or body); nothing changes.
    for stale in ({"headers": {"If-Match": '"1"'}, "json": {}}, {"json": {"version": 1}}):
        answer = client.post(
            "/api/roleplay/apply_corrections",
            headers=stale.get("headers", {}),
            json={"scene_uid": uid, "nodes": [{"id": node["id"], "text": "Stale."}], **stale["json"]},
        )
        assert answer.status_code == 412 and answer.json()["error"]["current_version"] == 2, answer.text
    assert store.scene(body["import_id"], scene_id)[1] == 2
    both = client.post(
        "/api/roleplay/apply_corrections",
        headers={"If-Match": "2"},
        json={"scene_uid": uid, "version": 3, "nodes": [{"id": node["id"], "text": "x"}]},
    )
    assert both.status_code == 400 and both.json()["error"]["field"] == "version"
    broken = client.post(
        "/api/roleplay/apply_corrections", json={"scene_uid": uid, "nodes": [{"id": node["id"], "speaker": "nobody"}]}
    )
    assert broken.status_code == 422 and broken.json()["error"]["errors"]
    assert broken.json()["error"]["code"] == "invalid_scene" and store.scene(body["import_id"], scene_id)[1] == 2
    llm = client.post("/api/roleplay/sample_llm", json={"scene_uid": uid}).json()
    assert llm["llm"] == "not configured" and llm["stored"] is None and llm["scene"]["id"] == scene["id"]
    assert client.get("/api/roleplay/preview/nope:scene_0001").status_code == 404
    assert client.get("/api/roleplay/preview/bad").status_code == 400


def test_an_http_reimport_is_a_new_version_of_the_same_store_project(kernel: Any) -> None:
    client = client_for(kernel)
    first = client.post("/api/roleplay/import", json={"text": "Alice: hi\nBob: yo\nAlice: bye", "title": "Again"})
    assert first.status_code == 200, first.text
    project_id, uid = first.json()["project"]["id"], first.json()["scenes"][0]["scene_uid"]
    scene = client.get(f"/api/roleplay/preview/{uid}").json()["scene"]
    edited = client.post(
        "/api/roleplay/apply_corrections",
        json={"scene_uid": uid, "nodes": [{"id": scene["nodes"][0]["id"], "text": "Edited."}]},
    )
    assert edited.status_code == 200 and edited.json()["version"] == 2
    again = client.post("/api/roleplay/import", json={"text": "Alice: hi\nBob: yo\nAlice: bye", "title": "Again"})
    assert again.status_code == 200 and again.json()["project"]["id"] == project_id
    store = ProjectStore.for_kernel(kernel)
    assert [p["id"] for p in store.list_projects()] == [project_id]
    assert again.json()["project"]["version"] == store.load(project_id).version > 1
    # The re-import brought the imported text back as the scene's next version; the edit stays in history.
    current, version = store.scene(project_id, uid.partition(":")[2])
    assert version == 3 and current["nodes"][0]["text"] != "Edited."
    assert store.scene_version(project_id, uid.partition(":")[2], 2)["nodes"][0]["text"] == "Edited."
    assert not list((kernel.paths.plugin_dir("roleplay") / "staging").iterdir())


def test_routes_multipart_and_errors(kernel: Any) -> None:
    client = client_for(kernel)
    files = {"file": ("log.txt", b"Alice: hi\nBob: yo\nAlice: bye"), "card": ("x.png", embed_card_png(None))}
    resp = client.post("/api/roleplay/import", files=files)
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "no_character_data"
    resp = client.post(
        "/api/roleplay/import",
        files={"file": ("log.txt", b"Alice: hi\nBob: yo\nAlice: bye")},
        data={"detail_level": "low", "swipes_as_choices": "true"},
    )
    assert resp.status_code == 200 and resp.json()["stats"]["messages"] == 3
    assert (
        client.post("/api/roleplay/import", json={"text": "A: b", "detail_level": "ultra"}).json()["error"]["field"]
        == "detail_level"
    )
    assert client.post("/api/roleplay/import", json={}).status_code == 400
    assert (
        client.post("/api/roleplay/import", content=b"{", headers={"content-type": "application/json"}).status_code
        == 400
    )
    assert client.post("/api/roleplay/import", json={"lines": ["Alice: a", "Bob: b"]}).status_code == 200


class _Classifier:
    @hookimpl
    def roleplay_classify_expression(self, character: dict, text: str, labels: list[str]) -> str | None:
        return "fear" if "fear" in labels else None


class _Cleaner:
    @hookimpl
    def roleplay_cleanup_scene(self, scene: dict, detail_level: str, characters: dict) -> dict:
        return {**scene, "nodes": [{**n, "text": n.get("text", "").upper()} for n in scene["nodes"]]}


def _import_with(kernel: Any, out: Path) -> Any:
    result = CliRunner().invoke(
        make_cli(kernel),
        [
            "import",
            "sillytavern",
            str(CHAT),
            "--card",
            str(EXAMPLES / "Mira Vale.json"),
            "--sprites",
            str(EXAMPLES / "sprites"),
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    return result


def test_hook_roleplay_classify_expression(make_kernel: Any, tmp_path: Path) -> None:
    kernel = make_kernel(comfyvn_roleplay.plugin, _Classifier())
    _import_with(kernel, tmp_path / "p")
    project, _ = validate_project_dir(tmp_path / "p")
    exprs = {c["expression"] for s in project.scenes.values() for n in s["nodes"] for c in n.get("characters", [])}
    assert exprs == {"fear"}


def test_hook_roleplay_cleanup_scene(make_kernel: Any, tmp_path: Path) -> None:
    kernel = make_kernel(comfyvn_roleplay.plugin, _Cleaner())
    uid = json.loads(_import_with(kernel, tmp_path / "p").stdout)["scenes"][0]["scene_uid"]
    llm = client_for(kernel).post("/api/roleplay/sample_llm", json={"scene_uid": uid, "detail_level": "high"}).json()
    where = kernel.paths.data / llm["stored"]
    assert llm["llm"] == "configured" and where.is_file() and str(kernel.paths.data) not in json.dumps(llm)
    assert where.parent.parent == kernel.paths.plugin_dir("roleplay") / "final"
    stored = json.loads(where.read_text())
    assert any(n.get("text") and n["text"] == n["text"].upper() for n in stored["nodes"])


@pytest.mark.parametrize("payload", [{"scene_uid": 3}, {"scene_uid": "a:b", "nodes": "x"}])
def test_corrections_bad_input(kernel: Any, payload: dict) -> None:
    assert client_for(kernel).post("/api/roleplay/apply_corrections", json=payload).status_code in (400, 404)


def test_the_original_roleplay_paths_still_answer(kernel: Any) -> None:
    client = client_for(kernel)
    imported = client.post("/roleplay/import", json={"text": "Alice: hi\nBob: hello", "title": "Legacy"})
    assert imported.status_code == 200, imported.text
    uid = imported.json()["scenes"][0]["scene_uid"]
    assert client.get(f"/roleplay/preview/{uid}").json() == client.get(f"/api/roleplay/preview/{uid}").json()
