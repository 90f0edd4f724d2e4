"""``/api/projects`` (issue 12): CRUD, ETag/If-Match, history/restore, zips, uploads, errors, OpenAPI, scopes."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from comfyvn import Kernel, RuntimePaths, create_kernel
from comfyvn_scenario import project_routes
from comfyvn_scenario.store import ProjectStore
from comfyvn_server import ServerSettings, create_app
from comfyvn_server.auth import TokenStore
from project_factory import copy_demo, tree_bytes, two_scenes
from starlette.testclient import TestClient

BODY = {"project": two_scenes().meta, "scenes": list(two_scenes().scenes.values())}


def _no_server_path(kernel: Kernel, response: Any) -> None:
    for root in (kernel.paths.data, kernel.paths.config):
        assert str(root) not in response.text
        assert str(root.resolve()) not in response.text


def _created(client: Any, body: dict[str, Any] | None = None) -> Any:
    response = client.post("/api/projects", json=BODY if body is None else body)
    assert response.status_code == 201, response.text
    return response


# -- create and read ------------------------------------------------------------------------------------


def test_create_list_get_delete(client: Any, kernel: Kernel) -> None:
    response = _created(client)
    assert response.headers["etag"] == '"1"' and response.headers["location"] == "/api/projects/tiny"
    body = response.json()
    assert (body["id"], body["version"], body["validated"], body["nodes"]) == ("tiny", 1, True, 3)
    assert client.get("/api/projects").json()["projects"] == [{k: v for k, v in body.items() if k != "validated"}]

    response = client.get("/api/projects/tiny")
    assert response.status_code == 200 and response.headers["etag"] == '"1"'
    got = response.json()
    assert got["project"]["scenes"] == ["intro", "outro"] and got["project"]["title"] == "Tiny"
    assert got["exports"] == []
    export = ProjectStore.for_kernel(kernel).exports_dir("tiny", "renpy")
    export.mkdir(parents=True)
    (export / "script.rpy").write_text("label start:\n    return\n", encoding="utf-8")
    assert [e["name"] for e in client.get("/api/projects/tiny").json()["exports"]] == ["renpy"]
    _no_server_path(kernel, client.get("/api/projects/tiny"))

    response = client.delete("/api/projects/tiny")
    assert response.json() == {"id": "tiny", "deleted": True, "version": 1}
    response = client.get("/api/projects/tiny")
    assert response.status_code == 404 and response.json()["error"]["code"] == "project_not_found"
    assert client.delete("/api/projects/tiny").status_code == 404


def test_create_takes_a_bare_project_json_with_inline_scenes(client: Any) -> None:
    document = {**two_scenes().document(), "scenes": list(two_scenes().scenes.values())}
    response = _created(client, document)
    assert [s["id"] for s in response.json()["scenes"]] == ["intro", "outro"]
    response = _created(client, {"id": "chosen", **BODY})
    assert response.json()["id"] == "chosen" and response.headers["location"] == "/api/projects/chosen"


def test_create_errors_are_4xx_json(client: Any, kernel: Kernel) -> None:
    _created(client, {"id": "taken", **BODY})
    broken = copy.deepcopy(BODY)
    broken["scenes"][0]["nodes"][0]["choices"][0]["target"] = "nowhere"
    cases: list[tuple[Any, int, str]] = [
        ({"id": "taken", **BODY}, 409, "project_exists"),
        ({**BODY, "extra": 1}, 400, "unknown_field"),
        ({"id": "../escape", **BODY}, 400, "invalid_project_id"),
        ({"id": 5, **BODY}, 400, "invalid_project_id"),
        ([1, 2], 400, "invalid_request"),
        (broken, 422, "invalid_project"),
    ]
    for body, status, code in cases:
        response = client.post("/api/projects", json=body)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), (body, response.text)
        _no_server_path(kernel, response)
    assert (
        client.post("/api/projects", content=b"{nope", headers={"content-type": "application/json"}).status_code == 400
    )
    response = client.post("/api/projects", json=broken)
    assert response.json()["error"]["errors"][0] == {
        "path": "/nodes/0/choices/0/target",
        "message": "unknown target node 'nowhere'",
        "code": "unknown_target",
        "severity": "error",
        "document": "scenes/intro.json",
    }
    assert [p["id"] for p in client.get("/api/projects").json()["projects"]] == ["taken"]


# -- zips: download, upload ------------------------------------------------------------------------------


def test_export_zip_and_upload_it_back(client: Any, kernel: Kernel) -> None:
    _created(client)
    response = client.get("/api/projects/tiny/export.zip")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == 'attachment; filename="tiny.zip"'
    assert response.headers["etag"] == '"1"'
    data = response.content
    assert client.get("/api/projects/tiny/export.zip").content == data  # byte-deterministic
    assert sorted(zipfile.ZipFile(io.BytesIO(data)).namelist()) == [
        "project.json",
        "scenes/intro.json",
        "scenes/outro.json",
    ]

    response = client.post("/api/projects", files={"file": ("tiny.zip", data, "application/zip")}, data={"id": "copy"})
    assert response.status_code == 201, response.text
    assert response.json()["id"] == "copy" and response.headers["location"] == "/api/projects/copy"
    kept = kernel.paths.plugin_dir("scenario") / "uploads" / f"{hashlib.sha256(data).hexdigest()}.zip"
    assert kept.read_bytes() == data  # the raw upload is kept
    original, copied = (client.get(f"/api/projects/{i}").json()["project"] for i in ("tiny", "copy"))
    assert original == copied
    assert client.get("/api/projects/copy/export.zip").content == data
    # Without an id, a taken one gets a suffix.
    response = client.post("/api/projects", files={"file": ("tiny.zip", data, "application/zip")})
    assert response.json()["id"] == "tiny-2"


def test_upload_errors(client: Any, kernel: Kernel, monkeypatch: pytest.MonkeyPatch) -> None:
    uploads = kernel.paths.plugin_dir("scenario") / "uploads"
    response = client.post("/api/projects", files={"file": ("x.zip", b"not a zip", "application/zip")})
    assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_zip")
    # Stored before it was parsed, so a refused upload can still be looked at.
    assert (uploads / f"{hashlib.sha256(b'not a zip').hexdigest()}.zip").read_bytes() == b"not a zip"
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("project.json", "{}")
        archive.writestr("../../evil.json", "{}")
    response = client.post("/api/projects", files={"file": ("x.zip", evil.getvalue(), "application/zip")})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "unsafe_zip_entry")
    response = client.post("/api/projects", files={"file": ("x.zip", b"", "application/zip")})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "empty_upload")
    response = client.post("/api/projects", data={"id": "x"}, files={"other": ("x.zip", b"PK", "application/zip")})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "unknown_field")
    response = client.post("/api/projects", files={"id": (None, "x")})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "no_file")
    monkeypatch.setattr(project_routes, "MAX_ZIP_BYTES", 10)
    response = client.post("/api/projects", files={"file": ("x.zip", b"x" * 11, "application/zip")})
    assert (response.status_code, response.json()["error"]["code"]) == (413, "zip_too_large")
    assert not (uploads / f"{hashlib.sha256(b'x' * 11).hexdigest()}.zip").exists()  # refused before keeping
    _no_server_path(kernel, client.post("/api/projects", files={"file": ("x.zip", b"junk", "application/zip")}))
    assert client.get("/api/projects").json()["projects"] == []


# -- writes: ETag / If-Match, validation ----------------------------------------------------------------


def test_put_project_reorders_replaces_and_is_conditional(client: Any, kernel: Kernel) -> None:
    _created(client)
    document = client.get("/api/projects/tiny").json()["project"]
    response = client.put(
        "/api/projects/tiny", json={"project": {**document, "title": "New"}}, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 200 and response.headers["etag"] == '"2"' and response.json()["title"] == "New"
    response = client.put("/api/projects/tiny", json={"project": document}, headers={"If-Match": '"1"'})
    assert response.status_code == 412
    error = response.json()["error"]
    assert (error["code"], error["current_version"], error["field"]) == ("version_mismatch", 2, "If-Match")

    # A write that changes nothing keeps the version (other editors' ETags stay good).
    same = client.get("/api/projects/tiny").json()["project"]
    assert client.put("/api/projects/tiny", json={"project": same}).headers["etag"] == '"2"'

    # With scenes: the project gets exactly those.
    intro = client.get("/api/projects/tiny/scenes/intro").json()["scene"]
    intro["nodes"][1]["choices"] = [{"id": "next", "target": "a"}]
    response = client.put("/api/projects/tiny", json={"project": same, "scenes": [intro]}, headers={"If-Match": "2"})
    assert response.status_code == 200 and [s["id"] for s in response.json()["scenes"]] == ["intro"]
    assert client.get("/api/projects/tiny/scenes/outro").status_code == 404
    same = client.get("/api/projects/tiny").json()["project"]
    assert same["scenes"] == ["intro"]

    before = tree_bytes(ProjectStore.for_kernel(kernel).root / "tiny")
    cases: list[tuple[Any, dict[str, str], int, str]] = [
        ({"project": {**same, "scenes": ["intro", "intro"]}}, {}, 422, "invalid_project"),
        ({"project": same, "scenes": [intro, intro]}, {}, 400, "duplicate_scene"),
        ({"project": {**same, "start": "nowhere"}}, {}, 422, "invalid_project"),
        ({"project": same, "extra": 1}, {}, 400, "unknown_field"),
        ({"project": "no"}, {}, 400, "invalid_request"),
        ({"project": same}, {"If-Match": "soon"}, 400, "invalid_if_match"),
    ]
    for body, headers, status, code in cases:
        response = client.put("/api/projects/tiny", json=body, headers=headers)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), (body, response.text)
        _no_server_path(kernel, response)
    assert tree_bytes(ProjectStore.for_kernel(kernel).root / "tiny") == before
    response = client.put("/api/projects/tiny", json={"project": {**same, "scenes": ["intro", "intro"]}})
    assert response.json()["error"]["errors"][0]["path"] == "/scenes/1"
    assert client.put("/api/projects/nope", json={"project": same}).status_code == 404
    assert client.delete("/api/projects/tiny", headers={"If-Match": '"1"'}).status_code == 412
    assert client.delete("/api/projects/tiny", headers={"If-Match": '"3"'}).json()["deleted"] is True


def test_scene_routes(client: Any, kernel: Kernel) -> None:
    _created(client)
    response = client.get("/api/projects/tiny/scenes/outro")
    assert response.status_code == 200 and response.headers["etag"] == '"1"'
    body = response.json()
    assert (body["project"], body["project_version"], body["id"], body["version"]) == ("tiny", 1, "outro", 1)
    scene = body["scene"]

    scene["nodes"][0]["text"] = "bare body"
    response = client.put("/api/projects/tiny/scenes/outro", json=scene, headers={"If-Match": '"1"'})
    assert response.status_code == 200 and response.headers["etag"] == '"2"'
    assert (response.json()["version"], response.json()["project_version"]) == (2, 2)
    scene["nodes"][0]["text"] = "wrapped body"
    response = client.put("/api/projects/tiny/scenes/outro", json={"scene": scene}, headers={"If-Match": 'W/"2"'})
    assert response.status_code == 200 and response.json()["scene"]["nodes"][0]["text"] == "wrapped body"

    # A new scene id adds the scene; a scene whose id differs from the path is refused.
    extra = {"start": "q", "nodes": [{"id": "q", "end": True}]}
    response = client.put("/api/projects/tiny/scenes/extra", json=extra)
    assert response.status_code == 200 and response.json()["scene"]["id"] == "extra"
    response = client.put("/api/projects/tiny/scenes/extra", json={**extra, "id": "other"})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "scene_id_mismatch")

    before = tree_bytes(ProjectStore.for_kernel(kernel).root / "tiny")
    broken = copy.deepcopy(scene)
    broken["nodes"].append({"id": "z", "end": True})  # a duplicate node id
    response = client.put("/api/projects/tiny/scenes/outro", json=broken)
    assert response.status_code == 422
    assert [(e["path"], e["code"]) for e in response.json()["error"]["errors"]] == [("/nodes/1/id", "duplicate_node")]
    response = client.put("/api/projects/tiny/scenes/outro", json=scene, headers={"If-Match": '"1"'})
    assert response.status_code == 412 and response.json()["error"]["current_version"] == 3
    assert tree_bytes(ProjectStore.for_kernel(kernel).root / "tiny") == before

    for path in ("/api/projects/tiny/scenes/nope", "/api/projects/nope/scenes/outro"):
        response = client.get(path)
        assert response.status_code == 404
        _no_server_path(kernel, response)
    assert client.put("/api/projects/tiny/scenes/bad%20id", json=extra).json()["error"]["code"] == "invalid_scene_id"

    response = client.delete("/api/projects/tiny/scenes/extra", headers={"If-Match": '"2"'})
    assert response.status_code == 412
    response = client.delete("/api/projects/tiny/scenes/extra", headers={"If-Match": '"1"'})
    assert response.status_code == 200 and response.json()["deleted"] is True
    # outro is the target of intro's choice: deleting it would break the project.
    response = client.delete("/api/projects/tiny/scenes/outro")
    assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_project")


def test_history_and_restore(client: Any) -> None:
    _created(client)
    scene = client.get("/api/projects/tiny/scenes/outro").json()["scene"]
    for text in ("two", "three"):
        scene["nodes"][0]["text"] = text
        client.put("/api/projects/tiny/scenes/outro", json=scene)
    response = client.get("/api/projects/tiny/scenes/outro/history")
    assert response.status_code == 200 and response.headers["etag"] == '"3"'
    body = response.json()
    assert body["current_version"] == 3 and [v["version"] for v in body["versions"]] == [3, 2, 1]
    response = client.get("/api/projects/tiny/scenes/outro/history/2")
    assert response.headers["etag"] == '"2"' and response.json()["scene"]["nodes"][0]["text"] == "two"
    assert client.get("/api/projects/tiny/scenes/outro/history/9").json()["error"]["code"] == "version_not_found"
    assert client.get("/api/projects/tiny/scenes/outro/history/x").json()["error"]["code"] == "invalid_version"

    response = client.post("/api/projects/tiny/scenes/outro/restore", json={"version": 1}, headers={"If-Match": '"3"'})
    assert response.status_code == 200 and response.headers["etag"] == '"4"'
    assert response.json()["scene"]["nodes"][0]["text"] == "The end"
    response = client.post("/api/projects/tiny/scenes/outro/restore", json={"version": 2}, headers={"If-Match": '"3"'})
    assert response.status_code == 412 and response.json()["error"]["current_version"] == 4
    for body, code in (
        ({}, "invalid_version"),
        ({"version": "2"}, "invalid_version"),
        ({"version": True}, "invalid_version"),
        ({"version": 1, "x": 1}, "unknown_field"),
    ):
        response = client.post("/api/projects/tiny/scenes/outro/restore", json=body)
        assert (response.status_code, response.json()["error"]["code"]) == (400, code)


def test_a_scene_id_too_long_for_a_file_name_is_a_400_everywhere(client: Any, kernel: Kernel) -> None:
    # 300 characters is over the file system's 255-byte name limit: it used to reach the disk (a 500).
    _created(client)
    long_id = "s" * 300
    requests = [
        ("GET", f"/api/projects/tiny/scenes/{long_id}", None),
        ("DELETE", f"/api/projects/tiny/scenes/{long_id}", None),
        ("GET", f"/api/projects/tiny/scenes/{long_id}/history", None),
        ("GET", f"/api/projects/tiny/scenes/{long_id}/history/1", None),
        ("POST", f"/api/projects/tiny/scenes/{long_id}/restore", {"version": 1}),
    ]
    for method, path, body in requests:
        response = client.request(method, path, json=body)
        assert response.status_code == 400, (method, path[-20:], response.text[:200])
        assert response.json()["error"]["code"] == "invalid_scene_id"
        assert long_id not in response.text
        _no_server_path(kernel, response)


# -- two editors over real HTTP ---------------------------------------------------------------------------


def test_two_clients_editing_one_scene_never_lose_a_write(kernel: Kernel, live_server: Any) -> None:
    with live_server(kernel) as base, httpx.Client(base_url=base) as alice, httpx.Client(base_url=base) as bob:
        assert alice.post("/api/projects", json=BODY).status_code == 201
        url = "/api/projects/tiny/scenes/outro"
        read_a, read_b = alice.get(url), bob.get(url)
        assert read_a.headers["etag"] == read_b.headers["etag"] == '"1"'
        scene_a, scene_b = read_a.json()["scene"], read_b.json()["scene"]

        scene_a["nodes"][0]["text"] = "Alice's ending"
        first = alice.put(url, json=scene_a, headers={"If-Match": read_a.headers["etag"]})
        assert first.status_code == 200 and first.headers["etag"] == '"2"'

        scene_b["nodes"][0]["text"] = "Bob's ending"
        second = bob.put(url, json=scene_b, headers={"If-Match": read_b.headers["etag"]})
        assert second.status_code == 412
        assert (second.json()["error"]["code"], second.json()["error"]["current_version"]) == ("version_mismatch", 2)

        now = bob.get(url)  # nothing lost: Alice's write is there
        assert now.headers["etag"] == '"2"' and now.json()["scene"]["nodes"][0]["text"] == "Alice's ending"
        history = bob.get(f"{url}/history").json()["versions"]
        assert [(v["version"], v["current"]) for v in history] == [(2, True), (1, False)]

        # Bob reloads, applies his change on top, then thinks better of it and restores the original.
        scene_b = now.json()["scene"]
        scene_b["nodes"][0]["text"] = "Bob's ending"
        assert bob.put(url, json=scene_b, headers={"If-Match": now.headers["etag"]}).status_code == 200
        restored = bob.post(f"{url}/restore", json={"version": 1}, headers={"If-Match": '"3"'})
        assert restored.status_code == 200 and restored.headers["etag"] == '"4"'
        assert alice.get(url).json()["scene"]["nodes"][0]["text"] == "The end"
        assert [v["version"] for v in alice.get(f"{url}/history").json()["versions"]] == [4, 3, 2, 1]


# -- OpenAPI and scopes --------------------------------------------------------------------------------------


def test_every_project_route_is_documented(client: Any) -> None:
    document = client.get("/openapi.json").json()
    operations = {
        (path, method): op
        for path, methods in document["paths"].items()
        if path.startswith("/api/projects")
        for method, op in methods.items()
    }
    assert len(operations) == 12
    for (path, method), op in operations.items():
        assert not op.get("x-undocumented") and "x-docstring-error" not in op, (path, method)
        if method in ("put", "delete") or path.endswith("/restore"):
            assert any(p["name"] == "If-Match" and p["in"] == "header" for p in op["parameters"]), path
            assert "412" in op["responses"], path
        if method == "get" and path != "/api/projects":
            assert "ETag" in op["responses"]["200"]["headers"], path
    create = operations[("/api/projects", "post")]
    assert {"application/json", "multipart/form-data"} <= set(create["requestBody"]["content"])
    assert "application/zip" in operations[("/api/projects/{id}/export.zip", "get")]["responses"]["200"]["content"]


@pytest.fixture
def lan(runtime: RuntimePaths) -> Iterator[tuple[TestClient, TokenStore]]:
    """Off loopback, with entry-point plugin names (the names scopes are spelled with)."""
    kernel = create_kernel(paths=runtime, env={"COMFYVN_PLUGINS": "server,scenario"}, strict=True)
    tokens = TokenStore(kernel.paths.config / "server_tokens.json")
    tokens.create(["admin"])
    with TestClient(create_app(kernel, ServerSettings(host="0.0.0.0")), base_url="http://192.168.1.5:8001") as c:
        yield c, tokens


def test_project_writes_need_the_scenario_write_scope(lan: tuple[TestClient, TokenStore]) -> None:
    client, tokens = lan
    reader = {"Authorization": f"Bearer {tokens.create(['roleplay.write'])[0]}"}
    writer = {"Authorization": f"Bearer {tokens.create(['scenario.write'])[0]}"}
    assert client.get("/api/projects", headers=reader).status_code == 200
    response = client.post("/api/projects", json=BODY, headers=reader)
    assert response.status_code == 403 and "'scenario.write'" in response.json()["error"]["message"]
    assert client.post("/api/projects", json=BODY, headers=writer).status_code == 201
    for method, path in (("PUT", "/api/projects/tiny/scenes/outro"), ("DELETE", "/api/projects/tiny")):
        assert client.request(method, path, json={}, headers=reader).status_code == 403
    assert client.get("/api/projects/tiny/export.zip", headers=reader).status_code == 200
    assert client.delete("/api/projects/tiny", headers=writer).status_code == 200


def test_a_hand_made_project_is_served(client: Any, kernel: Kernel) -> None:
    # A project folder dropped into <data>/projects by hand is served too (version 1, not validated yet).
    copy_demo(ProjectStore.for_kernel(kernel).root / "demo")
    body = client.get("/api/projects/demo").json()
    assert (body["version"], body["validated"]) == (1, False)
    assert body["project"] == json.loads((ProjectStore.for_kernel(kernel).root / "demo" / "project.json").read_text())
