"""Findings: the shape scanners answer with, checked and put in a stable order."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from comfyvn.errors import clip

__all__ = ["LEVELS", "MAX_PER_SCANNER", "counts", "failed", "finding", "normalise", "ordered"]

LEVELS = ("info", "warn", "block")
MAX_PER_SCANNER = 500


def finding(level: str, code: str, message: str, where: str | None = None) -> dict[str, Any]:
    """A finding as scanners build it."""
    return {"level": level, "code": code, "message": message, "where": where}


def normalise(scanner: str, answer: Any) -> list[dict[str, Any]]:
    """``answer`` of ``scanner`` as clean findings (each with ``scanner``); a malformed answer is one
    blocking ``scanner_failed`` finding, because a scanner that cannot be read must not let things pass."""
    if answer is None:
        return []
    if not isinstance(answer, list):
        return [_failed(scanner, f"returned {type(answer).__name__}, not a list of findings")]
    clean: list[dict[str, Any]] = []
    for item in answer[:MAX_PER_SCANNER]:
        ok = (
            isinstance(item, dict)
            and item.get("level") in LEVELS
            and isinstance(item.get("code"), str)
            and isinstance(item.get("message"), str)
            and (item.get("where") is None or isinstance(item.get("where"), str))
        )
        if not ok:
            return [_failed(scanner, "returned a finding without level (info|warn|block), code and message")]
        clean.append(
            {
                "level": item["level"],
                "code": clip(item["code"], 80),
                "message": clip(item["message"], 400),
                "where": None if item.get("where") is None else clip(item["where"], 300),
                "scanner": scanner,
            }
        )
    return clean


def _failed(scanner: str, why: str) -> dict[str, Any]:
    return {
        "level": "block",
        "code": "scanner_failed",
        "message": f"scanner {scanner!r} {why}",
        "where": None,
        "scanner": scanner,
    }


def failed(scanner: str, error: BaseException) -> dict[str, Any]:
    """The blocking finding for a scanner that raised."""
    return _failed(scanner, f"failed ({type(error).__name__})")


def ordered(findings: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Blocks first, then warnings, then info; within a level by code, place and scanner (deterministic)."""
    rank = {level: i for i, level in enumerate(reversed(LEVELS))}
    return sorted(findings, key=lambda f: (rank[f["level"]], f["code"], f["where"] or "", f["scanner"], f["message"]))


def counts(findings: Iterable[dict[str, Any]]) -> dict[str, int]:
    """``{info, warn, block}`` tallies."""
    tally = dict.fromkeys(LEVELS, 0)
    for item in findings:
        tally[item["level"]] += 1
    return tally
