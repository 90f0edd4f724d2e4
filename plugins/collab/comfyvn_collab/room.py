"""One collaboration room: the Yjs document of one scene, the clients connected to it and their presence.

Everything here runs on the server's event loop and is synchronous: a frame comes in, the document
changes, and the frames for every other client are handed to their ``sink`` (a bounded per-connection
queue drained by the WebSocket route), so the path of one keystroke is a decode, one pycrdt
``apply_update``, one log append and a few queue puts.

Two kinds of client share a room. Yjs clients (the ``y-websocket`` provider, pycrdt) exchange binary
frames (`comfyvn_collab.protocol`); JSON clients speak the original ComfyVN protocol
(`comfyvn_collab.session`), whose operations become Yjs transactions on the same document, so each
sees the other's edits. Presence is Yjs awareness; a JSON client's presence is published there under
a client id of its own, and JSON clients are told about everyone's.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from comfyvn.digest import digest
from pycrdt import Doc

from . import layout
from .jsonops import ControlLocks, OpLog
from .persist import UpdateLog
from .protocol import (
    AWARENESS,
    QUERY_AWARENESS,
    STEP1,
    STEP2,
    SYNC,
    UPDATE,
    AwarenessEntry,
    FrameError,
    awareness_frame,
    decode_awareness,
    encode_awareness,
    read_payload,
    step1_frame,
    step2_frame,
    update_frame,
)

__all__ = ["DEFAULT_MAX_BYTES", "Connection", "DocumentFull", "Room"]

_EMPTY_UPDATE = b"\x00\x00"
#: A room's document may grow to this (its encoded state): far past any scene a person writes (a 10,000-node
#: scene is a few MiB), near enough that an endless stream of edits cannot fill the disk or the memory.
DEFAULT_MAX_BYTES = 64 * 2**20


class DocumentFull(Exception):
    """A client's edit to a room whose document is over its size limit (the route closes with 1009)."""


_ids = itertools.count(1)


class Connection:
    """One client of a room. ``sink`` takes the frames (bytes) or messages (str) meant for it."""

    __slots__ = ("actor", "clients", "id", "kind", "name", "sink", "writable")

    def __init__(
        self, sink: Callable[[Any], None], *, kind: str, writable: bool, actor: str | None, name: str | None
    ) -> None:
        self.id = next(_ids)
        self.sink = sink
        self.kind = kind
        self.writable = writable
        self.actor = actor
        self.name = name
        self.clients: set[int] = set()  # awareness client ids this connection speaks for


class Room:
    """The live document of scene ``scene_id`` of project ``project_id`` and its clients.

    ``store_version`` and ``base`` are the scene version (and its JSON text) the document last matched in
    the project store; ``changed`` is called after every change (the hub times flushes from it).
    """

    def __init__(
        self,
        project_id: str,
        scene_id: str,
        doc: Doc[Any],
        *,
        store_version: int,
        base: str,
        log: UpdateLog | None = None,
        changed: Callable[[Room, str], None] | None = None,
        compact_every: int = 5000,
        clock: Callable[[], float] = time.time,
        max_bytes: int = DEFAULT_MAX_BYTES,
        size: int | None = None,
    ) -> None:
        self.project_id = project_id
        self.scene_id = scene_id
        self.name = f"{project_id}/{scene_id}"
        self.doc = doc
        self.store_version = store_version
        self.base = base
        self.log = log
        # The room version (+1 per applied operation or Yjs update) and the JSON protocol's history.
        self._ops = OpLog()
        self._unlogged = 0  # Yjs changes not yet counted in the op log's version (counted when it is read)
        self.locks = ControlLocks()
        self.extras: dict[str, Any] = {}  # per-room state of the protocol front ends
        self.dirty = False  # changed since the document last matched the store
        self.changed_at = 0.0  # when the hub last saw the document change (it times quiet periods)
        self.seen_changes = 0  # `changes` as the hub last saw it
        self.dirty_since = 0.0
        self.updates_since_compaction = 0
        self.refused_updates = 0
        self.flush_error: dict[str, Any] | None = None
        self.closed = False
        self.conns: dict[int, Connection] = {}
        self._yjs: list[Connection] = []
        self.awareness: dict[int, AwarenessEntry] = {}
        self._owner: dict[int, int] = {}  # awareness client id -> connection id
        self._changed_cb = changed
        self._clock = clock
        self.listeners: list[Callable[[Room, Connection | None, str], None]] = []
        self._scene: tuple[int, dict[str, Any]] | None = None
        self.changes = 0  # +1 per change of the document, whatever its source
        self.yjs_updates = 0  # Yjs updates since the hub last announced them
        # Set by the hub while it has a timer armed for this room (its flush and announcements), so a
        # change need not call it; `compact_every` still calls it when the log is due for compaction.
        self.watched = False
        self.compact_every = compact_every
        self.read_seconds = 0.0  # how long the last `scene()` read took
        # The document's size: measured (its encoded state; ``size`` when the opener already encoded it)
        # when the room opens and at each compaction, then grown by each update's size, an upper bound
        # (deletions shrink the document, not this).
        self.max_bytes = max_bytes
        self.size = self._measured = len(doc.get_update()) if size is None else size

    # -- connections ---------------------------------------------------------------------------------
    def connect(
        self,
        sink: Callable[[Any], None],
        *,
        kind: str = "yjs",
        writable: bool = True,
        actor: str | None = None,
        name: str | None = None,
    ) -> Connection:
        """Join a client. A Yjs client is sent sync step 1 and everyone's presence, as the reference server
        does; it answers with its own step 1 and gets what it lacks in step 2."""
        conn = Connection(sink, kind=kind, writable=writable, actor=actor, name=name)
        self.conns[conn.id] = conn
        if kind == "yjs":
            self._yjs.append(conn)
            sink(step1_frame(self.doc.get_state()))
            if self.awareness:
                sink(awareness_frame(encode_awareness(list(self.awareness.values()))))
        return conn

    def disconnect(self, conn: Connection) -> None:
        """Forget ``conn`` and tell the others its presence is gone."""
        if self.conns.pop(conn.id, None) is None:
            return
        if conn in self._yjs:
            self._yjs.remove(conn)
        gone = []
        for client_id in sorted(conn.clients):
            entry = self.awareness.pop(client_id, None)
            self._owner.pop(client_id, None)
            if entry is not None:
                gone.append(AwarenessEntry(client_id, entry.clock + 1, None))
        if gone:
            self._publish_awareness(gone, sender=conn)

    # -- Yjs frames ----------------------------------------------------------------------------------
    def receive(self, conn: Connection, frame: bytes) -> None:
        """Handle one y-websocket frame from ``conn``; `FrameError` when it is malformed (the route closes
        the connection). Updates from a read-only connection are dropped and counted."""
        if len(frame) < 2:
            raise FrameError("the frame is too short")
        kind = frame[0]
        if kind == SYNC:
            step = frame[1]
            if step in (UPDATE, STEP2):
                # `read_payload`'s one-byte-length case inline (most keystrokes); the rest through it.
                size = frame[2] if len(frame) > 2 else 0x80
                update = frame[3:] if size < 0x80 and len(frame) == 3 + size else read_payload(frame, 2)
                if update == _EMPTY_UPDATE:
                    return
                if not conn.writable:
                    self.refused_updates += 1
                    return
                if self.size > self.max_bytes and self.full():
                    self.refused_updates += 1
                    raise DocumentFull(self.full_message())
                try:
                    self.doc.apply_update(update)
                except ValueError as exc:
                    raise FrameError("the update cannot be decoded") from exc
                # An update frame goes on to the others as it came; a step 2 becomes an update frame.
                self._changed(update, conn, "yjs", frame if step == UPDATE else None)
            elif step == STEP1:
                state = read_payload(frame, 2)
                try:
                    answer = self.doc.get_update(state)
                except ValueError as exc:
                    raise FrameError("the state vector cannot be decoded") from exc
                conn.sink(step2_frame(answer))
            else:
                raise FrameError(f"unknown sync step {step}")
        elif kind == AWARENESS:
            self._receive_awareness(conn, decode_awareness(read_payload(frame, 1)))
        elif kind == QUERY_AWARENESS:
            conn.sink(awareness_frame(encode_awareness(list(self.awareness.values()))))
        # Other message types (auth) are not used by this server; like the reference server, ignore them.

    def _receive_awareness(self, conn: Connection, entries: list[AwarenessEntry]) -> None:
        accepted = []
        for entry in entries:
            owner = self._owner.get(entry.client_id)
            if owner is not None and owner != conn.id:
                continue  # nobody speaks for another connection's client
            known = self.awareness.get(entry.client_id)
            if known is not None and not (
                entry.clock > known.clock or (entry.clock == known.clock and entry.state is None)
            ):
                continue
            if entry.state is None:
                self.awareness.pop(entry.client_id, None)
                self._owner.pop(entry.client_id, None)
                conn.clients.discard(entry.client_id)
            else:
                if len(conn.clients) >= 16 and entry.client_id not in conn.clients:
                    continue  # one connection, a handful of documents at most
                self.awareness[entry.client_id] = entry
                self._owner[entry.client_id] = conn.id
                conn.clients.add(entry.client_id)
            accepted.append(entry)
        if accepted:
            self._publish_awareness(accepted, sender=conn)

    def set_presence(self, conn: Connection, state: dict[str, Any] | None) -> AwarenessEntry:
        """Publish a JSON client's presence as Yjs awareness, under a client id of its own."""
        if not conn.clients:
            client_id = random.getrandbits(31)
            while client_id in self.awareness or client_id == self.doc.client_id:
                client_id = random.getrandbits(31)
            conn.clients.add(client_id)
            self._owner[client_id] = conn.id
        client_id = next(iter(conn.clients))
        known = self.awareness.get(client_id)
        # Clock 1 first: a Yjs client ignores a client it does not know yet at clock 0 (y-protocols takes
        # 0 as the clock it already has), so a first state at 0 would never show in a browser.
        entry = AwarenessEntry(client_id, 1 if known is None else known.clock + 1, state)
        if state is None:
            self.awareness.pop(client_id, None)
        else:
            self.awareness[client_id] = entry
        self._publish_awareness([entry], sender=conn)
        return entry

    def _publish_awareness(self, entries: list[AwarenessEntry], *, sender: Connection | None) -> None:
        frame = awareness_frame(encode_awareness(entries))
        for other in self._yjs:
            if other is not sender:
                other.sink(frame)
        for listener in self.listeners:
            listener(self, sender, "presence")

    def presence(self) -> list[dict[str, Any]]:
        """Everyone here now: awareness client id, whether a Yjs or JSON client, and its state."""
        kinds = {cid: self.conns[owner].kind for cid, owner in self._owner.items() if owner in self.conns}
        return [
            {"client_id": cid, "source": kinds.get(cid, "yjs"), "clock": entry.clock, "state": entry.state}
            for cid, entry in sorted(self.awareness.items())
        ]

    # -- size --------------------------------------------------------------------------------------------
    def full(self) -> bool:
        """Whether the document is over `max_bytes`, measured again when it changed since last measured
        (the running size only ever overestimates). Clients' edits are refused while it is; the store's
        writes still merge in, so a REST ``PUT`` that cuts the scene down, or `comfyvn collab discard`,
        frees the room."""
        if self.size > self.max_bytes and self.size != self._measured:
            self.measured(len(self.doc.get_update()))
        return self.size > self.max_bytes

    def measured(self, size: int) -> None:
        """Record the document's real size (the hub measures it when it compacts the log)."""
        self.size = self._measured = size

    def full_message(self) -> str:
        return (
            f"the document of room {self.name} is over its size limit ({self.max_bytes // 2**20} MiB); "
            "edits are refused until the scene is cut down through the project store"
        )

    # -- server-side edits ---------------------------------------------------------------------------
    @contextmanager
    def edit(self, sender: Connection | None = None, source: str = "json") -> Iterator[Doc[Any]]:
        """Edit the document on the server (JSON operations, merges from the store): the change is sent to
        every Yjs client and logged like any client's update."""
        before = self.doc.get_state()
        yield self.doc
        update = self.doc.get_update(before)
        if update != _EMPTY_UPDATE:
            self._changed(update, sender, source)

    @property
    def ops(self) -> OpLog:
        """The JSON protocol's op log, with every change so far counted in its version."""
        if self._unlogged:
            self._ops.advance(self._unlogged)
            self._unlogged = 0
        return self._ops

    @property
    def version(self) -> int:
        """The room version: +1 per applied JSON operation or other change, since the room opened."""
        return self._ops.version + self._unlogged

    def _changed(self, update: bytes, sender: Connection | None, source: str, frame: bytes | None = None) -> None:
        # The path of every keystroke of every client: kept to attribute updates and direct calls.
        self.changes += 1
        self.size += len(update)
        if source != "json":
            self._unlogged += 1  # a JSON batch is counted per operation by the op log
        if frame is None:
            frame = update_frame(update)
        if self.log is not None:
            self.log.append(self.name, frame)
            self.updates_since_compaction += 1
        for other in self._yjs:
            if other is not sender:
                other.sink(frame)
        if not self.dirty:
            self.dirty = True
            self.dirty_since = self._clock()
        if source == "yjs":
            self.yjs_updates += 1
        if self.listeners:
            for listener in self.listeners:
                listener(self, sender, source)
        if self._changed_cb is not None and (not self.watched or self.updates_since_compaction >= self.compact_every):
            self._changed_cb(self, source)

    # -- views ---------------------------------------------------------------------------------------
    def scene(self) -> dict[str, Any]:
        """The scene as scenario JSON, as the document holds it now (read once per room version: a
        10,000-node scene takes about a second to read, and every JSON client, snapshot and flush needs it).
        The dict is shared: callers must not change it."""
        if self._scene is None or self._scene[0] != self.changes:
            started = time.perf_counter()
            self._scene = (self.changes, layout.to_scene(self.doc))
            self.read_seconds = time.perf_counter() - started
        return self._scene[1]

    def snapshot(self) -> dict[str, Any]:
        """The wire snapshot: the scene, the room version, the store version and a digest of the scene."""
        scene = self.scene()
        return {
            "room": self.name,
            "project": self.project_id,
            "scene_id": self.scene_id,
            "version": self.version,
            "store_version": self.store_version,
            "dirty": self.dirty,
            "digest": digest(scene),
            "scene": scene,
        }

    def status(self) -> dict[str, Any]:
        """Counts for health and listings."""
        return {
            "room": self.name,
            "version": self.version,
            "store_version": self.store_version,
            "dirty": self.dirty,
            "clients": {"yjs": len(self._yjs), "json": len(self.conns) - len(self._yjs)},
            "refused_updates": self.refused_updates,
            "flush_error": self.flush_error,
            "size_bytes": self.size,
            "max_bytes": self.max_bytes,
        }
