"""Routes are namespaced by plugin (/api/<plugin>/…) with the original paths kept as aliases of the same
handlers, and write scopes follow the plugin that owns the route — through either path."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from comfyvn import Kernel, RuntimePaths, create_kernel
from comfyvn_renpy.demo import find_demo_project
from comfyvn_server import ServerSettings, create_app
from comfyvn_server.auth import RouteScopes, TokenStore
from starlette.routing import Route
from starlette.testclient import TestClient

# (canonical, alias) for every path a plugin moved under its own name.
ALIASES = [
    ("/api/scenario/save/list", "/api/save/list"),
    ("/api/scenario/save/{slot}", "/api/save/{slot}"),
    ("/api/scenario/pov/get", "/api/pov/get"),
    ("/api/scenario/pov/set", "/api/pov/set"),
    ("/api/scenario/pov/fork", "/api/pov/fork"),
    ("/api/scenario/pov/candidates", "/api/pov/candidates"),
    ("/api/scenario/playtest/run", "/api/playtest/run"),
    ("/api/renpy/export", "/api/export/renpy"),
    ("/api/renpy/export/preview", "/api/export/renpy/preview"),
    ("/api/roleplay/import", "/roleplay/import"),
    ("/api/battle/sim", "/api/battle/simulate"),
]
SCENE = {
    "id": "fork",
    "start": "a",
    "nodes": [
        {"id": "a", "text": "start", "choices": [{"id": "left", "target": "b"}, {"id": "right", "target": "b"}]},
        {"id": "b", "text": "end", "end": True},
    ],
}
SAVE = {"vars": {"gold": 2}, "node_pointer": {"scene_id": "s", "node": "a"}, "seed": 7}


@pytest.fixture
def studio(runtime: RuntimePaths) -> Kernel:
    """Installed plugins under their entry-point names (the names scopes are spelled with)."""
    env = {"COMFYVN_PLUGINS": "server,scenario,roleplay,renpy,battle", "COMFYVN_FEATURE_ENABLE_PLAYTEST_HARNESS": "1"}
    kernel = create_kernel(paths=runtime, env=env, strict=True)
    shutil.copytree(find_demo_project(), kernel.paths.data / "projects" / "demo")
    return kernel


@pytest.fixture
def lan(studio: Kernel) -> Iterator[tuple[TestClient, TokenStore]]:
    """The app served off loopback (tokens and scopes enforced)."""
    store = TokenStore(studio.paths.config / "server_tokens.json")
    store.create(["admin"])
    with TestClient(create_app(studio, ServerSettings(host="0.0.0.0")), base_url="http://192.168.1.5:8001") as c:
        yield c, store


def _bearer(store: TokenStore, *scopes: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {store.create(list(scopes))[0]}"}


def test_every_alias_is_the_same_handler_as_its_canonical_path(studio: Kernel) -> None:
    routes = [r for r in create_app(studio).routes if isinstance(r, Route)]
    by_path: dict[str, set[tuple[object, frozenset[str]]]] = {}
    for route in routes:
        by_path.setdefault(route.path, set()).add((route.endpoint, frozenset(route.methods or ())))
    for canonical, alias in ALIASES:
        assert by_path[canonical] == by_path[alias], (canonical, alias)


def test_both_paths_answer_the_same(studio: Kernel) -> None:
    with TestClient(create_app(studio)) as client:
        saved = client.post("/api/scenario/save/one", json=SAVE).json()["save"]
        assert client.get("/api/save/one").json()["save"] == saved
        assert client.get("/api/scenario/save/list").json() == client.get("/api/save/list").json()
        assert client.post("/api/save/two", json=SAVE).status_code == 200
        assert client.delete("/api/scenario/save/two").json()["deleted"] is True
        client.post("/api/pov/set", json={"pov": "alice"})
        assert client.get("/api/scenario/pov/get").json() == client.get("/api/pov/get").json()
        assert client.get("/api/scenario/pov/get").json()["pov"] == "alice"
        run = {"scene": SCENE, "seed": 7}
        first = client.post("/api/scenario/playtest/run", json=run)
        assert first.status_code == 200, first.text
        assert first.json()["digest"] == client.post("/api/playtest/run", json=run).json()["digest"]
        query = {"project": "demo", "pov_mode": "master"}
        assert client.post("/api/renpy/export", json=query).status_code == 200
        canonical = client.get("/api/renpy/export/preview", params=query)
        alias = client.get("/api/export/renpy/preview", params=query)
        assert canonical.status_code == alias.status_code == 200
        assert canonical.json()["preview"] == alias.json()["preview"]


def test_a_plugin_scope_writes_through_both_paths(lan: tuple[TestClient, TokenStore]) -> None:
    client, store = lan
    scenario = _bearer(store, "scenario.write")
    for path in ("/api/scenario/save/a", "/api/save/a"):
        assert client.post(path, json=SAVE, headers=scenario).status_code == 200, path
    for path in ("/api/scenario/pov/set", "/api/pov/set"):
        assert client.post(path, json={"pov": "bob"}, headers=scenario).status_code == 200, path
    renpy = _bearer(store, "renpy.write")
    for path in ("/api/renpy/export", "/api/export/renpy"):
        assert client.post(path, json={"project": "demo", "dry_run": True}, headers=renpy).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "needed"),
    [
        ("/api/save/a", SAVE, "scenario.write"),
        ("/api/pov/set", {"pov": "bob"}, "scenario.write"),
        ("/api/playtest/run", {}, "scenario.write"),
        ("/api/export/renpy", {"project": "demo"}, "renpy.write"),
        ("/roleplay/import", {}, "roleplay.write"),
    ],
)
def test_the_old_path_areas_no_longer_grant_a_write(
    lan: tuple[TestClient, TokenStore], path: str, body: dict[str, object], needed: str
) -> None:
    client, store = lan
    area = path.split("/")[2] if path.startswith("/api/") else "roleplay_legacy"
    refused = client.post(path, json=body, headers=_bearer(store, f"{area}.write"))
    assert refused.status_code == 403 and needed in refused.json()["error"]["message"]


def test_the_servers_own_routes_keep_their_area_scopes(lan: tuple[TestClient, TokenStore]) -> None:
    client, store = lan
    assert client.post(
        "/api/flags", json={"enable_export_bake": True}, headers=_bearer(store, "flags.write")
    ).is_success
    denied = client.post("/api/flags", json={"enable_export_bake": True}, headers=_bearer(store, "server.write"))
    assert denied.status_code == 403


def test_route_scopes_resolve_the_owner() -> None:
    async def endpoint() -> None: ...

    scopes = RouteScopes(
        [
            (Route("/api/flags", endpoint, methods=["POST"]), "server"),
            (Route("/api/scenario/save/{slot}", endpoint, methods=["POST"]), "scenario"),
            (Route("/api/save/{slot}", endpoint, methods=["POST"]), "scenario"),
        ],
        server="server",
    )
    assert scopes("POST", "/api/save/x") == scopes("POST", "/api/scenario/save/x") == "scenario.write"
    assert scopes("DELETE", "/api/save/x") == "scenario.write"  # the path is the plugin's whatever the method
    assert scopes("POST", "/api/flags") == "flags.write"
    assert scopes("POST", "/api/nothing/here") == "admin"


def test_openapi_marks_the_aliases(studio: Kernel) -> None:
    with TestClient(create_app(studio)) as client:
        paths = client.get("/openapi.json").json()["paths"]
    for canonical, alias in ALIASES:
        for method, operation in paths[alias].items():
            assert operation["x-alias-of"] == canonical, (alias, method)
            assert "x-alias-of" not in paths[canonical][method]
