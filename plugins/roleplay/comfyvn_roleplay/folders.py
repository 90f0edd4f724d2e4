"""Whether a CLI ``--out`` folder may be replaced by an import, and the record that lets us tell.

An import written to a folder records every file it wrote (size and SHA-256) under ``files`` in its
report (``roleplay_import.json``). A later import may replace the folder only when it holds the same
import (the same ``import_id``: the same chat and title) and no file was changed or added since; anything
else would silently delete the user's edits, so it is refused (409, CLI exit 2) unless forced. A file
that was deleted since the import is not counted: replacing the folder brings it back and loses nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import attrs
from comfyvn.errors import Conflict, Invalid

from .importer import REPORT_FILE

__all__ = ["Earlier", "check_target", "file_manifest"]

_LISTED = 3  # changed files named in the refusal; the rest are counted


def _digest(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _files(folder: Path) -> list[tuple[str, Path]]:
    """Every file and symlink below ``folder`` (relative POSIX name, path), the import report left out."""
    found = []
    for top, dirs, names in os.walk(folder):
        base = Path(top)
        # A symlinked folder is not walked into (os.walk does not follow it); it counts as an added file.
        names = names + [d for d in dirs if (base / d).is_symlink()]
        for name in names:
            path = base / name
            rel = path.relative_to(folder).as_posix()
            if rel != REPORT_FILE:
                found.append((rel, path))
    return found


def file_manifest(folder: Path) -> dict[str, dict[str, Any]]:
    """``{relative name: {size, sha256}}`` of every file an import wrote into ``folder`` (the report aside)."""
    return {rel: {"size": path.stat().st_size, "sha256": _digest(path)} for rel, path in sorted(_files(folder))}


def _changed(folder: Path, recorded: dict[str, Any]) -> list[str]:
    """Files of ``folder`` that are not as the import wrote them (added, or different in size or content)."""
    changed = []
    for rel, path in sorted(_files(folder)):
        entry = recorded.get(rel)
        if path.is_symlink() or not isinstance(entry, dict):
            changed.append(rel)
            continue
        try:
            if path.stat().st_size != entry.get("size") or _digest(path) != entry.get("sha256"):
                changed.append(rel)
        except OSError:
            changed.append(rel)  # unreadable: it cannot be shown unchanged
    return changed


@attrs.frozen
class Earlier:
    """The import a target folder holds: its id (None for a missing or empty folder)."""

    import_id: str | None = None


def _report(target: Path) -> dict[str, Any] | None:
    try:
        report = json.loads((target / REPORT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) else None


def check_target(target: Path, import_id: str | None = None, *, force: bool = False) -> Earlier:
    """Refuse a ``target`` an import may not replace; say which import it holds when it may.

    A missing or empty folder is always fine. A folder with other files, a file, a symlink, the working
    folder or one above it are refused even with ``force``. An earlier import's folder is refused
    (``Conflict``, 409) when files were changed or added since, or, once ``import_id`` is known, when it
    holds another import; ``force`` lifts those two refusals.
    """
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise Conflict("--out exists and is not a folder", field="out", code="out_not_a_folder")
    if target.resolve() in (Path.cwd().resolve(), *Path.cwd().resolve().parents):
        raise Invalid("--out must not be the current folder or one above it", field="out", code="invalid_out")
    if not target.is_dir() or not any(target.iterdir()):
        return Earlier()
    report = _report(target)
    if report is None:
        raise Conflict(
            "--out is a folder with other files in it; give a new or empty folder, or an earlier import's",
            field="out",
            code="out_not_empty",
        )
    earlier = Earlier(str(report.get("import_id") or ""))
    if force:
        return earlier
    recorded = report.get("files")
    if not isinstance(recorded, dict):
        raise Conflict(
            "--out holds an import that recorded no list of its files, so edits to it cannot be ruled out; "
            "pass --force to replace it anyway",
            field="out",
            code="out_modified",
        )
    changed = _changed(target, recorded)
    if changed:
        named = ", ".join(changed[:_LISTED]) + (f" and {len(changed) - _LISTED} more" if len(changed) > _LISTED else "")
        raise Conflict(
            f"--out holds files changed or added since its import ({named}); "
            "pass --force to replace the folder and lose them",
            field="out",
            code="out_modified",
        )
    if import_id is not None and earlier.import_id != import_id:
        raise Conflict(
            f"--out holds another import ({earlier.import_id or 'unnamed'}), not this chat's ({import_id}); "
            "give another folder, or pass --force to replace it",
            field="out",
            code="out_other_import",
        )
    return earlier
