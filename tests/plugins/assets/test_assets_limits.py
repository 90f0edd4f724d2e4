"""Limits the file system sets: destination names leaving room for the names the registry derives from them,
a registration whose files cannot be written leaving nothing behind, and a download's unsatisfiable Range
answered as the JSON error — over real HTTP where a client meets them."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path
from typing import Any

import comfyvn_assets.registry
import httpx
import pytest
from assets_support import png, sha
from comfyvn import Kernel
from comfyvn.errors import Invalid, OperationFailed
from comfyvn_assets import AssetRegistry


def _visible(registry: AssetRegistry) -> list[str]:
    """Files below the root other than the registry's own (blobs, database)."""
    return sorted(
        p.relative_to(registry.root).as_posix()
        for p in registry.root.rglob("*")
        if p.is_file() and not p.relative_to(registry.root).as_posix().startswith((".blobs/", "registry.sqlite3"))
    )


def _folders(registry: AssetRegistry) -> list[str]:
    return sorted(p.relative_to(registry.root).as_posix() for p in registry.root.rglob("*") if p.is_dir())


def _upload(http: httpx.Client, dest: str) -> httpx.Response:
    return http.post(
        "/assets/upload",
        files={"file": ("x.png", png(), "image/png")},
        data={"asset_type": "background", "dest_path": dest},
    )


def test_dest_file_names_leave_room_for_sidecars_and_temp_files_over_http(
    kernel: Kernel, registry: AssetRegistry, live_server: Callable[[Kernel], Any]
) -> None:
    with live_server(kernel) as base, httpx.Client(base_url=base, timeout=30) as http:
        for dest in ("u" * 240 + ".png", "bg/" + "é" * 100 + ".png", "u" * 197 + ".png"):
            refused = _upload(http, dest)
            assert refused.status_code == 400, (len(dest), refused.text[:200])
            error = refused.json()["error"]
            assert (error["code"], error["field"]) == ("invalid_dest_path", "dest_path")
            assert "200 bytes" in error["message"] and "sidecar" in error["message"]
        assert http.get("/assets").json()["assets"] == []
        assert _visible(registry) == [] and registry.find() == []
        # At the limit: the file, its sidecar (and the temporary names both went through) all fit.
        longest = "f" * 255 + "/" + "u" * 196 + ".png"
        created = _upload(http, longest)
        assert created.status_code == 201, created.text[:300]
        assert created.json()["path"] == longest
        assert _visible(registry) == [longest, longest + ".asset.json"]
        assert http.get(f"/assets/{created.json()['uid']}/sidecar").status_code == 200


def test_a_registration_whose_files_cannot_be_written_leaves_nothing(
    registry: AssetRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = comfyvn_assets.registry.write_sidecar
    failures = {"left": 1}

    def disk_full(target: Path, asset: Any) -> bool:
        if failures["left"]:
            failures["left"] -= 1
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        return real(target, asset)

    monkeypatch.setattr(comfyvn_assets.registry, "write_sidecar", disk_full)
    with pytest.raises(OperationFailed) as caught:
        registry.register_bytes(png(), asset_type="image", dest_path="deep/er/hero.png")
    assert caught.value.code == "asset_write_failed" and "No space left" in caught.value.message
    assert str(registry.root) not in caught.value.message
    assert registry.find() == [] and registry.by_path("deep/er/hero.png") is None
    assert _visible(registry) == [] and not [f for f in _folders(registry) if f.startswith("deep")]

    # New bytes over a registered asset: the old row, file and sidecar stay.
    old = registry.register_bytes(png(colour=(1, 2, 3, 255)), asset_type="image", dest_path="c/hero.png")
    failures["left"] = 1
    with pytest.raises(OperationFailed):
        registry.register_bytes(png(colour=(9, 9, 9, 255)), asset_type="image", dest_path="c/hero.png")
    kept = registry.by_path("c/hero.png")
    assert kept is not None and kept.sha256 == old.sha256
    assert sha((registry.root / "c" / "hero.png").read_bytes()) == old.sha256
    assert registry.sidecar(old.uid)["sha256"] == old.sha256
    assert _visible(registry) == ["c/hero.png", "c/hero.png.asset.json"]


def test_file_names_at_and_past_the_limit_in_the_registry(registry: AssetRegistry) -> None:
    with pytest.raises(Invalid) as caught:
        registry.register_bytes(png(), asset_type="image", dest_path="a" * 197 + ".png")
    assert caught.value.code == "invalid_dest_path"
    with pytest.raises(Invalid):
        registry.register_bytes(png(), asset_type="image", dest_path="d" * 256 + "/a.png")
    with pytest.raises(Invalid):
        registry.register_bytes(png(), asset_type="image", dest_path="/".join(["é" * 100] * 6) + "/a.png")
    assert registry.register_bytes(png(), asset_type="image", dest_path="a" * 196 + ".png").path.startswith("a")


def test_a_download_range_past_the_end_is_a_json_416(kernel: Kernel, live_server: Callable[[Kernel], Any]) -> None:
    data = png()
    with live_server(kernel) as base, httpx.Client(base_url=base, timeout=30) as http:
        uid = _upload(http, "bg/room.png").json()["uid"]
        url = f"/assets/{uid}/download"
        past = http.get(url, headers={"Range": "bytes=999999-"})
        assert past.status_code == 416 and past.headers["content-type"] == "application/json"
        error = past.json()["error"]
        assert (error["code"], error["field"]) == ("range_not_satisfiable", "Range")
        assert error["message"] == f"the requested range is outside the file ({len(data)} bytes)"
        assert past.headers["content-range"] == f"bytes */{len(data)}"
        assert error["request_id"] == past.headers["x-request-id"]
        malformed = http.get(url, headers={"Range": "lines=1-2"})
        assert malformed.status_code == 400 and malformed.json()["error"]["field"] == "Range"
        part = http.get(url, headers={"Range": "bytes=0-9"})
        assert part.status_code == 206 and part.content == data[:10]
        assert http.get(url).content == data
