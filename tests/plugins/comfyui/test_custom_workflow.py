"""A user's own API-format workflow, named like a built-in one, replaces it for every render."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import comfyvn_assets.plugin
import comfyvn_comfyui.plugin
import comfyvn_jobs.plugin
import httpx
import pytest
from comfyvn import Kernel, RuntimePaths
from comfyvn.errors import Invalid
from comfyvn_assets import AssetRegistry
from comfyvn_comfyui.render import SlotRequest, render_slot, user_workflows
from comfyvn_comfyui.servers import Server
from comfyvn_jobs.service import close_jobs

from .fakecomfy import FakeComfy

BUILTIN = Path(comfyvn_comfyui.plugin.__file__).with_name("workflows") / "sprite.json"
REQUEST = SlotRequest(
    kind="sprite",
    style="anime",
    character_id="mira",
    character={"name": "Mira", "description": "short silver hair"},
    expression="neutral",
    project="p",
)


@pytest.fixture
def kernel(make_kernel: Callable[..., Kernel]) -> Iterator[Kernel]:
    made = make_kernel(comfyvn_jobs.plugin, comfyvn_assets.plugin, comfyvn_comfyui.plugin)
    yield made
    AssetRegistry.forget(made)
    close_jobs(made)


def _renumbered(document: dict[str, Any]) -> dict[str, Any]:
    """The built-in sprite workflow with every node id times ten (links and bindings too): another graph."""

    def moved(value: Any) -> Any:
        if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int):
            return [f"{value[0]}0", value[1]]
        return value

    out: dict[str, Any] = {}
    for key, node in document.items():
        if key == "comfyvn_bindings":
            out[key] = {name: [[f"{n}0", field] for n, field in pairs] for name, pairs in node.items()}
        elif isinstance(node, dict) and "class_type" in node:
            out[f"{key}0"] = {**node, "inputs": {k: moved(v) for k, v in node["inputs"].items()}}
        else:
            out[key] = node
    return out


def test_a_users_workflow_replaces_the_builtin_one(kernel: Kernel, fake_comfyui: Callable[..., FakeComfy]) -> None:
    fake = fake_comfyui()
    folder = user_workflows(kernel)
    folder.mkdir(parents=True)
    (folder / "sprite.json").write_text(json.dumps(_renumbered(json.loads(BUILTIN.read_text()))))
    outcome = render_slot(kernel, REQUEST, servers=[Server("one", fake.url, "config")])
    (prompt,) = fake.log()["prompts"]
    history = httpx.get(f"{fake.url}/history/{prompt['prompt_id']}", timeout=10).json()
    graph = history[prompt["prompt_id"]]["prompt"][2]
    assert "30" in graph and graph["30"]["class_type"] == "KSampler" and "3" not in graph
    assert graph["60"]["inputs"]["text"].startswith("anime style")  # the prompt went through its bindings
    provenance = AssetRegistry.for_kernel(kernel).get(outcome["asset_uid"]).provenance
    assert (provenance["workflow"], provenance["workflow_source"]) == ("sprite", "custom")


def test_a_ui_format_export_is_refused_clearly(
    kernel: Kernel, runtime: RuntimePaths, fake_comfyui: Callable[..., FakeComfy]
) -> None:
    folder = user_workflows(kernel)
    folder.mkdir(parents=True)
    (folder / "background.json").write_text(json.dumps({"nodes": [], "links": [], "version": 0.4}))
    place = {"key": "k", "location": "Harbour", "time_of_day": None, "weather": None, "ref": None}
    with pytest.raises(Invalid) as caught:
        render_slot(kernel, SlotRequest(kind="background", style="anime", place=place, project="p"), servers=[])
    assert "UI format" in caught.value.message and str(runtime.config) not in caught.value.message
