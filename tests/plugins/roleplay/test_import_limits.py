"""An import holds the project store's node limit (413 ``too_many_nodes``, CLI exit 2), stopping early."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import comfyvn_roleplay.service as service
import pytest
from click.testing import CliRunner
from comfyvn.cli import make_cli
from comfyvn.errors import TooLarge
from comfyvn_roleplay.convert import ImportOptions
from comfyvn_roleplay.importer import import_chat, store_raw
from comfyvn_scenario import ProjectStore
from comfyvn_scenario.service import MAX_NODES
from comfyvn_server import create_app
from starlette.testclient import TestClient


def test_the_limit_is_the_stores() -> None:
    assert service.MAX_NODES == MAX_NODES == 100_000


def test_import_chat_stops_once_the_closed_scenes_pass_the_limit(tmp_path: Path) -> None:
    lines = [f"{'Alice' if i % 2 else 'Bob'}: line {i}" for i in range(3000)]
    raw = store_raw(tmp_path / "raw", "\n".join(lines).encode(), "log.txt")
    read: list[int] = []
    with pytest.raises(TooLarge) as caught:
        import_chat(
            raw, tmp_path / "out", options=ImportOptions(max_scene_nodes=20), max_nodes=100, progress=read.append
        )
    assert caught.value.code == "too_many_nodes" and caught.value.field == "chat"
    assert "100 story nodes" in caught.value.message
    assert max(read) < 200  # stopped after about 100 nodes, not after reading 3000 lines
    # Without a limit the same chat imports (the limit is the caller's).
    done = import_chat(raw, tmp_path / "all", options=ImportOptions(max_scene_nodes=20))
    assert done.stats["nodes"] >= 3000


def test_the_route_and_the_cli_refuse_a_chat_past_the_limit(
    kernel: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "MAX_NODES", 50, raising=False)
    client = TestClient(create_app(kernel))
    reply = client.post("/api/roleplay/import", json={"lines": ["a: hi"] * 200, "filename": "big.txt"})
    assert reply.status_code == 413, reply.text
    error = reply.json()["error"]
    assert error["code"] == "too_many_nodes" and error["field"] == "chat"
    assert ProjectStore.for_kernel(kernel).list_projects() == []
    assert not list((kernel.paths.plugin_dir("roleplay") / "staging").iterdir())
    ok = client.post("/api/roleplay/import", json={"lines": ["a: hi"] * 40, "filename": "small.txt"})
    assert ok.status_code == 200, ok.text

    log = tmp_path / "big.txt"
    log.write_text("a: hi\n" * 200, encoding="utf-8")
    result = CliRunner().invoke(
        make_cli(kernel), ["import", "text", str(log), "--out", str(tmp_path / "p"), "--no-progress"]
    )
    assert result.exit_code == 2, result.output
    assert result.output.strip().count("\n") == 0 and "more than 50 story nodes" in result.output
    assert not (tmp_path / "p").exists()
