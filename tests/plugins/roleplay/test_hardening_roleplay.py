"""Issue 11 #5 (CHARX zip bombs), #9 (imports staged and swapped in; a failed re-import keeps the earlier
one; identical concurrent imports all succeed) and #12 (``--out ''`` refused)."""

from __future__ import annotations

import io
import json
import os
import threading
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import comfyvn_roleplay.cards as cards
import pytest
from click.testing import CliRunner
from comfyvn.cli import make_cli
from comfyvn.errors import ComfyVNError, TooLarge, Unprocessable
from comfyvn_roleplay.cards import read_card
from comfyvn_roleplay.convert import ImportOptions
from comfyvn_roleplay.service import apply_corrections, load_scene, run_import
from comfyvn_scenario import ProjectStore, validate_project_dir
from comfyvn_server import create_app
from rp_fixtures import jsonl
from starlette.testclient import TestClient

CARD = {"spec": "chara_card_v3", "spec_version": "3.0", "data": {"name": "Aqua", "description": "d"}}


def _charx(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("card.json", json.dumps(CARD))
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_charx_of_zeros_is_refused_without_inflating_it() -> None:
    zeros = bytes(8 * 2**20)
    bomb = _charx({f"assets/other/pad{i}.bin": zeros for i in range(30)})  # 240 MiB inflated, < 1 MiB on disk
    assert len(bomb) < 2**20
    tracemalloc.start()
    try:
        with pytest.raises((TooLarge, Unprocessable)) as info:
            read_card(bomb, filename="bomb.charx")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.field == "card"
    assert peak < 32 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_a_charx_past_the_total_size_is_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cards, "MAX_CHARX_TOTAL", 2**20)
    random = {f"assets/icon/i{i}.png": os.urandom(400 * 1024) for i in range(3)}  # incompressible, like images
    with pytest.raises(TooLarge) as info:
        read_card(_charx(random), filename="big.charx")
    assert info.value.field == "card"
    fits = read_card(_charx(dict(list(random.items())[:2])), filename="ok.charx")
    assert fits.name == "Aqua" and len(fits.assets) == 0  # no asset list in card.json: members are only kept


def test_a_charx_with_too_many_entries_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cards, "MAX_CHARX_ENTRIES", 50)
    with pytest.raises(TooLarge):
        read_card(_charx({f"assets/x/{i}.txt": b"x" for i in range(60)}), filename="many.charx")


def test_the_import_route_refuses_a_charx_bomb(kernel: Any) -> None:
    bomb = _charx({f"assets/other/pad{i}.bin": bytes(8 * 2**20) for i in range(30)})
    with TestClient(create_app(kernel)) as client:
        response = client.post(
            "/api/roleplay/import",
            files={"file": ("log.txt", b"Alice: hi\nBob: yo"), "card": ("bomb.charx", bomb)},
        )
    assert response.status_code in (413, 422), response.text
    assert response.json()["error"]["field"] == "card"


CHAT = (
    jsonl(
        [
            {"user_name": "You", "character_name": "Aqua", "create_date": 1674559896839},
            {"name": "You", "is_user": True, "mes": "Hello there."},
            {"name": "Aqua", "is_user": False, "mes": "Hi! Welcome to the guild."},
        ]
    )
    + "\nnot json at all"
)


def test_a_failed_reimport_keeps_the_earlier_import_and_its_corrections(kernel: Any) -> None:
    first = run_import(kernel, CHAT.encode(), "chat.jsonl", ImportOptions())
    uid = f"{first.import_id}:{first.scene_ids[0]}"
    _, scene = load_scene(kernel, uid)
    node = scene["nodes"][0]["id"]
    apply_corrections(kernel, uid, nodes=[{"id": node, "text": "Corrected by the editor."}])
    with pytest.raises(ComfyVNError):  # same upload and title, so the same import id; strict fails on line 4
        run_import(kernel, CHAT.encode(), "chat.jsonl", ImportOptions(strict=True))
    _, kept = load_scene(kernel, uid)
    assert kept["nodes"][0]["text"] == "Corrected by the editor."
    store = ProjectStore.for_kernel(kernel)
    assert [p["id"] for p in store.list_projects()] == [first.import_id]
    assert store.load(first.import_id).version == 2  # the import, the correction; the failed import wrote nothing
    assert not list((kernel.paths.plugin_dir("roleplay") / "staging").iterdir())


def test_identical_concurrent_imports_all_succeed(kernel: Any) -> None:
    results: list[Any] = []
    errors: list[BaseException] = []
    start = threading.Barrier(12)

    def worker() -> None:
        start.wait()
        try:
            results.append(run_import(kernel, CHAT.encode(), "chat.jsonl", ImportOptions()))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 12
    (import_id,) = {r.import_id for r in results}
    store = ProjectStore.for_kernel(kernel)
    assert [p["id"] for p in store.list_projects()] == [import_id]
    # One project: the first import created it; the others replaced it with the same files (no new version).
    assert {r.version for r in results} == {1} and store.load(import_id).version == 1
    project = store.load(import_id).path
    assert json.loads((project / "project.json").read_text(encoding="utf-8"))["id"] == import_id
    report = json.loads((project / "roleplay_import.json").read_text(encoding="utf-8"))
    assert report["project"]["id"] == import_id and "path" not in report["project"]
    assert validate_project_dir(project)[1].valid
    assert not list((kernel.paths.plugin_dir("roleplay") / "staging").iterdir())
    assert not [p for p in store.root.iterdir() if p.name.startswith(".staging")]


def test_cli_import_into_a_foreign_folder_is_refused(kernel: Any, tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    log.write_text("Alice: hi\nBob: yo\n", encoding="utf-8")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my own file", encoding="utf-8")
    result = CliRunner().invoke(make_cli(kernel), ["import", "text", str(log), "--out", str(mine), "--no-progress"])
    assert result.exit_code == 2 and result.output.strip().startswith("error:"), result.output
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    again = tmp_path / "project"
    for _ in range(2):  # an earlier import in the same folder is replaced
        ok = CliRunner().invoke(make_cli(kernel), ["import", "text", str(log), "--out", str(again), "--no-progress"])
        assert ok.exit_code == 0, ok.output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_cli_refuses_an_empty_out(kernel: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "log.txt"
    log.write_text("Alice: hi\nBob: yo\n", encoding="utf-8")
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    result = CliRunner().invoke(make_cli(kernel), ["import", "text", str(log), "--out", "", "--no-progress"])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1].startswith("error: --out must name a folder")
    assert list(work.iterdir()) == []
