"""Save slots (normalised names, atomic files, listing) and the POV manager / candidates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from comfyvn.errors import ComfyVNError, NotFound
from comfyvn_scenario import Project, compile_scenario, step
from comfyvn_scenario.pov import PovManager, candidates
from comfyvn_scenario.saves import SaveStore, normalize_slot, save_payload, state_from_save
from comfyvn_server.errors import http_status
from hypothesis import given
from hypothesis import strategies as st
from scenario_support import tiny_scene


@given(st.text(max_size=120))
def test_normalized_slots_are_safe_and_idempotent(raw: str) -> None:
    try:
        slot = normalize_slot(raw)
    except ComfyVNError as exc:
        assert exc.field == "slot" and http_status(exc) == 400
        return
    assert 1 <= len(slot) <= 80 and set(slot) <= set("abcdefghijklmnopqrstuvwxyz0123456789_-")
    assert slot[0] not in "-_" and slot[-1] not in "-_" and normalize_slot(slot) == slot


def test_normalize_examples() -> None:
    assert normalize_slot("  My Save #1 ") == "my-save--1"
    assert normalize_slot("../../etc/passwd") == "etc-passwd"
    with pytest.raises(ComfyVNError):
        normalize_slot("///")


def test_store_write_read_list_delete(tmp_path: Path) -> None:
    clock = iter([1_700_000_000.5, 1_700_000_100.0])
    store = SaveStore(tmp_path / "saves", clock=lambda: next(clock))
    first = store.write("Alpha", {"vars": {}, "node_pointer": "a", "seed": 1, "extra": [1]})
    assert first == {
        "slot": "alpha",
        "saved_at": 1_700_000_000_500,
        "saved_at_iso": "2023-11-14T22:13:20Z",
        "vars": {},
        "node_pointer": "a",
        "seed": 1,
        "extra": [1],
    }
    store.write("beta", {"vars": {"x": 1}, "node_pointer": "b", "seed": 2})
    assert [e["slot"] for e in store.list()] == ["beta", "alpha"]
    assert store.read("ALPHA") == first
    assert not list((tmp_path / "saves").glob(".*"))  # no temporary files left behind
    store.delete("alpha")
    with pytest.raises(NotFound):
        store.read("alpha")
    with pytest.raises(NotFound):
        store.delete("alpha")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"node_pointer": 1, "seed": 1}, "vars"),
        ({"vars": [], "node_pointer": 1, "seed": 1}, "vars"),
        ({"vars": {}, "node_pointer": 1}, "seed"),
    ],
)
def test_store_rejects_incomplete_saves(tmp_path: Path, body: dict, field: str) -> None:
    with pytest.raises(ComfyVNError) as info:
        SaveStore(tmp_path).write("s", body)
    assert info.value.field == field


def test_save_through_the_store_then_continue(tmp_path: Path) -> None:
    scenario = compile_scenario(tiny_scene())
    state = step(scenario, None, seed=11).state
    store = SaveStore(tmp_path)
    store.write("run", save_payload(state))
    restored = state_from_save(scenario, store.read("run"))
    assert step(scenario, restored).to_wire() == step(scenario, state).to_wire()
    legacy = state_from_save(scenario, {"vars": {"gold": 1}, "node_pointer": "b", "seed": 5})
    assert (legacy.node_id, legacy.rng.seed, legacy.rng.uses) == ("b", 5, 0)


def test_pov_manager_persists_history_and_forks(tmp_path: Path) -> None:
    path = tmp_path / "pov.json"
    manager = PovManager(path)
    manager.set("alice")
    assert [manager.fork("Slot"), manager.fork("slot"), manager.fork("slot", "bob")] == [
        "slot__pov_alice",
        "slot__pov_alice_2",
        "slot__pov_bob",
    ]
    again = PovManager(path)
    assert again.snapshot() == {"pov": "alice", "history": ["narrator"]}
    assert again.fork("slot") == "slot__pov_alice_3"
    assert len(again.fork("x" * 200, "alice")) <= 80
    assert json.loads(path.read_text())["pov"] == "alice"
    assert again.set(None)["pov"] == "narrator"


def test_candidates_of_scene_and_project(demo: Project, demo_scene: dict) -> None:
    ids = [c["id"] for c in candidates(demo)]
    assert ids[:3] == ["alice", "bob", "cora"] and len(ids) == len(set(ids))
    scene_ids = {c["id"]: c["source"] for c in candidates(demo_scene)}
    assert scene_ids == {"alice": "choice.visible_to", "bob": "choice.visible_to"}
    assert candidates({"cast": [{"id": "x", "name": "X"}], "nodes": "junk"}) == [
        {"id": "x", "name": "X", "source": "cast"}
    ]
