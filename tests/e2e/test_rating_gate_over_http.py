"""The rating gate's acknowledgement flow over real HTTP (issue 16): real hypercorn on loopback, an httpx client.

The adult SillyTavern test chat uploaded (multipart) to the importer → ``POST /api/rating/classify`` on the store
project (Adult, the driving nodes listed) → ``POST /api/export/renpy`` refused with 423, an ``ack_token`` and a
message saying how to acknowledge → ``POST /api/rating/ack`` as that message says → the export again with the
token and the acknowledged flag → 200, and the written ``export_manifest.json`` carries ``rating`` and
``rating_gate`` (wire doc "Ren'Py export manifests"). No Ren'Py lint (``check: false``): the gate is the subject.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import comfyvn_rating.plugin
import comfyvn_renpy.plugin
import comfyvn_roleplay.plugin
import comfyvn_scenario.plugin
import comfyvn_server.plugin
import httpx
import pytest
from comfyvn import Kernel, RuntimePaths

FIXTURES = Path(__file__).resolve().parents[1] / "plugins" / "rating" / "fixtures"
ADULT_CHAT = FIXTURES / "Selene Adair - 2025-02-14@22h10m03s.jsonl"
ADULT_CARD = FIXTURES / "Selene Adair.json"


@pytest.fixture
def studio(make_kernel: Callable[..., Kernel], live_server: Any) -> Iterator[str]:
    """Server, scenario, roleplay, renpy and rating served by real hypercorn on a free loopback port (the
    rating mode left at its default, ``sfw``); yields the base URL."""
    kernel = make_kernel(
        comfyvn_server.plugin,
        comfyvn_scenario.plugin,
        comfyvn_roleplay.plugin,
        comfyvn_renpy.plugin,
        comfyvn_rating.plugin,
    )
    with live_server(kernel) as base:
        yield base


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def test_the_ack_flow_over_real_http(studio: str, runtime: RuntimePaths) -> None:
    with httpx.Client(base_url=studio, timeout=120) as http:
        imported = _ok(
            http.post(
                "/api/roleplay/import",
                files=[
                    ("file", (ADULT_CHAT.name, ADULT_CHAT.read_bytes(), "application/jsonl")),
                    ("card", (ADULT_CARD.name, ADULT_CARD.read_bytes(), "application/json")),
                ],
            )
        )
        project_id = imported["project"]["id"]
        project_dir = runtime.data / "projects" / project_id
        assert (project_dir / "project.json").is_file()  # a store project, not a loose file

        classified = _ok(
            http.post(
                "/api/rating/classify",
                json={"item_id": f"project:{project_id}", "project": project_id, "action": "export.renpy"},
            )
        )
        assert classified["mode"] == "sfw" and classified["rating"]["rating"] == "Adult"
        assert (classified["allowed"], classified["requires_ack"], classified["ack_status"]) == (False, True, "issued")
        drivers = classified["project"]["drivers"]
        driving_nodes = {(d["scene"], d["node"]) for d in drivers if d["kind"] == "node"}
        assert ("scene_0001", "n0012") in driving_nodes, drivers
        token = classified["ack_token"]
        assert isinstance(token, str) and token

        # The gate blocks first: nothing is written until the rating is acknowledged.
        blocked = http.post("/api/export/renpy", json={"project": project_id, "check": False})
        assert blocked.status_code == 423, blocked.text
        error = blocked.json()["error"]
        assert error["code"] == "export_blocked"
        (gate,) = error["blocked_by"]
        assert gate["plugin"] == "comfyvn_rating" and gate["ack_token"] == token
        assert gate["rating"]["rating"] == "Adult" and gate["ack_status"] == "issued"
        assert str(runtime.data) not in blocked.text  # no server path in the refusal
        assert not (project_dir / "exports").exists()
        # The message says how to acknowledge, over HTTP too: the route and the two fields to send back.
        how = re.search(r"\(HTTP: POST (/api/rating/ack); (\w+), (\w+)\)$", error["message"])
        assert how is not None, error["message"]
        ack_route, token_field, flag_field = how.groups()
        assert (token_field, flag_field) == ("rating_ack_token", "rating_acknowledged")
        assert token in error["message"]

        # The flag with a token nobody acknowledged yet still does not pass.
        pending = http.post("/api/export/renpy", json={"project": project_id, token_field: token, flag_field: True})
        assert pending.status_code == 423 and pending.json()["error"]["blocked_by"][0]["ack_status"] == "pending"

        acked = _ok(http.post(ack_route, json={"token": token, "user": "ana", "notes": "adults only"}))
        assert (acked["ack"]["status"], acked["ack"]["user"]) == ("verified", "ana")
        # An acknowledged token without the flag is not yet consent to this export.
        unflagged = http.post("/api/export/renpy", json={"project": project_id, token_field: token})
        assert unflagged.status_code == 423, unflagged.text

        exported = _ok(
            http.post(
                "/api/export/renpy",
                json={"project": project_id, token_field: token, flag_field: True, "check": False},
            )
        )
        assert "check" not in exported and exported["dry_run"] is False and exported["write"]["written"] > 0
        assert str(runtime.data) not in json.dumps(exported)
        assert [w for w in exported["warnings"] if w.startswith("rating:")] == []  # sfw with an ack: no warning

        acks = _ok(http.get("/api/rating/acks"))["acks"]
        assert [(a["token"], a["status"], a["user"]) for a in acks] == [(token, "verified", "ana")]

    # The manifest where the export says it wrote (``out`` is relative to the project's folder).
    manifest_path = project_dir / exported["out"] / "export_manifest.json"
    assert exported["out"] == "exports/renpy" and manifest_path.is_file()
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert manifest["project"]["id"] == project_id
    assert manifest["rating"]["rating"] == "Adult" and manifest["rating"]["source"] == "classifier"
    (note,) = manifest["rating_gate"]["notes"]
    assert (note["ack_status"], note["ack_token"], note["mode"]) == ("verified", token, "sfw")
    assert {(d["scene"], d["node"]) for d in note["drivers"] if d["kind"] == "node"} == driving_nodes
