"""The rooms of one server: opened from the project store (or the update log), flushed back to it.

A room opens on first join: from its update log when there is one (the document exactly as it was,
Yjs history included, so clients that kept a copy merge rather than duplicate), otherwise from the
scene in the project store. It is written back to the store — `layout.to_scene`, validated and
versioned by the store like any other write — on ``POST /api/collab/flush``, after a quiet period
(``quiet`` seconds without an edit, or ``max_dirty`` seconds of continuous editing), and on shutdown.

A write to the scene that did not come from the room (a REST ``PUT``, a narrator apply, a restore) is
merged into the live document three-way against the version the room last matched: what the outside
changed wins for the fields and nodes it changed, the room's own edits stay everywhere else.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import structlog
from comfyvn.errors import ComfyVNError, Invalid, NotFound, PreconditionFailed
from comfyvn.wire import dumps, loads
from comfyvn_scenario.store import ProjectStore
from pycrdt import Array, Doc

from . import layout
from .features import OPERATION_EVENT
from .persist import RoomLog, UpdateLog
from .room import DEFAULT_MAX_BYTES, Room

__all__ = ["Hub", "three_way"]

log = structlog.get_logger("comfyvn.collab")

_HUBS: weakref.WeakKeyDictionary[Any, Hub] = weakref.WeakKeyDictionary()
_HUBS_LOCK = threading.Lock()


def three_way(base: Mapping[str, Any], ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> dict[str, Any]:
    """Merge an outside change (``base`` -> ``theirs``) into the room's scene (``ours``): for each top-level
    field and each node, what ``theirs`` changed wins, anything else stays as ``ours`` has it."""
    merged: dict[str, Any] = {}
    for key in dict.fromkeys([*ours, *theirs]):
        if key == "nodes":
            continue
        side = theirs if theirs.get(key, _MISSING) != base.get(key, _MISSING) else ours
        if key in side:
            merged[key] = side[key]
    by_id = {n["id"]: n for n in base.get("nodes", [])}
    mine = {n["id"]: n for n in ours.get("nodes", [])}
    yours = {n["id"]: n for n in theirs.get("nodes", [])}
    order_theirs = [n["id"] for n in theirs.get("nodes", [])]
    order_base = [n["id"] for n in base.get("nodes", [])]
    order_ours = [n["id"] for n in ours.get("nodes", [])]
    if order_theirs != order_base:
        order = order_theirs + [nid for nid in order_ours if nid not in yours and nid not in by_id]
    else:
        order = order_ours + [nid for nid in order_theirs if nid not in mine and nid not in by_id]
    nodes = []
    for nid in dict.fromkeys(order):
        node = yours.get(nid) if yours.get(nid) != by_id.get(nid) else mine.get(nid)
        if node is not None:
            nodes.append(node)
    merged["nodes"] = nodes
    return merged


_MISSING = object()


class Hub:
    """The open rooms of one host, the update log behind them and their flushes to the project store."""

    def __init__(
        self,
        store: ProjectStore,
        updates: UpdateLog,
        *,
        emit: Callable[[str, dict[str, Any]], Any] | None = None,
        bus: Any = None,
        quiet: float = 2.0,
        max_dirty: float = 30.0,
        compact_every: int = 5000,
        clock: Callable[[], float] = time.time,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.store = store
        self.updates = updates
        self.emit = emit
        self.bus = bus  # the kernel's event bus: outside writes to a scene are merged into its open room
        self.quiet = quiet
        self.max_dirty = max_dirty
        self.compact_every = compact_every
        self.max_bytes = max_bytes
        self.clock = clock
        self.rooms: dict[str, Room] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._flushing: set[str] = set()
        self._subscribed = False
        self.closed = False
        self.manual = False  # set by `open_now`: no event loop, no automatic flushes or events

    @classmethod
    def for_kernel(cls, kernel: Any) -> Hub:
        """The hub of ``kernel`` (one per kernel; its log at ``<data>/plugins/collab/rooms.sqlite3``).
        ``collab.quiet_seconds`` / ``collab.max_dirty_seconds`` in comfyvn.json time the automatic flush;
        ``collab.max_document_mib`` bounds a room's document (64 MiB)."""
        with _HUBS_LOCK:
            hub = _HUBS.get(kernel)
            if hub is None or hub.closed:
                settings = kernel.config.get("collab") if isinstance(kernel.config, Mapping) else None
                settings = settings if isinstance(settings, Mapping) else {}
                quiet = _setting(settings, "quiet_seconds", 2.0, 0.1, 3600, "seconds")
                max_dirty = _setting(settings, "max_dirty_seconds", 30.0, 0.1, 3600, "seconds")
                max_mib = _setting(settings, "max_document_mib", DEFAULT_MAX_BYTES / 2**20, 1, 1024, "MiB")
                updates = UpdateLog(kernel.paths.plugin_dir("collab") / "rooms.sqlite3")
                hub = cls(
                    ProjectStore.for_kernel(kernel),
                    updates,
                    emit=kernel.events.emit,
                    bus=kernel.events,
                    quiet=quiet,
                    max_dirty=max_dirty,
                    max_bytes=int(max_mib * 2**20),
                )
                _HUBS[kernel] = hub
            return hub

    @classmethod
    def forget(cls, kernel: Any, *, flush: bool = True) -> None:
        """Close ``kernel``'s hub (flushing every changed room unless ``flush`` is False) if one was opened."""
        with _HUBS_LOCK:
            hub = _HUBS.pop(kernel, None)
        if hub is not None:
            hub.close(flush=flush)

    # -- rooms -------------------------------------------------------------------------------------
    def parse_room(self, room: Any, field: str = "room") -> tuple[str, str]:
        """``<project_id>/<scene_id>`` split and checked (400 naming ``field`` otherwise)."""
        if not isinstance(room, str) or room.count("/") != 1:
            raise Invalid("a room is named '<project_id>/<scene_id>'", field=field, code="invalid_room")
        project_id, scene_id = room.split("/")
        self.check_ids(project_id, scene_id, field)
        return project_id, scene_id

    def check_ids(self, project_id: str, scene_id: str, field: str = "room") -> None:
        """Refuse ids the store would refuse, before anything is opened."""
        try:
            self.store.path(project_id)
            self.store.check_scene_id(scene_id)
        except NotFound:
            raise
        except ComfyVNError as exc:
            raise Invalid(exc.message, field=field, code="invalid_room") from exc

    async def open(self, project_id: str, scene_id: str) -> Room:
        """The room of ``project_id/scene_id``, opened on first use (404 when the store has no such scene)."""
        name = f"{project_id}/{scene_id}"
        room = self.rooms.get(name)
        if room is not None:
            return room
        self._subscribe()
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            room = self.rooms.get(name)
            if room is None:
                try:
                    scene, version, saved = await anyio.to_thread.run_sync(self._read, project_id, scene_id)
                except NotFound:
                    self.updates.drop(name)  # a deleted scene's log has nothing left to flush into
                    raise
                room = self._build(project_id, scene_id, scene, version, saved)
        return room

    def open_now(self, project_id: str, scene_id: str) -> Room:
        """`open` without an event loop (benchmarks, the CLI): flushes are explicit (`flush_now`)."""
        self.manual = True
        name = f"{project_id}/{scene_id}"
        room = self.rooms.get(name)
        if room is None:
            try:
                found = self._read(project_id, scene_id)
            except NotFound:
                self.updates.drop(name)
                raise
            room = self._build(project_id, scene_id, *found)
        return room

    def _read(self, project_id: str, scene_id: str) -> tuple[dict[str, Any], int, RoomLog | None]:
        self.check_ids(project_id, scene_id)
        scene, version = self.store.scene(project_id, scene_id)
        return scene, version, self.updates.load(f"{project_id}/{scene_id}")

    def _build(
        self, project_id: str, scene_id: str, scene: dict[str, Any], version: int, saved: RoomLog | None
    ) -> Room:
        name = f"{project_id}/{scene_id}"
        layout.check_scene(scene)
        doc: Doc[Any] | None = None
        if saved is not None and saved.updates:
            doc = Doc()
            for update in saved.updates:
                doc.apply_update(update)
            if not doc.get(layout.ORDER, type=Array):
                doc = None  # an empty log (a damaged file): start again from the store
        if doc is None or saved is None:
            doc = layout.new_doc(scene)
            full = doc.get_update()
            room = Room(
                project_id,
                scene_id,
                doc,
                store_version=version,
                base=dumps(scene),
                log=self.updates,
                changed=self._changed,
                compact_every=self.compact_every,
                max_bytes=self.max_bytes,
                size=len(full),
            )
            self.updates.reset(name, version, room.base, full)
        else:
            room = Room(
                project_id,
                scene_id,
                doc,
                store_version=saved.store_version,
                base=saved.base,
                log=self.updates,
                changed=self._changed,
                compact_every=self.compact_every,
                max_bytes=self.max_bytes,
            )
            base = loads(saved.base)
            if room.scene() != base:
                room.dirty = True  # typed before a crash, never flushed
                room.dirty_since = room.changed_at = self.clock()
            if version != saved.store_version:
                self._merge(room, scene, version)
            log.info("collab room restored from its log", room=name, updates=len(saved.updates), dirty=room.dirty)
        self.rooms[name] = room
        if room.dirty:
            self._changed(room)
        return room

    def _compact(self, room: Room, version: int) -> None:
        """Log the room as one update (the whole document) from store ``version``; its size is measured."""
        full = room.doc.get_update()
        self.updates.reset(room.name, version, room.base, full)
        room.updates_since_compaction = 0
        room.measured(len(full))

    def _merge(self, room: Room, theirs: dict[str, Any], version: int) -> None:
        """Bring a scene written outside the room (store ``version``) into it, keeping the room's edits."""
        merged = three_way(loads(room.base), room.scene(), theirs)
        with room.edit(source="store"):
            layout.apply_scene(room.doc, merged)
        room.store_version = version
        room.base = dumps(theirs)
        room.dirty = room.scene() != theirs
        self._compact(room, version)
        log.info("collab room merged a store write", room=room.name, store_version=version, dirty=room.dirty)

    # -- change tracking, automatic flushes, coalesced events --------------------------------------
    def _changed(self, room: Room, source: str = "") -> None:
        """Called by a room after a change while it is not `Room.watched` (no timer armed yet), or when
        its log is due for compaction: compacts, and arms the timer that flushes and announces."""
        if room.updates_since_compaction >= self.compact_every:
            self._compact(room, room.store_version)
        if self.manual:
            room.watched = True  # no loop: flushes are explicit, nothing to arm
            return
        if room.name in self._timers:
            return
        # A change just happened (rooms call only when no timer is armed); later ones are noticed by
        # `_tick` from the room's change counter, so a keystroke never reads the clock.
        room.changed_at, room.seen_changes = self.clock(), room.changes
        self._arm(room)

    def _arm(self, room: Room) -> None:
        """Look at ``room`` again in a moment (flush when quiet, announce Yjs edits)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        room.watched = True
        self._timers[room.name] = loop.call_later(min(self.quiet, 1.0), self._tick, room)

    def _tick(self, room: Room) -> None:
        self._timers.pop(room.name, None)
        room.watched = False
        self._announce_yjs(room)
        if self.closed or room.closed or not room.dirty:
            return
        now = self.clock()
        if room.changes != room.seen_changes:  # edited since the last look: the quiet period starts again
            room.changed_at, room.seen_changes = now, room.changes
        if now - room.changed_at >= self.quiet or now - room.dirty_since >= self.max_dirty:
            asyncio.get_running_loop().create_task(self._auto_flush(room))
        else:
            self._arm(room)

    def _announce_yjs(self, room: Room) -> None:
        """One ``on_collab_operation`` for the Yjs updates counted since the last."""
        count, room.yjs_updates = room.yjs_updates, 0
        if count and self.emit is not None:
            self.emit(
                OPERATION_EVENT,
                {
                    "room": room.name,
                    "project": room.project_id,
                    "scene": room.scene_id,
                    "source": "yjs",
                    "actor": None,
                    "version": room.version,
                    "operations": [],
                    "updates": count,
                },
            )

    async def _auto_flush(self, room: Room) -> None:
        # A refused flush (a scene that does not validate) is not retried on a timer: the same scene would be
        # refused again every second. The room's next edit arms the timer again (the edit may fix it), and an
        # explicit flush or the shutdown tries regardless; until then the error shows in the room's status.
        try:
            await self.flush(room)
        except ComfyVNError as exc:
            log.warning("collab automatic flush refused", room=room.name, code=exc.code, error=exc.message)
        except Exception as exc:
            room.flush_error = {"code": "flush_failed", "message": str(exc)[:200], "field": None}
            log.exception("collab automatic flush failed", room=room.name)
        else:
            if room.dirty and not self.closed:
                self._changed(room)  # edited while it was being written: flush again after the quiet period

    # -- flushing -----------------------------------------------------------------------------------
    async def flush(self, room: Room) -> dict[str, Any]:
        """Write the room's scene to the store if it changed (422 when it is not a valid scene: the room is
        kept as it is, and the error is shown in its status until a flush succeeds)."""
        if room.name in self._flushing:
            return {"room": room.name, "flushed": False, "store_version": room.store_version, "busy": True}
        self._flushing.add(room.name)
        try:
            for _ in range(3):
                if not room.dirty:
                    return {"room": room.name, "flushed": False, "store_version": room.store_version}
                scene = room.scene()
                at = room.version
                try:
                    stored = await anyio.to_thread.run_sync(self._write, room, scene)
                except PreconditionFailed:
                    theirs, version = await anyio.to_thread.run_sync(self.store.scene, room.project_id, room.scene_id)
                    self._merge(room, theirs, version)
                    continue
                except ComfyVNError as exc:
                    room.flush_error = {"code": exc.code, "message": exc.message, "field": exc.field}
                    raise
                self._flushed(room, scene, stored, at)
                return {"room": room.name, "flushed": True, "store_version": room.store_version}
            raise PreconditionFailed(
                "the scene kept changing in the store while the room was being flushed; try again",
                field="room",
            )
        finally:
            self._flushing.discard(room.name)

    async def flush_many(self, rooms: list[Room]) -> list[dict[str, Any]]:
        """`flush` each room; a room that cannot be saved does not stop the others. Each result is
        ``{room, flushed, store_version}``, or ``{room, flushed: false, error}`` for one refused."""
        results = []
        for room in rooms:
            try:
                results.append(await self.flush(room))
            except ComfyVNError as exc:
                error = {"code": exc.code, "message": exc.message, "field": exc.field}
                results.append(
                    {"room": room.name, "flushed": False, "store_version": room.store_version, "error": error}
                )
        return results

    def _write(self, room: Room, scene: dict[str, Any]) -> int:
        stored = self.store.put_scene(room.project_id, room.scene_id, scene, if_match=room.store_version)
        return stored.scene_versions[room.scene_id]

    def _flushed(self, room: Room, scene: dict[str, Any], version: int, at: int) -> None:
        room.store_version = version
        room.base = dumps(scene)
        room.flush_error = None
        room.dirty = room.version != at  # edits made while the store was written stay dirty
        if room.dirty:
            room.dirty_since = self.clock()
        self._compact(room, version)
        log.info("collab room flushed", room=room.name, store_version=version)
        if not room.dirty and not room.conns:
            self._unload(room)

    def _unload(self, room: Room) -> None:
        self._announce_yjs(room)
        room.closed = True
        self.rooms.pop(room.name, None)
        timer = self._timers.pop(room.name, None)
        if timer is not None:
            timer.cancel()
        room.watched = False

    def left(self, room: Room) -> None:
        """A client left: a room nobody uses and with nothing to flush is unloaded (its log stays)."""
        if not room.conns and not room.dirty and room.name not in self._flushing:
            self._unload(room)

    def flush_now(self, room: Room) -> dict[str, Any]:
        """`flush` without an event loop (shutdown): one attempt, merging once on a version conflict."""
        if not room.dirty:
            return {"room": room.name, "flushed": False, "store_version": room.store_version}
        scene = room.scene()
        try:
            try:
                version = self._write(room, scene)
            except PreconditionFailed:
                theirs, current = self.store.scene(room.project_id, room.scene_id)
                self._merge(room, theirs, current)
                scene = room.scene()
                version = self._write(room, scene)
        except ComfyVNError as exc:
            room.flush_error = {"code": exc.code, "message": exc.message, "field": exc.field}
            raise
        self._flushed(room, scene, version, room.version)
        return {"room": room.name, "flushed": True, "store_version": version}

    # -- outside writes --------------------------------------------------------------------------------
    def _subscribe(self) -> None:
        if self._subscribed or self.bus is None:
            return
        self._subscribed = True
        self.bus.subscribe(self._on_project_updated, ["on_project_updated"])

    async def _on_project_updated(self, envelope: Any) -> None:
        payload = envelope.payload
        project_id = payload.get("id")
        for entry in payload.get("scenes", []):
            room = self.rooms.get(f"{project_id}/{entry.get('id')}")
            if room is None or room.closed or room.name in self._flushing:
                continue
            if entry.get("version", 0) > room.store_version:
                try:
                    theirs, version = await anyio.to_thread.run_sync(self.store.scene, room.project_id, room.scene_id)
                except NotFound:
                    continue
                if version > room.store_version and room.name not in self._flushing:
                    self._merge(room, theirs, version)

    # -- status and shutdown ---------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """What the hub holds now: open rooms, clients and the log's state."""
        return {
            "status": "ok" if self.updates.failure is None else "degraded",
            "rooms": [room.status() for room in sorted(self.rooms.values(), key=lambda r: r.name)],
            "log": {"failure": self.updates.failure},
            "quiet_seconds": self.quiet,
            "max_dirty_seconds": self.max_dirty,
        }

    def close(self, *, flush: bool = True) -> None:
        """Flush every changed room (errors are logged; the log keeps their edits) and close the log;
        ``flush=False`` only closes (the log keeps everything)."""
        if self.closed:
            return
        self.closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for room in list(self.rooms.values()):
            try:
                if flush:
                    self.flush_now(room)
            except ComfyVNError as exc:
                log.warning("collab room not flushed at shutdown", room=room.name, code=exc.code, error=exc.message)
            except Exception:
                log.exception("collab room not flushed at shutdown", room=room.name)
            room.closed = True
            for conn in list(room.conns.values()):
                conn.sink(None)  # `outbox.CLOSE`: the route closes the connection (1001, going away)
        self.rooms.clear()
        self.updates.close()


def _setting(settings: Mapping[str, Any], key: str, default: float, low: float, high: float, unit: str) -> float:
    """``collab.<key>`` from comfyvn.json: a number from ``low`` to ``high`` (in ``unit``), else 400."""
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ComfyVNError(
            f"collab.{key} in comfyvn.json must be a number of {unit} from {low:g} to {high:g}",
            field=f"collab.{key}",
            code="invalid_config",
        )
    return float(value)
