"""The bridge's REST routes with the studio's plugins and fake ComfyUI servers: health, servers (tokens never shown),
per-character renders (the original's ``/api/pov/render/switch``), LoRAs, refusals, scopes, and a whole project
rendered over real HTTP (import → render job → the project shows the art → the registry tells its provenance)."""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import comfyvn_assets.plugin
import comfyvn_comfyui.plugin
import comfyvn_jobs.plugin
import comfyvn_roleplay.plugin
import comfyvn_scenario.plugin
import comfyvn_server.plugin
import httpx
import pytest
from comfyvn import Kernel, RuntimePaths, create_kernel
from comfyvn_assets import AssetRegistry
from comfyvn_jobs import jobs_for
from comfyvn_jobs.service import close_jobs
from comfyvn_scenario import Project
from comfyvn_scenario.store import ProjectStore
from comfyvn_server import ServerSettings, create_app
from comfyvn_server.auth import TokenStore
from starlette.testclient import TestClient

from .fakecomfy import FakeComfy

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "sillytavern"
CHAT = EXAMPLES / "Mira Vale - 2024-09-28@14h05m07s.jsonl"
CARD = EXAMPLES / "Mira Vale.png"
WORLD = EXAMPLES / "Saltmere.json"
TOKEN = "tok-0123456789abcdefSECRET"
SPEC_KEYS = {"cached", "asset_path", "asset_sidecar", "bridge_sidecar", "loras"}
PLUGINS = (
    comfyvn_server.plugin,
    comfyvn_scenario.plugin,
    comfyvn_roleplay.plugin,
    comfyvn_jobs.plugin,
    comfyvn_assets.plugin,
    comfyvn_comfyui.plugin,
)


@pytest.fixture
def studio(make_kernel: Callable[..., Kernel]) -> Iterator[Callable[..., Kernel]]:
    """``studio(*servers)``: a strict kernel with the studio's plugins and these fakes in COMFYVN_COMFYUI_URL."""
    made: list[Kernel] = []

    def factory(*servers: FakeComfy | str) -> Kernel:
        urls = [s if isinstance(s, str) else s.url for s in servers]
        made.append(make_kernel(*PLUGINS, env={"COMFYVN_COMFYUI_URL": ",".join(urls)} if urls else None))
        return made[-1]

    yield factory
    for kernel in made:
        close_jobs(kernel)
        AssetRegistry.forget(kernel)


def _store_project(kernel: Kernel, project_id: str, *characters: str) -> str:
    """A small store project in which each of ``characters`` speaks."""
    nodes = [
        {"id": f"n{n}", "type": "dialogue", "speaker": c, "text": f"I am {c}."} for n, c in enumerate(characters, 1)
    ]
    for node, following in itertools.pairwise(nodes):
        node["choices"] = [{"target": following["id"]}]
    meta = {
        "id": project_id,
        "title": project_id.title(),
        "start": "s1",
        "characters": {c: {"name": c.title(), "description": f"{c} wears a blue coat"} for c in characters},
    }
    scene = {"id": "s1", "start": "n1", "nodes": nodes}
    stored = ProjectStore.for_kernel(kernel).create(Project(meta=meta, scenes={"s1": scene}), project_id=project_id)
    return stored.id


def _error(response: httpx.Response, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code and isinstance(error["message"], str) and "field" in error, error
    if field is not None:
        assert error["field"] == field, error
    assert "Traceback" not in response.text
    return error


def _no_server_path(kernel: Kernel, response: httpx.Response) -> None:
    for root in (kernel.paths.data, kernel.paths.config, kernel.paths.cache):
        assert str(root) not in response.text


# -- health and servers ------------------------------------------------------------------------------------------


def test_health_with_no_server_says_how_to_add_one(studio: Callable[..., Kernel], http_for: Any) -> None:
    client = http_for(studio())
    body = client.get("/api/comfyui/health").json()
    assert body["configured"] is False and body["servers"] == []
    assert "comfyvn comfyui add" in body["hint"] and "COMFYVN_COMFYUI_URL" in body["hint"]
    assert client.get("/api/comfyui/servers").json() == {"ok": True, "configured": False, "servers": []}
    _error(client.get("/api/comfyui/health", params={"x": "1"}), 400, "unknown_field", "x")


def test_health_with_a_live_and_a_dead_server(
    studio: Callable[..., Kernel], http_for: Any, comfy: FakeComfy, fake_comfyui: Callable[..., FakeComfy]
) -> None:
    dead = fake_comfyui()
    dead.kill()
    kernel = studio(comfy, dead.url)
    response = http_for(kernel).get("/api/comfyui/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["configured"], body["healthy"]) == (True, 1)
    live, down = body["servers"]
    assert (live["name"], live["url"], live["source"], live["ok"]) == ("env-1", comfy.url, "env", True)
    assert live["devices"] and live["devices"][0]["name"] and live["devices"][0]["vram_total"] > 0
    assert live["system"]
    assert (down["name"], down["ok"]) == ("env-2", False)
    assert down["error"] and "Traceback" not in down["error"] and "devices" not in down


def test_servers_add_list_remove_and_the_token_is_never_shown(
    studio: Callable[..., Kernel],
    http_for: Any,
    fake_comfyui: Callable[..., FakeComfy],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    locked = fake_comfyui(token=TOKEN)
    kernel = studio()
    client = http_for(kernel)
    added = client.post("/api/comfyui/servers", json={"url": locked.url + "/", "name": "locked", "token": TOKEN})
    assert added.status_code == 201, added.text
    assert added.json() == {
        "ok": True,
        "server": {"name": "locked", "url": locked.url, "source": "config", "token": True},
    }
    listed = client.get("/api/comfyui/servers")
    assert listed.json()["servers"] == [{"name": "locked", "url": locked.url, "source": "config", "token": True}]
    health = client.get("/api/comfyui/health")
    assert health.json()["servers"][0]["ok"] is True  # the token reached the server as a bearer token
    assert all(
        r["headers"].get("authorization") == f"Bearer {TOKEN}"
        for r in locked.log()["requests"]
        if r["path"] == "/system_stats"
    )
    again = client.post("/api/comfyui/servers", json={"url": locked.url, "token": TOKEN})
    _error(again, 409, "server_exists", "url")
    for response in (added, listed, health, again):
        assert TOKEN not in response.text
    assert TOKEN not in (kernel.paths.config / "comfyui_servers.json").read_text()
    runtime_files = [p for p in kernel.paths.config.parent.rglob("*") if p.is_file()]
    assert runtime_files and not [p.name for p in runtime_files if TOKEN.encode() in p.read_bytes()]

    assert client.delete("/api/comfyui/servers/locked").json() == {"ok": True, "removed": "locked"}
    assert client.get("/api/comfyui/servers").json()["servers"] == []
    assert kernel.secrets.get("comfyui", "locked") is None
    _error(client.delete("/api/comfyui/servers/locked"), 404, "server_not_found")
    assert TOKEN not in caplog.text

    wrong = "tok-wrong-0123456789"
    assert client.post("/api/comfyui/servers", json={"url": locked.url, "token": wrong}).status_code == 201
    refused = client.get("/api/comfyui/health")
    row = refused.json()["servers"][0]
    assert row["ok"] is False and "token" in row["error"] and row["token"] is True
    assert wrong not in refused.text and TOKEN not in refused.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://gpu:8188"}, "url"),
        ({"url": "http://user:pw@gpu:8188"}, "url"),
        ({"url": "http://gpu:8188", "name": "Bad Name"}, "name"),
        ({"url": "http://gpu:8188", "extra": 1}, None),
        ({"url": "http://gpu:8188", "token": "tök"}, "token"),
        ({}, "url"),
    ],
)
def test_a_bad_server_is_refused(studio: Callable[..., Kernel], http_for: Any, body: Any, field: str | None) -> None:
    client = http_for(studio())
    response = client.post("/api/comfyui/servers", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert field is None or error["field"] == field
    assert "pw" not in response.text and "tök" not in response.text
    assert client.get("/api/comfyui/servers").json()["servers"] == []


def test_a_server_added_while_the_job_cluster_runs_renders_at_once(
    studio: Callable[..., Kernel], http_for: Any, comfy: FakeComfy
) -> None:
    kernel = studio()
    _store_project(kernel, "harbour", "mira")
    jobs_for(kernel).client()  # the embedded cluster starts with no COMFYUI slot (no server yet)
    client = http_for(kernel)
    assert client.post("/api/comfyui/servers", json={"url": comfy.url}).status_code == 201
    answered: list[httpx.Response] = []
    thread = threading.Thread(
        target=lambda: answered.append(client.post("/api/pov/render/switch", json={"character_id": "mira"})),
        daemon=True,
    )
    thread.start()
    thread.join(90)  # a job waiting for a slot no worker offers would never end
    assert answered and answered[0].status_code == 200, answered and answered[0].text
    assert answered[0].json()["results"][0]["server"] == "comfyui-1"


# -- per-character renders ---------------------------------------------------------------------------------------


def test_render_switch_answers_the_spec_entries_then_reuses_them(
    studio: Callable[..., Kernel], http_for: Any, comfy: FakeComfy
) -> None:
    kernel = studio(comfy)
    _store_project(kernel, "harbour", "mira")
    client = http_for(kernel)
    body = {"character_id": "mira", "style": "painterly", "poses": ["neutral", "happy"]}
    first = client.post("/api/pov/render/switch", json=body)
    assert first.status_code == 200, first.text
    answer = first.json()
    assert (answer["character_id"], answer["project"], answer["style"]) == ("mira", "harbour", "painterly")
    assert [r["pose"] for r in answer["results"]] == ["neutral", "happy"]
    for result in answer["results"]:
        assert set(result) >= SPEC_KEYS and result["cached"] is False and result["loras"] == []
        assert result["asset_path"] == f"characters/mira/painterly/{result['pose']}.png"
        assert result["asset_sidecar"] == result["asset_path"] + ".asset.json"
        assert result["bridge_sidecar"] == result["asset_path"] + ".bridge.json"
        assert result["server"] == "env-1"
        root = AssetRegistry.for_kernel(kernel).root
        assert (root / result["bridge_sidecar"]).is_file() and (root / result["asset_sidecar"]).is_file()
    _no_server_path(kernel, first)
    assert len(comfy.log()["prompts"]) == 2

    second = client.post("/api/pov/render/switch", json=body).json()
    assert [r["cached"] for r in second["results"]] == [True, True]
    assert [r["asset_uid"] for r in second["results"]] == [r["asset_uid"] for r in answer["results"]]
    assert len(comfy.log()["prompts"]) == 2


def test_a_character_in_two_projects_needs_the_project_named(
    studio: Callable[..., Kernel], http_for: Any, comfy: FakeComfy
) -> None:
    kernel = studio(comfy)
    _store_project(kernel, "one", "mira")
    _store_project(kernel, "two", "mira", "cora")
    client = http_for(kernel)
    _error(client.post("/api/pov/render/switch", json={"character_id": "mira"}), 400, "ambiguous_character", "project")
    named = client.post("/api/pov/render/switch", json={"character_id": "mira", "project": "two"})
    assert named.status_code == 200 and named.json()["project"] == "two"
    alone = client.post("/api/pov/render/switch", json={"character_id": "cora"})
    assert alone.status_code == 200 and alone.json()["results"][0]["pose"] == "neutral"
    _error(client.post("/api/pov/render/switch", json={"character_id": "nobody"}), 404, "character_not_found")
    _error(
        client.post("/api/pov/render/switch", json={"character_id": "cora", "project": "one"}),
        404,
        "character_not_found",
    )


def test_characters_render_renders_what_the_story_shows(
    studio: Callable[..., Kernel], http_for: Any, comfy: FakeComfy
) -> None:
    kernel = studio(comfy)
    _store_project(kernel, "harbour", "mira", "cora")
    client = http_for(kernel)
    response = client.post("/api/characters/render", json={"project": "harbour", "character_id": "cora"})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["pose"] for r in results] == ["neutral"] and results[0]["cached"] is False
    named = client.post(
        "/api/characters/render",
        json={"project": "harbour", "character_id": "cora", "expressions": ["neutral", "angry"]},
    ).json()["results"]
    assert [(r["pose"], r["cached"]) for r in named] == [("neutral", True), ("angry", False)]
    _error(client.post("/api/characters/render", json={"character_id": "cora"}), 400, "invalid_request", "project")
    _error(
        client.post("/api/characters/render", json={"project": "nope", "character_id": "cora"}),
        404,
        "project_not_found",
    )


def test_loras_are_set_checked_and_used(studio: Callable[..., Kernel], http_for: Any, comfy: FakeComfy) -> None:
    kernel = studio(comfy)
    _store_project(kernel, "harbour", "mira")
    client = http_for(kernel)
    assert client.get("/api/characters/mira/loras").json() == {"ok": True, "character_id": "mira", "loras": []}
    bad = client.put("/api/characters/mira/loras", json={"loras": [{"name": "x.safetensors", "strength_model": 9}]})
    _error(bad, 400, "invalid_lora", "loras.0.strength_model")
    text = client.put("/api/characters/mira/loras", json={"loras": [{"name": "x", "strength_clip": "high"}]})
    assert text.status_code == 400 and "strength_clip" in text.json()["error"]["field"]
    _error(client.put("/api/characters/mira/loras", json={"loras": "x"}), 400, "invalid_request", "loras")
    for hostile in ("%2e%2e", "a" * 300, "%00x"):
        refused = client.put(f"/api/characters/{hostile}/loras", json={"loras": []})
        assert refused.status_code == 400 and refused.json()["error"]["field"] == "character_id", hostile
        assert client.get(f"/api/characters/{hostile}/loras").status_code == 400
    assert not (kernel.paths.data / "lora.json").exists() and not (kernel.paths.data / "characters").exists()
    assert client.get("/api/characters/mira/loras").json()["loras"] == []

    stack = [{"name": "flat_color.safetensors", "strength_model": 0.8, "strength_clip": 0.6}]
    put = client.put("/api/characters/mira/loras", json={"loras": stack})
    assert put.status_code == 200 and put.json()["loras"] == stack
    assert client.get("/api/characters/mira/loras").json()["loras"] == stack

    result = client.post("/api/pov/render/switch", json={"character_id": "mira"}).json()["results"][0]
    assert result["loras"] == stack and result["cached"] is False
    provenance = AssetRegistry.for_kernel(kernel).get(result["asset_uid"]).provenance
    assert provenance["loras"] == stack
    prompt_id = comfy.log()["prompts"][-1]["prompt_id"]
    graph = httpx.get(f"{comfy.url}/history/{prompt_id}", timeout=10).json()[prompt_id]["prompt"][2]
    loaders = [n["inputs"] for n in graph.values() if n["class_type"] == "LoraLoader"]
    assert [(n["lora_name"], n["strength_model"], n["strength_clip"]) for n in loaders] == [
        ("flat_color.safetensors", 0.8, 0.6)
    ]


# -- refusals ----------------------------------------------------------------------------------------------------


def test_a_render_with_no_server_configured_says_how_to_add_one(studio: Callable[..., Kernel], http_for: Any) -> None:
    kernel = studio()
    _store_project(kernel, "harbour", "mira")
    client = http_for(kernel)
    started = time.monotonic()
    for path, body in (
        ("/api/render/project", {"project": "harbour"}),
        ("/api/pov/render/switch", {"character_id": "mira"}),
        ("/api/characters/render", {"project": "harbour", "character_id": "mira"}),
    ):
        error = _error(client.post(path, json=body), 404, "comfyui_not_configured", "servers")
        assert "comfyvn comfyui add" in error["message"], path
    assert time.monotonic() - started < 30  # answered, not left waiting for a server that never comes
    plan = client.get("/api/render/plan", params={"project": "harbour"}).json()
    assert plan["configured"] is False
    assert sorted(r["kind"] for r in plan["render"]) == ["background", "sprite"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/render/project", {"project": "harbour", "style": "cubist"}),
        ("/api/pov/render/switch", {"character_id": "mira", "style": "cubist"}),
        ("/api/characters/render", {"project": "harbour", "character_id": "mira", "style": "cubist"}),
    ],
)
def test_an_unknown_style_is_refused(
    studio: Callable[..., Kernel], http_for: Any, comfy: FakeComfy, path: str, body: Any
) -> None:
    kernel = studio(comfy)
    _store_project(kernel, "harbour", "mira")
    error = _error(http_for(kernel).post(path, json=body), 400, "invalid_request", "style")
    assert "anime" in error["message"]
    assert comfy.log()["prompts"] == []


def test_unknown_projects_and_bad_bodies(studio: Callable[..., Kernel], http_for: Any, comfy: FakeComfy) -> None:
    kernel = studio(comfy)
    _store_project(kernel, "harbour", "mira")
    client = http_for(kernel)
    _error(client.post("/api/render/project", json={"project": "nope"}), 404, "project_not_found")
    _error(client.get("/api/render/plan", params={"project": "nope"}), 404, "project_not_found")
    _error(client.post("/api/render/project", json={"project": "harbour", "what": "music"}), 400, "invalid_request")
    _error(client.post("/api/render/project", json={"project": "harbour", "force": "yes"}), 400, "invalid_request")
    _error(
        client.post("/api/pov/render/switch", json={"character_id": "mira", "poses": ["../x"]}), 400, "invalid_request"
    )
    for path in ("/api/render/project", "/api/pov/render/switch", "/api/characters/render", "/api/comfyui/servers"):
        for raw in (b"{not json", b"[1, 2]", b"", b'"\\ud800"'):
            response = client.post(path, content=raw, headers={"content-type": "application/json"})
            assert response.status_code == 400, (path, raw, response.text)
            assert set(response.json()["error"]) >= {"code", "message", "field"}
    response = client.put("/api/characters/mira/loras", content=b"{", headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"]
    assert comfy.log()["prompts"] == []


def test_a_render_every_server_fails_is_a_bad_gateway(
    studio: Callable[..., Kernel], http_for: Any, comfy: FakeComfy
) -> None:
    kernel = studio(comfy)
    _store_project(kernel, "harbour", "mira")
    comfy.fail("execution_error")
    response = http_for(kernel).post("/api/pov/render/switch", json={"character_id": "mira"})
    error = _error(response, 502, "render_failed")
    assert "env-1" in error["message"] and "OutOfMemoryError" in error["message"]


# -- scopes ------------------------------------------------------------------------------------------------------


@pytest.fixture
def lan(runtime: RuntimePaths) -> Iterator[tuple[TestClient, TokenStore, Kernel]]:
    """Off loopback, with entry-point plugin names (the names scopes are spelled with)."""
    kernel = create_kernel(paths=runtime, env={"COMFYVN_PLUGINS": "server,scenario,jobs,assets,comfyui"}, strict=True)
    tokens = TokenStore(kernel.paths.config / "server_tokens.json")
    tokens.create(["admin"])
    with TestClient(create_app(kernel, ServerSettings(host="0.0.0.0")), base_url="http://192.168.1.5:8001") as c:
        yield c, tokens, kernel
    close_jobs(kernel)
    AssetRegistry.forget(kernel)


def test_writes_need_the_comfyui_write_scope(lan: tuple[TestClient, TokenStore, Kernel]) -> None:
    client, tokens, kernel = lan
    _store_project(kernel, "harbour", "mira")
    reader = {"Authorization": f"Bearer {tokens.create(['assets.write'])[0]}"}
    writer = {"Authorization": f"Bearer {tokens.create(['comfyui.write'])[0]}"}
    writes = [
        ("POST", "/api/comfyui/servers", {"url": "http://gpu:8188"}),
        ("DELETE", "/api/comfyui/servers/comfyui-1", None),
        ("POST", "/api/render/project", {"project": "harbour"}),
        ("POST", "/api/pov/render/switch", {"character_id": "mira"}),
        ("POST", "/api/characters/render", {"project": "harbour", "character_id": "mira"}),
        ("PUT", "/api/characters/mira/loras", {"loras": []}),
    ]
    for method, path, body in writes:
        refused = client.request(method, path, json=body, headers=reader)
        assert refused.status_code == 403 and "'comfyui.write'" in refused.json()["error"]["message"], path
    assert client.get("/api/comfyui/servers", headers=reader).status_code == 200
    assert client.get("/api/characters/mira/loras", headers=reader).status_code == 200
    assert client.post("/api/comfyui/servers", json={"url": "http://gpu:8188"}, headers=writer).status_code == 201
    assert client.put("/api/characters/mira/loras", json={"loras": []}, headers=writer).status_code == 200
    assert client.delete("/api/comfyui/servers/comfyui-1", headers=writer).status_code == 200


def test_every_route_is_documented(studio: Callable[..., Kernel], http_for: Any) -> None:
    document = http_for(studio()).get("/openapi.json").json()
    ours = {
        (path, method): op
        for path, methods in document["paths"].items()
        if path.startswith(("/api/comfyui", "/api/render", "/api/pov/render", "/api/characters"))
        for method, op in methods.items()
    }
    assert len(ours) == 10
    for key, op in ours.items():
        assert not op.get("x-undocumented") and "x-docstring-error" not in op, key


# -- the whole flow over real HTTP -------------------------------------------------------------------------------


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def test_import_render_and_read_the_provenance_over_http(
    studio: Callable[..., Kernel], live_server: Any, fake_comfyui: Callable[..., FakeComfy]
) -> None:
    servers = [fake_comfyui(), fake_comfyui()]
    kernel = studio(*servers)
    with live_server(kernel) as base, httpx.Client(base_url=base, timeout=120) as http:
        imported = _ok(
            http.post(
                "/api/roleplay/import",
                files=[
                    ("file", (CHAT.name, CHAT.read_bytes(), "application/jsonl")),
                    ("card", (CARD.name, CARD.read_bytes(), "image/png")),
                    ("world", (WORLD.name, WORLD.read_bytes(), "application/json")),
                ],
            )
        )
        project_id = imported["project"]["id"]
        job = _ok(http.post("/api/render/project", json={"project": project_id}), 202)["job"]
        assert job["kind"] == "comfyui.render_project" and job["status"] in ("queued", "running")
        deadline = time.monotonic() + 180
        while (record := _ok(http.get(f"/api/jobs/{job['id']}")))["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, record
            time.sleep(0.2)
        assert record["status"] == "done", record
        summary = record["result"]
        assert (summary["project"], summary["rendered"], summary["cached"], summary["failed"]) == (project_id, 2, 0, 0)
        assert summary["version"] == 2
        sprite_entry = next(e for e in summary["entries"] if e["kind"] == "sprite")

        described = _ok(http.get(f"/api/projects/{project_id}"))
        uid = sprite_entry["asset_uid"]
        assert described["project"]["characters"]["mira_vale"]["sprites"] == {"neutral": f"asset:{uid}"}

        asset = _ok(http.get(f"/assets/{uid}"))
        assert asset["path"] == "characters/mira_vale/anime/neutral.png" and asset["source"] == "comfyui"
        provenance = asset["provenance"]
        assert provenance["tool"] == "comfyvn-comfyui" and provenance["character"] == "mira_vale"
        assert provenance["comfyui_server"]["url"] in {s.url for s in servers}
        sidecar = _ok(http.get(f"/assets/{uid}/sidecar"))
        assert sidecar["uid"] == uid and sidecar["provenance"]["render_digest"] == provenance["render_digest"]
        assert sidecar["provenance"]["prompt_id"] in {p["prompt_id"] for s in servers for p in s.log()["prompts"]}
        for response_text in (json.dumps(summary), json.dumps(described), json.dumps(asset)):
            assert str(kernel.paths.data) not in response_text


# -- a whole-project render job that fails (in full or in part) --------------------------------------------------


def _finished(client: TestClient, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while (record := _ok(client.get(f"/api/jobs/{job_id}")))["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, record
        time.sleep(0.1)
    return dict(record)


def test_a_project_render_with_every_piece_failed_is_a_failed_job_naming_why(
    studio: Callable[..., Kernel], http_for: Any, fake_comfyui: Callable[..., FakeComfy]
) -> None:
    down = fake_comfyui()
    url = down.url
    down.kill()  # the only server is down: every piece fails
    kernel = studio(url)
    _store_project(kernel, "harbour", "mira", "oren")
    client = http_for(kernel)
    job = _ok(client.post("/api/render/project", json={"project": "harbour", "what": "sprites"}), 202)["job"]
    record = _finished(client, job["id"])
    assert record["status"] == "failed", record
    error = record["error"]
    assert error["code"] == "render_failed" and error["type"] == "UpstreamError", error
    assert error["message"].startswith("0 of 2 pieces rendered: sprite "), error
    assert "every ComfyUI server failed" in error["message"], error
    summary = record["result"]  # each piece's outcome is kept on the failed record
    assert (summary["rendered"], summary["cached"], summary["failed"], summary["partial"]) == (0, 0, 2, False)
    assert {e["status"] for e in summary["entries"]} == {"failed"}
    assert all(e["error"]["code"] == "render_failed" for e in summary["entries"])
    _no_server_path(kernel, client.get(f"/api/jobs/{job['id']}"))


def test_a_project_render_with_some_pieces_failed_is_done_and_says_partial(
    studio: Callable[..., Kernel], http_for: Any, comfy: FakeComfy
) -> None:
    comfy.fail("execution_error", after=1)  # one server, one piece at a time: the first lands, the second fails
    kernel = studio(comfy)
    _store_project(kernel, "harbour", "mira", "oren")
    client = http_for(kernel)
    job = _ok(client.post("/api/render/project", json={"project": "harbour", "what": "sprites"}), 202)["job"]
    record = _finished(client, job["id"])
    assert record["status"] == "done" and record["error"] is None, record
    summary = record["result"]
    assert (summary["rendered"], summary["failed"], summary["partial"]) == (1, 1, True), summary
    [warning] = summary["warnings"]
    assert warning.startswith("1 of 2 pieces rendered: sprite ") and "OutOfMemoryError" in warning, warning
    assert summary["version"] == 2  # the piece that landed is in the project


def test_a_project_render_with_nothing_failed_says_not_partial(
    studio: Callable[..., Kernel], http_for: Any, comfy: FakeComfy
) -> None:
    kernel = studio(comfy)
    _store_project(kernel, "harbour", "mira")
    client = http_for(kernel)
    job = _ok(client.post("/api/render/project", json={"project": "harbour", "what": "sprites"}), 202)["job"]
    record = _finished(client, job["id"])
    assert record["status"] == "done", record
    assert (record["result"]["rendered"], record["result"]["partial"]) == (1, False)
    assert "warnings" not in record["result"]
