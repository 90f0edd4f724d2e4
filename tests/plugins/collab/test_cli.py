"""`comfyvn collab status` and `comfyvn collab flush`: after a crash (edits in the log, never flushed), the
CLI shows them and saves them to the project store without a server."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import comfyvn_collab.plugin
import comfyvn_scenario.plugin
from click.testing import CliRunner
from comfyvn import Kernel
from comfyvn.cli import make_cli
from comfyvn_collab.hub import Hub
from comfyvn_scenario.store import ProjectStore
from pycrdt import Map

from .test_hub import Peer, _project


def _invoke(kernel: Kernel, *args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(make_cli(kernel), list(args), input=input)


def test_status_and_flush_save_what_a_crashed_server_left_in_the_log(make_kernel: Callable[..., Kernel]) -> None:
    server = make_kernel(comfyvn_scenario.plugin, comfyvn_collab.plugin)
    ProjectStore.for_kernel(server).create(_project(), project_id="story")
    hub = Hub.for_kernel(server)
    peer = Peer(hub.open_now("story", "intro"))
    peer.text("a").insert(0, "Before the crash: ")
    peer.push()
    hub.updates.sync()  # committed, never flushed: the server dies here

    cli_kernel = make_kernel(comfyvn_scenario.plugin, comfyvn_collab.plugin)
    status = _invoke(cli_kernel, "collab", "status")
    assert status.exit_code == 0, status.output
    assert "story/intro: UNSAVED EDITS (store version 1, 2 nodes)" in status.output
    flushed = _invoke(cli_kernel, "collab", "flush", "--all")
    assert flushed.exit_code == 0, flushed.output
    assert "story/intro: saved as store version 2" in flushed.output
    scene, version = ProjectStore.for_kernel(cli_kernel).scene("story", "intro")
    assert version == 2 and scene["nodes"][0]["text"] == "Before the crash: Hello"
    rooms = json.loads(_invoke(cli_kernel, "collab", "status", "--json").output)["rooms"]
    assert rooms == [{"room": "story/intro", "store_version": 2, "updates": 1, "unsaved": False, "nodes": 2}]
    assert _invoke(cli_kernel, "collab", "flush", "--all").output.strip() == "nothing to save"
    Hub.forget(server)


def test_flush_without_rooms_is_one_clear_line_and_exit_2(make_kernel: Callable[..., Kernel]) -> None:
    kernel = make_kernel(comfyvn_scenario.plugin, comfyvn_collab.plugin)
    result = _invoke(kernel, "collab", "flush")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: name rooms (<project_id>/<scene_id>) or pass --all (field: rooms)"
    ]
    bad = _invoke(kernel, "collab", "flush", "nope")
    assert bad.exit_code == 2 and "room" in bad.output


def test_flush_all_saves_the_valid_rooms_and_discard_drops_the_broken_one(make_kernel: Callable[..., Kernel]) -> None:
    server = make_kernel(comfyvn_scenario.plugin, comfyvn_collab.plugin)
    store = ProjectStore.for_kernel(server)
    store.create(_project(), project_id="story")
    store.put_scene("story", "outro", {"id": "outro", "start": "z", "nodes": [{"id": "z", "text": "Bye"}]})
    hub = Hub.for_kernel(server)
    broken = Peer(hub.open_now("story", "intro"))
    broken.doc.get("scene", type=Map)["start"] = "nowhere"
    broken.push()
    fine = Peer(hub.open_now("story", "outro"))
    fine.doc.get("scene", type=Map)["title"] = "Kept"
    fine.push()
    hub.updates.sync()  # the server dies here

    cli_kernel = make_kernel(comfyvn_scenario.plugin, comfyvn_collab.plugin)
    result = _invoke(cli_kernel, "collab", "flush", "--all")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("story/intro: NOT SAVED: the project would not be valid")
    assert lines[1] == "story/outro: saved as store version 2"
    assert lines[2] == "error: 1 room(s) not saved; fix them in a room (or `comfyvn collab discard`) (field: rooms)"
    assert store.scene("story", "outro")[0]["title"] == "Kept"
    # The broken room's edits are still in the log until someone throws them away.
    assert "story/intro: UNSAVED EDITS" in _invoke(cli_kernel, "collab", "status").output
    refused = _invoke(cli_kernel, "collab", "discard", "story/intro", input="n\n")
    assert refused.exit_code == 1 and "throw them away?" in refused.output
    discarded = _invoke(cli_kernel, "collab", "discard", "story/intro", "--yes")
    assert discarded.exit_code == 0, discarded.output
    assert discarded.output.strip() == "story/intro: discarded; it opens from store version 1 next time"
    assert "story/intro" not in _invoke(cli_kernel, "collab", "status").output
    Hub.forget(server, flush=False)
