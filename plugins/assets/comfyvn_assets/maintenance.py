"""Registry maintenance: `collect` (gc: leftovers, orphan blobs, LRU eviction by size) and `rebuild`
(database <- sidecars and files). Both run under the exclusive blob lock, so no registration is between
writing a blob and committing its row while they look."""

from __future__ import annotations

import hashlib
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from comfyvn.errors import ComfyVNError, Invalid

from .blobs import file_sha256, is_temp_name
from .destpath import SIDECAR_SUFFIX, check_dest_path, dest_file
from .media import inspect_media
from .model import Asset, check_json_object, check_tags, check_text, normalize_type, uid_for
from .sidecar import read_sidecar

if TYPE_CHECKING:
    from .registry import AssetRegistry

__all__ = ["collect", "rebuild"]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def collect(registry: AssetRegistry, *, max_bytes: int | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Delete temporary leftovers, blobs no row names and thumbnails of such blobs; with ``max_bytes``, evict
    whole blobs' worth of assets, least recently used first, until the stored bytes fit. An asset that is
    pinned or held (`AssetRegistry.add_ref`) is never evicted, and neither is any asset sharing its blob (that
    would free nothing). ``dry_run`` reports without deleting."""
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0):
        raise Invalid("max_bytes must be a whole number of bytes", field="max_bytes", code="invalid_max_bytes")
    blobs, db = registry.blobs, registry.db
    report: dict[str, Any] = {"dry_run": dry_run, "evicted": [], "freed_bytes": 0}
    with blobs.collecting():
        with blobs.writing_paths():
            temps = list(blobs.temp_files())
            if not dry_run:
                for path in temps:
                    path.unlink(missing_ok=True)
        report["temp_files"] = len(temps)

        with db.connect() as conn:
            rows = db.all(conn)
        on_disk = dict(blobs.shas())
        report["bytes_before"] = sum(_size(p) for p in on_disk.values())
        known = {a.sha256 for a in rows}
        orphans = {sha: path for sha, path in on_disk.items() if sha not in known}
        report["orphan_blobs"] = len(orphans)
        report["freed_bytes"] += sum(_size(p) for p in orphans.values())
        if not dry_run:
            for sha in orphans:
                blobs.remove(sha)

        by_blob: dict[str, list[Asset]] = defaultdict(list)
        for asset in rows:
            by_blob[asset.sha256].append(asset)
        used = sum(group[0].size for group in by_blob.values())
        evict: list[str] = []
        if max_bytes is not None and used > max_bytes:
            candidates = sorted(
                (max(a.last_access for a in group), sha)
                for sha, group in by_blob.items()
                if not any(a.pinned or a.refs for a in group)
            )
            for _, sha in candidates:
                if used <= max_bytes:
                    break
                evict += [a.uid for a in by_blob[sha]]
                used -= by_blob[sha][0].size
                report["freed_bytes"] += by_blob[sha][0].size
                known.discard(sha)
        report["evicted"] = evict
        if evict and not dry_run:
            registry.evict(evict, reason="gc")

        thumbs = registry.thumbs.folder
        stale = [p for p in sorted(thumbs.glob("*.png")) if p.stem not in known] if thumbs.is_dir() else []
        report["orphan_thumbnails"] = len(stale)
        if not dry_run:
            for path in stale:
                path.unlink(missing_ok=True)
        report["bytes_after"] = used  # what a dry run would leave
    return report


def _sidecars(root: Path) -> list[Path]:
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [
            Path(folder) / name
            for name in sorted(files)
            if name.endswith(SIDECAR_SUFFIX) and not name.startswith(".") and not is_temp_name(name)
        ]
    return found


def _from_sidecar(registry: AssetRegistry, sidecar: Path) -> tuple[Asset, bytes, str] | str:
    """The row a sidecar and its file describe, the file's bytes and the digest the sidecar recorded; or
    why they cannot be used."""
    relative = sidecar.relative_to(registry.root).as_posix()[: -len(SIDECAR_SUFFIX)]
    try:
        dest = check_dest_path(relative)
        visible = dest_file(registry.root, dest)
        if not visible.is_file():
            return "file_missing"
        if _size(visible) > registry.settings.max_bytes:
            return "too_large"
        data = visible.read_bytes()
        described = read_sidecar(sidecar)
        kind = normalize_type(described.get("type"), "type")
        media = inspect_media(data, kind)
        created = described.get("created")
        now = time.time()
        asset = Asset(
            uid=uid_for(dest),
            type=kind,
            path=dest,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            width=media.width,
            height=media.height,
            tags=check_tags(described.get("tags") or []),
            license=check_text(described.get("license"), "license"),
            source=check_text(described.get("source"), "source"),
            metadata=check_json_object(described.get("metadata"), "metadata"),
            provenance=check_json_object(described.get("provenance"), "provenance"),
            created=float(created) if isinstance(created, int | float) and not isinstance(created, bool) else now,
            updated=now,
            last_access=now,
        )
    except ComfyVNError as exc:
        return exc.code
    except OSError:
        return "unreadable"
    recorded = described.get("sha256")
    return asset, data, recorded if isinstance(recorded, str) else ""


def rebuild(registry: AssetRegistry) -> dict[str, Any]:
    """Bring the database in line with the files below the root:

    - a sidecar whose file exists and that has no row becomes one (a registry folder copied from elsewhere,
      or a lost database); a file replaced by hand (its bytes no longer match its sidecar) gives its row
      the new content. Otherwise the database is the truth and sidecars are its mirror;
    - each row whose blob is missing gets it back from an intact visible file, or is dropped;
    - each remaining row's visible file and sidecar are re-made when missing;
    - a sidecar with neither a row nor a file (a removal interrupted halfway) is deleted.

    Temporary files and hidden folders (``.blobs``) are never read as assets."""
    blobs, db = registry.blobs, registry.db
    report: dict[str, Any] = {
        "sidecars": 0,
        "added": [],
        "updated": [],
        "repaired": [],
        "dropped": [],
        "skipped": [],
        "orphan_sidecars": 0,
    }
    fired: list[tuple[str, Asset]] = []
    with blobs.collecting():
        for sidecar in _sidecars(registry.root):
            report["sidecars"] += 1
            with db.connect() as conn:
                relative = sidecar.relative_to(registry.root).as_posix()[: -len(SIDECAR_SUFFIX)]
                current = db.get(conn, uid_for(relative))
            found = _from_sidecar(registry, sidecar)
            if found == "file_missing" and current is not None:
                continue  # step two re-makes the file from the row's blob
            if found == "file_missing":
                # No row and no file: a removal was interrupted between deleting the file and its sidecar
                # (a sidecar is only ever written after its row is committed). It describes nothing now.
                sidecar.unlink(missing_ok=True)
                report["orphan_sidecars"] += 1
                continue
            if isinstance(found, str):
                report["skipped"].append({"sidecar": sidecar.relative_to(registry.root).as_posix(), "reason": found})
                continue
            asset, data, recorded = found
            if current is not None:
                if asset.sha256 == current.sha256:
                    continue  # the row already holds this file; the database's description wins
                if asset.sha256 == recorded and blobs.has(current.sha256, current.size):
                    continue  # file and sidecar predate the row's committed content: step two re-makes them
                # The file was replaced by hand: its bytes win, the row keeps its description and state.
                asset = attrs.evolve(
                    current,
                    sha256=asset.sha256,
                    size=asset.size,
                    width=asset.width,
                    height=asset.height,
                    updated=asset.updated,
                )
            blobs.put(asset.sha256, data)
            with db.connect() as conn, db.transaction(conn):
                db.save(conn, asset)
            report["added" if current is None else "updated"].append(asset.uid)
            fired.append(("asset_registered", asset))

        with db.connect() as conn:
            rows = db.all(conn)
        lost: list[str] = []
        for asset in rows:
            visible = dest_file(registry.root, asset.path)
            if not blobs.has(asset.sha256, asset.size):
                if visible.is_file() and file_sha256(visible) == asset.sha256:
                    blobs.put_file(asset.sha256, visible)
                    report["repaired"].append(asset.uid)
                else:
                    lost.append(asset.uid)
                    continue
            intact = _size(visible) == asset.size and visible.is_file()
            _, wrote = registry._materialize(asset.uid)
            if (not intact or wrote) and asset.uid not in report["repaired"]:
                report["repaired"].append(asset.uid)
            if wrote:
                fired.append(("asset_sidecar_written", asset))
        if lost:
            registry.evict(lost, reason="lost")
        report["dropped"] = lost
    for event, asset in fired:
        if event == "asset_sidecar_written":
            registry._sidecar_written(asset)
        else:
            registry.hooks.fire(event, asset.to_wire())
    return report
