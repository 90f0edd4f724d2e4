"""``/assets`` (issue 14): list/filter, describe, download, sidecar, thumbnail, upload, register, edit, pin, delete,
debug hooks; refused uploads and registrations; scopes; OpenAPI; real HTTP."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from assets_support import png, sha
from comfyvn import Kernel, RuntimePaths, create_kernel
from comfyvn_assets import AssetRegistry
from comfyvn_server import ServerSettings, create_app
from comfyvn_server.auth import TokenStore
from PIL import Image
from starlette.testclient import TestClient


def _upload(client: Any, data: bytes, asset_type: str = "portrait", **fields: str) -> Any:
    return client.post(
        "/assets/upload", files={"file": ("hero.png", data, "image/png")}, data={"asset_type": asset_type, **fields}
    )


def _no_server_path(kernel: Kernel, response: Any, *more: Path) -> None:
    for root in (kernel.paths.data, kernel.paths.config, kernel.paths.cache, *more):
        assert str(root) not in response.text and str(root.resolve()) not in response.text


def _error(response: Any, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    if field is not None:
        assert error["field"] == field
    return error


def test_upload_then_read_it_every_way(client: Any, kernel: Kernel) -> None:
    metadata = {"license": "CC-BY-4.0", "source": "modpack-01", "artist": "modder42", "tags": ["Hero", "summer"]}
    response = _upload(client, png(), dest_path="characters/hero/portrait.png", metadata=json.dumps(metadata))
    assert response.status_code == 201, response.text
    asset = response.json()
    assert response.headers["location"] == f"/assets/{asset['uid']}"
    assert (asset["type"], asset["path"], asset["license"], asset["source"]) == (
        "character.portrait",
        "characters/hero/portrait.png",
        "CC-BY-4.0",
        "modpack-01",
    )
    assert asset["metadata"] == {"artist": "modder42"} and asset["tags"] == ["Hero", "summer"]
    uploads = kernel.paths.data / "plugins" / "assets" / "uploads"
    assert [p.name for p in uploads.iterdir()] == [sha(png())]
    _no_server_path(kernel, response)

    uid = asset["uid"]
    described = client.get(f"/assets/{uid}").json()
    assert described["sidecar"]["uid"] == uid and described["sha256"] == asset["sha256"]
    assert client.get(f"/assets/{uid}/sidecar").json() == described["sidecar"]
    download = client.get(f"/assets/{uid}/download")
    assert download.status_code == 200 and download.content == png()
    assert download.headers["content-type"] == "image/png" and download.headers["etag"] == f'"{asset["sha256"]}"'
    assert 'filename="portrait.png"' in download.headers["content-disposition"]
    thumb = client.get(f"/assets/{uid}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(thumb.content)) as image:
        assert image.size == (32, 24)  # smaller than 256 px already: kept at its size

    for path in ("/assets", "/assets/"):
        listed = client.get(path, params={"type": "PORTRAIT", "tags": ["hero", "SUMMER"], "q": "modder42"}).json()
        assert [a["uid"] for a in listed["assets"]] == [uid] and listed["count"] == 1
    assert client.get("/assets", params={"tag": "villain"}).json()["assets"] == []
    assert client.get("/assets", params={"hash": asset["sha256"][:10]}).json()["count"] == 1
    _error(client.get("/assets", params={"limit": "0"}), 400, "invalid_limit", "limit")
    _error(client.get("/assets", params={"type": "hologram"}), 400, "invalid_asset_type", "type")
    _error(client.get("/assets/0123456789abcdef"), 404, "asset_not_found")
    _error(client.get("/assets/../../etc/passwd/download"), 404, "not_found")


def test_edit_pin_and_delete(client: Any) -> None:
    uid = _upload(client, png()).json()["uid"]
    patched = client.patch(f"/assets/{uid}", json={"tags": ["a"], "license": "MIT", "metadata": {"k": "v"}})
    assert patched.status_code == 200 and (patched.json()["tags"], patched.json()["license"]) == (["a"], "MIT")
    assert client.get(f"/assets/{uid}/sidecar").json()["metadata"] == {"k": "v"}
    _error(client.patch(f"/assets/{uid}", json={"colour": "red"}), 400, "invalid_request", "colour")
    _error(client.patch(f"/assets/{uid}", json={"tags": "a"}), 400, "invalid_tags", "tags")

    assert client.post(f"/assets/{uid}/pin", json={"pinned": True}).json()["pinned"] is True
    _error(client.delete(f"/assets/{uid}"), 409, "asset_in_use")
    assert client.post(f"/assets/{uid}/pin", json={"pinned": False}).json()["pinned"] is False
    assert client.post(f"/assets/{uid}/pin").json()["pinned"] is True  # an empty body pins
    deleted = client.delete(f"/assets/{uid}", params={"force": "true"})
    assert deleted.json() == {"uid": uid, "removed": True, "path": deleted.json()["path"]}
    _error(client.get(f"/assets/{uid}"), 404, "asset_not_found")
    _error(client.delete(f"/assets/{uid}"), 404, "asset_not_found")


@pytest.mark.parametrize(
    "dest", ["../../evil.png", "/etc/evil.png", "a/../../evil.png", "..\\evil.png", "%2e%2e/evil.png", ".blobs/x"]
)
def test_uploads_with_traversal_are_refused(client: Any, kernel: Kernel, dest: str) -> None:
    response = _upload(client, png(), dest_path=dest)
    if dest.startswith("%2e"):  # form fields are not URL-decoded: this is a literal, harmless name
        assert response.status_code == 201 and response.json()["path"] == dest
        return
    _error(response, 400, "invalid_dest_path", "dest_path")
    assert not list(kernel.paths.data.rglob("evil.png"))
    assert AssetRegistry.for_kernel(kernel).find() == []


def test_oversized_and_non_image_uploads_are_refused(
    assets_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], Any], runtime: RuntimePaths
) -> None:
    runtime.config.mkdir(parents=True)
    (runtime.config / "comfyvn.json").write_text(json.dumps({"assets": {"max_upload_bytes": 2000}}))
    kernel = assets_kernel()
    client = http_for(kernel)
    big = png(300, 300, (1, 2, 3, 255)) + b"\x00" * 2000
    _error(_upload(client, big), 413, "asset_too_large", "file")
    uploads = kernel.paths.data / "plugins" / "assets" / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []  # nothing past the limit is kept

    text = b"#!/bin/sh\necho this is not a picture\n"
    _error(_upload(client, text), 422, "not_an_image", "file")
    assert [p.name for p in uploads.iterdir()] == [sha(text)]  # kept before it was checked
    _error(_upload(client, png(), asset_type="bgm"), 422, "not_audio", "file")
    _error(_upload(client, b""), 400, "empty_upload", "file")
    _error(_upload(client, png(), asset_type="hologram"), 400, "invalid_asset_type", "asset_type")
    _error(_upload(client, png(), metadata="{nope"), 400, "invalid_json", "metadata")
    _error(_upload(client, png(), metadata="[1]"), 400, "invalid_request", "metadata")
    _error(_upload(client, png(), colour="red"), 400, "unknown_field", "colour")
    _error(client.post("/assets/upload", data={"asset_type": "image"}, files={}), 400, "no_file", "file")
    assert AssetRegistry.for_kernel(kernel).find() == []


def test_register_only_reads_under_import_roots(client: Any, kernel: Kernel, import_root: Path, tmp_path: Path) -> None:
    (import_root / "hero.png").write_bytes(png())
    secret = tmp_path / "secret.png"
    secret.write_bytes(png(3, 3))
    (import_root / "escape.png").symlink_to(secret)
    body = {"asset_type": "portrait", "dest_path": "characters/hero/portrait.png", "metadata": {"artist": "m"}}
    response = client.post("/assets/register", json={"path": str(import_root / "hero.png"), **body})
    assert response.status_code == 201, response.text
    assert response.json()["metadata"] == {"artist": "m"} and response.json()["sha256"] == sha(png())
    _no_server_path(kernel, response, import_root)

    for path in (str(secret), str(import_root / "escape.png"), "../secret.png", "/etc/passwd"):
        response = client.post("/assets/register", json={"path": path, "asset_type": "portrait"})
        _error(response, 400, "outside_import_roots", "path")
        _no_server_path(kernel, response, tmp_path)
    response = client.post("/assets/register", json={"path": str(import_root / "none.png"), "asset_type": "image"})
    _error(response, 404, "file_not_found", "path")
    _no_server_path(kernel, response, tmp_path)
    _error(client.post("/assets/register", json={"asset_type": "image"}), 400, "invalid_request", "path")
    _error(
        client.post("/assets/register", json={"path": "x", "asset_type": "image", "copy": "no"}), 400, "invalid_request"
    )
    assert len(AssetRegistry.for_kernel(kernel).find()) == 1


def test_debug_routes(client: Any, kernel: Kernel) -> None:
    registry = AssetRegistry.for_kernel(kernel)
    registry.add_hook("asset_removed", lambda p: None)
    hooks = {h["event"]: h for h in client.get("/assets/debug/hooks").json()["hooks"]}
    assert hooks["asset_removed"]["listeners"] == 1 and hooks["asset_registered"]["listeners"] == 0
    assert hooks["asset_registered"]["modder_events"] == ["on_asset_registered", "on_asset_saved"]
    specs = client.get("/assets/debug/modder-hooks").json()["hooks"]
    assert sorted(s["name"] for s in specs) == [
        "on_asset_meta_updated",
        "on_asset_registered",
        "on_asset_removed",
        "on_asset_saved",
        "on_asset_sidecar_written",
    ]
    assert {s["owner"] for s in specs} == {"comfyvn_assets"}  # the plugin object the test kernel was given
    assert all(s["schema"]["type"] == "object" for s in specs)
    uid = _upload(client, png()).json()["uid"]
    kernel.events.emit("on_asset_meta_updated", registry.get(uid).to_wire())
    history = client.get("/assets/debug/history").json()["events"]
    assert [e["event"] for e in history] == [
        "on_asset_registered",
        "on_asset_saved",
        "on_asset_sidecar_written",
        "on_asset_meta_updated",
    ]
    assert history[0]["payload"]["uid"] == uid
    since = history[1]["seq"]
    assert len(client.get("/assets/debug/history", params={"since": since}).json()["events"]) == 2
    assert len(client.get("/assets/debug/history", params={"limit": 1}).json()["events"]) == 1
    _error(client.get("/assets/debug/history", params={"since": "-1"}), 400, "invalid_request", "since")


def test_every_assets_route_is_documented(client: Any) -> None:
    document = client.get("/openapi.json").json()
    operations = {
        (path, method): op
        for path, methods in document["paths"].items()
        if path.startswith("/assets")
        for method, op in methods.items()
    }
    assert len(operations) == 14
    for key, op in operations.items():
        assert not op.get("x-undocumented") and "x-docstring-error" not in op, key
    assert "multipart/form-data" in operations[("/assets/upload", "post")]["requestBody"]["content"]


@pytest.fixture
def lan(runtime: RuntimePaths) -> Iterator[tuple[TestClient, TokenStore]]:
    """Off loopback, with entry-point plugin names (the names scopes are spelled with)."""
    kernel = create_kernel(paths=runtime, env={"COMFYVN_PLUGINS": "server,assets"}, strict=True)
    tokens = TokenStore(kernel.paths.config / "server_tokens.json")
    tokens.create(["admin"])
    with TestClient(create_app(kernel, ServerSettings(host="0.0.0.0")), base_url="http://192.168.1.5:8001") as c:
        yield c, tokens
    AssetRegistry.forget(kernel)


def test_asset_writes_need_the_assets_write_scope(lan: tuple[TestClient, TokenStore]) -> None:
    client, tokens = lan
    reader = {"Authorization": f"Bearer {tokens.create(['scenario.write'])[0]}"}
    writer = {"Authorization": f"Bearer {tokens.create(['assets.write'])[0]}"}
    files = {"file": ("a.png", png(), "image/png")}
    response = client.post("/assets/upload", files=files, data={"asset_type": "image"}, headers=reader)
    assert response.status_code == 403 and "'assets.write'" in response.json()["error"]["message"]
    created = client.post("/assets/upload", files=files, data={"asset_type": "image"}, headers=writer)
    assert created.status_code == 201
    uid = created.json()["uid"]
    assert client.get("/assets", headers=reader).json()["count"] == 1
    assert client.get(f"/assets/{uid}/download", headers=reader).status_code == 200
    for method, path in (("PATCH", f"/assets/{uid}"), ("POST", f"/assets/{uid}/pin"), ("DELETE", f"/assets/{uid}")):
        assert client.request(method, path, json={}, headers=reader).status_code == 403, path
    assert client.post("/assets/register", json={}, headers=reader).status_code == 403
    assert client.delete(f"/assets/{uid}", headers=writer).status_code == 200


def test_upload_and_download_over_real_http(kernel: Kernel, live_server: Callable[[Kernel], Any]) -> None:
    data = png(64, 48)
    with live_server(kernel) as base, httpx.Client(base_url=base, timeout=30) as http:
        response = http.post(
            "/assets/upload",
            files={"file": ("bg.png", data, "image/png")},
            data={"asset_type": "background", "metadata": json.dumps({"provenance": {"seed": 3}})},
        )
        assert response.status_code == 201, response.text
        asset = response.json()
        assert asset["provenance"] == {"seed": 3} and (asset["width"], asset["height"]) == (64, 48)
        downloaded = http.get(f"/assets/{asset['uid']}/download").content
        assert sha(downloaded) == asset["sha256"]
        with Image.open(io.BytesIO(downloaded)) as image:
            assert json.loads(image.text["comfyvn:provenance"]) == {"seed": 3}
        traversal = http.post(
            "/assets/upload", files={"file": ("x.png", data)}, data={"asset_type": "image", "dest_path": "../x.png"}
        )
        assert traversal.status_code == 400 and traversal.json()["error"]["code"] == "invalid_dest_path"
