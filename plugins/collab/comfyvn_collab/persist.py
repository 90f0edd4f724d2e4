"""The rooms' update log in SQLite (WAL): what was typed since the last flush survives a crash.

Every Yjs update a room applies is appended here, by one writer thread that commits what has queued up
at most every ``interval`` seconds (0.2 s by default) in one transaction: committing per update (as
pycrdt-store's ``SQLiteYStore`` does) manages about a hundred writes a second on these disks, far below
typing speed across a room. A kill -9 therefore loses at most the last ``interval`` of edits; WAL with
``synchronous=NORMAL`` keeps every committed transaction across a process crash.

Per room the log holds the scene it was built from (``base``, the store version ``store_version``) and
the updates since. Replaying them in order on an empty document rebuilds the room exactly, with its
Yjs history, so a reconnecting client that kept its own copy merges instead of duplicating. After a
flush the room compacts its log to one update (the whole document).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import structlog

from .protocol import FrameError, read_payload, update_frame

__all__ = ["RoomLog", "UpdateLog"]

log = structlog.get_logger("comfyvn.collab")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rooms (
    room TEXT PRIMARY KEY,
    store_version INTEGER NOT NULL,
    base TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS updates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    room TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS updates_room ON updates (room, id);
"""


@attrs.frozen
class RoomLog:
    """What the log holds for one room: the store version and scene (JSON text) it started from, and the
    updates since, oldest first."""

    store_version: int
    base: str
    updates: list[bytes]


class UpdateLog:
    """The update log of every room, in one SQLite file. ``append`` never blocks on the disk.

    ``append``, ``reset`` and ``drop`` are called from one thread at a time (the server's event loop, or
    the one thread of a CLI command); ``load``, ``rooms`` and ``sync`` from any."""

    def __init__(self, path: Path, *, interval: float = 0.2) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.interval = interval
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # Two processes opening a new file at once could see "database is locked" while one switches it to
        # WAL, so the set-up runs under an exclusive flock.
        fd = os.open(path.with_name(path.name + ".init-lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        finally:
            os.close(fd)
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db_lock = threading.Lock()
        self._rooms: deque[str | None] = deque()  # None: the matching `_data` item is a control tuple
        self._data: deque[Any] = deque()
        self._wake = threading.Event()  # set when something is queued while the writer sleeps, or by `sync`
        self._sleeping = False  # the writer is (about to be) waiting on `_wake`
        self._now = threading.Event()  # set by `sync` and `close`: commit without waiting out the interval
        self._cond = threading.Condition()  # guards _written / _closed for `sync` and `close`
        self._written = 0  # items committed so far
        self._queued = 0  # items ever queued
        self._closed = False
        self.failure: str | None = None
        self._thread = threading.Thread(target=self._run, name="comfyvn-collab-log", daemon=True)
        self._thread.start()

    # -- queueing (event-loop side) ----------------------------------------------------------------
    def _queue(self, item: tuple[Any, ...]) -> None:
        # The rare control items (compactions, drops) ride in the same two queues as updates, in order.
        self._enqueue(None, item)

    def _enqueue(self, room: str | None, data: Any) -> None:
        # Two queues of plain strings and bytes rather than one of tuples: a tuple per keystroke is an object
        # the garbage collector must track, and at typing speed across a room that shows. `room` goes in
        # first, so the writer, taking as many as `data` holds, always takes matching pairs.
        if self._closed:
            raise RuntimeError("the collaboration log is closed")
        self._rooms.append(room)
        self._data.append(data)
        self._queued += 1
        if self._sleeping:
            self._wake.set()

    def append(self, room: str, frame: bytes) -> None:
        """Queue one update of ``room`` as the y-websocket update frame it travels in (committed within
        ``interval``; runs per keystroke). Frames rather than bare updates: the frame already exists (it is
        what came in, or what goes out to the other clients), so logging it allocates nothing."""
        self._enqueue(room, frame)

    def reset(self, room: str, store_version: int, base: str, full: bytes | None) -> None:
        """Queue a compaction: from here on ``room`` starts at ``store_version``/``base`` with ``full`` (the
        whole document) as its only update; updates queued after this call are kept after it."""
        self._queue(("r", room, store_version, base, full))

    def drop(self, room: str) -> None:
        """Queue forgetting ``room`` (its scene was deleted)."""
        self._queue(("d", room))

    # -- reads and syncing (any thread) --------------------------------------------------------------
    def load(self, room: str) -> RoomLog | None:
        """What the log holds for ``room`` (everything queued so far is committed first), or None."""
        self.sync()
        with self._db_lock:
            row = self._db.execute("SELECT store_version, base FROM rooms WHERE room = ?", (room,)).fetchone()
            if row is None:
                return None
            rows = self._db.execute("SELECT data FROM updates WHERE room = ? ORDER BY id", (room,))
            updates = []
            for (data,) in rows:
                try:
                    updates.append(read_payload(bytes(data), 2))
                except FrameError:  # a damaged row: what came before it is still the room's history
                    log.error("collab log row unreadable; the room is restored up to it", room=room)
                    break
        return RoomLog(int(row[0]), str(row[1]), updates)

    def rooms(self) -> list[str]:
        """Every room with a log."""
        self.sync()
        with self._db_lock:
            return [r[0] for r in self._db.execute("SELECT room FROM rooms ORDER BY room")]

    def sync(self, timeout: float = 30.0) -> None:
        """Wait until everything queued so far is committed."""
        with self._cond:
            target = self._queued
            self._wake.set()
            self._now.set()
            if not self._cond.wait_for(lambda: self._written >= target or self.failure is not None, timeout):
                raise TimeoutError("the collaboration log did not commit in time")

    def close(self) -> None:
        """Commit what is queued and close the file."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
        self._wake.set()
        self._now.set()
        self._thread.join()
        with self._db_lock:
            self._db.close()

    # -- the writer thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._sleeping = True
            if not self._data and not self._closed:  # checked after saying so: an append now wakes us
                self._wake.wait()
            self._sleeping = False
            # Let a burst of typing gather into one transaction (`sync` and `close` cut this short).
            self._now.wait(self.interval)
            self._now.clear()
            self._wake.clear()
            with self._cond:
                closed = self._closed
            count = len(self._data)
            batch = [(self._rooms.popleft(), self._data.popleft()) for _ in range(count)]
            if batch:
                self._commit(batch)
            with self._cond:
                self._written += len(batch)
                self._cond.notify_all()
            if closed and not self._data:
                return

    def _commit(self, batch: list[tuple[str | None, Any]]) -> None:
        steps: dict[str, Callable[..., None]] = {"r": self._reset, "d": self._drop}
        try:
            with self._db_lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    run: list[tuple[str, bytes]] = []  # consecutive updates go in one executemany
                    for room, data in batch:
                        if room is not None:
                            run.append((room, data))
                            continue
                        if run:
                            self._db.executemany("INSERT INTO updates (room, data) VALUES (?, ?)", run)
                            run = []
                        steps[data[0]](*data[1:])
                    if run:
                        self._db.executemany("INSERT INTO updates (room, data) VALUES (?, ?)", run)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:  # a full disk: say so; the rooms keep working in memory
            self.failure = f"the collaboration log could not be written: {exc}"
            log.error("collab log write failed", error=str(exc), items=len(batch))

    def _insert(self, room: str, frame: bytes) -> None:
        self._db.execute("INSERT INTO updates (room, data) VALUES (?, ?)", (room, frame))

    def _reset(self, room: str, store_version: int, base: str, full: bytes | None) -> None:
        self._db.execute("DELETE FROM updates WHERE room = ?", (room,))
        self._db.execute(
            "INSERT INTO rooms (room, store_version, base) VALUES (?, ?, ?) "
            "ON CONFLICT (room) DO UPDATE SET store_version = excluded.store_version, base = excluded.base",
            (room, store_version, base),
        )
        if full is not None:
            self._insert(room, update_frame(full))

    def _drop(self, room: str) -> None:
        self._db.execute("DELETE FROM updates WHERE room = ?", (room,))
        self._db.execute("DELETE FROM rooms WHERE room = ?", (room,))
