"""`AssetRegistry`: register, find, describe, pin, reference and remove assets.

Order of a registration, so a crash anywhere leaves either no row or a complete one:

1. check the input and the bytes (type, size, image or audio), embed PNG provenance, hash;
2. under the shared blob lock: write the blob (fsynced, renamed into place) unless it exists, then commit
   the row in one transaction;
3. under the paths lock: read the row back and link the visible file to its blob and write the sidecar
   (both idempotent; `file_path` and `rebuild` redo this step for a row whose files went missing);
4. emit events, queue the thumbnail.

A crash after 2 leaves a blob without a row (gc deletes it); temporary files are never read as assets.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import attrs
import structlog
from comfyvn.errors import Conflict, Invalid, NotFound, OperationFailed, TooLarge, clip

from .blobs import BlobStore
from .db import Database
from .destpath import check_dest_path, default_dest, dest_file, safe_extension
from .events import Emit, Hooks, Listener
from .maintenance import collect, rebuild
from .media import PROVENANCE_KEY, embed_png_text, inspect_media
from .model import Asset, check_holder, check_json_object, check_tags, check_text, normalize_type, uid_for
from .settings import AssetSettings
from .sidecar import read_sidecar, sidecar_path, write_sidecar
from .sources import read_bounded, resolve_source
from .thumbs import Thumbnailer

__all__ = ["DB_NAME", "MAX_LIMIT", "AssetRegistry"]

log = structlog.get_logger("comfyvn.assets")
DB_NAME = "registry.sqlite3"
MAX_LIMIT = 1000
_UID = re.compile(r"^[0-9a-f]{16}$")
_HASH = re.compile(r"^[0-9a-f]{1,64}$")


@attrs.frozen
class _Draft:
    """A checked registration before it is stored."""

    uid: str
    path: str
    type: str
    data: bytes
    sha256: str
    width: int | None
    height: int | None
    tags: tuple[str, ...]
    license: str | None
    source: str | None
    metadata: dict[str, Any]
    provenance: dict[str, Any]
    pinned: bool


class AssetRegistry:
    """The asset registry below ``settings.root``: files, blobs, sidecars and ``registry.sqlite3``."""

    _instances: ClassVar[weakref.WeakKeyDictionary[Any, AssetRegistry]] = weakref.WeakKeyDictionary()
    _instances_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, settings: AssetSettings, *, emit: Emit | None = None) -> None:
        settings.root.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.root = settings.root.resolve()
        self.blobs = BlobStore(self.root)
        self.db = Database(self.root / DB_NAME)
        self.thumbs = Thumbnailer(settings.cache / "thumbs")
        self.hooks = Hooks(emit)

    @classmethod
    def for_kernel(cls, kernel: Any) -> AssetRegistry:
        """The registry of ``kernel`` (one per kernel, kept while the kernel lives); settings re-read each call."""
        settings = AssetSettings.from_kernel(kernel)
        with cls._instances_lock:
            registry = cls._instances.get(kernel)
            if registry is None or registry.settings.root != settings.root:
                registry = cls._instances[kernel] = cls(settings, emit=kernel.events.emit)
            registry.settings = settings
            return registry

    @classmethod
    def forget(cls, kernel: Any) -> None:
        """Close and drop ``kernel``'s registry (the plugin's shutdown)."""
        with cls._instances_lock:
            registry = cls._instances.pop(kernel, None)
        if registry is not None:
            registry.close()

    def close(self) -> None:
        """Finish queued thumbnails."""
        self.thumbs.close()

    def add_hook(self, event: str, callback: Listener) -> Callable[[], None]:
        """Call ``callback(payload)`` after ``asset_registered``, ``asset_meta_updated``, ``asset_removed`` or
        ``asset_sidecar_written`` (each also goes to the bus as ``on_<event>``); returns a remover."""
        return self.hooks.add(event, callback)

    # -- registering -----------------------------------------------------------------------------------
    def _check_size(self, size: int) -> None:
        if size > self.settings.max_bytes:
            limit = self.settings.max_bytes
            raise TooLarge(f"the file is larger than the {limit} bytes allowed", field="file", code="asset_too_large")
        if size == 0:
            raise Invalid("the file is empty", field="file", code="empty_file")

    def _draft(
        self,
        data: bytes,
        *,
        asset_type: str,
        dest_path: str | None,
        filename: str | None,
        metadata: Mapping[str, Any] | None,
        provenance: Mapping[str, Any] | None,
        tags: Iterable[str],
        license: str | None,
        source: str | None,
        pinned: bool,
    ) -> _Draft:
        kind = normalize_type(asset_type)
        self._check_size(len(data))
        meta, prov = check_json_object(metadata, "metadata"), check_json_object(provenance, "provenance")
        checked_tags = check_tags(tags)
        lic, src = check_text(license, "license"), check_text(source, "source")
        dest = None if dest_path is None else check_dest_path(dest_path)
        media = inspect_media(data, kind, safe_extension(dest or filename))
        if prov and media.format == "PNG":
            data = embed_png_text(data, PROVENANCE_KEY, prov)
            self._check_size(len(data))
        sha = hashlib.sha256(data).hexdigest()
        dest = dest or default_dest(kind, sha, media.extension)
        return _Draft(
            uid_for(dest), dest, kind, data, sha, media.width, media.height, checked_tags, lic, src, meta, prov, pinned
        )

    def register_bytes(
        self,
        data: bytes,
        *,
        asset_type: str,
        dest_path: str | None = None,
        filename: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        provenance: Mapping[str, Any] | None = None,
        tags: Sequence[str] = (),
        license: str | None = None,
        source: str | None = None,
        pinned: bool = False,
    ) -> Asset:
        """Register ``data`` at ``dest_path`` (default ``<type folder>/<sha[:12]><ext>``). New bytes at a
        registered path replace its content and keep its uid, pins and holders; the same bytes at the same
        path change nothing. ``filename`` only lends its extension to a default path."""
        draft = self._draft(
            data,
            asset_type=asset_type,
            dest_path=dest_path,
            filename=filename,
            metadata=metadata,
            provenance=provenance,
            tags=tags,
            license=license,
            source=source,
            pinned=pinned,
        )
        return self._store(draft, lambda: self.blobs.put(draft.sha256, draft.data))

    def register_file(
        self,
        path: str | os.PathLike[str],
        *,
        asset_type: str,
        dest_path: str | None = None,
        copy: bool = True,
        metadata: Mapping[str, Any] | None = None,
        provenance: Mapping[str, Any] | None = None,
        tags: Sequence[str] = (),
        license: str | None = None,
        source: str | None = None,
        pinned: bool = False,
        confined: bool = True,
    ) -> Asset:
        """Register a file already on this machine. With ``confined`` (the default, and always over HTTP) the
        file must lie under a configured import root once symlinks are resolved (a relative path is looked up
        in each root). ``copy=False`` hard-links the file into the registry when it can (it then shares the
        bytes: edit the original and you edit the asset); otherwise, and by default, the bytes are copied."""
        resolved = resolve_source(path, self.settings.import_roots, confined=confined)
        data = read_bounded(resolved, self.settings.max_bytes)
        draft = self._draft(
            data,
            asset_type=asset_type,
            dest_path=dest_path,
            filename=resolved.name,
            metadata=metadata,
            provenance=provenance,
            tags=tags,
            license=license,
            source=source,
            pinned=pinned,
        )

        def store_blob() -> None:
            if copy or draft.data is not data or not self.blobs.adopt(draft.sha256, resolved):
                self.blobs.put(draft.sha256, draft.data)

        return self._store(draft, store_blob)

    def _check_target(self, dest: str) -> Path:
        """The visible file for ``dest``; `Conflict` when a folder sits there or a file where a folder must."""
        target = dest_file(self.root, dest)
        if target.is_dir():
            raise Conflict("a folder already exists at dest_path", field="dest_path", code="dest_path_taken")
        for parent in target.parents:
            if parent == self.root:
                break
            if parent.exists() and not parent.is_dir():
                raise Conflict("a file is in the way of dest_path's folders", field="dest_path", code="dest_path_taken")
        return target

    def _store(self, draft: _Draft, store_blob: Callable[[], object]) -> Asset:
        self._check_target(draft.path)
        previous: Asset | None = None
        saved: Asset | None = None  # the row this registration committed, if it committed one
        changed = False
        with self.blobs.registering():
            with self.db.connect() as conn:
                current = self.db.get(conn, draft.uid)
                intact = self.blobs.has(draft.sha256, len(draft.data))
                if current is None or current.sha256 != draft.sha256 or not intact:
                    store_blob()  # also heals a row whose blob went missing: the same bytes are at hand
                    with self.db.transaction(conn):
                        previous = self.db.get(conn, draft.uid)
                        if previous is not None and previous.path != draft.path:
                            raise Conflict("another path has this uid", field="dest_path", code="uid_collision")
                        if previous is None or previous.sha256 != draft.sha256:
                            saved = self._row(draft, previous)
                            self.db.save(conn, saved)
                            changed = True
                if draft.pinned:
                    with self.db.transaction(conn):
                        conn.execute("UPDATE assets SET pinned = 1 WHERE uid = ?", (draft.uid,))
            target = dest_file(self.root, draft.path)
            existed = [os.path.lexists(p) for p in (target, sidecar_path(target))]
            try:
                asset, wrote = self._materialize(draft.uid)
            except BaseException as exc:
                if saved is not None:
                    self._take_back(saved, previous, target, existed)
                if isinstance(exc, OSError):  # the disk, not the client: say what, never where
                    raise OperationFailed(
                        f"the asset's file could not be written ({exc.strerror or type(exc).__name__});"
                        " nothing was registered",
                        field="dest_path",
                        code="asset_write_failed",
                    ) from None
                raise
        if asset is None:  # removed between the commit and now
            raise NotFound("the asset was removed while it was registered", field="uid", code="asset_not_found")
        if changed:
            prior = previous.sha256 if previous is not None else None
            self.hooks.fire("asset_registered", {**asset.to_wire(), "previous_sha256": prior})
        if wrote:
            self._sidecar_written(asset)
        if asset.width is not None:
            self.thumbs.schedule(asset.sha256, self.blobs.path(asset.sha256))
        log.debug(
            "asset registered" if changed else "asset unchanged",
            uid=asset.uid,
            path=asset.path,
            sidecar=f"{asset.path}.asset.json",
            thumbnail=str(self.thumbs.path(asset.sha256)) if asset.width is not None else None,
        )
        return asset

    @staticmethod
    def _row(draft: _Draft, previous: Asset | None) -> Asset:
        now = time.time()
        return Asset(
            uid=draft.uid,
            type=draft.type,
            path=draft.path,
            sha256=draft.sha256,
            size=len(draft.data),
            width=draft.width,
            height=draft.height,
            tags=draft.tags,
            license=draft.license,
            source=draft.source,
            metadata=draft.metadata,
            provenance=draft.provenance,
            created=previous.created if previous is not None else now,
            pinned=draft.pinned or (previous.pinned if previous is not None else False),
            refs=previous.refs if previous is not None else (),
            updated=now,
            last_access=now,
        )

    def _materialize(self, uid: str) -> tuple[Asset | None, bool]:
        """Make the visible file and sidecar of ``uid`` match its committed row (idempotent)."""
        with self.blobs.writing_paths():
            with self.db.connect() as conn:
                asset = self.db.get(conn, uid)
            if asset is None:
                return None, False
            target = dest_file(self.root, asset.path)
            if not self.blobs.has(asset.sha256, asset.size):
                raise OperationFailed(
                    f"the stored bytes of asset {uid} are missing; run `comfyvn assets rebuild`",
                    field="uid",
                    code="asset_bytes_missing",
                )
            self.blobs.materialize(asset.sha256, target)
            return asset, write_sidecar(target, asset)

    def _take_back(self, saved: Asset, previous: Asset | None, target: Path, existed: list[bool]) -> None:
        """Undo a registration whose files could not be written: its row goes (the previous one comes back) and
        the visible file, sidecar and folders it made go, so nothing half-registered stays (the blob no row
        names is gc's). Nothing happens when another registration has replaced the row since."""
        with self.blobs.writing_paths():
            with self.db.connect() as conn, self.db.transaction(conn):
                now = self.db.get(conn, saved.uid)
                if now is None or (now.sha256, now.updated) != (saved.sha256, saved.updated):
                    return
                if previous is None:
                    self.db.delete(conn, saved.uid)
                else:
                    self.db.save(conn, previous)
            if previous is None:
                for path, was_there in zip((target, sidecar_path(target)), existed, strict=True):
                    if not was_there:
                        with contextlib.suppress(OSError):
                            path.unlink()
                self._prune_folders(target)
        if previous is not None:
            with contextlib.suppress(Exception):  # best effort: the previous content's file back in place
                self._materialize(saved.uid)

    def _sidecar_written(self, asset: Asset) -> None:
        sidecar = f"{asset.path}.asset.json"
        self.hooks.fire(
            "asset_sidecar_written", {"uid": asset.uid, "path": asset.path, "sidecar": sidecar, "sha256": asset.sha256}
        )

    # -- reading ---------------------------------------------------------------------------------------
    def get(self, uid: str) -> Asset:
        """The asset ``uid``; `NotFound` (``asset_not_found``) when there is none."""
        if isinstance(uid, str) and _UID.match(uid):
            with self.db.connect() as conn:
                if (asset := self.db.get(conn, uid)) is not None:
                    return asset
        shown = clip(uid, 40) if isinstance(uid, str) else "?"
        raise NotFound(f"no asset {shown!r}", field="uid", code="asset_not_found")

    def by_path(self, dest_path: str) -> Asset | None:
        """The asset registered at ``dest_path``, or None."""
        dest = check_dest_path(dest_path)
        with self.db.connect() as conn:
            asset = self.db.get(conn, uid_for(dest))
        return asset if asset is not None and asset.path == dest else None

    def file_path(self, uid: str) -> Path:
        """The visible file of ``uid`` (re-made from its blob if it went missing); records the access for LRU."""
        asset = self.get(uid)
        target = dest_file(self.root, asset.path)
        try:
            intact = target.stat().st_size == asset.size
        except OSError:
            intact = False
        if not intact:
            self._materialize(uid)
        self.touch(uid)
        return target

    def touch(self, uid: str) -> None:
        """Record that ``uid`` was used now (gc evicts the least recently used first)."""
        with self.db.connect() as conn, self.db.transaction(conn):
            self.db.touch(conn, uid)

    def sidecar(self, uid: str) -> dict[str, Any]:
        """The parsed sidecar of ``uid`` (re-written first if it went missing)."""
        asset = self.get(uid)
        path = sidecar_path(dest_file(self.root, asset.path))
        if not path.is_file():
            self._materialize(uid)
        return read_sidecar(path)

    def find(
        self,
        *,
        type: str | None = None,
        hash: str | None = None,
        tags: Iterable[str] | str = (),
        q: str | None = None,
        limit: int = 100,
    ) -> list[Asset]:
        """Assets matching every filter given, by path: ``type`` (legacy names too), ``hash`` (a sha256 or a
        prefix of one), each of ``tags`` and the substring ``q`` (path, tags, licence, source, metadata) —
        all case-insensitive. At most ``limit`` (1 to 1000)."""
        where: list[str] = []
        args: list[Any] = []
        if type:
            where.append("type = ?")
            args.append(normalize_type(type, "type"))
        if hash:
            digest = hash.strip().lower()
            if not _HASH.match(digest):
                raise Invalid("hash must be hexadecimal digits of a sha256", field="hash", code="invalid_hash")
            where.append("substr(sha256, 1, ?) = ?")
            args += [len(digest), digest]
        for tag in check_tags([tags] if isinstance(tags, str) else tags):
            where.append("EXISTS (SELECT 1 FROM asset_tags t WHERE t.uid = assets.uid AND t.tag = ?)")
            args.append(tag.casefold())
        if q:
            where.append("instr(search, ?) > 0")
            args.append(q.casefold())
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise Invalid(f"limit must be 1 to {MAX_LIMIT}", field="limit", code="invalid_limit")
        with self.db.connect() as conn:
            return self.db.query(conn, where, args, limit)

    def blob_refs(self, sha256: str) -> int:
        """How many assets share the blob ``sha256``."""
        with self.db.connect() as conn:
            return self.db.blob_refs(conn, sha256)

    # -- changing --------------------------------------------------------------------------------------
    def update_meta(
        self,
        uid: str,
        *,
        tags: Sequence[str] | None = None,
        license: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        source: str | None = None,
    ) -> Asset:
        """Replace the tags, metadata, licence or source given (None leaves one as it is; "" clears a licence
        or source); rewrites the sidecar and emits ``on_asset_meta_updated`` when anything changed."""
        self.get(uid)
        changes: dict[str, Any] = {}
        if tags is not None:
            changes["tags"] = check_tags(tags)
        if license is not None:
            changes["license"] = check_text(license, "license")
        if source is not None:
            changes["source"] = check_text(source, "source")
        if metadata is not None:
            changes["metadata"] = check_json_object(metadata, "metadata")
        with self.db.connect() as conn, self.db.transaction(conn):
            current = self.db.get(conn, uid)
            if current is None:
                raise NotFound(f"no asset {uid!r}", field="uid", code="asset_not_found")
            updated = attrs.evolve(current, **changes)
            changed = updated != current
            if changed:
                self.db.save(conn, attrs.evolve(updated, updated=time.time()))
        asset, wrote = self._materialize(uid)
        if asset is None:
            raise NotFound(f"no asset {uid!r}", field="uid", code="asset_not_found")
        if changed:
            self.hooks.fire("asset_meta_updated", asset.to_wire())
        if wrote:
            self._sidecar_written(asset)
        return asset

    def pin(self, uid: str, pinned: bool = True) -> Asset:
        """Pin (gc never evicts it) or unpin an asset."""
        self.get(uid)
        with self.db.connect() as conn, self.db.transaction(conn):
            conn.execute("UPDATE assets SET pinned = ? WHERE uid = ?", (int(bool(pinned)), uid))
        return self.get(uid)

    def add_ref(self, uid: str, holder: str) -> None:
        """Record that ``holder`` (``project:<id>``, …) uses ``uid``: gc keeps it while any holder remains."""
        name = check_holder(holder)
        self.get(uid)
        with self.db.connect() as conn, self.db.transaction(conn):
            if self.db.get(conn, uid) is None:
                raise NotFound(f"no asset {uid!r}", field="uid", code="asset_not_found")
            self.db.hold(conn, uid, name)

    def release(self, uid: str, holder: str) -> None:
        """Drop ``holder``'s reference to ``uid`` (nothing happens when it held none)."""
        name = check_holder(holder)
        self.get(uid)
        with self.db.connect() as conn, self.db.transaction(conn):
            self.db.unhold(conn, uid, name)

    def remove(self, uid: str, *, force: bool = False) -> Asset:
        """Remove an asset: its row, visible file and sidecar, and its blob when no other asset shares it.
        A pinned or referenced asset is refused (`Conflict`) unless ``force``."""
        asset = self.get(uid)
        if not force and (asset.pinned or asset.refs):
            why = "pinned" if asset.pinned else f"referenced by {', '.join(asset.refs[:3])}"
            raise Conflict(f"asset {uid} is {why}; unpin/release it or force", field="uid", code="asset_in_use")
        with self.blobs.collecting():
            removed = self.evict([uid], reason="removed")
        if not removed:
            raise NotFound(f"no asset {uid!r}", field="uid", code="asset_not_found")
        return removed[0]

    def evict(self, uids: Sequence[str], *, reason: str) -> list[Asset]:
        """Delete the rows, files and unshared blobs of ``uids`` (callers hold `BlobStore.collecting`)."""
        gone: list[Asset] = []
        with self.db.connect() as conn:
            with self.db.transaction(conn):
                for uid in uids:
                    if (asset := self.db.get(conn, uid)) is not None:
                        self.db.delete(conn, uid)
                        gone.append(asset)
            unshared = {a.sha256 for a in gone if self.db.blob_refs(conn, a.sha256) == 0}
        with self.blobs.writing_paths():
            for asset in gone:
                self._unlink_files(dest_file(self.root, asset.path))
        for sha in unshared:
            self.blobs.remove(sha)
            self.thumbs.remove(sha)
        for asset in gone:
            self.hooks.fire("asset_removed", {**attrs.evolve(asset, refs=()).to_wire(), "reason": reason})
        return gone

    def _unlink_files(self, target: Path) -> None:
        # Companion records other tools keep next to the file (``<file>.bridge.json`` of the ComfyUI
        # bridge) describe this file only: they go with it.
        companions = list(target.parent.glob(f"{glob.escape(target.name)}.*.json")) if target.parent.is_dir() else []
        for path in (target, sidecar_path(target), *companions):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._prune_folders(target)

    def _prune_folders(self, target: Path) -> None:
        for folder in target.parents:  # drop folders a removal emptied, up to the root
            if folder == self.root or self.root not in folder.parents:
                break
            try:
                folder.rmdir()
            except OSError:
                break

    # -- maintenance -----------------------------------------------------------------------------------
    def gc(self, *, max_bytes: int | None = None, dry_run: bool = False) -> dict[str, Any]:
        """Delete leftovers (temporary files, blobs no row names, orphan thumbnails) and, with ``max_bytes``,
        evict the least recently used unpinned, unreferenced assets until the blobs fit; see `maintenance`."""
        return collect(self, max_bytes=max_bytes, dry_run=dry_run)

    def rebuild(self) -> dict[str, Any]:
        """Reconcile the database with the files: read sidecars into rows, re-make missing visible files and
        sidecars, drop rows whose bytes are gone; see `maintenance`."""
        return rebuild(self)
