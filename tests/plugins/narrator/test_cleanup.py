"""Roleplay clean-up through a model: only line texts change; speakers, order, choices and targets never do."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import comfyvn_narrator.plugin
import comfyvn_roleplay.plugin
import comfyvn_scenario.plugin
import comfyvn_server.plugin
import pytest
from click.testing import CliRunner
from comfyvn import Kernel
from comfyvn.cli import make_cli
from comfyvn.errors import UpstreamError
from comfyvn_narrator.cleanup import cleanup_scene
from comfyvn_scenario.store import ProjectStore
from comfyvn_server import create_app
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from . import model_help
from .model_help import Script

scripted_base = model_help.scripted_base
script = model_help.script
model_kernel = model_help.model_kernel
offline_kernel = model_help.offline_kernel

CHARACTERS = {"mira": {"name": "Mira Vale", "description": "A harbour pilot."}, "you": {"name": "You"}}
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=60).filter(
    lambda t: t.strip() != ""
)


@st.composite
def scenes(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 10))
    ids = [f"n{i:04d}" for i in range(count)]
    nodes = []
    for index, node_id in enumerate(ids):
        node: dict[str, Any] = {"id": node_id, "text": draw(_TEXT)}
        speaker = draw(st.sampled_from(["mira", "you", None]))
        node["type"] = "dialogue" if speaker else "narration"
        if speaker:
            node["speaker"] = speaker
        targets = draw(st.lists(st.sampled_from(ids), max_size=2)) if index < count - 1 else []
        if targets:
            node["choices"] = [{"id": f"c{j}", "label": draw(_TEXT), "target": t} for j, t in enumerate(targets)]
        nodes.append(node)
    return {"id": "scene_1", "start": ids[0], "title": "The pier", "nodes": nodes}


def _skeleton(scene: dict[str, Any]) -> list[Any]:
    """Everything but the text of each node, in order."""
    return [{k: v for k, v in node.items() if k != "text"} for node in scene["nodes"]]


@given(scene=scenes(), reword=st.booleans(), level=st.sampled_from(["low", "medium", "high"]))
def test_cleanup_keeps_speakers_order_and_choices(
    model_kernel: Callable[..., Kernel], script: Script, scene: dict[str, Any], reword: bool, level: str
) -> None:
    kernel = model_kernel()
    script.reset()
    answer = {n["id"]: (f"Reworded: {n['text'].strip()}" if reword else n["text"]) for n in scene["nodes"]}
    script.replies({"nodes": answer})
    before = copy.deepcopy(scene)
    result = cleanup_scene(kernel, scene, level, CHARACTERS)
    assert scene == before  # the input is not touched
    assert result is not None
    assert _skeleton(result) == _skeleton(scene)
    assert [n["text"] for n in result["nodes"]] == [answer[n["id"]] for n in scene["nodes"]]
    report = result["metadata"]["llm_cleanup"]
    assert report["detail_level"] == level and report["adapter"] == "openai"
    assert report["lines_changed"] == (len(scene["nodes"]) if reword else 0)
    [request] = script.log()
    prompt = request["messages"][1]["content"]
    assert all(f"{n['id']} | " in prompt for n in scene["nodes"])
    assert f'"{level}":' in request["messages"][0]["content"]


def test_a_line_left_out_keeps_its_text_and_an_unknown_id_is_repaired(
    model_kernel: Callable[..., Kernel], script: Script
) -> None:
    scene = {
        "id": "s",
        "start": "a",
        "nodes": [
            {"id": "a", "speaker": "mira", "text": "helo  there", "choices": [{"target": "b"}]},
            {"id": "b", "type": "narration", "text": "the tide turns"},
        ],
    }
    script.replies({"nodes": {"a": "Hello there.", "zzz": "?"}}, {"nodes": {"a": "Hello there."}})
    result = cleanup_scene(model_kernel(), scene, "low", CHARACTERS)
    assert result is not None and [n["text"] for n in result["nodes"]] == ["Hello there.", "the tide turns"]
    assert result["metadata"]["llm_cleanup"]["repaired"] is True
    assert "nodes/zzz: not a line id you were given" in script.log()[1]["messages"][-1]["content"]


def test_invalid_twice_fails_without_a_result(model_kernel: Callable[..., Kernel], script: Script) -> None:
    scene = {"id": "s", "start": "a", "nodes": [{"id": "a", "text": "one"}]}
    script.replies("not json", {"lines": {}})
    with pytest.raises(UpstreamError) as raised:
        cleanup_scene(model_kernel(), scene, "medium", CHARACTERS)
    assert raised.value.code == "invalid_model_answer"


def test_long_scenes_are_asked_in_chunks(model_kernel: Callable[..., Kernel], script: Script) -> None:
    nodes = [{"id": f"n{i}", "speaker": "mira", "text": f"line {i} " + "x" * 200} for i in range(70)]
    scene = {"id": "s", "start": "n0", "nodes": nodes}
    first = {n["id"]: n["text"].upper() for n in nodes[:28]}
    rest = {n["id"]: n["text"].upper() for n in nodes[28:56]}
    last = {n["id"]: n["text"].upper() for n in nodes[56:]}
    script.replies({"nodes": first}, {"nodes": rest}, {"nodes": last})
    result = cleanup_scene(model_kernel(), scene, "low", CHARACTERS)
    assert result is not None and all(n["text"].startswith("LINE") for n in result["nodes"])
    assert len(script.log()) == 3


def test_offline_cleanup_is_deterministic_and_says_so(offline_kernel: Callable[..., Kernel]) -> None:
    scene = {
        "id": "s",
        "start": "a",
        "nodes": [
            {"id": "a", "speaker": "mira", "text": "  Hello   there ((brb, pizza))", "choices": [{"target": "b"}]},
            {"id": "b", "text": "(OOC: lag) The tide turns."},
        ],
    }
    low = cleanup_scene(offline_kernel(), scene, "low", CHARACTERS)
    medium = cleanup_scene(offline_kernel(), scene, "medium", CHARACTERS)
    assert low is not None and medium is not None
    assert [n["text"] for n in low["nodes"]] == ["Hello there ((brb, pizza))", "(OOC: lag) The tide turns."]
    assert [n["text"] for n in medium["nodes"]] == ["Hello there", "The tide turns."]
    assert medium["metadata"]["llm_cleanup"]["adapter"] == "offline"
    assert medium == cleanup_scene(offline_kernel(), scene, "medium", CHARACTERS)
    assert _skeleton(medium) == _skeleton(scene)


def _import(client: TestClient) -> str:
    text = "Mira: helo  there, you made it\nYou: barely ((afk soon))\nMira: the ferry leaves at dawn"
    imported = client.post("/api/roleplay/import", json={"text": text, "title": "Pier"})
    assert imported.status_code == 200, imported.text
    uid: str = imported.json()["scenes"][0]["scene_uid"]
    return uid


def test_sample_llm_stores_the_model_cleanup_as_the_final_variant(
    model_kernel: Callable[..., Kernel], script: Script
) -> None:
    kernel = model_kernel(
        comfyvn_server.plugin, comfyvn_scenario.plugin, comfyvn_roleplay.plugin, comfyvn_narrator.plugin
    )
    with TestClient(create_app(kernel)) as client:
        uid = _import(client)
        original = client.get(f"/api/roleplay/preview/{uid}").json()["scene"]
        lines = {n["id"]: n["text"] for n in original["nodes"] if n.get("text", "").strip()}
        script.replies({"nodes": {k: f"{v} (tidied)" for k, v in lines.items()}})
        answer = client.post("/api/roleplay/sample_llm", json={"scene_uid": uid, "detail_level": "high"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["llm"] == "configured" and body["stored"]
        cleaned = body["scene"]
        assert _skeleton(cleaned) == _skeleton(original)
        assert all(n["text"].endswith("(tidied)") for n in cleaned["nodes"] if n["id"] in lines)
        # the original stays as it was
        assert client.get(f"/api/roleplay/preview/{uid}").json()["scene"] == original


def test_sample_llm_with_an_invalid_model_answer_stores_nothing(
    model_kernel: Callable[..., Kernel], script: Script
) -> None:
    kernel = model_kernel(
        comfyvn_server.plugin, comfyvn_scenario.plugin, comfyvn_roleplay.plugin, comfyvn_narrator.plugin
    )
    with TestClient(create_app(kernel)) as client:
        uid = _import(client)
        script.replies("nope", "still nope")
        answer = client.post("/api/roleplay/sample_llm", json={"scene_uid": uid, "detail_level": "low"})
        assert answer.status_code == 502, answer.text
        assert answer.json()["error"]["code"] == "invalid_model_answer"
    final = kernel.paths.plugin_dir("roleplay") / "final"
    assert not final.exists() or not any(final.rglob("*.json"))
    assert json.dumps(answer.json()).count("/") < 20  # no server paths


def test_import_with_llm_cleanup_keeps_the_model_cleanup_as_final(
    model_kernel: Callable[..., Kernel], script: Script, tmp_path: Path
) -> None:
    """``comfyvn import text … --llm-cleanup``: the scenes as imported, then each tidied through the model and
    kept as the final variant (the imported scene unchanged)."""
    kernel = model_kernel(comfyvn_scenario.plugin, comfyvn_roleplay.plugin, comfyvn_narrator.plugin)
    log = tmp_path / "pier.txt"
    log.write_text("Mira: helo  there, you made it\nYou: barely\nMira: the ferry leaves at dawn\n")
    # The clean-up asks once per scene; this log is one scene of lines n0001..n0003.
    script.replies({"nodes": {"n0001": "Hello there, you made it.", "n0003": "The ferry leaves at dawn."}})
    result = CliRunner().invoke(
        make_cli(kernel), ["import", "text", str(log), "--llm-cleanup", "--detail-level", "high", "--json"]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    (scene,) = body["llm_cleanup"]["scenes"]
    assert body["llm_cleanup"]["llm"] == "configured" and scene["stored"] and scene["adapter"] != "offline"
    assert scene["lines_changed"] == 2
    final = json.loads((kernel.paths.data / scene["stored"]).read_text())
    texts = [n["text"] for n in final["nodes"]]
    assert texts[0] == "Hello there, you made it." and texts[2] == "The ferry leaves at dawn."
    imported = ProjectStore.for_kernel(kernel).load(body["project"]["id"]).project.scenes[final["id"]]
    assert imported["nodes"][0]["text"] != texts[0]
    assert _skeleton(final) == _skeleton(imported)
