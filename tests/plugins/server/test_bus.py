"""The bus over HTTP in-process: index, history, test emit, WebSocket stream, drops, heartbeats, flags."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from comfyvn import Kernel
from comfyvn_server import ServerSettings, create_app
from starlette.testclient import TestClient, WebSocketDenialResponse


def test_index_lists_specs_history_and_websocket(kernel: Kernel, client: TestClient) -> None:
    kernel.events.emit("on_probe", {"n": 1})
    body = client.get("/api/modder/hooks").json()
    names = {spec["name"] for spec in body["events"]}
    assert {"on_probe", "on_modder_test", "on_feature_flag_changed"} <= names
    assert body["history"][-1]["event"] == "on_probe"
    assert body["websocket"]["path"] == "/api/modder/hooks/ws"
    only = client.get("/api/modder/hooks?events=on_probe").json()
    assert [s["name"] for s in only["events"]] == ["on_probe"]
    assert client.get("/api/modder/hooks?events=nope").json()["error"]["field"] == "events"


def test_history_filters_by_since_event_and_limit(kernel: Kernel, client: TestClient) -> None:
    seqs = [kernel.events.emit("on_probe", {"n": i}).seq for i in range(5)]
    client.post("/api/modder/hooks/test", json={"message": "hello"})
    items = client.get(f"/api/modder/hooks/history?since={seqs[1]}&event=on_probe").json()["items"]
    assert [e["payload"]["n"] for e in items] == [2, 3, 4]
    limited = client.get("/api/modder/hooks/history?event=on_probe&limit=2").json()
    assert [e["payload"]["n"] for e in limited["items"]] == [3, 4]
    assert limited["last_seq"] == seqs[-1]
    everything = client.get("/api/modder/hooks/history").json()["items"]
    assert everything[-1]["event"] == "on_modder_test"
    for query, field in (("since=-1", "since"), ("limit=x", "limit"), ("limit=100000", "limit"), ("event=zz", "event")):
        response = client.get(f"/api/modder/hooks/history?{query}")
        assert response.status_code == 400 and response.json()["error"]["field"] == field


def test_test_emit_validates_its_body(client: TestClient) -> None:
    envelope = client.post("/api/modder/hooks/test", json={"message": "m", "data": [1, 2]}).json()
    assert envelope["topic"] == "modder.on_modder_test"
    assert envelope["payload"] == {"message": "m", "data": [1, 2]}
    assert client.post("/api/modder/hooks/test").json()["payload"] == {"message": "test"}
    assert client.post("/api/modder/hooks/test", json={"message": 3}).json()["error"]["field"] == "message"
    assert client.post("/api/modder/hooks/test", json={"nope": 3}).json()["error"]["field"] == "nope"
    assert client.post("/api/modder/hooks/test", json=[1]).json()["error"]["field"] == "body"


def _ready(ws: Any) -> dict[str, Any]:
    message: dict[str, Any] = ws.receive_json()
    assert message["topic"] == "ready"
    return message


def test_websocket_streams_envelopes_in_order_with_topics(client: TestClient) -> None:
    with client.websocket_connect("/api/modder/hooks/ws?events=on_probe") as ws:
        assert _ready(ws)["events"] == ["on_probe"]
        client.post("/api/modder/hooks/test", json={})  # filtered out
        client.post("/api/probe/burst", json={"n": 5})
        got = [ws.receive_json() for _ in range(5)]
    assert [m["topic"] for m in got] == ["modder.on_probe"] * 5
    assert [m["payload"]["n"] for m in got] == list(range(5))
    assert [m["seq"] for m in got] == sorted(m["seq"] for m in got)
    assert all({"event", "payload", "ts", "seq"} <= set(m) for m in got)


def test_websocket_with_unknown_event_is_refused(client: TestClient) -> None:
    # The handshake is answered like any request: an HTTP 400 with the JSON error naming the field.
    with (
        pytest.raises(WebSocketDenialResponse) as info,
        client.websocket_connect("/api/modder/hooks/ws?events=on_nothing"),
    ):
        pass
    assert info.value.status_code == 400
    error = info.value.json()["error"]
    assert error["field"] == "events" and "on_nothing" in error["message"]


@pytest.fixture
def small_queue_client(kernel: Kernel) -> Iterator[TestClient]:
    with TestClient(create_app(kernel, ServerSettings(ws_queue=4, ws_heartbeat=0.05))) as client:
        yield client


def test_slow_websocket_gets_a_dropped_notice_and_counts_add_up(small_queue_client: TestClient) -> None:
    client = small_queue_client
    with client.websocket_connect("/api/modder/hooks/ws?events=on_probe") as ws:
        _ready(ws)
        # One handler emits 50 events without yielding: the client's queue (4) must overflow.
        client.post("/api/probe/burst", json={"n": 50})
        received, dropped = [], 0
        while len(received) + dropped < 50:
            message = ws.receive_json()
            if message["topic"] == "dropped":
                dropped += message["dropped"]
            elif message["topic"] == "modder.on_probe":
                received.append(message["payload"]["n"])
    assert dropped >= 50 - 4 - 1
    assert received == sorted(received) and received[0] == 0
    assert client.get("/api/modder/hooks").json()["websocket"]["dropped_total"] == dropped


def test_websocket_sends_heartbeats_when_quiet(small_queue_client: TestClient) -> None:
    with small_queue_client.websocket_connect("/api/modder/hooks/ws") as ws:
        assert _ready(ws)["heartbeat"] == 0.05
        assert ws.receive_json()["topic"] == "heartbeat"
        assert ws.receive_json()["topic"] == "heartbeat"


def test_websocket_client_count_is_tracked(client: TestClient) -> None:
    with client.websocket_connect("/api/modder/hooks/ws") as ws:
        _ready(ws)
        assert client.get("/status").json()["websocket_clients"] == 1
    # The handler notices the disconnect asynchronously; the status settles at zero.
    for _ in range(200):
        if client.get("/status").json()["websocket_clients"] == 0:
            break
    assert client.get("/status").json()["websocket_clients"] == 0


def test_flags_api_reads_and_writes(kernel: Kernel, client: TestClient) -> None:
    flags = {f["name"]: f for f in client.get("/api/flags").json()["flags"]}
    assert flags["enable_probe"]["value"] is True and flags["enable_probe"]["owner"] == "probe"
    changed = client.post("/api/flags", json={"enable_probe": False, "enable_probe_extra": True}).json()
    assert {f["name"]: f["value"] for f in changed["flags"]} == {"enable_probe": False, "enable_probe_extra": True}
    assert kernel.flags.is_enabled("enable_probe") is False
    document = kernel.flags.document()
    assert document["features"] == {"enable_probe": False, "enable_probe_extra": True}


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"enable_nothing": True}, 404, "name"),
        ({"enable_probe": "yes"}, 400, "enable_probe"),
        ({}, 400, "body"),
        ([["enable_probe", True]], 400, "body"),
    ],
)
def test_flags_api_rejects_bad_input_without_writing(
    kernel: Kernel, client: TestClient, body: Any, status: int, field: str
) -> None:
    response = client.post(
        "/api/flags", json={"enable_probe_extra": True, **body} if isinstance(body, dict) and body else body
    )
    assert response.status_code == status
    assert response.json()["error"]["field"] == field
    assert kernel.flags.is_enabled("enable_probe_extra") is False


def test_flag_changes_reach_the_websocket(client: TestClient) -> None:
    with client.websocket_connect("/api/modder/hooks/ws?events=on_feature_flag_changed") as ws:
        _ready(ws)
        client.post("/api/flags", json={"enable_probe": False})
        message = ws.receive_json()
    assert message["topic"] == "modder.on_feature_flag_changed"
    assert message["payload"] == {"name": "enable_probe", "value": False, "previous": True, "source": "set"}
