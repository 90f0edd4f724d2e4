"""Reviewer overrides, acknowledgement tokens and the installation's mode, kept in ``<config>/rating/``.

``overrides.json`` holds ``{format, version, overrides{item_id: record}, acks{token: entry}}`` (the original
kept both in one file; so do we). ``settings.json`` holds ``{mode}``. Every change is a read-modify-write
under an exclusive ``flock`` on ``.lock`` and an atomic replace, so the server and the CLI never lose each
other's writes, and every read goes to the file, so a decision made in one process holds in the next (and
after a restart). A file that cannot be read is reported, never overwritten.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
from comfyvn.errors import NotFound, OperationFailed
from comfyvn.paths import atomic_write_text
from comfyvn.wire import dumps, loads

from .matrix import RatingResult, level_index

__all__ = ["MAX_ACKS", "MODES", "Override", "RatingStore", "ack_status"]

FORMAT = "comfyvn-rating"
MODES = ("sfw", "warn", "unrestricted")
DEFAULT_MODE = "sfw"
#: Tokens kept at most; past it the oldest acknowledged ones go first (the newest stay verifiable).
MAX_ACKS = 2000
_SHOWN = "<config>/rating"  # how errors name the folder (never the server's real path)


@attrs.frozen
class Override:
    """A reviewer's pinned rating for one item."""

    item_id: str
    rating: str
    reviewer: str
    reason: str
    scope: str
    timestamp: float

    def to_wire(self) -> dict[str, Any]:
        return attrs.asdict(self)

    def to_result(self) -> RatingResult:
        """The decision this override stands for (``source: "override"``, confidence 0.99)."""
        return RatingResult(
            self.item_id,
            self.rating,
            0.99,
            (self.reason,),
            {},
            source="override",
            classifier="override",
            reviewer=self.reviewer,
            override_reason=self.reason,
            override_timestamp=self.timestamp,
        )


def ack_status(entry: dict[str, Any]) -> str:
    """``verified`` once acknowledged, else ``issued``."""
    return "verified" if entry.get("acknowledged_at") is not None else "issued"


class RatingStore:
    """The rating plugin's persistent state below ``folder`` (``<config>/rating``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "overrides.json"
        self.settings_path = folder / "settings.json"

    # -- files ---------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read(self, path: Path) -> dict[str, Any]:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return {}
        shown = f"{_SHOWN}/{path.name}"
        try:
            data = loads(raw, field=path.name)
        except Exception:
            data = None
        if not isinstance(data, dict):
            # Failing closed: dropping reviewers' overrides and acknowledgements silently would change decisions.
            raise OperationFailed(
                f"{shown} is not a JSON object; fix or move it", field=path.name, code="store_unreadable"
            )
        return data

    def _document(self) -> dict[str, Any]:
        data = self._read(self.path)
        overrides = data.get("overrides")
        acks = data.get("acks")
        return {
            "format": FORMAT,
            "version": 1,
            "overrides": overrides if isinstance(overrides, dict) else {},
            "acks": acks if isinstance(acks, dict) else {},
        }

    def _write(self, document: dict[str, Any]) -> None:
        atomic_write_text(self.path, dumps(document, indent=2, sort_keys=True) + "\n", mode=0o600)

    # -- overrides -----------------------------------------------------------------------------------
    @staticmethod
    def _override(item_id: str, record: Any) -> Override | None:
        if not isinstance(record, dict) or record.get("rating") not in ("E", "T", "M", "Adult"):
            return None
        stamp = record.get("timestamp")
        return Override(
            item_id=item_id,
            rating=str(record["rating"]),
            reviewer=str(record.get("reviewer") or "unknown"),
            reason=str(record.get("reason") or "unspecified"),
            scope=str(record.get("scope") or "asset"),
            timestamp=float(stamp) if isinstance(stamp, int | float) else 0.0,
        )

    def overrides(self) -> dict[str, Override]:
        """Every stored override by item id (one read: callers rating many items take this once)."""
        raw = self._document()["overrides"]
        found = {item_id: self._override(item_id, record) for item_id, record in raw.items()}
        return {item_id: record for item_id, record in found.items() if record is not None}

    def put_override(self, item_id: str, rating: str, reviewer: str, reason: str, scope: str) -> Override:
        """Pin ``rating`` for ``item_id`` (stamped with the time; replaces an earlier override)."""
        level_index(rating)
        record = Override(item_id, rating, reviewer, reason, scope, time.time())
        with self._locked():
            document = self._document()
            document["overrides"][item_id] = {k: v for k, v in record.to_wire().items() if k != "item_id"}
            self._write(document)
        return record

    def delete_override(self, item_id: str) -> Override:
        """Remove the override of ``item_id``; 404 when there is none."""
        with self._locked():
            document = self._document()
            record = self._override(item_id, document["overrides"].pop(item_id, None))
            if record is None:
                raise NotFound(f"no override for {item_id!r}", field="item_id", code="override_not_found")
            self._write(document)
        return record

    # -- acknowledgement tokens ----------------------------------------------------------------------
    def acks(self) -> list[dict[str, Any]]:
        """Every token entry with its ``status``, newest first."""
        entries = [{**entry, "status": ack_status(entry)} for entry in self._document()["acks"].values()]
        return sorted(entries, key=lambda e: (-float(e.get("issued_at") or 0), str(e.get("token"))))

    def ack(self, token: str) -> dict[str, Any] | None:
        """The entry of ``token`` (with ``status``), or None."""
        entry = self._document()["acks"].get(token)
        return {**entry, "status": ack_status(entry)} if isinstance(entry, dict) else None

    def issue(self, item_id: str, action: str, rating: str) -> dict[str, Any]:
        """A token for acknowledging ``rating`` of ``item_id``: the open one for the same item, action and
        rating when there is one (asking twice does not pile up tokens), else a new one."""
        with self._locked():
            document = self._document()
            acks: dict[str, Any] = document["acks"]
            for entry in acks.values():
                if (
                    isinstance(entry, dict)
                    and entry.get("acknowledged_at") is None
                    and (entry.get("item_id"), entry.get("action"), entry.get("rating")) == (item_id, action, rating)
                ):
                    return {**entry, "status": "issued"}
            token = secrets.token_hex(16)
            entry = {
                "token": token,
                "item_id": item_id,
                "action": action,
                "rating": rating,
                "issued_at": time.time(),
                "acknowledged_at": None,
                "user": None,
                "notes": None,
            }
            acks[token] = entry
            _trim(acks)
            self._write(document)
        return {**entry, "status": "issued"}

    def acknowledge(self, token: str, user: str, notes: str | None) -> dict[str, Any]:
        """Record that ``user`` acknowledged ``token`` (404 for an unknown token). Acknowledging again
        keeps the first time and adds nothing: the record says who accepted first, and the answer says so
        (``already_acknowledged: true``, with the first ``user``, ``acknowledged_at`` and ``notes``)."""
        with self._locked():
            document = self._document()
            entry = document["acks"].get(token)
            if not isinstance(entry, dict):
                raise NotFound("unknown acknowledgement token", field="token", code="ack_not_found")
            already = entry.get("acknowledged_at") is not None
            if not already:
                entry.update(acknowledged_at=time.time(), user=user, notes=notes)
                self._write(document)
        return {**entry, "status": "verified", "already_acknowledged": already}

    def verified(self, token: str | None, item_id: str, rating: str) -> dict[str, Any] | None:
        """The entry of ``token`` when it is acknowledged, names ``item_id`` and covers ``rating`` (a token
        acknowledged for M does not cover content that has since become Adult); else None."""
        entry = self.ack(token) if token else None
        if entry is None or entry["status"] != "verified" or entry.get("item_id") != item_id:
            return None
        try:
            covered = level_index(str(entry.get("rating"))) >= level_index(rating)
        except ValueError:
            return None
        return entry if covered else None

    # -- mode ----------------------------------------------------------------------------------------
    def mode(self) -> str:
        """The installation's mode (``settings.json``), ``sfw`` by default."""
        mode = self._read(self.settings_path).get("mode")
        return mode if mode in MODES else DEFAULT_MODE

    def set_mode(self, mode: str) -> str:
        with self._locked():
            settings = self._read(self.settings_path)
            settings["mode"] = mode
            atomic_write_text(self.settings_path, dumps(settings, indent=2, sort_keys=True) + "\n", mode=0o600)
        return mode


def _trim(acks: dict[str, Any]) -> None:
    """Keep at most `MAX_ACKS` tokens, dropping the oldest acknowledged ones first, then the oldest open ones."""
    excess = len(acks) - MAX_ACKS
    if excess <= 0:
        return

    def age(token: str) -> tuple[int, float]:
        entry = acks[token] if isinstance(acks[token], dict) else {}
        return (0 if entry.get("acknowledged_at") is not None else 1, float(entry.get("issued_at") or 0))

    for token in sorted(acks, key=age)[:excess]:
        del acks[token]
