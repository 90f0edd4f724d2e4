"""Where imports go (the project store, an --out folder, the pre-store processed/ folder) and how scene uids
find them; corrections of a store project never lose another editor's write."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import comfyvn_roleplay.editing as editing
import pytest
from click.testing import CliRunner
from comfyvn.cli import make_cli
from comfyvn_roleplay.convert import ImportOptions
from comfyvn_roleplay.service import StoredImport, apply_corrections, load_scene, run_import
from comfyvn_scenario import ProjectStore
from comfyvn_server import create_app
from starlette.testclient import TestClient

LOG = b"Alice: hi\nBob: yo\nAlice: bye\n"


def test_the_cli_without_out_imports_into_the_store_and_prints_the_id(kernel: Any, tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    log.write_bytes(LOG)
    result = CliRunner().invoke(make_cli(kernel), ["import", "text", str(log), "--no-progress", "--title", "Tea"])
    assert result.exit_code == 0, result.output
    (project,) = ProjectStore.for_kernel(kernel).list_projects()
    assert f"-> store project {project['id']} (version 1)" in result.output and project["title"] == "Tea"
    as_json = CliRunner().invoke(make_cli(kernel), ["import", "text", str(log), "--no-progress", "--json"])
    body = json.loads(as_json.stdout)
    assert body["project"]["store"] is True and body["scenes"][0]["version"] == 1


def test_the_cli_with_out_names_the_import_id_not_a_project_id(kernel: Any, tmp_path: Path) -> None:
    # The folder is the project: an id printed as "project id" would send `comfyvn export renpy ID` to the
    # store, where that id may name another project (or none).
    log = tmp_path / "log.txt"
    log.write_bytes(LOG)
    out = tmp_path / "out"
    args = ["import", "text", str(log), "--no-progress", "--out", str(out)]
    result = CliRunner().invoke(make_cli(kernel), args)
    assert result.exit_code == 0, result.output
    import_id = json.loads((out / "roleplay_import.json").read_text(encoding="utf-8"))["import_id"]
    assert f"-> {out}" in result.output
    assert f"project id {import_id}" not in result.output
    assert f"import id {import_id} (scene uids {import_id}:<scene>)" in result.output


def test_the_latest_import_of_an_id_is_what_its_scene_uids_name(kernel: Any, tmp_path: Path) -> None:
    stored = run_import(kernel, LOG, "log.txt", ImportOptions(title="Tea"))
    assert isinstance(stored, StoredImport)
    uid = f"{stored.import_id}:{stored.scene_ids[0]}"
    assert load_scene(kernel, uid)[0] == ProjectStore.for_kernel(kernel).path(stored.import_id)
    folder = run_import(kernel, LOG, "log.txt", ImportOptions(title="Tea"), out_dir=tmp_path / "mine")
    assert folder.import_id == stored.import_id and not isinstance(folder, StoredImport)
    assert load_scene(kernel, uid)[0] == tmp_path / "mine"
    # A folder project keeps no versions: asking for one is refused rather than silently ignored.
    client = TestClient(create_app(kernel))
    scene = load_scene(kernel, uid)[1]
    patch = {"scene_uid": uid, "nodes": [{"id": scene["nodes"][0]["id"], "text": "Folder edit."}]}
    refused = client.post("/api/roleplay/apply_corrections", json={**patch, "version": 1})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "not_versioned"
    done = client.post("/api/roleplay/apply_corrections", json=patch)
    assert done.status_code == 200 and "version" not in done.json() and "etag" not in done.headers
    assert load_scene(kernel, uid)[1]["nodes"][0]["text"] == "Folder edit."
    # The folder gone, the uid falls back to the store project.
    shutil.rmtree(tmp_path / "mine")
    assert load_scene(kernel, uid)[0] == ProjectStore.for_kernel(kernel).path(stored.import_id)
    run_import(kernel, LOG, "log.txt", ImportOptions(title="Tea"), out_dir=tmp_path / "again")
    run_import(kernel, LOG, "log.txt", ImportOptions(title="Tea"))  # into the store again: it wins
    assert load_scene(kernel, uid)[0] == ProjectStore.for_kernel(kernel).path(stored.import_id)


def test_a_project_imported_before_the_store_is_still_read(kernel: Any, tmp_path: Path) -> None:
    made = run_import(kernel, LOG, "log.txt", ImportOptions(title="Old"), out_dir=tmp_path / "old")
    legacy = kernel.paths.plugin_dir("roleplay") / "processed" / made.import_id
    shutil.copytree(tmp_path / "old", legacy)
    shutil.rmtree(tmp_path / "old")
    uid = f"{made.import_id}:{made.scene_ids[0]}"
    assert load_scene(kernel, uid)[0] == legacy
    node = load_scene(kernel, uid)[1]["nodes"][0]["id"]
    apply_corrections(kernel, uid, nodes=[{"id": node, "text": "Still editable."}])
    assert load_scene(kernel, uid)[1]["nodes"][0]["text"] == "Still editable."
    assert not ProjectStore.for_kernel(kernel).exists(made.import_id)


def test_a_node_patch_never_loses_a_write_that_landed_after_it_was_read(
    kernel: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = run_import(kernel, LOG, "log.txt", ImportOptions(title="Race"))
    uid = f"{stored.import_id}:{stored.scene_ids[0]}"
    store = ProjectStore.for_kernel(kernel)
    first, second = (n["id"] for n in load_scene(kernel, uid)[1]["nodes"][:2])
    real_read = editing.read_scene
    raced: list[bool] = []

    def read_then_someone_writes(kernel_: Any, scene_uid: str) -> Any:
        ref = real_read(kernel_, scene_uid)
        if not raced:  # another editor saves between our read and our write
            raced.append(True)
            other, version = store.scene(stored.import_id, ref.scene_id)
            other["nodes"][1]["text"] = f"The other editor's line{'.' * version}"
            store.put_scene(stored.import_id, ref.scene_id, other, if_match=version)
        return ref

    monkeypatch.setattr(editing, "read_scene", read_then_someone_writes)
    result = apply_corrections(kernel, uid, nodes=[{"id": first, "text": "My line."}])
    texts = {n["id"]: n["text"] for n in store.scene(stored.import_id, stored.scene_ids[0])[0]["nodes"]}
    assert texts[first] == "My line." and texts[second] == "The other editor's line."  # written at version 1
    assert result["version"] == 3
    # With an explicit version the stale write is refused instead, and nothing changes.
    raced.clear()
    with pytest.raises(Exception) as info:
        apply_corrections(kernel, uid, nodes=[{"id": first, "text": "Late."}], if_match=3)
    assert getattr(info.value, "code", None) == "version_mismatch" and raced == [True]
    now = store.scene(stored.import_id, stored.scene_ids[0])
    assert now[1] == 4 and now[0]["nodes"][0]["text"] == "My line."  # only the other editor's write landed
