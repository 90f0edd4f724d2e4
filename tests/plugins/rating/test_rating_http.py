"""The rating REST surface (wire doc "Rating") and the acknowledgement flow end to end over HTTP: an adult chat
uploaded to the importer → classify → export refused with 423 and an ack_token → ack → export passes with the
rating in export_manifest.json; warn and unrestricted modes; the flags."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from comfyvn import Kernel
from rating_fixtures import ADULT_CARD, ADULT_CHAT
from starlette.testclient import TestClient


def _upload(client: TestClient) -> str:
    response = client.post(
        "/api/roleplay/import",
        files=[
            ("file", (ADULT_CHAT.name, ADULT_CHAT.read_bytes(), "application/jsonl")),
            ("card", (ADULT_CARD.name, ADULT_CARD.read_bytes(), "application/json")),
        ],
    )
    assert response.status_code == 200, response.text
    return str(response.json()["project"]["id"])


def _manifest(kernel: Kernel, project_id: str) -> dict[str, Any]:
    path = kernel.paths.data / "projects" / project_id / "exports" / "renpy" / "export_manifest.json"
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


def test_classify_answers_the_wire_shape(rating_kernel: Callable[..., Kernel], http_for: Callable[..., Any]) -> None:
    client = http_for(rating_kernel())
    body = client.post("/api/rating/classify", json={"item_id": "p1", "payload": {"text": "a mild prank"}}).json()
    assert body == {
        "ok": True,
        "item_id": "p1",
        "rating": {
            "item_id": "p1",
            "rating": "T",
            "confidence": 0.7,
            "nsfw": False,
            "reasons": ["keyword:mild", "keyword:prank"],
            "matched": {"T": ["keyword:mild", "keyword:prank"]},
            "source": "classifier",
            "classifier": "matrix",
            "reviewer": None,
            "override_reason": None,
            "override_timestamp": None,
        },
        "mode": "sfw",
        "allowed": True,
        "requires_ack": False,
        "ack_token": None,
        "ack_status": "not_required",
        "action": "generic",
    }
    risky = client.post("/api/rating/classify", json={"item_id": "p2", "payload": {"tags": ["gore"]}}).json()
    assert (risky["allowed"], risky["requires_ack"], risky["ack_status"]) == (False, True, "issued")
    again = client.post("/api/rating/classify", json={"item_id": "p2", "payload": {"tags": ["gore"]}}).json()
    assert again["ack_token"] == risky["ack_token"]  # asking twice does not pile up tokens
    claimed = client.post(
        "/api/rating/classify",
        json={"item_id": "p2", "payload": {"tags": ["gore"]}, "acknowledged": True, "ack_token": risky["ack_token"]},
    ).json()
    assert (claimed["allowed"], claimed["ack_status"], claimed["ack_token"]) == (False, "pending", risky["ack_token"])
    acked = client.post("/api/rating/ack", json={"token": risky["ack_token"], "user": "ana", "notes": "ok"}).json()
    assert acked["ack"]["status"] == "verified" and acked["ack"]["user"] == "ana"
    verified = client.post(
        "/api/rating/classify",
        json={"item_id": "p2", "payload": {"tags": ["gore"]}, "acknowledged": True, "ack_token": risky["ack_token"]},
    ).json()
    assert (verified["allowed"], verified["ack_status"]) == (True, "verified")
    # A token acknowledged for M does not cover Adult content, nor another item.
    adult = {"item_id": "p2", "payload": {"text": "explicit"}, "acknowledged": True, "ack_token": risky["ack_token"]}
    assert client.post("/api/rating/classify", json=adult).json()["ack_status"] == "pending"
    other = {"item_id": "p3", "payload": {"tags": ["gore"]}, "acknowledged": True, "ack_token": risky["ack_token"]}
    assert client.post("/api/rating/classify", json=other).json()["allowed"] is False
    for mode, allowed in (("warn", True), ("unrestricted", True)):
        answer = client.post("/api/rating/classify", json={"item_id": "p4", "payload": {"text": "porn"}, "mode": mode})
        assert (answer.json()["allowed"], answer.json()["requires_ack"]) == (allowed, False)


def test_matrix_overrides_acks_and_mode(rating_kernel: Callable[..., Kernel], http_for: Callable[..., Any]) -> None:
    kernel = rating_kernel()
    client = http_for(kernel)
    matrix = client.get("/api/rating/matrix").json()
    assert matrix["levels"] == ["E", "T", "M", "Adult"] and matrix["precedence"] == ["Adult", "M", "T", "E"]
    assert matrix["default"] == "T" and "18+" in matrix["matrix"]["Adult"]["keywords"]
    assert matrix["matrix"]["E"]["tags"] == ["all-ages", "casual", "family", "wholesome", "puzzle"]
    pinned = client.post(
        "/api/rating/overrides",
        json={"item_id": "scene:intro/n1", "rating": "adult", "reviewer": "ana", "reason": "context"},
    ).json()
    assert pinned["override"]["rating"] == "Adult" and pinned["rating"]["source"] == "override"
    decided = client.post("/api/rating/classify", json={"item_id": "scene:intro/n1", "payload": {"text": "hi"}}).json()
    assert (decided["rating"]["rating"], decided["rating"]["source"], decided["rating"]["reviewer"]) == (
        "Adult",
        "override",
        "ana",
    )
    # Sticky across a restart: a new kernel and app on the same roots sees it.
    restarted = http_for(rating_kernel())
    assert [o["item_id"] for o in restarted.get("/api/rating/overrides").json()["overrides"]] == ["scene:intro/n1"]
    assert restarted.delete("/api/rating/overrides/scene:intro/n1").json()["removed"] is True
    gone = client.delete("/api/rating/overrides/scene:intro/n1")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "override_not_found"
    assert client.get("/api/rating/overrides").json()["overrides"] == []
    unknown = client.post("/api/rating/ack", json={"token": "nope", "user": "ana"})
    assert unknown.status_code == 404 and unknown.json()["error"]["field"] == "token"
    (issued,) = client.get("/api/rating/acks").json()["acks"]  # the Adult override's decision asked for one
    assert (issued["item_id"], issued["status"], issued["rating"], issued["user"]) == (
        "scene:intro/n1",
        "issued",
        "Adult",
        None,
    )
    assert issued["token"] == decided["ack_token"]
    assert client.get("/api/rating/mode").json()["mode"] == "sfw"
    assert client.post("/api/rating/mode", json={"mode": "warn"}).json()["mode"] == "warn"
    assert http_for(rating_kernel()).get("/api/rating/mode").json() == {
        "ok": True,
        "mode": "warn",
        "modes": ["sfw", "warn", "unrestricted"],
        "source": "settings",
    }
    env = http_for(rating_kernel(env={"COMFYVN_RATING_MODE": "unrestricted"}))
    assert env.get("/api/rating/mode").json()["source"] == "env"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/rating/classify", {}, "item_id"),
        ("/api/rating/classify", {"item_id": " "}, "item_id"),
        ("/api/rating/classify", {"item_id": "x", "mode": "nsfw"}, "mode"),
        ("/api/rating/classify", {"item_id": "x", "acknowledged": "yes"}, "acknowledged"),
        ("/api/rating/classify", {"item_id": "x", "payload": [1]}, "payload"),
        ("/api/rating/classify", {"item_id": "x", "extra": 1}, "extra"),
        ("/api/rating/classify", {"item_id": "x", "project": "demo"}, "item_id"),
        ("/api/rating/overrides", {"item_id": "x", "rating": "PG", "reviewer": "a", "reason": "b"}, "rating"),
        ("/api/rating/overrides", {"item_id": "x" * 301, "rating": "E", "reviewer": "a", "reason": "b"}, "item_id"),
        ("/api/rating/ack", {"token": "t"}, "user"),
        ("/api/rating/mode", {"mode": "off"}, "mode"),
    ],
)
def test_bad_requests_are_400_naming_the_field(
    rating_kernel: Callable[..., Kernel], http_for: Callable[..., Any], path: str, body: Any, field: str
) -> None:
    response = http_for(rating_kernel()).post(path, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field


def test_a_missing_project_is_404(rating_kernel: Callable[..., Kernel], http_for: Callable[..., Any]) -> None:
    body = {"item_id": "project:nope", "project": "nope"}
    response = http_for(rating_kernel()).post("/api/rating/classify", json=body)
    assert response.status_code == 404 and response.json()["error"]["code"] == "project_not_found"


def test_the_api_flag_turns_routes_and_gating_off(
    rating_kernel: Callable[..., Kernel], http_for: Callable[..., Any]
) -> None:
    kernel = rating_kernel(env={"COMFYVN_FEATURE_ENABLE_RATING_API": "0"})
    client = http_for(kernel)
    refused = client.get("/api/rating/matrix")
    assert refused.status_code == 403 and refused.json()["error"]["field"] == "enable_rating_api"
    project_id = _upload(client)
    exported = client.post("/api/export/renpy", json={"project": project_id})
    assert exported.status_code == 200, exported.text  # nothing gated with the flag off
    assert _manifest(kernel, project_id)["rating_gate"] == {"allowed": True, "checked": 1}


def test_the_ack_flow_end_to_end_over_http(rating_kernel: Callable[..., Kernel], http_for: Callable[..., Any]) -> None:
    kernel = rating_kernel()
    client = http_for(kernel)
    project_id = _upload(client)
    item = f"project:{project_id}"
    classified = client.post(
        "/api/rating/classify", json={"item_id": item, "project": project_id, "action": "export.renpy"}
    ).json()
    assert classified["rating"]["rating"] == "Adult" and classified["ack_status"] == "issued"
    assert {d["kind"] for d in classified["project"]["drivers"]} == {"node", "character"}
    token = classified["ack_token"]

    blocked = client.post("/api/export/renpy", json={"project": project_id})
    assert blocked.status_code == 423, blocked.text
    error = blocked.json()["error"]
    assert error["code"] == "export_blocked"
    (gate,) = error["blocked_by"]
    assert gate["plugin"] == "comfyvn_rating" and gate["ack_token"] == token  # the open token, reused
    assert gate["rating"]["rating"] == "Adult" and gate["ack_status"] == "issued"
    assert f"comfyvn rating ack {token}" in error["message"] and "--rating-acknowledged" in error["message"]
    exports = kernel.paths.data / "projects" / project_id / "exports"
    assert not (exports / "renpy").exists()
    # The flag alone, or a token nobody acknowledged yet, does not pass.
    pending = client.post(
        "/api/export/renpy", json={"project": project_id, "rating_ack_token": token, "rating_acknowledged": True}
    )
    assert pending.status_code == 423 and pending.json()["error"]["blocked_by"][0]["ack_status"] == "pending"
    # Whole, not clipped: the way out is the message's end.
    assert pending.json()["error"]["message"].endswith(f"--rating-ack-token {token} --rating-acknowledged")
    assert error["message"].endswith("(HTTP: POST /api/rating/ack; rating_ack_token, rating_acknowledged)")

    assert (
        client.post("/api/rating/ack", json={"token": token, "user": "ana", "notes": "adults only"}).status_code == 200
    )
    assert client.post("/api/export/renpy", json={"project": project_id, "rating_ack_token": token}).status_code == 423
    passed = client.post(
        "/api/export/renpy",
        json={"project": project_id, "rating_ack_token": token, "rating_acknowledged": True, "check": True},
    )
    assert passed.status_code == 200, passed.text
    result = passed.json()
    assert result["check"]["ok"] is True, result["check"]  # the real Ren'Py lint, once
    manifest = _manifest(kernel, project_id)
    assert manifest["rating"]["rating"] == "Adult" and manifest["rating"]["source"] == "classifier"
    (note,) = manifest["rating_gate"]["notes"]
    assert (note["ack_status"], note["ack_token"], note["mode"]) == ("verified", token, "sfw")
    assert {(d["scene"], d["node"]) for d in note["drivers"] if d["kind"] == "node"} >= {("scene_0001", "n0012")}
    acks = client.get("/api/rating/acks").json()["acks"]
    assert [(a["token"], a["status"], a["user"]) for a in acks] == [(token, "verified", "ana")]


def test_warn_exports_with_a_warning_and_unrestricted_silently(
    rating_kernel: Callable[..., Kernel], http_for: Callable[..., Any]
) -> None:
    kernel = rating_kernel()
    client = http_for(kernel)
    project_id = _upload(client)
    client.post("/api/rating/mode", json={"mode": "warn"})
    warned = client.post("/api/export/renpy", json={"project": project_id, "dry_run": True})
    assert warned.status_code == 200, warned.text
    rating_warnings = [w for w in warned.json()["warnings"] if w.startswith("rating:")]
    assert len(rating_warnings) == 1 and "rated Adult" in rating_warnings[0] and "warn" in rating_warnings[0]
    client.post("/api/rating/mode", json={"mode": "unrestricted"})
    silent = client.post("/api/export/renpy", json={"project": project_id})
    assert silent.status_code == 200
    assert not [w for w in silent.json()["warnings"] if w.startswith("rating:")]
    manifest = _manifest(kernel, project_id)
    assert manifest["rating"]["rating"] == "Adult" and manifest["rating_gate"]["notes"][0]["mode"] == "unrestricted"
    assert "warnings" not in manifest["rating_gate"]
    assert client.get("/api/rating/acks").json()["acks"] == []  # nothing needed acknowledging


def test_events_stream_only_with_the_stream_flag(
    rating_kernel: Callable[..., Kernel], http_for: Callable[..., Any]
) -> None:
    quiet = rating_kernel()
    http_for(quiet).post("/api/rating/classify", json={"item_id": "x", "payload": {"text": "gore"}})
    assert not [e for e in quiet.events.history() if e.event.startswith("on_rating_")]
    loud = rating_kernel(env={"COMFYVN_FEATURE_ENABLE_RATING_MODDER_STREAM": "1"})
    client = http_for(loud)
    token = client.post("/api/rating/classify", json={"item_id": "x", "payload": {"text": "gore"}}).json()["ack_token"]
    client.post("/api/rating/overrides", json={"item_id": "y", "rating": "E", "reviewer": "r", "reason": "ok"})
    client.delete("/api/rating/overrides/y")
    client.post("/api/rating/ack", json={"token": token, "user": "ana"})
    events = [(e.event, e.payload) for e in loud.events.history() if e.event.startswith("on_rating_")]
    assert [name for name, _ in events] == [
        "on_rating_decision",
        "on_rating_override",
        "on_rating_override",
        "on_rating_acknowledged",
    ]
    decision = events[0][1]
    assert (decision["rating"], decision["ack_status"], decision["allowed"]) == ("M", "issued", False)
    assert [p["removed"] for _, p in events[1:3]] == [False, True]
    assert events[3][1]["token"] == token and events[3][1]["user"] == "ana"


def test_the_preview_takes_the_acknowledgement_as_query_parameters(
    rating_kernel: Callable[..., Kernel], http_for: Callable[..., Any]
) -> None:
    client = http_for(rating_kernel())
    project_id = _upload(client)
    refused = client.get("/api/export/renpy/preview", params={"project": project_id})
    assert refused.status_code == 423
    token = refused.json()["error"]["blocked_by"][0]["ack_token"]
    client.post("/api/rating/ack", json={"token": token, "user": "ana"})
    query = {"project": project_id, "rating_ack_token": token, "rating_acknowledged": "true"}
    shown = client.get("/api/export/renpy/preview", params=query)
    assert shown.status_code == 200 and shown.json()["preview"]["summary"]["new"] > 0
    bad = client.get("/api/export/renpy/preview", params={**query, "rating_acknowledged": "yes"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "rating_acknowledged"
    wrong = client.post("/api/export/renpy", json={"project": project_id, "rating_ack_token": 5})
    assert wrong.status_code == 400 and wrong.json()["error"]["field"] == "rating_ack_token"
