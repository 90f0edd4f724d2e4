"""`AssetRegistry` (issue 14): dedup, replacement, types, filters, sidecars, PNG provenance, checks, roots, events."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from assets_support import jpeg, png, png_header_claiming, sha, wav
from comfyvn import Kernel
from comfyvn.errors import ComfyVNError, Conflict, Invalid, NotFound, TooLarge, Unprocessable
from comfyvn_assets import AssetRegistry, read_png_text, uid_for
from PIL import Image


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _blobs(registry: AssetRegistry) -> list[str]:
    return [s for s, _ in registry.blobs.shas()]


# -- dedup, replacement, paths ------------------------------------------------------------------------------


def test_the_same_bytes_at_two_paths_share_one_blob(registry: AssetRegistry) -> None:
    data = png()
    first = registry.register_bytes(data, asset_type="background", dest_path="bg/one.png")
    second = registry.register_bytes(data, asset_type="background", dest_path="bg/two.png")
    assert first.uid != second.uid and first.sha256 == second.sha256 == sha(data)
    assert _blobs(registry) == [sha(data)]
    assert registry.blob_refs(sha(data)) == 2
    one, two = registry.file_path(first.uid), registry.file_path(second.uid)
    assert one.read_bytes() == two.read_bytes() == data
    blob = registry.blobs.path(sha(data))
    assert os.path.samefile(one, blob) and os.path.samefile(two, blob)  # hard links, not copies
    assert one == registry.root / "bg" / "one.png"


def test_registering_identical_bytes_at_the_same_path_is_a_no_op(registry: AssetRegistry, events: list[Any]) -> None:
    first = registry.register_bytes(png(), asset_type="sprite", dest_path="a/hero.png", tags=["x"])
    count = len(events)
    again = registry.register_bytes(png(), asset_type="sprite", dest_path="a/hero.png", tags=["other"])
    assert again == first and again.tags == ("x",)
    assert len(events) == count  # nothing changed, nothing emitted


def test_new_bytes_at_a_path_keep_uid_pins_and_holders(registry: AssetRegistry, events: list[Any]) -> None:
    old = registry.register_bytes(png(colour=(1, 2, 3, 255)), asset_type="sprite", dest_path="c/hero.png")
    registry.pin(old.uid)
    registry.add_ref(old.uid, "project:demo")
    new_bytes = png(colour=(9, 9, 9, 255))
    new = registry.register_bytes(new_bytes, asset_type="sprite", dest_path="c/hero.png")
    assert new.uid == old.uid == uid_for("c/hero.png")
    assert new.sha256 == sha(new_bytes) and new.pinned and new.refs == ("project:demo",)
    assert new.created == old.created and new.updated >= old.updated
    assert registry.file_path(new.uid).read_bytes() == new_bytes
    registered = [e for e in events if e.event == "on_asset_registered"]
    assert registered[-1].payload["previous_sha256"] == old.sha256
    # The old blob is no longer named by any row: gc collects it.
    assert registry.gc()["orphan_blobs"] == 1 and _blobs(registry) == [new.sha256]


def test_default_dest_path_is_the_type_folder_and_the_digest(registry: AssetRegistry) -> None:
    data = jpeg()
    asset = registry.register_bytes(data, asset_type="BG", filename="whatever.png")
    # The extension comes from the bytes (a JPEG), never from the name it was uploaded under.
    assert asset.path == f"backgrounds/{sha(data)[:12]}.jpg" and asset.type == "background"
    voice = registry.register_bytes(wav(), asset_type="voice")
    assert voice.path.startswith("audio/voice/") and voice.path.endswith(".wav") and voice.width is None


@pytest.mark.parametrize(
    "dest",
    [
        "../x.png",
        "/etc/x.png",
        "a/../../x.png",
        "a\\b.png",
        "a/\x00.png",
        ".blobs/x",
        "a//b.png",
        "C:/x.png",
        "x.png.asset.json",
        "registry.sqlite3",
        "a/./b.png",
        "a/.hidden.png",
        "",
    ],
)
def test_bad_dest_paths_are_refused_naming_the_field(registry: AssetRegistry, dest: str) -> None:
    with pytest.raises(Invalid) as caught:
        registry.register_bytes(png(), asset_type="image", dest_path=dest)
    assert caught.value.field == "dest_path" and caught.value.code == "invalid_dest_path"
    assert _blobs(registry) == []


def test_a_symlink_out_of_the_root_is_no_destination(registry: AssetRegistry, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (registry.root / "link").symlink_to(outside)
    with pytest.raises(ComfyVNError) as caught:
        registry.register_bytes(png(), asset_type="image", dest_path="link/x.png")
    assert caught.value.field == "dest_path"
    assert list(outside.iterdir()) == []


def test_a_file_in_the_way_of_a_folder_is_a_conflict(registry: AssetRegistry) -> None:
    registry.register_bytes(png(), asset_type="image", dest_path="a.png")
    with pytest.raises(Conflict):
        registry.register_bytes(png(colour=(0, 0, 0, 255)), asset_type="image", dest_path="a.png/b.png")
    registry.register_bytes(png(), asset_type="image", dest_path="dir/b.png")
    with pytest.raises(Conflict):
        registry.register_bytes(png(), asset_type="image", dest_path="dir")
    assert len(registry.find()) == 2


# -- what the bytes must be ---------------------------------------------------------------------------------


def test_a_file_claiming_to_be_a_png_that_is_not_an_image_is_refused(registry: AssetRegistry) -> None:
    for data in (b"not an image at all", png()[:40], b"\x89PNG\r\n\x1a\n" + b"\x00" * 30):
        with pytest.raises(Unprocessable) as caught:
            registry.register_bytes(data, asset_type="character.sprite", dest_path="x.png")
        assert caught.value.code == "not_an_image" and caught.value.field == "file"
    with pytest.raises(Unprocessable) as bad_audio:
        registry.register_bytes(png(), asset_type="bgm")
    assert bad_audio.value.code == "not_audio"
    gif = io.BytesIO()
    Image.new("RGB", (4, 4)).save(gif, format="GIF")
    with pytest.raises(Unprocessable) as unsupported:
        registry.register_bytes(gif.getvalue(), asset_type="image")
    assert unsupported.value.code == "unsupported_image_format"
    assert registry.find() == [] and _blobs(registry) == []


def test_size_limits(assets_kernel: Any, runtime: Any) -> None:
    runtime.config.mkdir(parents=True)
    (runtime.config / "comfyvn.json").write_text(json.dumps({"assets": {"max_upload_bytes": 1000}}))
    registry = AssetRegistry.for_kernel(assets_kernel())
    assert registry.settings.max_bytes == 1000
    with pytest.raises(TooLarge) as caught:
        registry.register_bytes(png(200, 200) + b"\x00" * 1000, asset_type="image")
    assert caught.value.code == "asset_too_large"
    with pytest.raises(TooLarge) as bomb:
        registry.register_bytes(png_header_claiming(20_000, 20_000), asset_type="image")
    assert bomb.value.code == "image_too_large"
    with pytest.raises(Invalid):
        registry.register_bytes(b"", asset_type="image")


def test_bad_settings_are_one_clear_error(assets_kernel: Any, runtime: Any) -> None:
    runtime.config.mkdir(parents=True)
    (runtime.config / "comfyvn.json").write_text(json.dumps({"assets": {"import_roots": ["relative/dir"]}}))
    with pytest.raises(ComfyVNError) as caught:
        AssetRegistry.for_kernel(assets_kernel())
    assert caught.value.code == "invalid_config" and caught.value.field == "assets.import_roots"


def test_types_are_case_insensitive_and_legacy_names_map(registry: AssetRegistry) -> None:
    portrait = registry.register_bytes(png(), asset_type="Portrait", dest_path="p.png")
    sprite = registry.register_bytes(png(colour=(5, 5, 5, 255)), asset_type="character.SPRITE", dest_path="s.png")
    assert (portrait.type, sprite.type) == ("character.portrait", "character.sprite")
    assert registry.find(type="portrait") == registry.find(type="CHARACTER.PORTRAIT") == [portrait]
    with pytest.raises(Invalid) as caught:
        registry.register_bytes(png(), asset_type="hologram")
    assert caught.value.field == "asset_type"
    with pytest.raises(Invalid):
        registry.find(type="hologram")


# -- provenance and sidecars --------------------------------------------------------------------------------


def test_png_provenance_is_embedded_before_hashing_and_mirrored_in_the_sidecar(registry: AssetRegistry) -> None:
    provenance = {"tool": "comfyui", "seed": 7, "loras": [{"name": "x", "strength_model": 0.8}], "prompt": "héro"}
    original = png()
    asset = registry.register_bytes(
        original, asset_type="sprite", dest_path="chars/hero/happy.png", provenance=provenance, license="CC0-1.0"
    )
    stored = registry.file_path(asset.uid).read_bytes()
    assert stored != original and asset.sha256 == sha(stored) and asset.size == len(stored)
    with Image.open(io.BytesIO(stored)) as image:  # Pillow reads the chunk back on its own
        assert json.loads(image.text["comfyvn:provenance"]) == provenance
        with Image.open(io.BytesIO(original)) as before:
            assert image.tobytes() == before.tobytes()  # the pixels are untouched
    assert json.loads(read_png_text(stored, "comfyvn:provenance") or "") == provenance

    sidecar_file = registry.root / "chars/hero/happy.png.asset.json"
    on_disk = json.loads(sidecar_file.read_text(encoding="utf-8"))
    assert on_disk == registry.sidecar(asset.uid)
    assert set(on_disk) == {
        "uid",
        "type",
        "path",
        "sha256",
        "size",
        "width",
        "height",
        "tags",
        "license",
        "source",
        "metadata",
        "provenance",
        "created",
    }
    assert (on_disk["uid"], on_disk["path"], on_disk["sha256"]) == (asset.uid, "chars/hero/happy.png", asset.sha256)
    assert (on_disk["width"], on_disk["height"], on_disk["license"]) == (32, 24, "CC0-1.0")
    assert on_disk["provenance"] == provenance

    # Registering the registered file again (provenance replaced, not stacked) is deterministic.
    again = registry.register_bytes(
        stored, asset_type="sprite", dest_path="chars/hero/happy.png", provenance=provenance
    )
    assert again.sha256 == asset.sha256


def test_no_provenance_leaves_bytes_untouched(registry: AssetRegistry) -> None:
    data = png()
    asset = registry.register_bytes(data, asset_type="image")
    assert registry.file_path(asset.uid).read_bytes() == data and read_png_text(data, "comfyvn:provenance") is None


def test_missing_visible_files_and_sidecars_are_remade_on_access(registry: AssetRegistry) -> None:
    asset = registry.register_bytes(png(), asset_type="image", dest_path="x/y.png", tags=["a"])
    visible = registry.root / "x/y.png"
    visible.unlink()
    (registry.root / "x/y.png.asset.json").unlink()
    assert registry.file_path(asset.uid).read_bytes() == registry.blobs.path(asset.sha256).read_bytes()
    assert registry.sidecar(asset.uid)["tags"] == ["a"]


# -- find -------------------------------------------------------------------------------------------------


def test_find_filters_are_cumulative_and_case_insensitive(registry: AssetRegistry) -> None:
    hero = registry.register_bytes(
        png(colour=(1, 1, 1, 255)),
        asset_type="portrait",
        dest_path="p/hero.png",
        tags=["Hero", "Modpack"],
        metadata={"season": "Summer"},
    )
    villain = registry.register_bytes(
        png(colour=(2, 2, 2, 255)), asset_type="portrait", dest_path="p/villain.png", tags=["villain", "modpack"]
    )
    beach = registry.register_bytes(
        png(colour=(3, 3, 3, 255)),
        asset_type="background",
        dest_path="bg/beach.png",
        tags=["hero"],
        source="Summer-pack",
    )
    assert registry.find() == [beach, hero, villain]  # by path
    assert registry.find(type="portrait", tags=["HERO", "modpack"]) == [hero]
    assert registry.find(tags=["modpack"]) == [hero, villain]
    assert registry.find(tags="hero") == [beach, hero]
    assert registry.find(q="SUMMER") == [beach, hero]  # metadata text and the source
    assert registry.find(q="summer", type="portrait") == [hero]
    assert registry.find(q="VILLAIN.png") == [villain]
    assert registry.find(hash=hero.sha256.upper()) == [hero]
    assert registry.find(hash=villain.sha256[:8]) == [villain]
    assert registry.find(limit=1) == [beach]
    for bad in ({"hash": "xyz"}, {"limit": 0}, {"limit": 1001}):
        with pytest.raises(Invalid):
            registry.find(**bad)
    assert registry.by_path("p/hero.png") == hero and registry.by_path("p/nobody.png") is None


# -- metadata, pins, refs, removal ---------------------------------------------------------------------------


def test_update_meta_rewrites_the_sidecar_and_emits(registry: AssetRegistry, events: list[Any]) -> None:
    asset = registry.register_bytes(png(), asset_type="image", license="MIT", source="me")
    updated = registry.update_meta(asset.uid, tags=["b", "B", "c"], license="", metadata={"artist": "modder42"})
    assert updated.tags == ("b", "c") and updated.license is None and updated.source == "me"
    assert registry.sidecar(asset.uid)["metadata"] == {"artist": "modder42"}
    assert [e.event for e in events][-2:] == ["on_asset_meta_updated", "on_asset_sidecar_written"]
    count = len(events)
    assert registry.update_meta(asset.uid, tags=["b", "c"]) == updated and len(events) == count
    with pytest.raises(NotFound):
        registry.update_meta("0" * 16, tags=[])


def test_remove_refuses_pinned_or_held_assets_and_frees_only_unshared_blobs(registry: AssetRegistry) -> None:
    data = png()
    one = registry.register_bytes(data, asset_type="image", dest_path="one.png")
    two = registry.register_bytes(data, asset_type="image", dest_path="sub/two.png")
    registry.add_ref(one.uid, "project:demo")
    with pytest.raises(Conflict):
        registry.remove(one.uid)
    registry.release(one.uid, "project:demo")
    registry.release(one.uid, "project:demo")  # releasing twice is harmless
    registry.pin(two.uid)
    with pytest.raises(Conflict):
        registry.remove(two.uid)
    registry.remove(one.uid)
    assert not (registry.root / "one.png").exists() and not (registry.root / "one.png.asset.json").exists()
    assert _blobs(registry) == [one.sha256]  # two still uses it
    registry.remove(two.uid, force=True)
    assert _blobs(registry) == [] and not (registry.root / "sub").exists()
    with pytest.raises(NotFound) as caught:
        registry.get(one.uid)
    assert caught.value.code == "asset_not_found"


def test_companion_records_of_a_file_go_with_it(registry: AssetRegistry) -> None:
    """``<file>.<tool>.json`` beside a file (the ComfyUI bridge's record) is removed with it; the records
    of other files, and the user's own files, stay."""
    kept = registry.register_bytes(png(colour=(1, 2, 3, 255)), asset_type="image", dest_path="art/b.png")
    gone = registry.register_bytes(png(), asset_type="image", dest_path="art/a.png")
    (registry.root / "art/a.png.bridge.json").write_text("{}")
    (registry.root / "art/b.png.bridge.json").write_text("{}")
    (registry.root / "art/a.png.notes.txt").write_text("mine")
    registry.remove(gone.uid)
    assert sorted(p.name for p in (registry.root / "art").iterdir()) == [
        "a.png.notes.txt",
        "b.png",
        "b.png.asset.json",
        "b.png.bridge.json",
    ]
    assert registry.get(kept.uid).path == "art/b.png"


def test_holders_are_checked(registry: AssetRegistry) -> None:
    asset = registry.register_bytes(png(), asset_type="image")
    for bad in ("", " ", "x" * 201, "a\nb"):
        with pytest.raises(Invalid):
            registry.add_ref(asset.uid, bad)
    with pytest.raises(NotFound):
        registry.add_ref("f" * 16, "project:x")
    registry.add_ref(asset.uid, "project:b")
    registry.add_ref(asset.uid, "project:a")
    registry.add_ref(asset.uid, "project:a")
    assert registry.get(asset.uid).refs == ("project:a", "project:b")


# -- registering server files -------------------------------------------------------------------------------


def test_register_file_reads_only_under_import_roots(
    registry: AssetRegistry, import_root: Path, tmp_path: Path
) -> None:
    inside = import_root / "art" / "hero.png"
    inside.parent.mkdir()
    inside.write_bytes(png())
    asset = registry.register_file(inside, asset_type="portrait", dest_path="characters/hero/portrait.png")
    assert registry.file_path(asset.uid).read_bytes() == png()
    assert registry.register_file("art/hero.png", asset_type="portrait").sha256 == asset.sha256  # relative to a root

    secret = tmp_path / "secret.png"
    secret.write_bytes(png(colour=(0, 0, 0, 255)))
    escape = import_root / "escape.png"
    escape.symlink_to(secret)
    (import_root / "dir-link").symlink_to(tmp_path)
    for path in (
        secret,
        escape,
        import_root / "dir-link" / "secret.png",
        import_root / ".." / "secret.png",
        "../secret.png",
        tmp_path / "missing.png",
    ):
        with pytest.raises(Invalid) as caught:
            registry.register_file(path, asset_type="portrait")
        assert (caught.value.code, caught.value.field) == ("outside_import_roots", "path")
        assert str(tmp_path) not in caught.value.message
    with pytest.raises(NotFound) as missing:
        registry.register_file(import_root / "nope.png", asset_type="portrait")
    assert missing.value.code == "file_not_found" and str(tmp_path) not in missing.value.message
    with pytest.raises(Invalid) as folder:
        registry.register_file(import_root / "art", asset_type="portrait")
    assert folder.value.code == "not_a_file"
    with pytest.raises(NotFound):  # a name longer than the file system allows names no file
        registry.register_file(import_root / ("x" * 300 + ".png"), asset_type="portrait")
    with pytest.raises(Invalid) as long_path:
        registry.register_file("a/" * 3000, asset_type="portrait")
    assert long_path.value.code == "invalid_path"
    assert all(a.sha256 == asset.sha256 for a in registry.find())  # nothing from outside got in

    # The CLI's own files are not confined.
    assert registry.register_file(secret, asset_type="portrait", confined=False).sha256 == sha(secret.read_bytes())


def test_register_file_without_roots_refuses_everything(assets_kernel: Any, tmp_path: Path) -> None:
    registry = AssetRegistry.for_kernel(assets_kernel())
    (tmp_path / "a.png").write_bytes(png())
    with pytest.raises(Invalid) as caught:
        registry.register_file(tmp_path / "a.png", asset_type="image")
    assert caught.value.code == "outside_import_roots"


def test_register_file_without_copy_links_the_original(registry: AssetRegistry, import_root: Path) -> None:
    original = import_root / "bgm.ogg"
    original.write_bytes(b"OggS" + b"\x00" * 200)
    asset = registry.register_file(original, asset_type="bgm", copy=False)
    assert os.path.samefile(registry.blobs.path(asset.sha256), original)
    copied = registry.register_file(original, asset_type="sfx", copy=True, dest_path="sfx/x.ogg")
    assert copied.sha256 == asset.sha256  # same content, the existing blob serves


# -- events and hooks ---------------------------------------------------------------------------------------


def test_events_and_registry_hooks(kernel: Kernel, registry: AssetRegistry, events: list[Any]) -> None:
    heard: list[tuple[str, dict[str, Any]]] = []
    remove = registry.add_hook("asset_registered", lambda p: heard.append(("registered", p)))
    registry.add_hook("asset_removed", lambda p: heard.append(("removed", p)))
    registry.add_hook("asset_removed", lambda p: 1 / 0)  # a failing listener breaks nothing
    asset = registry.register_bytes(png(), asset_type="image", tags=["t"])
    registry.remove(asset.uid)
    names = [e.event for e in events]
    assert names == [
        "on_asset_registered",
        "on_asset_saved",
        "on_asset_sidecar_written",
        "on_asset_removed",
    ]
    assert events[0].payload == events[1].payload
    assert events[0].payload["uid"] == asset.uid and events[0].payload["previous_sha256"] is None
    assert events[2].payload == {
        "uid": asset.uid,
        "path": asset.path,
        "sidecar": f"{asset.path}.asset.json",
        "sha256": asset.sha256,
    }
    assert events[3].payload["reason"] == "removed"
    assert [kind for kind, _ in heard] == ["registered", "removed"] and heard[0][1]["tags"] == ["t"]
    remove()
    registry.register_bytes(png(colour=(4, 4, 4, 255)), asset_type="image")
    assert len(heard) == 2
    assert registry.hooks.counts() == {
        "asset_registered": 0,
        "asset_meta_updated": 0,
        "asset_removed": 2,
        "asset_sidecar_written": 0,
    }
    with pytest.raises(Invalid):
        registry.add_hook("asset_exploded", print)
    assert {s.name for s in kernel.events.specs()} >= {
        "on_asset_registered",
        "on_asset_saved",
        "on_asset_meta_updated",
        "on_asset_removed",
        "on_asset_sidecar_written",
    }


def test_thumbnails_are_made_in_the_background(registry: AssetRegistry) -> None:
    asset = registry.register_bytes(png(1024, 512), asset_type="background")
    registry.thumbs.wait(30)
    thumb = registry.thumbs.path(asset.sha256)
    assert thumb.parent == registry.settings.cache / "thumbs"
    with Image.open(thumb) as image:
        assert image.size == (256, 128) and image.format == "PNG"
    registry.register_bytes(wav(), asset_type="sfx")
    registry.thumbs.wait(30)
    assert len(list(thumb.parent.iterdir())) == 1  # audio has none


def test_env_moves_the_whole_registry(assets_kernel: Any, tmp_path: Path) -> None:
    sandbox = tmp_path / "modpack"
    registry = AssetRegistry.for_kernel(assets_kernel(env={"COMFYVN_ASSETS_ROOT": str(sandbox)}))
    asset = registry.register_bytes(png(), asset_type="image")
    assert registry.root == sandbox.resolve() and (sandbox / "registry.sqlite3").is_file()
    assert registry.file_path(asset.uid) == sandbox.resolve() / asset.path
    assert hashlib.sha256(registry.file_path(asset.uid).read_bytes()).hexdigest() == asset.sha256
