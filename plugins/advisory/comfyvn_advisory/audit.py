"""The policy audit log (``<logs>/policy/enforcer.jsonl``) and the installation's liability acknowledgement
(``<config>/advisory/liability.json``).

The log is append-only JSON lines: each decision is one line written with one ``write`` under an exclusive
``flock`` (the server and the CLI append to the same file), rotated to ``enforcer.jsonl.1`` past 8 MiB.
Paths shown to callers are relative to the runtime roots (``logs/policy/...``), never the machine's.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from comfyvn.errors import OperationFailed
from comfyvn.paths import atomic_write_text
from comfyvn.wire import dumps, loads

__all__ = ["LOG_NAME", "TERMS", "TERMS_VERSION", "AuditLog", "Liability", "iso"]

LOG_NAME = "logs/policy/enforcer.jsonl"
MAX_LOG_BYTES = 8 * 1024 * 1024
MAX_FINDINGS_LOGGED = 200
TERMS_VERSION = 1
TERMS = (
    "You keep full creative freedom over the stories, assets and exports you make with ComfyVN. Its rating "
    "gate and advisory scanners surface risks; they do not decide for you. By acknowledging, you accept "
    "responsibility for what you distribute: licences of the assets and cards you use, credits to their "
    "creators, the content rating you publish under, and the laws that apply where you distribute."
)


def iso(timestamp: float) -> str:
    """``2026-01-02T03:04:05Z`` for an epoch time."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class AuditLog:
    """The enforcer's JSONL log below ``logs`` (the runtime log root)."""

    def __init__(self, logs: Path) -> None:
        self.folder = logs / "policy"
        self.path = self.folder / "enforcer.jsonl"

    def append(self, entry: dict[str, Any]) -> None:
        """Append one decision (findings beyond 200 are counted, not listed)."""
        record = dict(entry)
        findings = list(record.get("findings") or ())
        if len(findings) > MAX_FINDINGS_LOGGED:
            record["findings"] = findings[:MAX_FINDINGS_LOGGED]
            record["findings_omitted"] = len(findings) - MAX_FINDINGS_LOGGED
        line = (dumps(record, sort_keys=True) + "\n").encode("utf-8")
        with _locked(self.folder):
            if self.path.exists() and self.path.stat().st_size + len(line) > MAX_LOG_BYTES:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def entries(self) -> list[dict[str, Any]]:
        """Every decision in the current log, oldest first (a line that is not JSON is skipped)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        found: list[dict[str, Any]] = []
        for line in raw.splitlines():
            try:
                value = loads(line, field="enforcer.jsonl")
            except Exception:
                continue  # a line cut by a crash must not hide the rest of the trail
            if isinstance(value, dict):
                found.append(value)
        return found

    def audit(self, limit: int, *, export: bool) -> dict[str, Any]:
        """``GET /api/policy/audit``: the latest ``limit`` decisions (newest first) and a summary of the log;
        with ``export``, also a JSON report ``logs/policy/policy_audit_<time>.json``."""
        entries = self.entries()
        summary: dict[str, Any] = {
            "total": len(entries),
            "allowed": sum(1 for e in entries if e.get("allow") is True),
            "blocked": sum(1 for e in entries if e.get("allow") is False),
            "by_action": {},
            "findings": {"info": 0, "warn": 0, "block": 0},
        }
        for entry in entries:
            action = str(entry.get("action"))
            summary["by_action"][action] = summary["by_action"].get(action, 0) + 1
            for level, count in (entry.get("counts") or {}).items():
                if level in summary["findings"] and isinstance(count, int):
                    summary["findings"][level] += count
        result: dict[str, Any] = {"ok": True, "events": entries[::-1][:limit], "summary": summary, "log_path": LOG_NAME}
        if export:
            now = time.time()
            name = f"policy_audit_{datetime.fromtimestamp(now, UTC).strftime('%Y%m%dT%H%M%S%fZ')}.json"
            report = {"generated_at": iso(now), "summary": summary, "events": entries[::-1]}
            atomic_write_text(self.folder / name, dumps(report, indent=2, sort_keys=True) + "\n", mode=0o600)
            result["report_path"] = f"logs/policy/{name}"
        return result


class Liability:
    """The one-time acknowledgement of responsibility, per installation (``<config>/advisory``)."""

    def __init__(self, config: Path) -> None:
        self.folder = config / "advisory"
        self.path = self.folder / "liability.json"

    def status(self) -> dict[str, Any]:
        """``{acknowledged, user, notes, acknowledged_at, terms_version, terms}``."""
        record: Any = {}
        try:
            record = loads(self.path.read_bytes(), field="liability.json")
        except FileNotFoundError:
            record = {}
        except Exception:
            raise OperationFailed(
                "<config>/advisory/liability.json is unreadable; fix or move it",
                field="liability",
                code="store_unreadable",
            ) from None
        record = record if isinstance(record, dict) else {}
        acknowledged = record.get("terms_version") == TERMS_VERSION and record.get("acknowledged_at") is not None
        return {
            "acknowledged": acknowledged,
            "user": record.get("user") if acknowledged else None,
            "notes": record.get("notes") if acknowledged else None,
            "acknowledged_at": record.get("acknowledged_at") if acknowledged else None,
            "terms_version": TERMS_VERSION,
            "terms": TERMS,
        }

    def acknowledge(self, user: str, notes: str | None) -> dict[str, Any]:
        """Record ``user``'s acknowledgement (the first one stands; acknowledging again changes nothing)."""
        with _locked(self.folder):
            current = self.status()
            if not current["acknowledged"]:
                record = {
                    "terms_version": TERMS_VERSION,
                    "user": user,
                    "notes": notes,
                    "acknowledged_at": iso(time.time()),
                }
                atomic_write_text(self.path, dumps(record, indent=2, sort_keys=True) + "\n", mode=0o600)
        return self.status()
