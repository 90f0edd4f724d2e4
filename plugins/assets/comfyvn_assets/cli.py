"""``comfyvn assets list|show|import|remove|pin|unpin|rebuild|gc``: the asset registry from a shell.

Exit codes: 0 fine; 2 bad input or an unknown asset (the root group turns a `ComfyVNError` into one line).
``import`` reads any file the user can read: the person at the shell owns their files, so the import-root
restriction of ``POST /assets/register`` does not apply; the bytes are always copied into the registry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import click
from comfyvn.errors import Invalid
from comfyvn.wire import loads

from .model import Asset
from .registry import MAX_LIMIT, AssetRegistry

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["assets_group", "parse_size"]

_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
_SIZE = re.compile(r"^(\d{1,15})\s*([kmgt]?)(i?b)?$", re.I)
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_size(text: str, field: str = "max-bytes") -> int:
    """``500M``, ``2GiB``, ``1024`` -> bytes (binary units)."""
    match = _SIZE.match(text.strip())
    if not match:
        raise Invalid(f"{text[:40]!r} is not a size (e.g. 1024, 500M, 2G)", field=field, code="invalid_size")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def _out(as_json: bool, data: Any, lines: Iterable[str]) -> None:
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) if as_json else "\n".join(lines)
    if text:
        click.echo(text)


def _json_object(text: str | None, field: str) -> dict[str, Any] | None:
    if text is None:
        return None
    value = loads(text, field=field)
    if not isinstance(value, dict):
        raise Invalid(f"{field} must be a JSON object", field=field, code="invalid_request")
    return value


def _line(asset: Asset) -> str:
    size = f"{asset.width}x{asset.height}" if asset.width is not None else f"{asset.size} B"
    flags = " pinned" if asset.pinned else ""
    return f"{asset.uid}  {asset.type:<18}  {size:>11}  {asset.path}{flags}"


@click.group("assets")
def assets_group() -> None:
    """The asset registry: files under <data>/assets, deduplicated, with provenance sidecars."""


@assets_group.command("list")
@click.option("--type", "asset_type", help="character.sprite, background, portrait, bgm, …")
@click.option("--tag", "tags", multiple=True, help="Only assets with this tag (repeatable; all must match).")
@click.option("--hash", "digest", help="A sha256 or a prefix of one.")
@click.option("-q", "--query", help="Substring of path, tags, licence, source or metadata.")
@click.option("--limit", default="100", show_default=True, help=f"At most this many (1 to {MAX_LIMIT}).")
@_json_option
@click.pass_obj
def list_cmd(
    kernel: Kernel,
    asset_type: str | None,
    tags: tuple[str, ...],
    digest: str | None,
    query: str | None,
    limit: str,
    as_json: bool,
) -> None:
    """List registered assets (filters are case-insensitive and cumulative)."""
    if not limit.isdigit():
        raise Invalid(f"limit must be 1 to {MAX_LIMIT}", field="limit", code="invalid_limit")
    found = AssetRegistry.for_kernel(kernel).find(type=asset_type, hash=digest, tags=tags, q=query, limit=int(limit))
    _out(
        as_json,
        {"assets": [a.to_wire() for a in found], "count": len(found)},
        [_line(a) for a in found] or ["no assets match (register one with `comfyvn assets import FILE --type TYPE`)"],
    )


@assets_group.command("show")
@click.argument("uid")
@_json_option
@click.pass_obj
def show_cmd(kernel: Kernel, uid: str, as_json: bool) -> None:
    """Show one asset with its sidecar."""
    registry = AssetRegistry.for_kernel(kernel)
    asset = registry.get(uid)
    data = {**asset.to_wire(), "sidecar": registry.sidecar(uid)}
    lines = [
        f"uid         {asset.uid}",
        f"type        {asset.type}",
        f"path        {asset.path}",
        f"file        {registry.file_path(uid)}",
        f"sha256      {asset.sha256}",
        f"size        {asset.size} bytes" + (f", {asset.width}x{asset.height}" if asset.width is not None else ""),
        f"tags        {', '.join(asset.tags) or '-'}",
        f"license     {asset.license or '-'}",
        f"source      {asset.source or '-'}",
        f"pinned      {'yes' if asset.pinned else 'no'}",
        f"held by     {', '.join(asset.refs) or '-'}",
        f"metadata    {json.dumps(asset.metadata, ensure_ascii=False, sort_keys=True)}",
        f"provenance  {json.dumps(asset.provenance, ensure_ascii=False, sort_keys=True)}",
    ]
    _out(as_json, data, lines)


@assets_group.command("import")
@click.argument("file", metavar="FILE")
@click.option("--type", "asset_type", required=True, help="character.sprite, background, portrait, bgm, …")
@click.option("--dest", "dest_path", help="Path under the assets root (default <type folder>/<sha[:12]><ext>).")
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--license", "license_", help="The licence, e.g. CC-BY-4.0.")
@click.option("--source", help="Where it came from, e.g. modpack-01.")
@click.option("--metadata", help="A JSON object of free-form metadata.")
@click.option("--provenance", help="A JSON object describing how it was made (embedded in PNG files too).")
@click.option("--pin", is_flag=True, help="Pin it (gc never evicts it).")
@_json_option
@click.pass_obj
def import_cmd(
    kernel: Kernel,
    file: str,
    asset_type: str,
    dest_path: str | None,
    tags: tuple[str, ...],
    license_: str | None,
    source: str | None,
    metadata: str | None,
    provenance: str | None,
    pin: bool,
    as_json: bool,
) -> None:
    """Register a local file (copied into the registry)."""
    asset = AssetRegistry.for_kernel(kernel).register_file(
        file,
        asset_type=asset_type,
        dest_path=dest_path,
        copy=True,
        metadata=_json_object(metadata, "metadata"),
        provenance=_json_object(provenance, "provenance"),
        tags=tags,
        license=license_,
        source=source,
        pinned=pin,
        confined=False,
    )
    _out(as_json, asset.to_wire(), [f"registered {asset.uid} at {asset.path} ({asset.size} bytes)"])


@assets_group.command("remove")
@click.argument("uid")
@click.option("--force", is_flag=True, help="Remove it even when pinned or referenced.")
@click.pass_obj
def remove_cmd(kernel: Kernel, uid: str, force: bool) -> None:
    """Remove an asset (its file, sidecar, row, and blob when unshared)."""
    asset = AssetRegistry.for_kernel(kernel).remove(uid, force=force)
    click.echo(f"removed {asset.uid} ({asset.path})")


def _pin(kernel: Kernel, uid: str, pinned: bool, as_json: bool) -> None:
    asset = AssetRegistry.for_kernel(kernel).pin(uid, pinned)
    _out(as_json, asset.to_wire(), [f"{'pinned' if pinned else 'unpinned'} {asset.uid} ({asset.path})"])


@assets_group.command("pin")
@click.argument("uid")
@_json_option
@click.pass_obj
def pin_cmd(kernel: Kernel, uid: str, as_json: bool) -> None:
    """Pin an asset: gc never evicts it."""
    _pin(kernel, uid, True, as_json)


@assets_group.command("unpin")
@click.argument("uid")
@_json_option
@click.pass_obj
def unpin_cmd(kernel: Kernel, uid: str, as_json: bool) -> None:
    """Unpin an asset."""
    _pin(kernel, uid, False, as_json)


@assets_group.command("rebuild")
@_json_option
@click.pass_obj
def rebuild_cmd(kernel: Kernel, as_json: bool) -> None:
    """Reconcile the database with the files: read sidecars, re-make missing files and sidecars."""
    report = AssetRegistry.for_kernel(kernel).rebuild()
    lines = [
        f"sidecars read  {report['sidecars']}",
        f"added          {len(report['added'])}",
        f"updated        {len(report['updated'])}",
        f"repaired       {len(report['repaired'])}",
        f"dropped        {len(report['dropped'])}" + (" (their bytes are gone)" if report["dropped"] else ""),
        *(f"skipped        {s['sidecar']}: {s['reason']}" for s in report["skipped"]),
    ]
    _out(as_json, report, lines)


@assets_group.command("gc")
@click.option("--max-bytes", help="Evict least recently used unpinned, unreferenced assets down to this size (500M).")
@click.option("--dry-run", is_flag=True, help="Report what would go without deleting anything.")
@_json_option
@click.pass_obj
def gc_cmd(kernel: Kernel, max_bytes: str | None, dry_run: bool, as_json: bool) -> None:
    """Delete leftovers (temporary files, orphan blobs and thumbnails) and, with --max-bytes, evict by LRU."""
    limit = None if max_bytes is None else parse_size(max_bytes)
    report = AssetRegistry.for_kernel(kernel).gc(max_bytes=limit, dry_run=dry_run)
    verb = "would free" if dry_run else "freed"
    lines = [
        f"temporary files  {report['temp_files']}",
        f"orphan blobs     {report['orphan_blobs']}",
        f"orphan thumbs    {report['orphan_thumbnails']}",
        f"evicted          {len(report['evicted'])}",
        f"{verb:<16} {report['freed_bytes']} bytes ({report['bytes_before']} -> {report['bytes_after']})",
    ]
    _out(as_json, report, lines)
