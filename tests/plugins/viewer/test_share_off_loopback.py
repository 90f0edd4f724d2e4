"""A share link works for someone without an API token when the studio is reachable off-loopback (that is
what sharing is for): the link's page, its static files and its play endpoints are open, checked by the
link's own signed token; issuing a link and every other player route still need an API token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import comfyvn_renpy.plugin
import comfyvn_scenario.plugin
import comfyvn_server.plugin
import comfyvn_viewer.plugin
import pytest
from comfyvn import Kernel
from comfyvn_scenario.store import ProjectStore
from comfyvn_server import ServerSettings, create_app
from comfyvn_server.auth import TokenStore
from starlette.testclient import TestClient

DEMO = Path(__file__).resolve().parents[3] / "examples" / "demo"
LAN = "http://192.168.1.5:8001"


@pytest.fixture
def lan(make_kernel: Any) -> Iterator[tuple[TestClient, dict[str, str]]]:
    kernel: Kernel = make_kernel(
        comfyvn_server.plugin, comfyvn_scenario.plugin, comfyvn_renpy.plugin, comfyvn_viewer.plugin
    )
    ProjectStore.for_kernel(kernel).create_from_folder(DEMO, project_id="demo")
    token, _ = TokenStore(kernel.paths.config / "server_tokens.json").create(["admin"])
    with TestClient(create_app(kernel, ServerSettings(host="0.0.0.0")), base_url=LAN) as client:
        yield client, {"Authorization": f"Bearer {token}"}


def test_a_share_link_plays_without_an_api_token_off_loopback(lan: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = lan
    assert client.post("/api/viewer/share", json={"project": "demo"}).status_code == 401
    answer = client.post("/api/viewer/share", json={"project": "demo"}, headers=auth)
    assert answer.status_code == 200, answer.text
    issued = answer.json()
    base = issued["url"].rstrip("/")
    page = client.get(issued["url"])
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert client.get("/play/static/player.js").status_code == 200
    assert client.get("/play/static/player.css").status_code == 200
    assert client.get(f"{base}/info").json()["title"] == "The Last Train"
    frame = client.post(f"{base}/start", json={"seed": 1}).json()
    assert frame["state"]["current_node"] == "arrival"
    assert client.get(frame["stage"]["background"]).status_code == 200
    assert client.post(f"{base}/step", json={"state": frame["state"]}).status_code == 200
    # The link's own token is still checked: a forged one is refused by the route, not let through.
    payload, signature = issued["token"].split(".")
    forged = f"{payload}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    assert client.get(f"/api/viewer/web/{forged}/").status_code == 404


def test_everything_else_in_the_player_still_needs_an_api_token(lan: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = lan
    for response in (
        client.get("/play/demo"),
        client.get("/api/viewer/play/demo/info"),
        client.post("/api/viewer/play/demo/start", json={}),
        client.post("/api/viewer/mini/snapshot", json={"project": "demo"}),
        client.get("/api/viewer/status"),
    ):
        assert response.status_code == 401, response.request.url
        assert response.json()["error"]["code"] == "auth_required"
    assert client.get("/play/demo", headers=auth).status_code == 200
    # A bad API token under an open prefix is refused like anywhere else.
    bad = client.get("/play/static/player.js", headers={"Authorization": "Bearer cvn_nope"})
    assert bad.status_code == 401
