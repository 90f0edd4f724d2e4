"""Issue 11 #7 (POV) and #12 (saves, POV history): nothing unencodable is stored, a damaged pov.json is
kept and reported rather than breaking every POV route, the history is capped, and the save listing
stays inside the saves folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from comfyvn import Kernel
from comfyvn.errors import ComfyVNError, Invalid, TooLarge
from comfyvn_scenario.pov import MAX_HISTORY, MAX_POV_LENGTH, PovManager
from comfyvn_scenario.saves import SaveStore

LONE_SURROGATE = "al\ud800ice"


def _pov_file(kernel: Kernel) -> Path:
    return kernel.paths.data / "plugins" / "scenario" / "pov.json"


def test_pov_manager_refuses_a_lone_surrogate_and_stores_nothing(tmp_path: Path) -> None:
    path = tmp_path / "pov.json"
    manager = PovManager(path)
    with pytest.raises(Invalid) as info:
        manager.set(LONE_SURROGATE)
    assert info.value.field == "pov"
    with pytest.raises(Invalid):
        manager.fork("slot", LONE_SURROGATE)
    assert not path.exists() and manager.snapshot() == {"pov": "narrator", "history": []}


def test_pov_set_route_refuses_a_lone_surrogate(client: Any, kernel: Kernel) -> None:
    body = json.dumps({"pov": LONE_SURROGATE})  # ensure_ascii: the surrogate travels as \ud800
    response = client.post("/api/pov/set", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["field"] == "pov"
    assert not _pov_file(kernel).exists()
    assert client.get("/api/pov/get").json() == {"ok": True, "pov": "narrator", "history": []}


@pytest.mark.parametrize(
    "content",
    [
        json.dumps({"pov": LONE_SURROGATE, "history": [], "forks": {}}).encode(),  # what the old code stored
        b"\xff\xfe not even UTF-8",
        b'{"pov": "alice", "history": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"pov": 5}',
    ],
    ids=["lone-surrogate", "not-utf8", "nested-deep", "pov-not-a-string"],
)
def test_a_damaged_pov_file_is_kept_aside_and_the_routes_answer(
    scenario_kernel: Any, http_for: Any, content: bytes
) -> None:
    kernel = scenario_kernel()
    path = _pov_file(kernel)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    client = http_for(kernel)
    assert client.get("/api/pov/get").json() == {"ok": True, "pov": "narrator", "history": []}
    assert client.post("/api/pov/set", json={"pov": "bob"}).status_code == 200
    assert client.post("/api/pov/fork", json={"slot": "s"}).json()["slot"] == "s__pov_bob"
    # The damaged file is not lost: it sits beside the new state with its bytes unchanged.
    kept = [p for p in path.parent.iterdir() if p.name.startswith("pov.json.damaged")]
    assert len(kept) == 1 and kept[0].read_bytes() == content
    assert json.loads(path.read_text(encoding="utf-8"))["pov"] == "bob"


def test_pov_history_is_capped(tmp_path: Path) -> None:
    path = tmp_path / "pov.json"
    manager = PovManager(path)
    for index in range(MAX_HISTORY * 3):
        manager.set(f"pov{index}")
    history = manager.snapshot()["history"]
    assert len(history) == MAX_HISTORY and history[-1] == f"pov{MAX_HISTORY * 3 - 2}"
    assert PovManager(path).snapshot()["history"] == history


def test_pov_ids_are_bounded(tmp_path: Path) -> None:
    manager = PovManager(tmp_path / "pov.json")
    with pytest.raises(TooLarge) as info:
        manager.set("x" * (MAX_POV_LENGTH + 1))
    assert info.value.field == "pov"
    assert manager.set("x" * MAX_POV_LENGTH)["pov"] == "x" * MAX_POV_LENGTH


def test_save_listing_does_not_follow_symlinks_out_of_the_folder(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.json").write_text(json.dumps({"saved_at": 99, "secret": "s3cr3t"}), encoding="utf-8")
    store = SaveStore(tmp_path / "saves")
    store.write("mine", {"vars": {}, "node_pointer": "a", "seed": 1})
    os.symlink(outside / "private.json", tmp_path / "saves" / "leak.json")
    os.symlink(outside, tmp_path / "saves" / "dir.json")
    assert [entry["slot"] for entry in store.list()] == ["mine"]
    with pytest.raises(ComfyVNError) as info:
        store.read("leak")
    assert info.value.field == "slot"


def test_save_route_lists_only_real_saves(client: Any, kernel: Kernel, tmp_path: Path) -> None:
    assert client.post("/api/save/one", json={"vars": {}, "node_pointer": "a", "seed": 1}).status_code == 200
    secret = tmp_path / "secret.json"
    secret.write_text('{"saved_at": 5}', encoding="utf-8")
    os.symlink(secret, kernel.paths.data / "saves" / "two.json")
    assert [s["slot"] for s in client.get("/api/save/list").json()["slots"]] == ["one"]
    assert client.get("/api/save/two").status_code == 400
