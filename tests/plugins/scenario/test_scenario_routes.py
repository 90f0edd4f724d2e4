"""The HTTP surface: validate, run/step, saves, POV, playtest; events; 4xx naming the field."""

from __future__ import annotations

import json
from typing import Any

from comfyvn import Kernel
from scenario_support import DEMO, tiny_scene


def _demo_payload() -> dict[str, Any]:
    project = json.loads((DEMO / "project.json").read_text(encoding="utf-8"))
    scenes = {s: json.loads((DEMO / "scenes" / f"{s}.json").read_text(encoding="utf-8")) for s in project["scenes"]}
    return {"project": project, "scenes": scenes}


def test_validate_accepts_wrapped_bare_and_project_forms(client: Any) -> None:
    scene = tiny_scene()
    for body in ({"scene": scene}, scene, _demo_payload()):
        reply = client.post("/api/scenario/validate", json=body)
        assert reply.status_code == 200
        assert reply.json() == {"valid": True, "errors": [], "warnings": []}


def test_validate_reports_pointer_paths(client: Any) -> None:
    scene = tiny_scene()
    scene["nodes"][1]["choices"][0]["target"] = "nowhere"
    body = client.post("/api/scenario/validate", json={"scene": scene}).json()
    assert body["valid"] is False
    assert body["errors"][0]["path"] == "/nodes/1/choices/0/target"
    assert "nowhere" in body["errors"][0]["message"]


def test_validate_rejects_non_object_body(client: Any) -> None:
    reply = client.post("/api/scenario/validate", json=[1, 2])
    assert reply.status_code == 400 and reply.json()["error"]["field"] == "body"


def test_step_reference_seed_and_events(client: Any, events: list[Any]) -> None:
    reply = client.post("/api/scenario/run/step", json={"scene": tiny_scene(), "seed": 7})
    assert reply.status_code == 200
    body = reply.json()
    assert body["ok"] is True
    assert body["state"]["rng"] == {"seed": 7, "value": 1025555898, "uses": 1}
    assert body["state"]["history"][0] == {"node": "a", "choice": None}
    assert body["node"]["id"] == body["state"]["current_node"]
    names = [e.event for e in events]
    assert names == ["on_scene_enter", "on_choice_render", "on_scene_enter", "on_choice_render"]
    assert events[0].payload["node"] == "a" and events[2].payload["node"] == body["state"]["current_node"]


def test_step_with_state_and_choice(client: Any) -> None:
    first = client.post("/api/scenario/run/step", json={"scene": tiny_scene(), "choice_id": "left"}).json()
    assert first["state"]["current_node"] == "b" and first["state"]["variables"]["gold"] == 2
    second = client.post(
        "/api/scenario/run/step", json={"scene": tiny_scene(), "state": first["state"], "choice": "c"}
    ).json()
    assert second["finished"] is True and second["choices"] == []
    assert second["state"]["history"][-1] == {"node": "b", "choice": "c"}
    again = client.post("/api/scenario/run/step", json={"scene": tiny_scene(), "state": second["state"]}).json()
    assert again["state"] == second["state"]


def test_unavailable_choice_lists_available(client: Any) -> None:
    reply = client.post("/api/scenario/run/step", json={"scene": tiny_scene(), "choice_id": "rich"})
    assert reply.status_code == 422
    error = reply.json()["error"]
    assert error["field"] == "choice_id" and error["code"] == "choice_unavailable"
    assert error["available"] == ["left", "right"] and "left, right" in error["message"]


def test_step_bad_input_names_the_field(client: Any) -> None:
    cases = [
        ({"scene": tiny_scene(), "seed": "7"}, "seed"),
        ({"scene": tiny_scene(), "bogus": 1}, "bogus"),
        ({}, "scene"),
        ({"scene": tiny_scene(), "state": {"rng": {"seed": "x"}}}, "state.rng.seed"),
        ({"scene": tiny_scene(), "state": {"current_node": "zz"}}, "state.current_node"),
        ({"scene": {"id": "x", "start": "a", "nodes": []}}, "/nodes"),
    ]
    for body, field in cases:
        reply = client.post("/api/scenario/run/step", json=body)
        assert 400 <= reply.status_code < 500, body
        assert reply.json()["error"]["field"] == field, (body, reply.json())


def test_step_plays_a_project(client: Any) -> None:
    body = {**_demo_payload(), "seed": 3}
    reply = client.post("/api/scenario/run/step", json=body).json()
    assert reply["state"]["scene_id"] == "platform" and reply["state"]["current_node"] == "alice_greets"
    assert reply["state"]["pov"] == "alice"


def test_saves_round_trip_and_list(client: Any, kernel: Kernel) -> None:
    payload = {
        "vars": {"gold": 2},
        "node_pointer": {"scene_id": "tiny", "node": "b"},
        "seed": {"seed": 7, "value": 1, "uses": 1},
        "note": "kept",
    }
    reply = client.post("/api/save/My Slot!", json=payload)
    assert reply.status_code == 200
    save = reply.json()["save"]
    assert save["slot"] == "my-slot" and save["note"] == "kept" and isinstance(save["saved_at"], int)
    assert (kernel.paths.data / "saves" / "my-slot.json").is_file()
    assert client.get("/api/save/my-slot").json()["save"] == save
    listing = client.get("/api/save/list").json()
    assert listing["ok"] is True and [s["slot"] for s in listing["slots"]] == ["my-slot"]
    assert listing["slots"][0]["size_bytes"] > 0
    assert client.delete("/api/save/my-slot").json() == {"ok": True, "slot": "my-slot", "deleted": True}
    assert client.get("/api/save/my-slot").status_code == 404


def test_save_missing_key_and_escape(client: Any) -> None:
    reply = client.post("/api/save/a", json={"vars": {}, "seed": 1})
    assert reply.status_code == 400 and reply.json()["error"]["field"] == "node_pointer"
    reply = client.post("/api/save/..%2F..%2Fetc", json={"vars": {}, "seed": 1, "node_pointer": "a"})
    assert reply.status_code in (200, 404)
    if reply.status_code == 200:
        assert reply.json()["save"]["slot"] == "etc"


def test_pov_routes(client: Any) -> None:
    assert client.get("/api/pov/get").json() == {"ok": True, "pov": "narrator", "history": []}
    assert client.post("/api/pov/set", json={"pov": "alice"}).json()["pov"] == "alice"
    assert client.get("/api/pov/get").json()["history"] == ["narrator"]
    assert client.post("/api/pov/set").json()["pov"] == "narrator"
    forks = [client.post("/api/pov/fork", json={"slot": "slot", "pov": "alice"}).json()["slot"] for _ in range(2)]
    assert forks == ["slot__pov_alice", "slot__pov_alice_2"]
    reply = client.post("/api/pov/fork", json={"pov": "alice"})
    assert reply.status_code == 400 and reply.json()["error"]["field"] == "slot"
    cands = client.post("/api/pov/candidates", json=_demo_payload()).json()["candidates"]
    assert [c["id"] for c in cands][:3] == ["alice", "bob", "cora"]
    assert cands[0] == {"id": "alice", "name": "Alice", "source": "pov"}


def test_playtest_flag_off_is_403(scenario_kernel: Any, http_for: Any) -> None:
    client = http_for(scenario_kernel())
    reply = client.post("/api/playtest/run", json={"scene": tiny_scene()})
    assert reply.status_code == 403
    assert reply.json()["error"]["field"] == "enable_playtest_harness"


def test_playtest_run_events_and_persist(client: Any, events: list[Any], kernel: Kernel) -> None:
    body = client.post("/api/playtest/run", json={"scene": tiny_scene(), "seed": 7, "persist": True}).json()
    assert body["ok"] is True and body["digest"] == body["trace"]["digest"]
    names = [e.event for e in events]
    assert names[0] == "on_playtest_start" and names[-1] == "on_playtest_finished"
    assert names.count("on_playtest_step") == len(body["trace"]["steps"])
    assert events[-1].payload["digest"] == body["digest"]
    # Named under the logs root, never as the server's absolute path (the answer leaves the machine).
    assert body["trace_path"].startswith("playtest/") and body["trace_path"].endswith(".json")
    assert body["log_path"] == body["trace_path"][: -len(".json")] + ".log"
    assert str(kernel.paths.logs) not in json.dumps(body)
    trace_file = kernel.paths.logs / body["trace_path"]
    assert json.loads(trace_file.read_text())["digest"] == body["digest"]
    assert (kernel.paths.logs / body["log_path"]).read_text().startswith("playtest ")
    dry = client.post(
        "/api/playtest/run", json={"scene": tiny_scene(), "seed": 7, "persist": True, "dry_run": True}
    ).json()
    assert dry["digest"] == body["digest"] and "trace_path" not in dry


def test_playtest_golden_and_explore(client: Any) -> None:
    golden = client.post("/api/playtest/run", json={"scene": tiny_scene(), "seed": 7}).json()["trace"]
    other = client.post("/api/playtest/run", json={"scene": tiny_scene(), "seed": 7, "golden": golden}).json()
    assert other["comparison"]["equal"] is True
    diff = client.post(
        "/api/playtest/run",
        json={"scene": tiny_scene(), "policy": "scripted", "choices": ["left", "c"], "golden": golden},
    ).json()
    assert diff["comparison"]["equal"] is False
    explored = client.post("/api/playtest/run", json={**_demo_payload(), "policy": "explore"}).json()
    assert explored["report"]["unvisited"] == []


def test_playtest_bad_scripted_choice_names_index(client: Any) -> None:
    reply = client.post(
        "/api/playtest/run", json={"scene": tiny_scene(), "policy": "scripted", "choices": ["left", "nope"]}
    )
    assert reply.status_code == 422 and reply.json()["error"]["field"] == "choices.1"
    reply = client.post("/api/playtest/run", json={"scene": tiny_scene(), "policy": "sideways"})
    assert reply.status_code == 400 and reply.json()["error"]["field"] == "policy"
