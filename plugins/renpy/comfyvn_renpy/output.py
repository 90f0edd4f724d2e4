"""A `Bundle` on disk: write it, preview it against what is there (dry run), or zip it reproducibly."""

from __future__ import annotations

import difflib
import io
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from comfyvn.errors import ComfyVNError, Invalid, OperationFailed
from comfyvn.paths import atomic_write_bytes, safe_join

from .export import Bundle, digest, manifest_bytes, output_files, output_targets

__all__ = ["preview_bundle", "publish_zip", "write_bundle"]

TEXT_SUFFIXES = (".rpy", ".json", ".txt", ".md")
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can carry: fixed, so zips are reproducible


def _inside(out: Path, path: str) -> Path:
    """Where ``path`` of a bundle goes below ``out``; a symlink on the way that leads out is refused."""
    try:
        return safe_join(out, *path.split("/"), field="out")
    except ComfyVNError:
        raise Invalid(
            f"refusing to write {path}: a symlink in the output folder leads outside it", field="out", code="unsafe_out"
        ) from None


def write_bundle(bundle: Bundle, out: Path) -> dict[str, Any]:
    """Write changed files atomically, remove files an earlier export wrote that are no longer part of it.

    Nothing is written or removed outside ``out``: every target is checked with symlinks resolved first.
    A folder that cannot be created or written raises `OperationFailed` (no server path in the message)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OperationFailed(
            f"cannot create the output folder: {exc.strerror or exc}", field="out", code="out_unwritable"
        ) from None
    if not out.is_dir():
        raise OperationFailed("the output folder is not a folder", field="out", code="out_unwritable")
    files = bundle.all_files()
    targets = {path: _inside(out, path) for path in files}
    previous = output_targets(out)  # only which files it wrote: their bytes are compared below, once
    written = unchanged = 0
    for path, data in files.items():
        target = targets[path]
        try:
            if target.is_file() and target.read_bytes() == data:
                unchanged += 1
                continue
            atomic_write_bytes(target, data, mode=0o644)
        except OSError as exc:
            raise OperationFailed(
                f"cannot write {path}: {exc.strerror or exc}", field="out", code="out_unwritable"
            ) from None
        written += 1
    removed = sorted(set(previous) - set(bundle.files))
    for path in removed:
        _inside(out, path).unlink(missing_ok=True)
    return {"written": written, "unchanged": unchanged, "removed": removed}


def _diff(path: str, old: bytes | None, new: bytes | None, max_lines: int) -> str | None:
    if not path.endswith(TEXT_SUFFIXES):
        return None
    try:
        before = (old or b"").decode("utf-8").splitlines()
        after = (new or b"").decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return None
    lines = list(difflib.unified_diff(before, after, f"a/{path}", f"b/{path}", n=2, lineterm=""))
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], f"... ({len(lines) - max_lines} more lines)"]
    return "\n".join(lines)


def _entries(files: dict[str, bytes], out: Path, max_lines: int) -> list[dict[str, Any]]:
    entries = []
    for path, data in files.items():
        target = _inside(out, path)
        old = target.read_bytes() if target.is_file() else None
        status = "new" if old is None else "unchanged" if old == data else "modified"
        entry: dict[str, Any] = {"path": path, "status": status, "sha256": digest(data)}
        if status == "modified":
            entry["diff"] = _diff(path, old, data, max_lines)
        entries.append(entry)
    return entries


def preview_bundle(bundle: Bundle, out: Path, *, max_diff_lines: int = 40) -> dict[str, Any]:
    """Per file ``new``/``modified``/``unchanged`` (short unified diffs for text), nothing written.

    Manifests are listed apart: their digests change whenever any file does, so mixing them in would
    hide which file an edit touched.
    """
    files = _entries(bundle.files, out, max_diff_lines)
    previous = output_files(out)
    removed = sorted(set(previous) - set(bundle.files))
    counts = {status: sum(1 for e in files if e["status"] == status) for status in ("new", "modified", "unchanged")}
    return {
        "files": files,
        "manifests": _entries(bundle.manifests, out, max_diff_lines),
        "removed": removed,
        "summary": {**counts, "removed": len(removed)},
        "label_manifest": bundle.label_manifest,
        "missing_assets": bundle.export_manifest["missing_assets"],
    }


def _zip_entry(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # unix, so the permission bits below are honoured
    info.external_attr = 0o100644 << 16
    archive.writestr(info, data, compresslevel=9)


def publish_zip(bundle: Bundle, platforms: Sequence[str], *, version: str) -> tuple[bytes, dict[str, Any]]:
    """A byte-deterministic zip of the export: sorted entries, fixed dates and modes, ``publish_manifest.json``
    and a ``platforms/<name>/README.txt`` per platform saying where the final build goes."""
    entries = dict(bundle.all_files())
    names = sorted(dict.fromkeys(p.strip().lower() for p in platforms if p.strip()))
    project = bundle.export_manifest["project"]
    for name in names:
        entries[f"platforms/{name}/README.txt"] = (
            f"{project['title']} {version}: {name} build\n\n"
            f"Build the {name} distribution with the Ren'Py SDK (launcher > Build Distributions, or\n"
            f"`renpy.sh launcher distribute <this folder> --package {name}`) and put the result in this folder.\n"
        ).encode()
    manifest = {
        "format": "comfyvn-publish",
        "version": 1,
        "project": project,
        "build_version": version,
        "platforms": names,
        "files": {path: digest(data) for path, data in sorted(entries.items())},
    }
    entries["publish_manifest.json"] = manifest_bytes(manifest)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(entries):
            _zip_entry(archive, path, entries[path])
    return buffer.getvalue(), manifest
