"""Rooms and the hub without HTTP: a y-websocket client is a pycrdt Doc whose frames are handed to
`Room.receive` and whose inbox is a list. Real project store, real SQLite update log."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import comfyvn_collab.plugin
import comfyvn_scenario.plugin
import pytest
from comfyvn import Kernel
from comfyvn.errors import ComfyVNError, NotFound, TooLarge, Unprocessable
from comfyvn_collab import protocol
from comfyvn_collab.hub import Hub, three_way
from comfyvn_collab.persist import UpdateLog
from comfyvn_collab.protocol import AwarenessEntry, FrameError
from comfyvn_collab.room import Connection, DocumentFull, Room
from comfyvn_collab.session import apply_batch
from comfyvn_scenario.project import Project
from comfyvn_scenario.store import ProjectStore
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text

SCENE = {
    "id": "intro",
    "title": "Intro",
    "start": "a",
    "nodes": [
        {"id": "a", "type": "dialogue", "speaker": "ann", "text": "Hello", "choices": [{"id": "go", "target": "b"}]},
        {"id": "b", "type": "narration", "text": "The end.", "end": True},
    ],
}


def _project() -> Project:
    return Project(
        meta={"id": "story", "title": "Story", "start": "intro", "characters": {"ann": {"name": "Ann"}}},
        scenes={"intro": SCENE},
    )


@pytest.fixture
def kernel(make_kernel: Callable[..., Kernel]) -> Iterator[Kernel]:
    kernel = make_kernel(comfyvn_scenario.plugin, comfyvn_collab.plugin)
    ProjectStore.for_kernel(kernel).create(_project(), project_id="story")
    yield kernel
    Hub.forget(kernel)


@pytest.fixture
def hub(kernel: Kernel) -> Hub:
    return Hub.for_kernel(kernel)


class Peer:
    """A Yjs client in a test: a pycrdt Doc, what the room sent it, and its connection."""

    def __init__(self, room: Room, *, writable: bool = True) -> None:
        self.room = room
        self.doc = Doc()
        self.inbox: list[Any] = []
        self.conn: Connection = room.connect(self.inbox.append, writable=writable)
        self._outgoing: list[bytes] = []
        self.doc.observe(lambda event: self._outgoing.append(event.update))
        self.sync()

    def sync(self) -> None:
        """Answer the room's step 1, send ours, apply everything received."""
        self.room.receive(self.conn, protocol.step1_frame(self.doc.get_state()))
        self.pump()
        self._outgoing.clear()

    def pump(self) -> None:
        while self.inbox:
            frame = self.inbox.pop(0)
            if frame is None:
                continue
            if frame[0] == protocol.SYNC and frame[1] == protocol.STEP1:
                answer = self.doc.get_update(protocol.read_payload(frame, 2))
                self.room.receive(self.conn, protocol.step2_frame(answer))
            elif frame[0] == protocol.SYNC:
                self.doc.apply_update(protocol.read_payload(frame, 2))
        self._outgoing.clear()

    def push(self) -> None:
        """Send local edits as update frames."""
        outgoing, self._outgoing = self._outgoing, []
        for update in outgoing:
            self.room.receive(self.conn, protocol.update_frame(update))

    def text(self, node: str) -> Text:
        node_map = self.doc.get("nodes", type=Map)[node]
        assert isinstance(node_map, Map)
        text = node_map["text"]
        assert isinstance(text, Text)
        return text


def test_a_room_opens_from_the_store_and_a_client_gets_the_whole_scene(hub: Hub) -> None:
    room = hub.open_now("story", "intro")
    peer = Peer(room)
    assert str(peer.text("a")) == "Hello"
    assert [str(x) for x in peer.doc.get("order", type=Array)] == ["a", "b"]
    assert room.scene() == SCENE
    assert room.store_version == 1 and not room.dirty


def test_edits_reach_the_other_client_and_a_flush_writes_a_new_store_version(hub: Hub, kernel: Kernel) -> None:
    room = hub.open_now("story", "intro")
    ann, bob = Peer(room), Peer(room)
    with ann.doc.transaction():
        ann.text("a").insert(5, ", world")
    ann.push()
    bob.pump()
    assert str(bob.text("a")) == "Hello, world"
    assert room.dirty and room.version == 1
    result = hub.flush_now(room)
    assert result == {"room": "story/intro", "flushed": True, "store_version": 2}
    scene, version = ProjectStore.for_kernel(kernel).scene("story", "intro")
    assert version == 2 and scene["nodes"][0]["text"] == "Hello, world"
    assert not room.dirty
    assert hub.flush_now(room)["flushed"] is False  # nothing new: no new version


def test_a_read_only_client_syncs_but_its_updates_are_dropped(hub: Hub) -> None:
    room = hub.open_now("story", "intro")
    viewer = Peer(room, writable=False)
    viewer.text("a").insert(0, "X")
    viewer.push()
    assert room.scene()["nodes"][0]["text"] == "Hello"
    assert room.refused_updates == 1 and not room.dirty


def test_the_log_restores_unflushed_edits_after_a_crash_and_a_kept_copy_merges_without_duplicates(
    kernel: Kernel, hub: Hub
) -> None:
    room = hub.open_now("story", "intro")
    ann = Peer(room)
    ann.text("b").insert(0, "Finally. ")
    ann.push()
    hub.updates.sync()
    # A crash: nothing flushed, the hub is never closed; a new process opens the same files.
    fresh = Hub(ProjectStore.for_kernel(kernel), UpdateLog(hub.updates.path))
    try:
        again = fresh.open_now("story", "intro")
        assert again.scene()["nodes"][1]["text"] == "Finally. The end."
        assert again.dirty  # typed, never flushed
        # Ann's client kept its copy and reconnects: Yjs merges it, no text doubles.
        ann.room = again
        ann.conn = again.connect(ann.inbox.append)
        ann.sync()
        assert str(ann.text("b")) == "Finally. The end."
        assert again.scene()["nodes"][1]["text"] == "Finally. The end."
        assert fresh.flush_now(again)["store_version"] == 2
    finally:
        fresh.close()


def test_an_outside_write_is_merged_three_way_into_the_live_room(kernel: Kernel, hub: Hub) -> None:
    store = ProjectStore.for_kernel(kernel)
    room = hub.open_now("story", "intro")
    ann = Peer(room)
    ann.text("a").insert(5, " there")
    ann.push()
    outside = {**SCENE, "title": "Renamed", "nodes": [SCENE["nodes"][0], {**SCENE["nodes"][1], "text": "Fin."}]}
    store.put_scene("story", "intro", outside, if_match=1)
    # The flush finds the store moved on (a version conflict), merges, and writes both changes.
    assert hub.flush_now(room)["store_version"] == 3
    scene, _ = store.scene("story", "intro")
    assert scene["title"] == "Renamed"
    assert [n["text"] for n in scene["nodes"]] == ["Hello there", "Fin."]
    ann.pump()
    assert str(ann.text("b")) == "Fin."  # the merge reached the client as an update


def test_an_invalid_scene_is_not_flushed_and_the_room_keeps_it(kernel: Kernel, hub: Hub) -> None:
    room = hub.open_now("story", "intro")
    ann = Peer(room)
    ann.doc.get("scene", type=Map)["start"] = "nowhere"
    ann.push()
    with pytest.raises(Unprocessable):
        hub.flush_now(room)
    assert room.dirty and room.flush_error is not None and room.flush_error["code"] == "invalid_project"
    assert ProjectStore.for_kernel(kernel).scene("story", "intro")[1] == 1
    ann.doc.get("scene", type=Map)["start"] = "a"
    ann.text("a").insert(0, "So. ")
    ann.push()
    assert hub.flush_now(room)["store_version"] == 2
    assert room.flush_error is None and not room.dirty


def test_a_deleted_scene_cannot_be_opened_and_its_log_is_dropped(kernel: Kernel, hub: Hub) -> None:
    with pytest.raises(NotFound):
        hub.open_now("story", "nope")
    with pytest.raises(NotFound):
        hub.open_now("elsewhere", "intro")
    room = hub.open_now("story", "intro")
    assert hub.updates.rooms() == ["story/intro"]
    hub.left(room)  # nobody in it, nothing to flush: unloaded
    assert hub.rooms == {}
    store = ProjectStore.for_kernel(kernel)
    store.put_scene("story", "outro", {"id": "outro", "start": "z", "nodes": [{"id": "z", "text": "Bye"}]})
    meta = store.load("story").project.meta
    store.update_project("story", {**meta, "start": "outro"})
    store.delete_scene("story", "intro")
    with pytest.raises(NotFound):
        hub.open_now("story", "intro")
    assert hub.updates.rooms() == []


def test_presence_is_relayed_owned_and_cleared_when_a_client_leaves(hub: Hub) -> None:
    room = hub.open_now("story", "intro")
    ann, bob = Peer(room), Peer(room)
    state = {"user": {"id": "ann", "name": "Ann", "color": "#ff0000"}, "node": "a"}
    frame = protocol.awareness_frame(protocol.encode_awareness([AwarenessEntry(ann.doc.client_id, 1, state)]))
    room.receive(ann.conn, frame)
    assert bob.inbox[-1] == frame and room.presence()[0]["state"] == state
    # Bob cannot speak for Ann's client id.
    spoof = AwarenessEntry(ann.doc.client_id, 9, {"user": {"name": "Mallory"}})
    room.receive(bob.conn, protocol.awareness_frame(protocol.encode_awareness([spoof])))
    assert room.presence()[0]["state"] == state
    # A late joiner is told who is here.
    carl = Peer(room)
    assert any(f[0] == protocol.AWARENESS for f in carl.inbox if f) or room.awareness
    room.disconnect(ann.conn)
    gone = protocol.decode_awareness(protocol.read_payload(bob.inbox[-1], 1))
    assert gone == [AwarenessEntry(ann.doc.client_id, 2, None)]
    assert room.presence() == []


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_are_a_frame_error_or_harmless_never_a_crash(data: bytes) -> None:
    doc = Doc()
    doc.get("nodes", type=Map)
    room = Room("p", "s", doc, store_version=1, base="{}")
    conn = room.connect(lambda frame: None)
    before = doc.get_update()
    try:
        room.receive(conn, data)
    except FrameError:
        assert doc.get_update() == before


def test_a_bad_update_is_refused_and_changes_nothing(hub: Hub) -> None:
    room = hub.open_now("story", "intro")
    ann = Peer(room)
    with pytest.raises(FrameError):
        room.receive(ann.conn, protocol.update_frame(b"\x01\x02\x03"))
    with pytest.raises(FrameError):
        room.receive(ann.conn, b"\x00\x02\x05\x00")  # the length prefix says 5, one byte follows
    assert room.scene() == SCENE and not room.dirty


def test_three_way_takes_what_the_outside_changed_and_keeps_the_rest() -> None:
    base = {"id": "s", "title": "T", "start": "a", "nodes": [{"id": "a", "text": "1"}, {"id": "b", "text": "2"}]}
    ours = {**base, "nodes": [{"id": "a", "text": "1 edited"}, {"id": "b", "text": "2"}, {"id": "c", "text": "new"}]}
    theirs = {**base, "title": "T2", "nodes": [{"id": "b", "text": "2 outside"}, {"id": "a", "text": "1"}]}
    merged = three_way(base, ours, theirs)
    assert merged["title"] == "T2"
    assert merged["nodes"] == [
        {"id": "b", "text": "2 outside"},
        {"id": "a", "text": "1 edited"},
        {"id": "c", "text": "new"},
    ]
    removed = three_way(base, ours, {**base, "nodes": [{"id": "a", "text": "1"}]})
    assert [n["id"] for n in removed["nodes"]] == ["a", "c"]


def test_a_hub_closing_flushes_what_changed(kernel: Kernel, hub: Hub, tmp_path: Path) -> None:
    room = hub.open_now("story", "intro")
    ann = Peer(room)
    ann.text("a").insert(0, "Oh. ")
    ann.push()
    Hub.forget(kernel)
    assert ann.inbox[-1] is None  # the connection is told to close
    scene, version = ProjectStore.for_kernel(kernel).scene("story", "intro")
    assert version == 2 and scene["nodes"][0]["text"] == "Oh. Hello"


def test_a_room_over_its_size_limit_refuses_edits_until_the_store_cuts_it_down(kernel: Kernel, hub: Hub) -> None:
    store = ProjectStore.for_kernel(kernel)
    hub.max_bytes = 4096
    room = hub.open_now("story", "intro")
    assert 0 < room.size < 4096 and room.status()["max_bytes"] == 4096
    ann = Peer(room)
    ann.text("a").insert(5, " and on" * 800)  # taken: the room was under its limit (one update may overshoot)
    ann.push()
    assert room.size > 4096 and room.scene()["nodes"][0]["text"].endswith("and on")
    ann.text("b").insert(0, "Later: ")
    with pytest.raises(DocumentFull, match="over its size limit"):
        ann.push()
    assert room.scene()["nodes"][1]["text"] == "The end." and room.refused_updates == 1
    with pytest.raises(TooLarge) as info:
        apply_batch(
            room,
            "bob",
            [{"kind": "graph.node.upsert", "payload": {"node": {"id": "b", "text": "x"}}}],
            sender=None,
            emit=None,
        )
    assert info.value.code == "document_too_large"  # TooLarge: 413 over HTTP
    # Cut down through the store (a REST PUT): the flush merges it in, measures the document, and edits go on.
    short = {**SCENE, "nodes": [{**SCENE["nodes"][0], "text": "Hi"}, SCENE["nodes"][1]]}
    store.put_scene("story", "intro", short, if_match=1)
    hub.flush_now(room)
    assert room.scene()["nodes"][0]["text"] == "Hi" and room.size < 4096 and not room.full()
    # The refused client was closed (1009); reconnecting, it syncs, and its refused edit arrives now.
    room.disconnect(ann.conn)
    ann.conn = room.connect(ann.inbox.append, writable=True)
    ann.pump()
    assert room.scene()["nodes"][1]["text"] == "Later: The end."


def test_the_size_limit_is_read_from_the_config(make_kernel: Callable[..., Kernel]) -> None:
    kernel = make_kernel(comfyvn_scenario.plugin, comfyvn_collab.plugin)
    config = kernel.paths.config / "comfyvn.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"collab": {"max_document_mib": 2}}), encoding="utf-8")
    try:
        assert Hub.for_kernel(kernel).max_bytes == 2 * 2**20
    finally:
        Hub.forget(kernel)
    config.write_text(json.dumps({"collab": {"max_document_mib": 0}}), encoding="utf-8")
    with pytest.raises(ComfyVNError, match="max_document_mib"):
        Hub.for_kernel(kernel)
