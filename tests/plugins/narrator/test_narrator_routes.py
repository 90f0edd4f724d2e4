"""``/api/narrator/*`` over HTTP: the wire-doc flow, the flag and force policy, input errors, events, real hypercorn."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from comfyvn import Kernel, RuntimePaths, create_kernel, hookimpl
from comfyvn_server import ServerSettings, create_app
from comfyvn_server.auth import TokenStore
from starlette.testclient import TestClient

from .conftest import ScriptedModel, turn

LOCAL = ("127.0.0.1", 50123)
START = {"stats": {"courage": 3, "hp": 10}, "inv": ["rope"], "flags": {"met": True, "seen": False}}


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["ok"] is True and body["state"]["scene_id"]
    return body


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    return error


def test_wire_flow_propose_cap_apply_rollback_stop(
    narrator_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], TestClient], scripted: ScriptedModel
) -> None:
    kernel = narrator_kernel(scripted=True)
    client = http_for(kernel)
    state = ok(
        client.post(
            "/api/narrator/mode", json={"scene_id": "s1", "node_id": "n1", "mode": "propose", "variables": START}
        )
    )["state"]
    assert state | {"timestamp": 0} == {
        "scene_id": "s1",
        "node_id": "n1",
        "mode": "propose",
        "role": "narrator",
        "active": True,
        "halted": False,
        "turn_counts": {},
        "queue": [],
        "history_size": 0,
        "last_choice": None,
        "pov": None,
        "variables": START,
        "timestamp": 0,
    }
    scripted.answer(
        turn("Courage rises.", patch={"stats": {"courage": 4}, "gold": 5}, choice_id="go", rationale="brave"),
        turn("Everything changes.", patch={"$replace": {"stats": {"hp": 1}}, "$delete": ["flags.met", "inv"]}),
        turn("Nothing happens."),
    )
    choices = [{"id": "go", "text": "Go"}, {"id": "stay", "text": "Stay"}]
    proposals = []
    for index in range(3):
        body = ok(
            client.post("/api/narrator/propose", json={"scene_id": "s1", "message": f"m{index}", "choices": choices})
        )
        proposals.append(body["proposal"])
        assert body["state"]["turn_counts"] == {"n1": index + 1}
        assert body["state"]["variables"] == START  # proposing never changes the variables
    assert [p["id"] for p in proposals] == ["p0001", "p0002", "p0003"]
    assert [p["turn_index"] for p in proposals] == [1, 2, 3]
    first = proposals[0]
    assert first["narration"] == "Courage rises." and first["rationale"] == "brave" and first["choice_id"] == "go"
    assert first["status"] == "pending" and first["metadata"]["adapter"] == "openai"
    assert first["metadata"]["model"] == "scripted-1" and first["metadata"]["budget"] == {"limit": 4096, "spent": 15}
    meta = first["vars_patch"]["$narrator"]
    assert {k: meta[k] for k in ("scene_id", "node_id", "turn", "choice_id")} == {
        "scene_id": "s1",
        "node_id": "n1",
        "turn": 1,
        "choice_id": "go",
    }
    assert len(meta["digest"]) == 64 and len({p["vars_patch"]["$narrator"]["digest"] for p in proposals}) == 3
    # The scripted model saw the pack's prompt with the node's choices and the variables.
    prompt = scripted.requests[0]["messages"][-1]["content"]
    assert "- go: Go" in prompt and '"courage": 3' in prompt and "m0" in prompt

    error = refused(client.post("/api/narrator/propose", json={"scene_id": "s1", "message": "again"}), 409, "turn_cap")
    assert error["field"] == "node_id" and error["turns"] == 3 and len(scripted.requests) == 3  # no model call
    state = ok(client.get("/api/narrator/status", params={"scene_id": "s1"}))["state"]
    assert [p["status"] for p in state["queue"]] == ["pending"] * 3 and state["variables"] == START

    applied = ok(client.post("/api/narrator/apply", json={"scene_id": "s1", "proposal_id": "p0001"}))
    after_first = {"stats": {"courage": 4, "hp": 10}, "inv": ["rope"], "flags": {"met": True, "seen": False}, "gold": 5}
    assert applied["state"]["variables"] == after_first and applied["proposal"]["status"] == "applied"
    assert applied["state"]["mode"] == "apply" and applied["state"]["last_choice"] == "go"
    assert applied["state"]["history_size"] == 1
    refused(client.post("/api/narrator/apply", json={"scene_id": "s1", "proposal_id": "p0001"}), 409, "duplicate_apply")

    second = ok(client.post("/api/narrator/apply", json={"scene_id": "s1", "proposal_id": "p0002"}))["state"]
    assert second["variables"] == {"stats": {"hp": 1}, "flags": {"seen": False}, "gold": 5}
    assert second["last_choice"] == "go" and second["history_size"] == 2  # p0002 took no choice

    rolled = ok(client.post("/api/narrator/rollback", json={"scene_id": "s1"}))
    assert rolled["state"]["variables"] == after_first
    assert [p["id"] for p in rolled["rolled_back"]] == ["p0002"]
    assert [p["status"] for p in rolled["state"]["queue"]] == ["applied", "rolled_back", "pending"]
    assert rolled["state"]["turn_counts"] == {"n1": 2} and rolled["state"]["history_size"] == 1
    refused(
        client.post("/api/narrator/apply", json={"scene_id": "s1", "proposal_id": "p0002"}), 409, "proposal_rolled_back"
    )
    error = refused(
        client.post("/api/narrator/rollback", json={"scene_id": "s1", "steps": 2}), 409, "nothing_to_rollback"
    )
    assert error["available"] == 1

    scripted.answer(turn("A freed turn."))
    fourth = ok(client.post("/api/narrator/propose", json={"scene_id": "s1"}))["proposal"]
    # The rolled-back turn (2) is free again, and p0003 keeps turn 3: live turns never share a number.
    assert fourth["id"] == "p0004" and fourth["turn_index"] == 2

    halted = ok(client.post("/api/narrator/stop", json={"scene_id": "s1"}))["state"]
    assert halted["halted"] is True and halted["active"] is False
    refused(client.post("/api/narrator/propose", json={"scene_id": "s1", "node_id": "n2"}), 409, "halted")
    refused(client.post("/api/narrator/apply", json={"scene_id": "s1", "proposal_id": "p0003"}), 409, "halted")
    assert ok(client.get("/api/narrator/status", params={"scene_id": "s1"}))["state"]["halted"] is True
    resumed = ok(client.post("/api/narrator/mode", json={"scene_id": "s1", "mode": "apply"}))["state"]
    assert resumed["halted"] is False and resumed["active"] is True
    done = ok(client.post("/api/narrator/apply", json={"scene_id": "s1", "proposal_id": "p0003"}))["state"]
    assert done["variables"] == after_first and done["history_size"] == 2

    proposed = [e.payload for e in kernel.events.history(event="on_narrator_proposal")]
    assert [p["proposal_id"] for p in proposed] == ["p0001", "p0002", "p0003", "p0004"]
    assert proposed[0]["digest"] == meta["digest"] and proposed[0]["adapter"] == "openai"
    applies = [
        (e.payload["proposal_id"], e.payload["rolled_back"]) for e in kernel.events.history(event="on_narrator_apply")
    ]
    assert applies == [("p0001", False), ("p0002", False), ("p0002", True), ("p0003", False)]


def test_observe_mode_only_watches_and_reset_queue_frees_turns(
    narrator_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], TestClient]
) -> None:
    client = http_for(narrator_kernel())
    ok(client.post("/api/narrator/propose", json={"scene_id": "s", "node_id": "a", "message": "hi"}))
    ok(client.post("/api/narrator/propose", json={"scene_id": "s", "message": "hi again"}))
    observing = ok(client.post("/api/narrator/mode", json={"scene_id": "s", "mode": "observe"}))["state"]
    assert observing["active"] is False and observing["turn_counts"] == {"a": 2}
    refused(client.post("/api/narrator/propose", json={"scene_id": "s"}), 409, "observe_mode")
    refused(client.post("/api/narrator/apply", json={"scene_id": "s", "proposal_id": "p0001"}), 409, "observe_mode")
    reset = ok(client.post("/api/narrator/mode", json={"scene_id": "s", "mode": "propose", "reset_queue": True}))
    assert reset["state"]["queue"] == [] and reset["state"]["turn_counts"] == {"a": 0}
    again = ok(client.post("/api/narrator/propose", json={"scene_id": "s"}))["proposal"]
    assert again["id"] == "p0003" and again["turn_index"] == 1  # ids are never reused


def test_offline_proposals_say_offline_and_chat_changes_nothing(
    narrator_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], TestClient]
) -> None:
    kernel = narrator_kernel()
    client = http_for(kernel)
    body = ok(
        client.post(
            "/api/narrator/propose",
            json={"scene_id": "demo", "node_id": "demo.root", "message": "Check-in on the player."},
        )
    )
    proposal = body["proposal"]
    assert proposal["metadata"]["adapter"] == "offline" and proposal["metadata"]["model"] == "codex/offline-narrator"
    assert proposal["narration"] and proposal["vars_patch"]["$narrator"]["turn"] == 1
    before = ok(client.get("/api/narrator/status", params={"scene_id": "demo"}))["state"]
    chat = ok(client.post("/api/narrator/chat", json={"scene_id": "demo", "message": "What just happened?"}))
    assert chat["reply"] and chat["metadata"]["adapter"] == "offline"
    again = ok(client.post("/api/narrator/chat", json={"scene_id": "demo", "message": "What just happened?"}))
    assert again["reply"] == chat["reply"]  # offline: the same question, the same answer
    after = ok(client.get("/api/narrator/status", params={"scene_id": "demo"}))["state"]
    assert {**after, "timestamp": 0} == {**before, "timestamp": 0}
    # chat on a new scene starts an observing session; it needs the node like any start
    refused(client.post("/api/narrator/chat", json={"scene_id": "fresh", "message": "hello"}), 400, "invalid_request")
    fresh = ok(client.post("/api/narrator/chat", json={"scene_id": "fresh", "node_id": "x", "message": "hello"}))
    assert fresh["state"]["mode"] == "observe" and fresh["state"]["queue"] == []


def test_invalid_model_answers_queue_nothing(
    narrator_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], TestClient], scripted: ScriptedModel
) -> None:
    client = http_for(narrator_kernel(scripted=True))
    scripted.answer("not json at all", turn(patch={"$narrator": {"forged": True}}))
    error = refused(
        client.post("/api/narrator/propose", json={"scene_id": "s", "node_id": "n"}), 502, "invalid_model_answer"
    )
    assert "$narrator" in error["message"]
    refused(client.get("/api/narrator/status", params={"scene_id": "s"}), 404, "session_not_found")
    # an invalid patch gets the repair round like invalid JSON; the repaired answer is queued
    scripted.answer(turn(patch={"$merge": {"a": 1}}), turn("Fixed.", patch={"a": 1}))
    body = ok(client.post("/api/narrator/propose", json={"scene_id": "s", "node_id": "n"}))
    assert body["proposal"]["metadata"]["repaired"] is True and body["proposal"]["vars_patch"]["a"] == 1
    assert "unknown directive" in scripted.requests[-1]["messages"][-1]["content"]


def test_flag_off_is_403_and_force_counts_only_for_local_callers(
    narrator_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], TestClient]
) -> None:
    kernel = narrator_kernel(enabled=False)
    drill = {"scene_id": "demo", "node_id": "demo.root", "message": "Check-in on the player."}
    remote = http_for(kernel)  # the test transport's peer is "testclient": not a loopback address
    error = refused(remote.post("/api/narrator/propose", json=drill), 403, "feature_disabled")
    assert error["field"] == "enable_narrator" and "force" not in error
    error = refused(remote.post("/api/narrator/propose", json={**drill, "force": True}), 403, "feature_disabled")
    assert "loopback" not in error["message"] and "this machine" in error["force"]
    local = TestClient(create_app(kernel), client=LOCAL)
    with local:
        refused(local.post("/api/narrator/propose", json=drill), 403, "feature_disabled")
        assert ok(local.post("/api/narrator/propose", json={**drill, "force": True}))["proposal"]["id"] == "p0001"
        refused(local.get("/api/narrator/status", params={"scene_id": "demo"}), 403, "feature_disabled")
        status = ok(local.get("/api/narrator/status", params={"scene_id": "demo", "force": "true"}))
        assert status["state"]["turn_counts"] == {"demo.root": 1}
        refused(local.post("/api/narrator/propose", json={**drill, "force": "yes"}), 400, "invalid_request")
        # a token without the narrator's write scope cannot force, one with it (or admin) can
        tokens = TokenStore(kernel.paths.config / "server_tokens.json")
        other = {"Authorization": f"Bearer {tokens.create(['assets.write'])[0]}"}
        writer = {"Authorization": f"Bearer {tokens.create(['narrator.write'])[0]}"}
        refused(
            local.post("/api/narrator/stop", json={"scene_id": "demo", "force": True}, headers=other),
            403,
            "feature_disabled",
        )
        assert ok(local.post("/api/narrator/stop", json={"scene_id": "demo", "force": True}, headers=writer))["state"][
            "halted"
        ]
    assert not kernel.events.history(event="on_narrator_apply")


def test_force_off_loopback_needs_a_token_with_the_scope(runtime: RuntimePaths) -> None:
    # Entry-point plugin names: the names write scopes are spelled with (narrator.write).
    kernel = create_kernel(paths=runtime, env={"COMFYVN_PLUGINS": "server,llm,narrator"}, strict=True)
    tokens = TokenStore(kernel.paths.config / "server_tokens.json")
    other = {"Authorization": f"Bearer {tokens.create(['assets.write'])[0]}"}
    settings = ServerSettings(host="0.0.0.0")
    with TestClient(
        create_app(kernel, settings), base_url="http://192.168.1.5:8001", client=("192.168.1.9", 4000)
    ) as lan:
        body = {"scene_id": "demo", "node_id": "n", "mode": "propose", "force": True}
        refused(lan.post("/api/narrator/mode", json=body), 401, "auth_required")
        refused(lan.post("/api/narrator/mode", json=body, headers=other), 403, "insufficient_scope")
        writer = {"Authorization": f"Bearer {tokens.create(['narrator.write'])[0]}"}
        # the right scope, but from another machine: force is still not honoured
        error = refused(lan.post("/api/narrator/mode", json=body, headers=writer), 403, "feature_disabled")
        assert "force" in error


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("mode", {"mode": "propose", "node_id": "n"}, "scene_id"),
        ("mode", {"scene_id": "../etc", "mode": "propose", "node_id": "n"}, "scene_id"),
        ("mode", {"scene_id": "s", "mode": "narrate", "node_id": "n"}, "mode"),
        ("mode", {"scene_id": "s", "mode": "propose"}, "node_id"),
        ("mode", {"scene_id": "s", "mode": "propose", "node_id": "n", "variables": [1]}, "variables"),
        ("mode", {"scene_id": "s", "mode": "propose", "node_id": "n", "variables": {"$x": 1}}, "variables.$x"),
        ("mode", {"scene_id": "s", "mode": "propose", "node_id": "n", "role": "villain"}, "role"),
        ("mode", {"scene_id": "s", "mode": "propose", "node_id": "n", "extra": 1}, "extra"),
        ("propose", {"scene_id": "s", "node_id": "a b"}, "node_id"),
        ("propose", {"scene_id": "s", "node_id": "n", "message": "x" * 4001}, "message"),
        ("propose", {"scene_id": "s", "node_id": "n", "choices": [{"id": "a"}, {"id": "a"}]}, "choices[1].id"),
        ("propose", {"scene_id": "s", "node_id": "n", "choices": "go"}, "choices"),
        ("propose", {"scene_id": "s", "node_id": "n", "gate": "ack"}, "gate"),
        ("apply", {"scene_id": "s", "proposal_id": "1"}, "proposal_id"),
        ("apply", {"scene_id": "s"}, "proposal_id"),
        ("rollback", {"scene_id": "s", "steps": 0}, "steps"),
        ("rollback", {"scene_id": "s", "steps": 17}, "steps"),
        ("rollback", {"scene_id": "s", "steps": "2"}, "steps"),
        ("chat", {"scene_id": "s", "message": "  "}, "message"),
        ("stop", [], "body"),
    ],
)
def test_bad_input_is_400_naming_the_field(
    narrator_kernel: Callable[..., Kernel],
    http_for: Callable[[Kernel], TestClient],
    path: str,
    body: Any,
    field: str,
) -> None:
    client = http_for(narrator_kernel())
    response = client.post(f"/api/narrator/{path}", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == field, error
    assert "x" * 100 not in response.text and "/runtime" not in response.text


def test_unknown_scene_or_proposal_is_404(
    narrator_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], TestClient]
) -> None:
    client = http_for(narrator_kernel())
    refused(client.get("/api/narrator/status", params={"scene_id": "nowhere"}), 404, "session_not_found")
    assert refused(client.get("/api/narrator/status"), 400, "invalid_request")["field"] == "scene_id"
    refused(client.get("/api/narrator/status", params={"scene_id": "../x"}), 400, "invalid_scene_id")
    for path, body in (("apply", {"proposal_id": "p0001"}), ("stop", {}), ("rollback", {})):
        refused(client.post(f"/api/narrator/{path}", json={"scene_id": "nowhere", **body}), 404, "session_not_found")
    ok(client.post("/api/narrator/mode", json={"scene_id": "here", "node_id": "n", "mode": "propose"}))
    refused(
        client.post("/api/narrator/apply", json={"scene_id": "here", "proposal_id": "p0009"}), 404, "proposal_not_found"
    )
    assert client.post("/api/narrator/mode", content=b"{not json").json()["error"]["code"] == "invalid_json"


def test_routes_are_documented(
    narrator_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], TestClient]
) -> None:
    spec = http_for(narrator_kernel()).get("/openapi.json").json()
    operations = {
        (path, method): op
        for path, item in spec["paths"].items()
        if path.startswith("/api/narrator/")
        for method, op in item.items()
    }
    assert set(operations) == {("/api/narrator/status", "get")} | {
        (f"/api/narrator/{name}", "post")
        for name in ("mode", "propose", "apply", "stop", "rollback", "chat", "pov_rewrite")
    }
    for key, op in operations.items():
        assert not op.get("x-undocumented") and "x-docstring-error" not in op, key
        assert op["summary"] and "200" in {str(code) for code in op["responses"]}, key


def test_the_spec_drill_over_real_http(
    narrator_kernel: Callable[..., Kernel], live_server: Callable[[Kernel], Any]
) -> None:
    kernel = narrator_kernel(enabled=False)
    with live_server(kernel) as base:
        drill = {"scene_id": "demo", "node_id": "demo.root", "message": "Check-in on the player.", "force": True}
        queue = httpx.post(f"{base}/api/narrator/propose", json=drill, timeout=30).json()["state"]["queue"]
        assert [p["id"] for p in queue] == ["p0001"]
        counts = httpx.get(f"{base}/api/narrator/status?scene_id=demo&force=true", timeout=30).json()["state"][
            "turn_counts"
        ]
        assert counts == {"demo.root": 1}
        assert httpx.get(f"{base}/api/narrator/status?scene_id=demo", timeout=30).status_code == 403


def test_a_blocking_call_gate_is_423_and_queues_nothing(
    narrator_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], TestClient]
) -> None:
    class Gate:
        @hookimpl
        def llm_call_gate(self, prompt: str, options: dict[str, Any]) -> dict[str, Any] | None:
            if options.get("ack") == "yes":
                return None
            return {"reason": "needs an acknowledgement"} if "forbidden" in prompt else None

    client = http_for(narrator_kernel(Gate()))
    body = {"scene_id": "s", "node_id": "n", "message": "forbidden words"}
    refused(client.post("/api/narrator/propose", json=body), 423, "llm_blocked")
    refused(client.get("/api/narrator/status", params={"scene_id": "s"}), 404, "session_not_found")
    allowed = ok(client.post("/api/narrator/propose", json={**body, "gate": {"ack": "yes"}}))
    assert allowed["proposal"]["id"] == "p0001"
    refused(client.post("/api/narrator/chat", json={"scene_id": "s", "message": "forbidden?"}), 423, "llm_blocked")
