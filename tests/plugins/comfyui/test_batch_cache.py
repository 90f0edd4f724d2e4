"""``batch.render_project`` and its job keys: a run after a change the cache must see (a character's LoRAs,
the configured checkpoint, a custom workflow) renders again, although the project and the cached file are the
same as in the run before; a run with nothing to render makes no new project version."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import comfyvn_assets.plugin
import comfyvn_comfyui.plugin
import comfyvn_jobs.plugin
import comfyvn_scenario.plugin
import pytest
from comfyvn import Kernel
from comfyvn_assets import AssetRegistry
from comfyvn_comfyui.batch import render_project
from comfyvn_comfyui.loras import LoraEntry, LoraStore
from comfyvn_comfyui.render import user_workflows
from comfyvn_comfyui.service import render_plan
from comfyvn_comfyui.workflows import builtin
from comfyvn_jobs.service import close_jobs
from comfyvn_scenario import Project
from comfyvn_scenario.store import ProjectStore
from PIL import Image

from .fakecomfy import FakeComfy

PLUGINS = (comfyvn_scenario.plugin, comfyvn_jobs.plugin, comfyvn_assets.plugin, comfyvn_comfyui.plugin)


@pytest.fixture
def kernel(make_kernel: Callable[..., Kernel], comfy: FakeComfy) -> Iterator[Kernel]:
    made = make_kernel(*PLUGINS, env={"COMFYVN_COMFYUI_URL": comfy.url})
    meta = {
        "id": "harbour",
        "title": "Harbour",
        "start": "s1",
        "characters": {"mira": {"name": "Mira", "description": "a lighthouse keeper in a green coat"}},
    }
    scene = {
        "id": "s1",
        "start": "n1",
        "background": "bg/harbour.png",
        "nodes": [{"id": "n1", "type": "dialogue", "speaker": "mira", "text": "Hello."}],
    }
    ProjectStore.for_kernel(made).create(Project(meta=meta, scenes={"s1": scene}), project_id="harbour")
    yield made
    close_jobs(made)
    AssetRegistry.forget(made)


def _counts(summary: dict[str, object]) -> tuple[object, object, object]:
    return summary["rendered"], summary["cached"], summary["failed"]


def _sprite_provenance(kernel: Kernel) -> dict[str, object]:
    (sprite,) = AssetRegistry.for_kernel(kernel).find(type="character.sprite")
    return dict(sprite.provenance)


def test_a_changed_lora_stack_renders_again_after_a_cached_run(kernel: Kernel, comfy: FakeComfy) -> None:
    assert _counts(render_project(kernel, "harbour", what="sprites")) == (1, 0, 0)
    assert _counts(render_project(kernel, "harbour", what="sprites")) == (0, 1, 0)
    queued = len(comfy.log()["prompts"])

    LoraStore(kernel.paths.data).set("mira", [LoraEntry("flat_color.safetensors", 0.8, 0.6)])
    assert _counts(render_project(kernel, "harbour", what="sprites")) == (1, 0, 0)
    assert len(comfy.log()["prompts"]) == queued + 1
    assert _sprite_provenance(kernel)["loras"] == [
        {"name": "flat_color.safetensors", "strength_model": 0.8, "strength_clip": 0.6}
    ]


def test_a_custom_workflow_dropped_in_renders_again_after_a_cached_run(kernel: Kernel) -> None:
    assert _counts(render_project(kernel, "harbour", what="sprites")) == (1, 0, 0)
    assert _counts(render_project(kernel, "harbour", what="sprites")) == (0, 1, 0)

    shipped = builtin("sprite")
    graph = {**shipped.graph, "comfyvn_bindings": {k: [list(p) for p in v] for k, v in shipped.bindings.items()}}
    graph["7"]["_meta"] = {"title": "my own negative prompt"}  # another graph, as a user's export would be
    user_workflows(kernel).mkdir(parents=True, exist_ok=True)
    (user_workflows(kernel) / "sprite.json").write_text(json.dumps(graph))
    assert _counts(render_project(kernel, "harbour", what="sprites")) == (1, 0, 0)
    assert _sprite_provenance(kernel)["workflow_source"] == "custom"


def test_a_broken_custom_workflow_fails_the_piece_instead_of_answering_from_the_last_run(kernel: Kernel) -> None:
    render_project(kernel, "harbour", what="sprites")
    render_project(kernel, "harbour", what="sprites")
    user_workflows(kernel).mkdir(parents=True, exist_ok=True)
    (user_workflows(kernel) / "sprite.json").write_text("{not json")
    summary = render_project(kernel, "harbour", what="sprites")
    assert _counts(summary) == (0, 0, 1)
    (entry,) = summary["entries"]
    assert "sprite.json" in entry["error"]["message"]


def test_nothing_to_render_makes_no_new_version(kernel: Kernel) -> None:
    # The author provided every piece: the run renders nothing and must not add a version to the history.
    store = ProjectStore.for_kernel(kernel)
    meta = {"id": "quiet", "title": "Quiet", "start": "s1", "characters": {}}
    scene = {
        "id": "s1",
        "start": "n1",
        "background": "bg/room.png",
        "nodes": [{"id": "n1", "type": "narration", "text": "Rain on the window."}],
    }
    store.create(Project(meta=meta, scenes={"s1": scene}), project_id="quiet")
    (store.path("quiet") / "bg").mkdir()
    Image.new("RGB", (64, 36), (20, 40, 60)).save(store.path("quiet") / "bg" / "room.png")
    version = store.load("quiet").version
    summary = render_project(kernel, "quiet")
    assert (summary["rendered"], summary["cached"], summary["provided"], summary["version"]) == (0, 0, 1, None)
    assert store.load("quiet").version == version


def test_the_plan_says_which_pieces_are_cached(kernel: Kernel) -> None:
    # `comfyvn render project --plan` after a full render must not claim that everything is still to render.
    def cached() -> list[bool]:
        return [row["cached"] for row in render_plan(kernel, "harbour", what="sprites", style=None)["render"]]

    assert cached() == [False]
    render_project(kernel, "harbour", what="sprites")
    assert cached() == [True]
    LoraStore(kernel.paths.data).set("mira", [LoraEntry("flat_color.safetensors", 0.8, 0.6)])
    assert cached() == [False]


def test_ctrl_c_writes_what_finished_into_the_project(kernel: Kernel) -> None:
    # The docs promise that after Ctrl-C the finished pieces are registered *and written into the project*.
    store = ProjectStore.for_kernel(kernel)
    version = store.load("harbour").version
    finished: list[str] = []

    def interrupt_after_the_first(records: list[dict[str, Any]]) -> None:
        done = [r for r in records if r["status"] == "done"]
        if done:
            finished.extend(r["result"]["asset_uid"] for r in done)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_project(kernel, "harbour", on_update=interrupt_after_the_first)
    stored = store.load("harbour")
    assert stored.version == version + 1
    text = json.dumps({"meta": stored.project.meta, "scenes": stored.project.scenes})
    assert finished and all(f"asset:{uid}" in text for uid in finished)
