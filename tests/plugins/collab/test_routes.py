"""The collaboration surface through the real app (Starlette's TestClient): the original JSON protocol
on its WebSocket, its REST twins, the y-websocket endpoint, client mistakes as 4xx, the flag, scopes
off loopback and the ``on_collab_operation`` event (the strict bus checks its schema)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import comfyvn_collab.plugin
import comfyvn_collab.session
import comfyvn_scenario.plugin
import comfyvn_server.plugin
import pytest
from comfyvn import Kernel
from comfyvn_collab import protocol
from comfyvn_collab.connection import write_scope
from comfyvn_collab.hub import Hub
from comfyvn_scenario.store import ProjectStore
from comfyvn_server import ServerSettings, create_app
from comfyvn_server.auth import TokenStore
from pycrdt import Doc, Map, Text
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from .test_hub import _project

LAN = "http://192.168.1.5:8001"


@pytest.fixture
def kernel(make_kernel: Callable[..., Kernel]) -> Iterator[Kernel]:
    kernel = make_kernel(comfyvn_server.plugin, comfyvn_scenario.plugin, comfyvn_collab.plugin)
    ProjectStore.for_kernel(kernel).create(_project(), project_id="story")
    yield kernel
    Hub.forget(kernel)


@pytest.fixture
def client(kernel: Kernel) -> Iterator[TestClient]:
    with TestClient(create_app(kernel)) as client:
        yield client


def _quiet_kernel(make_kernel: Callable[..., Kernel], runtime: Any, quiet: float) -> Kernel:
    """A studio kernel whose rooms save themselves after ``quiet`` seconds, with the story project stored."""
    runtime.config.mkdir(parents=True, exist_ok=True)
    (runtime.config / "comfyvn.json").write_text(json.dumps({"collab": {"quiet_seconds": quiet}}))
    kernel = make_kernel(comfyvn_server.plugin, comfyvn_scenario.plugin, comfyvn_collab.plugin)
    ProjectStore.for_kernel(kernel).create(_project(), project_id="story")
    return kernel


def _events(kernel: Kernel) -> list[dict[str, Any]]:
    return [env.payload for env in kernel.events.history(event="on_collab_operation")]


def _receive(ws: Any, kind: str, limit: int = 20) -> dict[str, Any]:
    for _ in range(limit):
        message = json.loads(ws.receive_text())
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind} message")


def test_a_json_client_joins_edits_and_sees_its_results(client: TestClient, kernel: Kernel) -> None:
    headers = {"X-ComfyVN-User": "ann", "X-ComfyVN-Name": "Ann"}
    with client.websocket_connect("/api/collab/ws?scene_id=story/intro", headers=headers) as ws:
        joined = json.loads(ws.receive_text())
        assert joined["type"] == "room.joined" and joined["scene_id"] == "story/intro" and joined["actor"] == "ann"
        assert joined["snapshot"]["nodes"][0]["text"] == "Hello"
        assert joined["feature_flags"] == {"enable_collaboration": True}
        assert joined["presence"] == {
            "participants": [],
            "control": {"holder": None, "owner": None, "expires_at": None, "queue": []},
        }
        op = {"op_id": "op-1", "kind": "graph.node.upsert", "payload": {"node": {"id": "c", "text": "New line"}}}
        ws.send_text(json.dumps({"type": "doc.apply", "operations": [op]}))
        update = _receive(ws, "doc.update")
        assert update["version"] == 1
        result = update["operations"][0]
        assert result["applied"] is True and result["duplicate"] is False and result["actor"] == "ann"
        assert [n["id"] for n in update["snapshot"]["nodes"]] == ["a", "b", "c"]
        # The same op_id again changes nothing and says so.
        ws.send_text(json.dumps({"type": "doc.apply", "operations": [op]}))
        again = _receive(ws, "doc.update")["operations"][0]
        assert again["duplicate"] is True and again["version"] == 1
        ws.send_text(json.dumps({"type": "ping"}))
        assert _receive(ws, "pong")["version"] == 1
        ws.send_text(json.dumps({"type": "doc.pull"}))
        assert _receive(ws, "doc.snapshot")["snapshot"]["nodes"][2] == {"id": "c", "text": "New line"}
    history = client.get("/api/collab/history/story/intro?since=0").json()
    assert [h["op_id"] for h in history["history"]] == ["op-1"] and history["truncated"] is False
    (event,) = [e for e in _events(kernel) if e["source"] == "json"][:1]
    assert event["room"] == "story/intro" and event["operations"][0]["kind"] == "graph.node.upsert"


def test_client_mistakes_are_error_messages_and_the_connection_stays(client: TestClient) -> None:
    with client.websocket_connect("/api/collab/ws?scene_id=story/intro") as ws:
        _receive(ws, "room.joined")
        ws.send_text("{not json")
        assert _receive(ws, "error")["error"]["field"] == "message"
        ws.send_text(json.dumps({"type": "doc.apply", "operations": [{"kind": "graph.node.upsert", "payload": {}}]}))
        error = _receive(ws, "error")["error"]
        assert error["field"].startswith("operations/0/payload")
        ws.send_text(json.dumps({"type": "teleport"}))
        assert _receive(ws, "error")["error"]["code"] == "unknown_type"
        ws.send_text(json.dumps({"type": "ping"}))
        assert _receive(ws, "pong")


def test_control_locks_queue_and_pass_on_release(client: TestClient) -> None:
    with (
        client.websocket_connect("/api/collab/ws?scene_id=story/intro", headers={"X-ComfyVN-User": "ann"}) as ann,
        client.websocket_connect("/api/collab/ws?scene_id=story/intro", headers={"X-ComfyVN-User": "bob"}) as bob,
    ):
        _receive(ann, "room.joined")
        _receive(bob, "room.joined")
        ann.send_text(json.dumps({"type": "control.request", "ttl": 60}))
        assert _receive(ann, "control.state")["control"]["holder"] == "ann"
        _receive(bob, "control.state")
        bob.send_text(json.dumps({"type": "control.request"}))
        state = _receive(bob, "control.state")["control"]
        assert state["holder"] == "ann" and state["queue"] == ["bob"]
        ann.send_text(json.dumps({"type": "control.release"}))
        passed = _receive(bob, "control.state")["control"]
        assert passed["holder"] == "bob" and passed["queue"] == [] and passed["expires_at"] > time.time()


def test_presence_from_a_json_client_is_yjs_awareness_and_in_the_roster(client: TestClient) -> None:
    with client.websocket_connect("/api/collab/yjs/story/intro") as yjs:
        assert yjs.receive_bytes()[:2] == b"\x00\x00"  # the server's sync step 1
        with client.websocket_connect(
            "/api/collab/ws?scene_id=story/intro", headers={"X-ComfyVN-User": "ann", "X-ComfyVN-Name": "Ann"}
        ) as ws:
            _receive(ws, "room.joined")
            ws.send_text(json.dumps({"type": "presence.update", "presence": {"node": "a", "color": "#3366ff"}}))
            roster = _receive(ws, "presence.update")["presence"]["participants"]
            assert roster[0]["actor"] == "ann" and roster[0]["node"] == "a" and roster[0]["source"] == "json"
            frame = yjs.receive_bytes()
            assert frame[0] == protocol.AWARENESS
            (entry,) = protocol.decode_awareness(protocol.read_payload(frame, 1))
            # Clock 1: y-protocols ignores an unknown client's state at clock 0 (the browser test sees it).
            assert entry.clock == 1 and entry.state is not None
            assert entry.state["user"] == {"id": "ann", "name": "Ann", "color": "#3366ff"}
            presence = client.get("/api/collab/presence/story/intro").json()
            assert presence["presence"]["participants"][0]["name"] == "Ann"
        gone = protocol.decode_awareness(protocol.read_payload(yjs.receive_bytes(), 1))
        assert gone[0].state is None
    assert client.get("/api/collab/presence/story/intro").json()["presence"]["participants"] == []


def _yjs_handshake(ws: Any, doc: Doc) -> None:
    step1 = ws.receive_bytes()
    ws.send_bytes(protocol.step2_frame(doc.get_update(protocol.read_payload(step1, 2))))
    ws.send_bytes(protocol.step1_frame(doc.get_state()))
    step2 = ws.receive_bytes()
    assert step2[:2] == b"\x00\x01"
    doc.apply_update(protocol.read_payload(step2, 2))


def test_json_and_yjs_clients_see_each_others_edits(client: TestClient, kernel: Kernel) -> None:
    doc = Doc()
    with (
        client.websocket_connect("/api/collab/yjs/story/intro") as yjs,
        client.websocket_connect("/api/collab/ws?scene_id=story/intro") as ws,
    ):
        _yjs_handshake(yjs, doc)
        _receive(ws, "room.joined")
        ws.send_text(
            json.dumps(
                {"type": "doc.apply", "operations": [{"kind": "graph.node.upsert", "payload": {"node": {"id": "j"}}}]}
            )
        )
        _receive(ws, "doc.update")
        doc.apply_update(protocol.read_payload(yjs.receive_bytes(), 2))
        assert "j" in doc.get("nodes", type=Map)
        updates: list[bytes] = []
        doc.observe(lambda event: updates.append(event.update))
        text = doc.get("nodes", type=Map)["a"]["text"]
        assert isinstance(text, Text)
        text.insert(0, "Yjs says: ")
        yjs.send_bytes(protocol.update_frame(updates[0]))
        pushed = _receive(ws, "doc.update")
        assert pushed["source"] == "yjs" and pushed["snapshot"]["nodes"][0]["text"] == "Yjs says: Hello"
    flushed = client.post("/api/collab/flush", json={"room": "story/intro"}).json()
    assert flushed["flushed"][0]["flushed"] is True
    scene, _ = ProjectStore.for_kernel(kernel).scene("story", "intro")
    assert scene["nodes"][0]["text"] == "Yjs says: Hello" and scene["nodes"][-1] == {"id": "j"}
    deadline = time.monotonic() + 5
    while not [e for e in _events(kernel) if e["source"] == "yjs"]:
        assert time.monotonic() < deadline, "no coalesced yjs event"
        time.sleep(0.05)


def test_rest_twins_apply_and_report(client: TestClient) -> None:
    opened = client.post("/api/collab/room/create", json={"scene_id": "story/intro"})
    assert opened.status_code == 200 and opened.json()["snapshot"]["start"] == "a"
    applied = client.post(
        "/api/collab/room/apply",
        json={
            "scene_id": "story/intro",
            "actor": "bot",
            "include_snapshot": True,
            "operations": [{"kind": "scene.field.set", "payload": {"field": "title", "value": "Dawn"}}],
        },
    ).json()
    assert applied["operations"][0]["applied"] is True and applied["snapshot"]["title"] == "Dawn"
    assert client.get("/api/collab/snapshot/story/intro").json()["scene"]["title"] == "Dawn"
    health = client.get("/api/collab/health").json()
    assert health["rooms"][0]["room"] == "story/intro" and health["rooms"][0]["dirty"] is True
    assert client.post("/api/collab/flush", json={}).json()["flushed"][0]["store_version"] == 2
    joined = client.post("/api/collab/room/join", json={"scene_id": "story/intro", "actor": "bot"}).json()
    assert joined["actor"] == "bot"
    left = client.post("/api/collab/room/leave", json={"scene_id": "story/intro", "actor": "bot"}).json()
    assert left["control"]["holder"] is None


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("get", "/api/collab/snapshot/story/nope", None, 404, "scene"),
        ("get", "/api/collab/snapshot/nobody/intro", None, 404, "project"),
        ("get", "/api/collab/snapshot/story/.hidden", None, 400, "room"),
        ("get", "/api/collab/history/story/intro?since=-1", None, 400, "since"),
        ("get", "/api/collab/snapshot/story/intro?x=1", None, 400, "x"),
        ("post", "/api/collab/flush", {"room": "story"}, 400, "room"),
        ("post", "/api/collab/flush", {"rooms": []}, 400, "body"),
        ("post", "/api/collab/room/apply", {"scene_id": "story/intro", "operations": "x"}, 400, "operations"),
        ("post", "/api/collab/room/apply", {"scene_id": "story/intro", "operations": [{}] * 501}, 413, "operations"),
        ("post", "/api/collab/room/create", {"scene_id": 5}, 400, "scene_id"),
    ],
)
def test_client_mistakes_are_4xx_naming_the_field(
    client: TestClient, method: str, path: str, body: Any, status: int, field: str
) -> None:
    answer = getattr(client, method)(path, **({} if body is None else {"json": body}))
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["field"] == field and "/tmp" not in error["message"]


def test_a_bad_yjs_frame_closes_the_connection_with_1007(client: TestClient) -> None:
    with client.websocket_connect("/api/collab/yjs/story/intro") as ws:
        ws.receive_bytes()
        ws.send_bytes(b"\x00\x02\x09\x01")
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_bytes()
            ws.receive_bytes()
        assert info.value.code == 1007
    assert client.get("/api/collab/snapshot/story/intro").json()["scene"]["nodes"][0]["text"] == "Hello"


def test_an_edit_to_a_full_document_closes_with_1009_and_a_json_batch_is_413(
    kernel: Kernel, client: TestClient
) -> None:
    Hub.for_kernel(kernel).max_bytes = 1  # every document is over it
    batch = {
        "scene_id": "story/intro",
        "actor": "ann",
        "operations": [{"kind": "graph.node.upsert", "payload": {"node": {"id": "c", "text": "x"}}}],
    }
    answer = client.post("/api/collab/room/apply", json=batch)
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"]["code"] == "document_too_large"
    peer = Doc()
    scene = peer.get("scene", type=Map)
    scene["title"] = "Renamed"  # a real change (an empty root type alone makes an empty update)
    with client.websocket_connect("/api/collab/yjs/story/intro") as ws:
        ws.receive_bytes()  # the server's sync step 1
        ws.send_bytes(protocol.update_frame(peer.get_update()))
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_bytes()
            ws.receive_bytes()
        assert info.value.code == 1009 and "over its size limit" in str(info.value.reason)
    snapshot = client.get("/api/collab/snapshot/story/intro").json()["scene"]
    assert [n["id"] for n in snapshot["nodes"]] == ["a", "b"] and snapshot["title"] == "Intro"


def test_the_flag_off_answers_403_feature_disabled(make_kernel: Callable[..., Kernel]) -> None:
    kernel = make_kernel(
        comfyvn_server.plugin,
        comfyvn_scenario.plugin,
        comfyvn_collab.plugin,
        env={"COMFYVN_FEATURE_ENABLE_COLLABORATION": "0"},
    )
    with TestClient(create_app(kernel)) as client:
        answer = client.get("/api/collab/health")
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "feature_disabled"
        assert answer.json()["error"]["field"] == "enable_collaboration"
        for url in ("/api/collab/yjs/story/intro", "/api/collab/ws?scene_id=story/intro"):
            with pytest.raises(WebSocketDenialResponse) as info, client.websocket_connect(url):
                pass
            assert info.value.status_code == 403
            assert info.value.json()["error"]["code"] == "feature_disabled"


@pytest.mark.parametrize(
    ("url", "status", "field"),
    [
        ("/api/collab/yjs/story/nope", 404, "scene"),
        ("/api/collab/yjs/nobody/intro", 404, "project"),
        ("/api/collab/yjs/story/.hidden", 400, "room"),
        ("/api/collab/ws?scene_id=story", 400, "scene_id"),
        ("/api/collab/ws", 400, "scene_id"),
        ("/api/collab/ws?scene_id=story/nope", 404, "scene"),
        ("/api/collab/ws?scene_id=story/intro&user=bad%20user", 400, "X-ComfyVN-User"),
    ],
)
def test_a_refused_handshake_is_answered_with_its_status_and_json_error(
    client: TestClient, url: str, status: int, field: str
) -> None:
    with pytest.raises(WebSocketDenialResponse) as info, client.websocket_connect(url):
        pass
    assert info.value.status_code == status
    assert info.value.json()["error"]["field"] == field


def test_off_loopback_a_token_without_collab_write_can_watch_but_not_edit(kernel: Kernel) -> None:
    tokens = TokenStore(kernel.paths.config / "server_tokens.json")
    reader, _ = tokens.create(["projects.read"])
    # Installed, the plugin is `collab` and the scope `collab.write`; registered as a module here, the
    # server and the WebSocket routes both derive it from the module's name.
    writer, _ = tokens.create([write_scope(kernel)])
    assert write_scope(kernel) == "comfyvn_collab.write"
    with TestClient(create_app(kernel, ServerSettings(host="0.0.0.0")), base_url=LAN) as client:
        assert client.get("/api/collab/health").status_code == 401
        apply = {"scene_id": "story/intro", "operations": [{"kind": "graph.node.remove", "payload": {"node_id": "b"}}]}
        refused = client.post("/api/collab/room/apply", json=apply, headers={"Authorization": f"Bearer {reader}"})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_scope"
        doc = Doc()
        with client.websocket_connect(f"/api/collab/yjs/story/intro?access_token={reader}") as ws:
            _yjs_handshake(ws, doc)
            updates: list[bytes] = []
            doc.observe(lambda event: updates.append(event.update))
            doc.get("scene", type=Map)["title"] = "Vandalised"
            ws.send_bytes(protocol.update_frame(updates[0]))
            with client.websocket_connect(f"/api/collab/ws?scene_id=story/intro&access_token={reader}") as js:
                _receive(js, "room.joined")
                js.send_text(json.dumps({"type": "doc.apply", "operations": apply["operations"]}))
                assert _receive(js, "error")["error"]["code"] == "insufficient_scope"
            auth = {"Authorization": f"Bearer {reader}"}
            snapshot = client.get("/api/collab/snapshot/story/intro", headers=auth)
            assert snapshot.json()["scene"]["title"] == "Intro"
            health = client.get("/api/collab/health", headers=auth).json()
            assert health["rooms"][0]["refused_updates"] == 1
        allowed = client.post("/api/collab/room/apply", json=apply, headers={"Authorization": f"Bearer {writer}"})
        assert allowed.status_code == 200 and allowed.json()["operations"][0]["applied"] is True


def test_a_quiet_room_saves_itself_and_the_server_saves_the_rest_when_it_stops(
    make_kernel: Callable[..., Kernel], runtime: Any
) -> None:
    kernel = _quiet_kernel(make_kernel, runtime, 0.3)
    store = ProjectStore.for_kernel(kernel)
    title = {"kind": "scene.field.set", "payload": {"field": "title", "value": "Quiet"}}
    with (
        TestClient(create_app(kernel)) as client,
        client.websocket_connect("/api/collab/ws?scene_id=story/intro") as ws,
    ):
        _receive(ws, "room.joined")
        ws.send_text(json.dumps({"type": "doc.apply", "operations": [title]}))
        _receive(ws, "doc.update")
        deadline = time.monotonic() + 10
        while store.scene("story", "intro")[1] == 1:  # no flush was asked for
            assert time.monotonic() < deadline, "the quiet room was not saved"
            time.sleep(0.05)
        assert store.scene("story", "intro")[0]["title"] == "Quiet"
        # Edits made just before the server stops are saved by the shutdown, not lost.
        late = {"kind": "scene.field.set", "payload": {"field": "title", "value": "Late"}}
        ws.send_text(json.dumps({"type": "doc.apply", "operations": [late]}))
        _receive(ws, "doc.update")
    scene, version = store.scene("story", "intro")
    assert scene["title"] == "Late" and version == 3
    Hub.forget(kernel)


def test_a_write_to_the_store_reaches_the_live_room_and_its_clients(client: TestClient, kernel: Kernel) -> None:
    store = ProjectStore.for_kernel(kernel)
    doc = Doc()
    with client.websocket_connect("/api/collab/yjs/story/intro") as yjs:
        _yjs_handshake(yjs, doc)
        scene, version = store.scene("story", "intro")
        edited = {**scene, "nodes": [scene["nodes"][0], {**scene["nodes"][1], "text": "Rewritten outside."}]}
        assert (
            client.put(
                "/api/projects/story/scenes/intro", json=edited, headers={"If-Match": f'"{version}"'}
            ).status_code
            == 200
        )
        deadline = time.monotonic() + 10
        while client.get("/api/collab/snapshot/story/intro").json()["store_version"] != 2:
            assert time.monotonic() < deadline, "the store write did not reach the room"
            time.sleep(0.05)
        frame = yjs.receive_bytes()  # the merge, as an update
        doc.apply_update(protocol.read_payload(frame, 2))
        text = doc.get("nodes", type=Map)["b"]["text"]
        assert str(text) == "Rewritten outside."
        snapshot = client.get("/api/collab/snapshot/story/intro").json()
        assert snapshot["store_version"] == 2 and snapshot["dirty"] is False


def test_a_client_behind_gets_the_snapshot_before_its_batch_applies(client: TestClient) -> None:
    edit = {"kind": "scene.field.set", "payload": {"field": "title", "value": "Moved on"}}
    assert (
        client.post("/api/collab/room/apply", json={"scene_id": "story/intro", "operations": [edit]}).status_code == 200
    )
    with client.websocket_connect("/api/collab/ws?scene_id=story/intro") as ws:
        assert _receive(ws, "room.joined")["version"] == 1
        node = {"kind": "graph.node.upsert", "payload": {"node": {"id": "z", "text": "Late"}}}
        ws.send_text(json.dumps({"type": "doc.apply", "since": 1, "operations": [node]}))
        assert json.loads(ws.receive_text())["type"] == "doc.update"  # up to date: no snapshot first
        ws.send_text(json.dumps({"type": "doc.apply", "since": 0, "operations": [node]}))
        caught_up = json.loads(ws.receive_text())
        assert caught_up["type"] == "doc.snapshot" and caught_up["snapshot"]["title"] == "Moved on"
        assert caught_up["version"] == 2
        assert _receive(ws, "doc.update")["operations"][0]["duplicate"] is False


def test_a_scene_slow_to_read_goes_without_snapshots_unless_asked(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(comfyvn_collab.session, "SNAPSHOT_BUDGET", 0.0)  # as if every read were too slow
    with client.websocket_connect("/api/collab/ws?scene_id=story/intro") as ws:
        _receive(ws, "room.joined")
        node = {"kind": "graph.node.upsert", "payload": {"node": {"id": "n", "text": "New"}}}
        ws.send_text(json.dumps({"type": "doc.apply", "operations": [node]}))
        update = _receive(ws, "doc.update")
        assert "snapshot" not in update and update["operations"][0]["applied"] is True
        again = {"kind": "scene.field.set", "payload": {"field": "title", "value": "Asked"}}
        ws.send_text(json.dumps({"type": "doc.apply", "operations": [again], "include_snapshot": True}))
        assert "snapshot" not in _receive(ws, "doc.update")
        assert _receive(ws, "doc.snapshot")["snapshot"]["title"] == "Asked"


def test_a_message_without_a_type_is_named(client: TestClient) -> None:
    with client.websocket_connect("/api/collab/ws?scene_id=story/intro") as ws:
        _receive(ws, "room.joined")
        ws.send_text(json.dumps({"notype": 1}))
        error = _receive(ws, "error")["error"]
        assert error["code"] == "missing_type" and error["field"] == "type"


def test_a_rest_batch_is_bounded_like_the_websocket(client: TestClient) -> None:
    node = {"id": "big", "text": "x" * (4 * 1024 * 1024)}
    body = {"scene_id": "story/intro", "operations": [{"kind": "graph.node.upsert", "payload": {"node": node}}]}
    answer = client.post("/api/collab/room/apply", json=body)
    assert answer.status_code == 413 and answer.json()["error"]["field"] == "body"
    assert client.get("/api/collab/snapshot/story/intro").json()["scene"]["nodes"][-1]["id"] == "b"


def test_flushing_every_room_saves_the_valid_ones_and_names_the_refused(client: TestClient, kernel: Kernel) -> None:
    store = ProjectStore.for_kernel(kernel)
    store.put_scene("story", "outro", {"id": "outro", "start": "z", "nodes": [{"id": "z", "text": "Bye"}]})
    broken = {"kind": "scene.field.set", "payload": {"field": "start", "value": "nowhere"}}
    fine = {"kind": "scene.field.set", "payload": {"field": "title", "value": "Saved"}}
    for room, op in (("story/intro", broken), ("story/outro", fine)):
        assert client.post("/api/collab/room/apply", json={"scene_id": room, "operations": [op]}).status_code == 200
    answer = client.post("/api/collab/flush", json={})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "flush_refused" and "story/intro" in error["message"]
    by_room = {result["room"]: result for result in error["flushed"]}
    assert by_room["story/outro"]["flushed"] is True and by_room["story/intro"]["flushed"] is False
    assert by_room["story/intro"]["error"]["code"] == "invalid_project"
    assert store.scene("story", "outro")[0]["title"] == "Saved"
    assert store.scene("story", "intro")[0]["start"] == "a"
    health = {room["room"]: room for room in client.get("/api/collab/health").json()["rooms"]}
    assert health["story/intro"]["dirty"] is True and health["story/intro"]["flush_error"]["code"] == "invalid_project"


def test_a_refused_automatic_flush_waits_for_the_next_edit(
    make_kernel: Callable[..., Kernel], runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel = _quiet_kernel(make_kernel, runtime, 0.2)
    writes: list[str] = []
    real = Hub._write

    def counting(self: Hub, room: Any, scene: dict[str, Any]) -> int:
        writes.append(scene["start"])
        return real(self, room, scene)

    monkeypatch.setattr(Hub, "_write", counting)
    broken = {"kind": "scene.field.set", "payload": {"field": "start", "value": "nowhere"}}
    fixed = {"kind": "scene.field.set", "payload": {"field": "start", "value": "b"}}
    with TestClient(create_app(kernel)) as client:
        client.post("/api/collab/room/apply", json={"scene_id": "story/intro", "operations": [broken]})
        time.sleep(2.0)  # ten quiet periods: one attempt, refused, and no retry on a timer
        assert writes == ["nowhere"]
        client.post("/api/collab/room/apply", json={"scene_id": "story/intro", "operations": [fixed]})
        deadline = time.monotonic() + 10
        while ProjectStore.for_kernel(kernel).scene("story", "intro")[0]["start"] != "b":
            assert time.monotonic() < deadline, "the fixed room was not saved"
            time.sleep(0.05)
        assert writes == ["nowhere", "b"]
    Hub.forget(kernel)


def test_a_room_edited_for_a_while_saves_once_the_typing_stops(
    make_kernel: Callable[..., Kernel], runtime: Any
) -> None:
    kernel = _quiet_kernel(make_kernel, runtime, 0.3)
    store = ProjectStore.for_kernel(kernel)
    with TestClient(create_app(kernel)) as client:
        for i in range(12):  # an edit every 0.1 s for 1.2 s: never quiet for 0.3 s
            op = {"kind": "scene.field.set", "payload": {"field": "title", "value": f"Draft {i}"}}
            client.post("/api/collab/room/apply", json={"scene_id": "story/intro", "operations": [op]})
            time.sleep(0.1)
        deadline = time.monotonic() + 5
        while store.scene("story", "intro")[0].get("title") != "Draft 11":
            assert time.monotonic() < deadline, "the room was not saved once the typing stopped"
            time.sleep(0.05)
    Hub.forget(kernel)
