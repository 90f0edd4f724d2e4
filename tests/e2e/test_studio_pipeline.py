"""The studio workspace end to end (issue 12): one project store every plugin speaks.

Over real hypercorn on loopback: upload a SillyTavern chat with its card and lorebook → the returned
project id → a correction (If-Match) → validate → playtest → Ren'Py export with ``check`` → the real
engine's lint passes → ``GET /api/projects/{id}`` lists the export. Then the same through the ``comfyvn``
command (a separate process, its runtime root set with ``COMFYVN_RUNTIME_ROOT``) with the store id.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import comfyvn_renpy.plugin
import comfyvn_roleplay.plugin
import comfyvn_scenario.plugin
import comfyvn_server.plugin
import httpx
import pytest
from comfyvn import Kernel
from comfyvn_renpy import find_engine

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "sillytavern"
CHAT = EXAMPLES / "Mira Vale - 2024-09-28@14h05m07s.jsonl"
CARD = EXAMPLES / "Mira Vale.png"
WORLD = EXAMPLES / "Saltmere.json"
CORRECTED = "The lantern light steadies; she keeps her word."


@pytest.fixture(scope="module", autouse=True)
def real_engine() -> None:
    assert find_engine() is not None, "Ren'Py is not installed: `apt-get install -y renpy` (the noxfile does it)"


@pytest.fixture
def studio(make_kernel: Callable[..., Kernel], live_server: Any) -> Iterator[str]:
    """The studio's plugins served by real hypercorn on a free loopback port; yields the base URL."""
    kernel = make_kernel(
        comfyvn_server.plugin,
        comfyvn_scenario.plugin,
        comfyvn_roleplay.plugin,
        comfyvn_renpy.plugin,
        env={"COMFYVN_FEATURE_ENABLE_PLAYTEST_HARNESS": "1"},
    )
    with live_server(kernel) as base:
        yield base


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def test_the_http_pipeline_from_upload_to_a_linted_game(studio: str, runtime: Any) -> None:
    with httpx.Client(base_url=studio, timeout=600) as http:
        imported = _ok(
            http.post(
                "/api/roleplay/import",
                files=[
                    ("file", (CHAT.name, CHAT.read_bytes(), "application/jsonl")),
                    ("card", (CARD.name, CARD.read_bytes(), "image/png")),
                    ("world", (WORLD.name, WORLD.read_bytes(), "application/json")),
                ],
                data={"swipes_as_choices": "true"},
            )
        )
        project_id = imported["project"]["id"]
        assert imported["stats"]["messages"] >= 10 and str(runtime.data) not in json.dumps(imported)
        # The upload was kept as received before it was parsed.
        raw = runtime.data / "plugins" / "roleplay" / "raw"
        assert [p.read_bytes() for p in raw.iterdir() if not p.name.endswith(".meta.json")] == [CHAT.read_bytes()]

        # A correction through the id the import answered, guarded by the version the editor saw.
        uid = imported["scenes"][0]["scene_uid"]
        preview = http.get(f"/api/roleplay/preview/{uid}")
        scene = _ok(preview)["scene"]
        node = next(n for n in scene["nodes"] if n["type"] == "dialogue")
        fixed = http.post(
            "/api/roleplay/apply_corrections",
            headers={"If-Match": preview.headers["etag"]},
            json={"scene_uid": uid, "nodes": [{"id": node["id"], "text": CORRECTED}]},
        )
        assert _ok(fixed)["version"] == 2
        stale = http.post(
            "/api/roleplay/apply_corrections",
            headers={"If-Match": preview.headers["etag"]},
            json={"scene_uid": uid, "nodes": [{"id": node["id"], "text": "lost?"}]},
        )
        assert stale.status_code == 412 and stale.json()["error"]["current_version"] == 2

        report = _ok(http.post("/api/scenario/validate", json={"project": project_id}))
        assert report["valid"] is True and report["errors"] == []
        played = _ok(http.post("/api/playtest/run", json={"project": project_id, "seed": 5, "policy": "first"}))
        assert played["trace"]["outcome"] == "finished", played["trace"]["final"]
        assert node["id"] in {s["node"] for s in played["trace"]["steps"]} | {played["trace"]["final"]["node"]}

        exported = _ok(http.post("/api/export/renpy", json={"project": project_id, "check": True, "publish": True}))
        assert exported["out"] == "exports/renpy" and exported["publish"]["path"] == f"exports/{project_id}.zip"
        check = exported["check"]
        assert check["configured"] is True and check["ok"] is True, json.dumps(check["builds"], indent=2)
        assert all(build["problems"] == [] for build in check["builds"].values()), check["builds"]
        assert str(runtime.data) not in json.dumps(exported)

        shown = http.get(f"/api/projects/{project_id}")
        described = _ok(shown)
        assert described["version"] == 2 and shown.headers["etag"] == '"2"' and described["validated"] is True
        exports = {e["name"]: e for e in described["exports"]}
        assert set(exports) == {"renpy", f"{project_id}.zip"} and exports["renpy"]["kind"] == "folder"
        assert exports["renpy"]["files"] > 5 and exports[f"{project_id}.zip"]["kind"] == "file"

    # The game the engine linted is the corrected project, in the project's own exports folder.
    game = runtime.data / "projects" / project_id / "exports" / "renpy" / "game"
    scripts = "\n".join(p.read_text(encoding="utf-8") for p in game.rglob("*.rpy"))
    assert "lantern light steadies" in scripts and "Mira Vale" in scripts and "menu" in scripts


def test_a_card_alone_is_a_store_project_every_plugin_reads(studio: str) -> None:
    with httpx.Client(base_url=studio, timeout=120) as http:
        imported = _ok(
            http.post(
                "/api/roleplay/import/card",
                files={"card": (CARD.name, CARD.read_bytes(), "image/png")},
                data={"user_name": "Rook"},
            )
        )
        project_id = imported["project"]["id"]
        assert _ok(http.post("/api/scenario/validate", json={"project": project_id}))["valid"] is True
        assert _ok(http.post("/api/pov/candidates", json={"project": project_id}))["candidates"]
        preview = _ok(http.get("/api/export/renpy/preview", params={"project": project_id}))
        assert preview["preview"]["summary"]["new"] > 0 and preview["out"] == "exports/renpy"
        assert _ok(http.get(f"/api/projects/{project_id}"))["exports"] == []  # a preview writes nothing


def _comfyvn(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "COMFYVN_RUNTIME_ROOT": str(root),
        "COMFYVN_PLUGINS": "scenario,roleplay,renpy",
    }
    return subprocess.run(
        [sys.executable, "-m", "comfyvn", *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_the_cli_pipeline_with_a_store_id(tmp_path: Path) -> None:
    root = tmp_path / "runtime"
    imported = _comfyvn(
        root, "import", "sillytavern", str(CHAT), "--card", str(CARD), "--world", str(WORLD), "--json", "--no-progress"
    )
    assert imported.returncode == 0, imported.stderr
    body = json.loads(imported.stdout)
    project_id = body["project"]["id"]
    assert body["project"]["store"] is True and (root / "data" / "projects" / project_id / "project.json").is_file()
    human = _comfyvn(root, "import", "sillytavern", str(CHAT), "--card", str(CARD), "--world", str(WORLD))
    assert human.returncode == 0 and f"store project {project_id} (version 1)" in human.stdout, human.stdout

    validated = _comfyvn(root, "scenario", "validate", project_id)
    assert validated.returncode == 0 and "valid: 0 error(s)" in validated.stdout, validated.stdout + validated.stderr
    played = _comfyvn(root, "scenario", "playtest", project_id, "--seed", "3", "--json")
    assert played.returncode == 0, played.stderr
    assert json.loads(played.stdout)["trace"]["outcome"] == "finished"

    exported = _comfyvn(root, "export", "renpy", project_id, "--check", "--json")
    assert exported.returncode == 0, exported.stdout[-3000:] + exported.stderr[-3000:]
    result = json.loads(exported.stdout)
    game = root / "data" / "projects" / project_id / "exports" / "renpy"
    assert Path(result["out"]) == game.resolve() and (game / "game" / "script.rpy").is_file()
    assert result["check"]["ok"] is True and result["check"]["configured"] is True, result["check"]

    shown = _comfyvn(root, "projects", "show", project_id, "--json")
    assert shown.returncode == 0, shown.stderr
    assert [e["name"] for e in json.loads(shown.stdout)["exports"]] == ["renpy"]
    missing = _comfyvn(root, "scenario", "validate", "no-such-project")
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0, missing.stderr
