"""The render pipeline end to end, as a user runs it: the ``comfyvn`` command in its own process, two fake
ComfyUI servers (each its own process speaking the real protocol), the asset registry, the project store,
the Ren'Py export and the real engine playing the game offscreen.

import an ST chat + card → ``comfyvn render project`` → every sprite and background the story shows is
rendered, registered with sidecars and provenance, and written into the project → the export ships them
and the played game shows them → a second run renders nothing → ``--force`` renders again, one asset
per piece. A server failing mid-batch (an execution error, or killed) hands its work to the other.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from comfyvn_renpy import find_engine
from PIL import Image

from .fakecomfy import FakeComfy

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "sillytavern"
CHAT = EXAMPLES / "Mira Vale - 2024-09-28@14h05m07s.jsonl"
CARD = EXAMPLES / "Mira Vale.png"
WORLD = EXAMPLES / "Saltmere.json"
PLUGINS = "scenario,roleplay,renpy,jobs,assets,comfyui"


def _comfyvn(root: Path, servers: list[FakeComfy], *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "COMFYVN_RUNTIME_ROOT": str(root),
        "COMFYVN_PLUGINS": PLUGINS,
        "COMFYVN_COMFYUI_URL": ",".join(s.url for s in servers),
    }
    return subprocess.run(
        [sys.executable, "-m", "comfyvn", *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout)


def _import(root: Path, servers: list[FakeComfy]) -> str:
    args = ["import", "sillytavern", str(CHAT), "--card", str(CARD), "--world", str(WORLD), "--json"]
    body = _json(_comfyvn(root, servers, *args))
    return str(body["project"]["id"])


def _prompts(server: FakeComfy) -> int:
    return len(server.log()["prompts"])


def _assets(root: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(root / "data" / "assets" / "registry.sqlite3") as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM assets")]


def _assets_so_far(root: Path) -> list[dict[str, Any]]:
    """`_assets` while the render may still be creating the registry: the file can exist before its tables."""
    try:
        return _assets(root) if (root / "data" / "assets" / "registry.sqlite3").exists() else []
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return []
        raise


def _project(root: Path, project_id: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    folder = root / "data" / "projects" / project_id
    meta = json.loads((folder / "project.json").read_text())
    scenes = {s: json.loads((folder / "scenes" / f"{s}.json").read_text()) for s in meta["scenes"]}
    return meta, scenes


def _colour_share(path: Path, colour: tuple[int, int, int], tolerance: int = 6) -> float:
    """The share of a picture's pixels within ``tolerance`` of ``colour``."""
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB").resize((240, 135)), dtype=np.int16).reshape(-1, 3)
    close = np.all(np.abs(pixels - np.array(colour, dtype=np.int16)) <= tolerance, axis=1)
    return float(close.mean())


def test_render_a_project_export_it_and_play_it(fake_comfyui: Callable[..., FakeComfy], tmp_path: Path) -> None:
    assert find_engine() is not None, "Ren'Py is not installed: `apt-get install -y renpy` (the noxfile does it)"
    servers = [fake_comfyui(), fake_comfyui()]
    root = tmp_path / "runtime"
    project_id = _import(root, servers)

    planned = _json(_comfyvn(root, servers, "render", "project", project_id, "--plan", "--json"))
    # Mira speaks and has no sprite; Jonah is the player; both scenes name one missing background file.
    assert [(r["kind"], r.get("character"), r.get("expression")) for r in planned["render"]] == [
        ("sprite", "mira_vale", "neutral"),
        ("background", None, None),
    ]
    assert planned["render"][1]["location"] == "Harbour" and planned["render"][1]["weather"] == "rain"

    first = _json(_comfyvn(root, servers, "render", "project", project_id, "--json"))
    assert (first["rendered"], first["cached"], first["failed"], first["retries"]) == (2, 0, 0, 0)
    # Two pieces on two servers: each server rendered one.
    assert [_prompts(s) for s in servers] == [1, 1]

    assets = _assets(root)
    assert sorted(a["type"] for a in assets) == ["background", "character.sprite"]
    store = root / "data" / "assets"
    for asset in assets:
        visible = store / asset["path"]
        sidecar = json.loads(Path(f"{visible}.asset.json").read_text())
        bridge = json.loads(Path(f"{visible}.bridge.json").read_text())
        provenance = sidecar["provenance"]
        assert sidecar["uid"] == asset["uid"] and provenance["tool"] == "comfyvn-comfyui"
        assert provenance["prompt_id"] == bridge["prompt_id"] and provenance["seed"] > 0
        assert provenance["checkpoint"] and provenance["comfyui_server"]["url"] in {s.url for s in servers}
        assert bridge["history"]["status"]["status_str"] == "success"
        with Image.open(visible) as picture:
            assert json.loads(picture.text["comfyvn:provenance"])["render_digest"] == provenance["render_digest"]
            if asset["type"] == "background":
                assert picture.size == (1920, 1080)
            else:
                alpha = picture.getchannel("A")
                assert alpha.getpixel((0, 0)) == 0 and alpha.getextrema() == (0, 255)  # a cut-out figure
    sprite = next(a for a in assets if a["type"] == "character.sprite")
    background = next(a for a in assets if a["type"] == "background")
    assert sprite["path"] == "characters/mira_vale/anime/neutral.png"

    meta, scenes = _project(root, project_id)
    assert meta["characters"]["mira_vale"]["sprites"] == {"neutral": f"asset:{sprite['uid']}"}
    assert "sprites" not in meta["characters"]["jonah"] or not meta["characters"]["jonah"]["sprites"]
    assert {s["background"] for s in scenes.values()} == {f"asset:{background['uid']}"}
    mira_lines = [n for s in scenes.values() for n in s["nodes"] if n.get("speaker") == "mira_vale"]
    assert mira_lines and all(n["characters"] == [{"id": "mira_vale", "expression": "neutral"}] for n in mira_lines)

    # The project holds what it names: a cache squeezed to nothing keeps them.
    _json(_comfyvn(root, servers, "assets", "gc", "--max-bytes", "0", "--json"))
    assert sorted(a["uid"] for a in _assets(root)) == sorted(a["uid"] for a in assets)

    exported = _json(_comfyvn(root, servers, "export", "renpy", project_id, "--json"))
    assert exported["missing_assets"] == {"backgrounds": [], "portraits": [], "audio": []}
    game = root / "data" / "projects" / project_id / "exports" / "renpy"
    manifest = json.loads((game / "export_manifest.json").read_text())
    shipped = {e["source"]: e for e in manifest["assets"]["portraits"] + manifest["assets"]["backgrounds"]}
    for asset in (sprite, background):
        entry = shipped[f"asset:{asset['uid']}"]
        assert (game / entry["path"]).read_bytes() == (store / asset["path"]).read_bytes()
        assert entry["asset"]["provenance"]["render_digest"] and entry["asset"]["source"] == "comfyui"

    shots = tmp_path / "shots"
    args = ["renpy", "play-check", str(game), "--line-shots", "2", "--screenshots", str(shots), "--json"]
    played = _json(_comfyvn(root, servers, *args))
    assert played["ok"] and played["lines"] >= 20, played["findings"]
    # The first line is narration (the background alone), the second is Mira's: her rendered figure is on stage.
    with Image.open(store / sprite["path"]) as figure:
        rgba = np.asarray(figure.convert("RGBA")).reshape(-1, 4)
    opaque = rgba[rgba[:, 3] == 255][:, :3]
    body_colour = Counter(map(tuple, opaque.tolist())).most_common(1)[0][0]
    assert _colour_share(shots / "line_001.png", body_colour) < 0.01
    assert _colour_share(shots / "line_002.png", body_colour) > 0.03

    again = _json(_comfyvn(root, servers, "render", "project", project_id, "--json"))
    assert (again["rendered"], again["cached"], again["version"]) == (0, 2, None)
    assert [_prompts(s) for s in servers] == [1, 1]  # nothing was queued

    forced = _json(_comfyvn(root, servers, "render", "project", project_id, "--force", "--json"))
    assert (forced["rendered"], forced["cached"], forced["failed"]) == (2, 0, 0)
    assert sum(_prompts(s) for s in servers) == 4
    assert sorted((a["uid"], a["path"]) for a in _assets(root)) == sorted((a["uid"], a["path"]) for a in assets)


@pytest.mark.parametrize("mode", ["execution_error", "die"])
def test_a_server_failing_mid_batch_hands_its_pieces_to_the_other(
    fake_comfyui: Callable[..., FakeComfy], tmp_path: Path, mode: str
) -> None:
    servers = [fake_comfyui(), fake_comfyui()]
    root = tmp_path / "runtime"
    project_id = _import(root, servers)
    servers[0].fail(mode)
    summary = _json(_comfyvn(root, servers, "render", "project", project_id, "--json"))
    assert (summary["rendered"], summary["failed"]) == (2, 0), summary
    assert summary["retries"] >= 1
    retried = [e for e in summary["entries"] if e["retries"]]
    assert retried and all(e["server"] == "env-2" and e["failures"][0]["server"] == "env-1" for e in retried)
    assert servers[0].alive() is (mode != "die")
    paths = [a["path"] for a in _assets(root)]
    assert len(paths) == len(set(paths)) == 2


def test_every_server_failing_fails_the_pieces_and_names_the_servers(
    fake_comfyui: Callable[..., FakeComfy], tmp_path: Path
) -> None:
    servers = [fake_comfyui()]
    root = tmp_path / "runtime"
    project_id = _import(root, servers)
    servers[0].fail("execution_error")
    done = _comfyvn(root, servers, "render", "project", project_id)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "0 rendered, 0 cached, 2 failed" in done.stdout
    assert "env-1" in done.stderr and "OutOfMemoryError" in done.stderr
    assert _assets(root) == []


def test_ctrl_c_keeps_what_finished_and_the_same_command_carries_on(
    fake_comfyui: Callable[..., FakeComfy], tmp_path: Path
) -> None:
    # One slow server: the two pieces render one after the other, about three seconds each (the window in
    # which Ctrl-C lands between them; a loaded machine once let both finish before the test looked).
    server = fake_comfyui(step_delay=0.1)
    root = tmp_path / "runtime"
    project_id = _import(root, [server])
    env = {
        **os.environ,
        "COMFYVN_RUNTIME_ROOT": str(root),
        "COMFYVN_PLUGINS": PLUGINS,
        "COMFYVN_COMFYUI_URL": server.url,
    }
    # A terminal's Ctrl-C: the child gets Python's own SIGINT handling whatever this process passes on (an
    # ignored or blocked SIGINT is inherited by children, and in the full suite the render once ignored it
    # and finished, or hung on a stalled piece).
    launcher = (
        "import runpy, signal, sys; "
        "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT}); "
        "signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.argv = ['comfyvn', *sys.argv[1:]]; "
        "runpy.run_module('comfyvn', run_name='__main__', alter_sys=True)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", launcher, "render", "project", project_id],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not _assets_so_far(root):
        assert time.monotonic() < deadline and process.poll() is None, "the first piece never finished"
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err[-2000:]
    assert "run the same command to continue" in err
    assert len(_assets(root)) == 1

    summary = _json(_comfyvn(root, [server], "render", "project", project_id, "--json"))
    assert (summary["rendered"], summary["cached"], summary["failed"]) == (1, 1, 0), summary
    assert len(_assets(root)) == 2
