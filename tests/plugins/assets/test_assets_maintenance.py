"""gc (pins and holders protect, LRU order by size, leftovers) and rebuild (sidecars -> rows, repairs)."""

from __future__ import annotations

import json
from typing import Any

from assets_support import png, sha
from comfyvn_assets import AssetRegistry


def _three(registry: AssetRegistry) -> list[Any]:
    """Three assets of distinct content, used oldest (a) to newest (c)."""
    assets = [
        registry.register_bytes(png(20, 20, (i, 0, 0, 255)), asset_type="image", dest_path=f"{name}.png")
        for i, name in enumerate("abc")
    ]
    for when, asset in enumerate(assets):
        with registry.db.connect() as conn, registry.db.transaction(conn):
            registry.db.touch(conn, asset.uid, 1000.0 + when)
    return assets


def test_gc_evicts_least_recently_used_first_until_the_blobs_fit(registry: AssetRegistry, events: list[Any]) -> None:
    a, b, c = _three(registry)
    total = a.size + b.size + c.size
    registry.file_path(a.uid)  # using a makes it the most recent
    dry = registry.gc(max_bytes=total - 1, dry_run=True)
    assert dry["evicted"] == [b.uid] and dry["bytes_after"] == total - b.size
    assert len(registry.find()) == 3  # a dry run deletes nothing

    report = registry.gc(max_bytes=total - 1)
    assert report["evicted"] == [b.uid] and report["freed_bytes"] == b.size
    assert [x.uid for x in registry.find()] == [a.uid, c.uid]
    assert not (registry.root / "b.png").exists() and not registry.blobs.path(b.sha256).exists()
    removed = [e.payload for e in events if e.event == "on_asset_removed"]
    assert [(p["uid"], p["reason"]) for p in removed] == [(b.uid, "gc")]

    assert registry.gc(max_bytes=0)["evicted"] == [c.uid, a.uid]
    assert registry.find() == []


def test_gc_never_deletes_a_pinned_or_referenced_blob(registry: AssetRegistry) -> None:
    a, b, c = _three(registry)
    registry.pin(a.uid)
    registry.add_ref(b.uid, "project:demo")
    # d shares the pinned a's blob: evicting it would free nothing, so it stays too.
    d = registry.register_bytes(png(20, 20, (0, 0, 0, 255)), asset_type="image", dest_path="d.png")
    assert d.sha256 == a.sha256
    report = registry.gc(max_bytes=0)
    assert report["evicted"] == [c.uid]
    assert {x.uid for x in registry.find()} == {a.uid, b.uid, d.uid}
    for asset in (a, b, d):
        assert sha(registry.file_path(asset.uid).read_bytes()) == asset.sha256
    registry.release(b.uid, "project:demo")
    assert registry.gc(max_bytes=0)["evicted"] == [b.uid]
    registry.pin(a.uid, False)
    assert sorted(registry.gc(max_bytes=0)["evicted"]) == sorted([a.uid, d.uid])
    assert list(registry.blobs.shas()) == []


def test_gc_removes_leftovers_only(registry: AssetRegistry) -> None:
    kept = registry.register_bytes(png(), asset_type="image", dest_path="keep/me.png")
    orphan = png(5, 5)
    registry.blobs.put(sha(orphan), orphan)  # a blob whose registration died before its row
    (registry.blobs.tmp / ".blob.abc.tmp").write_bytes(b"half")
    (registry.root / "keep" / ".me.png.x1.tmp").write_bytes(b"half")
    (registry.root / "keep" / "user-note.txt").write_text("not ours to delete")
    registry.thumbs.wait(30)
    stale_thumb = registry.thumbs.path(sha(orphan))
    stale_thumb.write_bytes(b"x")
    report = registry.gc()
    assert (report["temp_files"], report["orphan_blobs"], report["orphan_thumbnails"]) == (2, 1, 1)
    assert report["evicted"] == [] and report["freed_bytes"] == len(orphan)
    assert (registry.root / "keep" / "user-note.txt").exists() and not stale_thumb.exists()
    assert [s for s, _ in registry.blobs.shas()] == [kept.sha256]
    assert registry.thumbs.path(kept.sha256).exists()
    assert registry.gc()["temp_files"] == 0


def test_rebuild_repairs_missing_files_and_sidecars(registry: AssetRegistry, events: list[Any]) -> None:
    asset = registry.register_bytes(png(), asset_type="image", dest_path="x/a.png", tags=["t"])
    (registry.root / "x/a.png").unlink()
    (registry.root / "x/a.png.asset.json").unlink()
    report = registry.rebuild()
    assert report["repaired"] == [asset.uid] and report["added"] == report["dropped"] == []
    assert sha((registry.root / "x/a.png").read_bytes()) == asset.sha256
    assert json.loads((registry.root / "x/a.png.asset.json").read_text()) == asset.sidecar_payload()
    assert events[-1].event == "on_asset_sidecar_written"
    assert registry.rebuild()["repaired"] == []  # nothing left to do


def test_rebuild_reads_sidecars_into_a_lost_database(kernel: Any, registry: AssetRegistry) -> None:
    a = registry.register_bytes(png(), asset_type="portrait", dest_path="p/a.png", tags=["x"], license="CC0-1.0")
    b = registry.register_bytes(png(9, 9), asset_type="background", dest_path="b.png", metadata={"k": 1})
    registry.pin(a.uid)
    (registry.root / "p" / ".a.png.asset.json.zz.tmp").write_text("{broken")  # a temp file is no sidecar
    (registry.root / "junk.png").write_bytes(b"not an image")
    (registry.root / "junk.png.asset.json").write_text(json.dumps({"type": "image"}))
    with registry.db.connect() as conn, registry.db.transaction(conn):
        conn.execute("DELETE FROM assets")
    assert registry.find() == []

    report = registry.rebuild()
    assert sorted(report["added"]) == sorted([a.uid, b.uid])
    assert report["skipped"] == [{"sidecar": "junk.png.asset.json", "reason": "not_an_image"}]
    restored = {x.uid: x for x in registry.find()}
    for before in (a, b):
        got = restored[before.uid]
        assert got.sidecar_payload() == before.sidecar_payload()
    assert not restored[a.uid].pinned  # pins live in the database, not in sidecars


def test_rebuild_takes_a_file_replaced_by_hand(registry: AssetRegistry) -> None:
    asset = registry.register_bytes(png(), asset_type="image", dest_path="hand.png", tags=["kept"])
    visible = registry.root / "hand.png"
    visible.unlink()
    replacement = png(12, 10, (0, 255, 0, 255))
    visible.write_bytes(replacement)
    report = registry.rebuild()
    assert report["updated"] == [asset.uid]
    now = registry.get(asset.uid)
    assert (now.sha256, now.width, now.height, now.tags) == (sha(replacement), 12, 10, ("kept",))
    assert registry.sidecar(asset.uid)["sha256"] == sha(replacement)
    assert registry.gc()["orphan_blobs"] == 1  # the old content


def test_rebuild_drops_rows_whose_bytes_are_gone(registry: AssetRegistry) -> None:
    asset = registry.register_bytes(png(), asset_type="image", dest_path="gone.png")
    registry.blobs.path(asset.sha256).unlink()
    (registry.root / "gone.png").unlink()
    report = registry.rebuild()
    assert report["dropped"] == [asset.uid] and registry.find() == []
    # A row whose blob went but whose visible file is intact gets its blob back instead.
    kept = registry.register_bytes(png(7, 7), asset_type="image", dest_path="kept.png")
    registry.blobs.path(kept.sha256).unlink()
    assert (registry.root / "kept.png").exists()  # the link survives its blob's name
    assert registry.rebuild()["repaired"] == [kept.uid]
    assert sha(registry.blobs.path(kept.sha256).read_bytes()) == kept.sha256


def test_rebuild_deletes_the_sidecar_of_a_removal_interrupted_halfway(registry: AssetRegistry) -> None:
    """A kill -9 inside `remove` after its row was deleted and its file unlinked leaves only the sidecar:
    it describes nothing any more, and rebuild deletes it (found by the kill -9 loop test in CI)."""
    gone = registry.register_bytes(png(), asset_type="image", dest_path="half/gone.png")
    kept = registry.register_bytes(png(5, 5), asset_type="image", dest_path="half/kept.png")
    with registry.db.connect() as conn, registry.db.transaction(conn):
        registry.db.delete(conn, gone.uid)
    (registry.root / "half/gone.png").unlink()
    assert (registry.root / "half/gone.png.asset.json").exists()
    report = registry.rebuild()
    assert report["orphan_sidecars"] == 1 and report["skipped"] == []
    assert not (registry.root / "half/gone.png.asset.json").exists()
    assert (registry.root / "half/kept.png.asset.json").exists() and registry.get(kept.uid).path == "half/kept.png"
    assert [a.uid for a in registry.find()] == [kept.uid]


def test_registering_the_same_bytes_again_heals_a_row_whose_blob_went(registry: AssetRegistry) -> None:
    asset = registry.register_bytes(png(), asset_type="image", dest_path="heal.png")
    registry.blobs.path(asset.sha256).unlink()
    (registry.root / "heal.png").unlink()
    again = registry.register_bytes(png(), asset_type="image", dest_path="heal.png")
    assert again == asset
    assert sha(registry.file_path(asset.uid).read_bytes()) == asset.sha256
