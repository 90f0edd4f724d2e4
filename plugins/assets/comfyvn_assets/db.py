"""The registry's SQLite database (WAL, ``busy_timeout``): asset rows, their tags and their holders.

A blob's reference count is the number of rows naming its sha256 (an index query), so it cannot drift
from the rows. Every write is one ``BEGIN IMMEDIATE`` transaction; a connection lives for one operation.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .model import Asset

__all__ = ["Database", "search_text"]

BUSY_TIMEOUT_MS = 30_000
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS assets (
    uid TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    width INTEGER,
    height INTEGER,
    tags TEXT NOT NULL,
    license TEXT,
    source TEXT,
    metadata TEXT NOT NULL,
    provenance TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    last_access REAL NOT NULL,
    pinned INTEGER NOT NULL DEFAULT 0,
    search TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS assets_sha256 ON assets (sha256);
CREATE INDEX IF NOT EXISTS assets_type ON assets (type);
CREATE TABLE IF NOT EXISTS asset_tags (
    uid TEXT NOT NULL REFERENCES assets (uid) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (uid, tag)
);
CREATE INDEX IF NOT EXISTS asset_tags_tag ON asset_tags (tag);
CREATE TABLE IF NOT EXISTS holds (
    uid TEXT NOT NULL REFERENCES assets (uid) ON DELETE CASCADE,
    holder TEXT NOT NULL,
    since REAL NOT NULL,
    PRIMARY KEY (uid, holder)
);
"""
_COLUMNS = (
    "uid, type, path, sha256, size, width, height, tags, license, source, metadata, provenance, created, updated, "
    "last_access, pinned, search"
)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def search_text(asset: Asset) -> str:
    """What ``q`` searches, case-folded: path, type, tags, licence, source and the metadata's JSON text."""
    parts = [asset.path, asset.type, *asset.tags, asset.license or "", asset.source or "", _json(asset.metadata)]
    return "\n".join(parts).casefold()


class Database:
    """The registry database at ``path`` (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Switching to WAL takes an exclusive lock without waiting on the busy handler, so two
        # processes opening a new registry at once could get "database is locked": set up under a flock.
        fd = os.open(path.with_name(path.name + ".init-lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with self.connect() as conn:
                conn.execute("PRAGMA journal_mode=WAL")
                with self.transaction(conn):
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            yield conn
        finally:
            conn.close()

    @staticmethod
    @contextlib.contextmanager
    def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any error)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- reading ---------------------------------------------------------------------------------------
    def _holders(self, conn: sqlite3.Connection, uid: str) -> tuple[str, ...]:
        rows = conn.execute("SELECT holder FROM holds WHERE uid = ? ORDER BY holder", (uid,))
        return tuple(r["holder"] for r in rows)

    def _asset(self, conn: sqlite3.Connection, row: sqlite3.Row) -> Asset:
        return Asset(
            uid=row["uid"],
            type=row["type"],
            path=row["path"],
            sha256=row["sha256"],
            size=row["size"],
            width=row["width"],
            height=row["height"],
            tags=tuple(json.loads(row["tags"])),
            license=row["license"],
            source=row["source"],
            metadata=json.loads(row["metadata"]),
            provenance=json.loads(row["provenance"]),
            created=row["created"],
            pinned=bool(row["pinned"]),
            refs=self._holders(conn, row["uid"]),
            updated=row["updated"],
            last_access=row["last_access"],
        )

    def get(self, conn: sqlite3.Connection, uid: str) -> Asset | None:
        row = conn.execute(f"SELECT {_COLUMNS} FROM assets WHERE uid = ?", (uid,)).fetchone()
        return None if row is None else self._asset(conn, row)

    def query(self, conn: sqlite3.Connection, where: Sequence[str], args: Sequence[Any], limit: int) -> list[Asset]:
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        sql = f"SELECT {_COLUMNS} FROM assets {clause} ORDER BY path LIMIT ?"
        return [self._asset(conn, row) for row in conn.execute(sql, (*args, limit)).fetchall()]

    def all(self, conn: sqlite3.Connection) -> list[Asset]:
        return [self._asset(conn, row) for row in conn.execute(f"SELECT {_COLUMNS} FROM assets ORDER BY path")]

    @staticmethod
    def blob_refs(conn: sqlite3.Connection, sha256: str) -> int:
        """How many rows name ``sha256``: the blob's reference count."""
        return int(conn.execute("SELECT COUNT(*) FROM assets WHERE sha256 = ?", (sha256,)).fetchone()[0])

    @staticmethod
    def shas(conn: sqlite3.Connection) -> set[str]:
        return {r[0] for r in conn.execute("SELECT DISTINCT sha256 FROM assets")}

    # -- writing (inside `transaction`) ----------------------------------------------------------------
    def save(self, conn: sqlite3.Connection, asset: Asset) -> None:
        """Insert or replace the row of ``asset.uid`` (its holders are kept) and its tag index."""
        conn.execute(
            f"INSERT INTO assets ({_COLUMNS}) VALUES ({', '.join('?' * 17)}) "
            "ON CONFLICT (uid) DO UPDATE SET type=excluded.type, path=excluded.path, sha256=excluded.sha256, "
            "size=excluded.size, width=excluded.width, height=excluded.height, tags=excluded.tags, "
            "license=excluded.license, source=excluded.source, metadata=excluded.metadata, "
            "provenance=excluded.provenance, created=excluded.created, updated=excluded.updated, "
            "last_access=excluded.last_access, pinned=excluded.pinned, search=excluded.search",
            (
                asset.uid,
                asset.type,
                asset.path,
                asset.sha256,
                asset.size,
                asset.width,
                asset.height,
                _json(list(asset.tags)),
                asset.license,
                asset.source,
                _json(asset.metadata),
                _json(asset.provenance),
                asset.created,
                asset.updated,
                asset.last_access,
                int(asset.pinned),
                search_text(asset),
            ),
        )
        conn.execute("DELETE FROM asset_tags WHERE uid = ?", (asset.uid,))
        conn.executemany(
            "INSERT OR IGNORE INTO asset_tags (uid, tag) VALUES (?, ?)", [(asset.uid, t.casefold()) for t in asset.tags]
        )

    @staticmethod
    def delete(conn: sqlite3.Connection, uid: str) -> None:
        conn.execute("DELETE FROM assets WHERE uid = ?", (uid,))

    @staticmethod
    def touch(conn: sqlite3.Connection, uid: str, when: float | None = None) -> None:
        conn.execute("UPDATE assets SET last_access = ? WHERE uid = ?", (time.time() if when is None else when, uid))

    @staticmethod
    def hold(conn: sqlite3.Connection, uid: str, holder: str) -> None:
        conn.execute("INSERT OR IGNORE INTO holds (uid, holder, since) VALUES (?, ?, ?)", (uid, holder, time.time()))

    @staticmethod
    def unhold(conn: sqlite3.Connection, uid: str, holder: str) -> None:
        conn.execute("DELETE FROM holds WHERE uid = ? AND holder = ?", (uid, holder))
