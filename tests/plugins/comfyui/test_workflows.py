"""Workflow templates: binding parameters and LoRAs, loading user workflows, checking graphs against /object_info."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from comfyvn.errors import Invalid, NotFound
from comfyvn_comfyui.client import ComfyClient
from comfyvn_comfyui.workflows import BUILTINS, Workflow, bind, builtin, check_graph, load_custom
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from .fake_comfyui_nodes import DEFAULT_CHECKPOINTS, DEFAULT_LORAS, SAMPLERS, SCHEDULERS, catalogue, validate_prompt
from .fakecomfy import FakeComfy

INFO = catalogue(DEFAULT_CHECKPOINTS, DEFAULT_LORAS, ["portrait.png"])
NEEDS_IMAGE = {"sprite_img2img", "sprite_pose_composite"}


def required(name: str) -> dict[str, Any]:
    return {"init_image": "portrait.png"} if name in NEEDS_IMAGE else {}


def links(graph: dict[str, Any]) -> list[tuple[str, str, list[Any]]]:
    return [
        (node_id, key, value)
        for node_id, node in graph.items()
        for key, value in node["inputs"].items()
        if isinstance(value, list)
    ]


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_uses_core_nodes_only_and_passes_the_servers_check(name: str) -> None:
    workflow = builtin(name)
    assert workflow.name == name and workflow.description
    assert {"prompt", "negative", "seed", "width", "height", "checkpoint", "loras"} <= set(workflow.bindings)
    graph = bind(workflow, required(name))
    assert check_graph(graph, INFO) == []
    ok, error, outputs, node_errors = validate_prompt(copy.deepcopy(graph), INFO, lambda image: True)
    assert (ok, error, node_errors) == (True, None, {}) and outputs == ["9"]


def test_image_to_image_templates_need_an_image_and_keep_denoise_below_one() -> None:
    for name in NEEDS_IMAGE:
        with pytest.raises(Invalid) as caught:
            bind(builtin(name), {"prompt": "x"})
        assert caught.value.field == "params.init_image" and caught.value.code == "missing_param"
        assert bind(builtin(name), required(name))["3"]["inputs"]["denoise"] < 1.0
    assert builtin("sprite").graph["3"]["inputs"]["denoise"] == 1.0


def test_bind_writes_every_parameter_where_the_bindings_say() -> None:
    params = {
        "prompt": "1girl, smiling",
        "negative": "blurry",
        "seed": 2**63,
        "width": 640,
        "height": 960,
        "checkpoint": "animagine-xl-3.1.safetensors",
        "steps": 12,
        "cfg": 5,
        "sampler": "euler",
        "scheduler": "normal",
        "denoise": 0.5,
        "filename_prefix": "comfyvn/alice/happy",
        "init_image": "comfyvn/alice.png",
    }
    graph = bind(builtin("sprite_pose_composite"), {**params, "backdrop": 0xFFFFFF})
    inputs = {node_id: node["inputs"] for node_id, node in graph.items()}
    assert inputs["6"]["text"] == "1girl, smiling" and inputs["7"]["text"] == "blurry"
    assert (inputs["3"]["seed"], inputs["3"]["steps"], inputs["3"]["cfg"], inputs["3"]["denoise"]) == (
        2**63,
        12,
        5.0,
        0.5,
    )
    assert (inputs["3"]["sampler_name"], inputs["3"]["scheduler"]) == ("euler", "normal")
    assert inputs["4"]["ckpt_name"] == "animagine-xl-3.1.safetensors"
    assert inputs["2"]["width"] == inputs["11"]["width"] == 640 and inputs["11"]["height"] == 960
    assert inputs["1"]["image"] == "comfyvn/alice.png" and inputs["11"]["color"] == 0xFFFFFF
    assert inputs["9"]["filename_prefix"] == "comfyvn/alice/happy"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"colour": "red"}, "params.colour"),
        ({"seed": -1}, "params.seed"),
        ({"seed": True}, "params.seed"),
        ({"width": "512"}, "params.width"),
        ({"denoise": 1.5}, "params.denoise"),
        ({"prompt": 3}, "params.prompt"),
        ({"filename_prefix": "../../etc/x"}, "params.filename_prefix"),
        ({"loras": [{"name": ""}]}, "params.loras[0].name"),
        ({"loras": [{"name": "a", "strength_model": float("nan")}]}, "params.loras[0].strength_model"),
        ({"loras": "add_detail.safetensors"}, "params.loras"),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(params: dict[str, Any], field: str) -> None:
    with pytest.raises(Invalid) as caught:
        bind(builtin("sprite"), params)
    assert caught.value.field == field


def test_loras_are_chained_between_the_checkpoint_and_every_model_and_clip_consumer() -> None:
    class Entry:  # the attribute form (a LoraEntry) is accepted as well as mappings
        name, strength_model, strength_clip = "flat_color.safetensors", -0.5, 0.25

    graph = bind(builtin("sprite"), {"loras": [{"name": "add_detail.safetensors", "strength_model": 0.7}, Entry()]})
    loras = {k: n for k, n in graph.items() if n["class_type"] == "LoraLoader"}
    assert len(loras) == 2
    first, second = sorted(loras, key=int)
    assert loras[first]["inputs"] | {} == {
        "model": ["4", 0],
        "clip": ["4", 1],
        "lora_name": "add_detail.safetensors",
        "strength_model": 0.7,
        "strength_clip": 1.0,
    }
    assert loras[second]["inputs"]["model"] == [first, 0] and loras[second]["inputs"]["clip"] == [first, 1]
    assert (loras[second]["inputs"]["strength_model"], loras[second]["inputs"]["strength_clip"]) == (-0.5, 0.25)
    assert graph["3"]["inputs"]["model"] == [second, 0]
    assert graph["6"]["inputs"]["clip"] == graph["7"]["inputs"]["clip"] == [second, 1]
    assert graph["8"]["inputs"]["vae"] == ["4", 2]  # the VAE output is not a LoRA's business
    assert check_graph(graph, INFO) == []


def test_a_lora_the_server_lacks_is_a_problem_check_graph_names() -> None:
    graph = bind(builtin("sprite"), {"loras": [{"name": "missing_style.safetensors"}]})
    [problem] = check_graph(graph, INFO)
    assert "(LoraLoader): input 'lora_name' is 'missing_style.safetensors'" in problem
    assert "add_detail.safetensors" in problem  # what the server does offer


def test_check_graph_names_each_kind_of_problem() -> None:
    graph = bind(builtin("sprite"), {})
    graph["3"]["inputs"]["positive"] = ["42", 0]
    graph["8"]["inputs"]["samples"] = ["3", 5]
    graph["7"]["inputs"]["clip"] = ["4", 0]
    del graph["5"]["inputs"]["width"]
    graph["3"]["inputs"]["steps"] = 0
    graph["4"]["inputs"]["ckpt_name"] = "gone.safetensors"
    graph["20"] = {"class_type": "FancyUpscaler", "inputs": {}}
    problems = "\n".join(check_graph(graph, INFO))
    assert "node 3 (KSampler): input 'positive' links to node 42, which is not in the graph" in problems
    assert "node 8 (VAEDecode): input 'samples' links to output 5 of node 3, which has 1 outputs" in problems
    assert "node 7 (CLIPTextEncode): input 'clip' wants CLIP but node 4 output 0 is MODEL" in problems
    assert "node 5 (EmptyLatentImage): required input 'width' is missing" in problems
    assert "node 3 (KSampler): input 'steps' is 0, below the minimum 1" in problems
    assert "node 4 (CheckpointLoaderSimple): input 'ckpt_name' is 'gone.safetensors'" in problems
    assert "node 20 (FancyUpscaler): the server has no node class 'FancyUpscaler'" in problems


def test_check_graph_finds_cycles_and_graphs_without_outputs() -> None:
    graph = bind(builtin("sprite"), {})
    del graph["9"]
    assert check_graph(graph, INFO) == ["the graph has no output node (such as SaveImage)"]
    cyclic = bind(builtin("sprite_img2img"), required("sprite_img2img"))
    cyclic["2"]["inputs"]["image"] = ["8", 0]  # scale <- decode <- sample <- encode <- scale
    assert any("cycle" in p for p in check_graph(cyclic, INFO))


def test_a_combo_in_the_newer_object_info_form_is_checked_too() -> None:
    graph = bind(builtin("background"), {})
    graph["11"]["inputs"]["upscale_method"] = "magic"
    assert INFO["ImageScale"]["input"]["required"]["upscale_method"][0] == "COMBO"
    [problem] = check_graph(graph, INFO)
    assert "input 'upscale_method' is 'magic'" in problem


# -- custom workflows ---------------------------------------------------------------------------------------------


def _api_graph() -> dict[str, Any]:
    graph: dict[str, Any] = copy.deepcopy(builtin("sprite").graph)
    return graph


def test_load_custom_reads_embedded_bindings(tmp_path: Path) -> None:
    data = {
        **_api_graph(),
        "comfyvn_bindings": {"prompt": [["6", "text"]], "seed": [[3, "seed"]], "mood": [["7", "text"]]},
    }
    data["3"]["inputs"]["model"] = [4, 0]  # an exporter that writes numeric link ids
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(data))
    workflow = load_custom(path)
    assert workflow.name == "mine" and workflow.bindings["seed"] == [("3", "seed")]
    assert workflow.graph["3"]["inputs"]["model"] == ["4", 0]
    graph = bind(
        workflow, {"prompt": "hello", "seed": 7, "mood": "gloomy", "loras": [{"name": "add_detail.safetensors"}]}
    )
    assert (graph["6"]["inputs"]["text"], graph["7"]["inputs"]["text"], graph["3"]["inputs"]["seed"]) == (
        "hello",
        "gloomy",
        7,
    )
    assert check_graph(graph, INFO) == []  # LoRAs found the one CheckpointLoaderSimple without a loras binding


def test_load_custom_reads_a_bindings_sidecar(tmp_path: Path) -> None:
    (tmp_path / "side.json").write_text(json.dumps({"prompt": {**_api_graph()}}))
    (tmp_path / "side.bindings.json").write_text(json.dumps({"comfyvn_bindings": {"prompt": [["6", "text"]]}}))
    assert load_custom(tmp_path / "side.json").bindings == {"prompt": [("6", "text")]}


@pytest.mark.parametrize(
    ("content", "code"),
    [
        ({"nodes": [{"id": 1, "type": "KSampler"}], "links": [], "version": 0.4}, "ui_format_workflow"),
        (_api_graph(), "missing_bindings"),
        ({**_api_graph(), "comfyvn_bindings": {"prompt": [["77", "text"]]}}, "invalid_request"),
        ({**_api_graph(), "comfyvn_bindings": {"prompt": [["3", "model"]]}}, "invalid_request"),
        ({"1": {"inputs": {}}, "comfyvn_bindings": {}}, "invalid_workflow"),
        ("not json at all", "invalid_workflow"),
    ],
)
def test_load_custom_refuses_what_it_cannot_run(tmp_path: Path, content: Any, code: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(Invalid) as caught:
        load_custom(path)
    assert caught.value.code == code
    if code == "ui_format_workflow":
        assert "API" in caught.value.message


def test_unknown_builtins_and_missing_files_are_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        builtin("portrait_of_a_lady")
    with pytest.raises(NotFound):
        load_custom(tmp_path / "absent.json")


# -- properties ---------------------------------------------------------------------------------------------------

lora_entries = st.lists(
    st.fixed_dictionaries(
        {"name": st.sampled_from(DEFAULT_LORAS)},
        optional={
            "strength_model": st.floats(-100, 100, allow_nan=False),
            "strength_clip": st.floats(-100, 100, allow_nan=False),
        },
    ),
    max_size=5,
)
render_params = st.fixed_dictionaries(
    {},
    optional={
        "prompt": st.text(max_size=200),
        "negative": st.text(max_size=50),
        "seed": st.integers(0, 2**64 - 1),
        "width": st.integers(16, 16384),
        "height": st.integers(16, 16384),
        "checkpoint": st.sampled_from(DEFAULT_CHECKPOINTS),
        "steps": st.integers(1, 1000),
        "cfg": st.floats(0, 100, allow_nan=False),
        "denoise": st.floats(0, 1, allow_nan=False),
        "sampler": st.sampled_from(SAMPLERS),
        "scheduler": st.sampled_from(SCHEDULERS),
        "loras": lora_entries,
    },
)


@given(name=st.sampled_from(BUILTINS), params=render_params)
def test_bind_is_pure_deterministic_and_yields_a_valid_graph(name: str, params: dict[str, Any]) -> None:
    workflow = builtin(name)
    before = copy.deepcopy(workflow.graph), copy.deepcopy(workflow.bindings)
    params = {**params, **required(name)}
    graph = bind(workflow, params)
    assert (workflow.graph, workflow.bindings) == before
    assert bind(workflow, params) == graph
    for node_id, key, (source, slot) in links(graph):
        assert source in graph, (node_id, key)
        assert 0 <= slot < len(INFO[graph[source]["class_type"]]["output"])
    assert check_graph(graph, INFO) == []
    # Walking the model input back from the sampler passes the LoRAs in the order given, then the checkpoint.
    chain, node = [], graph["3"]["inputs"]["model"][0]
    while graph[node]["class_type"] == "LoraLoader":
        chain.append(graph[node]["inputs"]["lora_name"])
        node = graph[node]["inputs"]["model"][0]
    assert chain[::-1] == [entry["name"] for entry in params.get("loras", [])]
    assert graph[node]["class_type"] == "CheckpointLoaderSimple"
    graph["3"]["inputs"]["seed"] = -5  # the result is the caller's own: the next bind is unaffected
    assert bind(workflow, params) != graph


@st.composite
def damaged_graphs(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(BUILTINS))
    graph = bind(builtin(name), required(name))
    for _ in range(draw(st.integers(1, 3))):
        node_id = draw(st.sampled_from(sorted(graph)))
        inputs = graph[node_id]["inputs"]
        kind = draw(st.sampled_from(["drop", "relink", "slot", "value", "class"]))
        key = draw(st.sampled_from(sorted(inputs))) if inputs else None
        if kind == "class":
            graph[node_id]["class_type"] = draw(st.sampled_from(["NotANode", "KSampler", "VAEDecode"]))
        elif key is None or (graph[node_id]["class_type"] == "LoadImage" and kind == "value"):
            continue  # the server checks LoadImage names against its uploads, which a graph check cannot see
        elif kind == "drop":
            del inputs[key]
        elif kind == "relink":
            inputs[key] = [draw(st.sampled_from([*sorted(graph), "404"])), 0]
        elif kind == "slot" and isinstance(inputs[key], list):
            inputs[key] = [inputs[key][0], draw(st.integers(0, 3))]
        elif kind == "value":
            inputs[key] = draw(st.one_of(st.integers(-10, 10**6), st.sampled_from(["", "euler", "bogus.safetensors"])))
    return graph


@given(graph=damaged_graphs())
def test_check_graph_agrees_with_the_servers_validation(graph: dict[str, Any]) -> None:
    problems = check_graph(graph, INFO)
    ok, _, _, _ = validate_prompt(copy.deepcopy(graph), INFO, lambda image: True)
    if ok:
        # ComfyUI only validates what feeds an output; a broken node nothing depends on is ours alone to report.
        assert not problems or any("cycle" in p for p in problems) or _has_dead_nodes(graph)
    else:
        assert problems


def _has_dead_nodes(graph: dict[str, Any]) -> bool:
    reached, todo = set(), [k for k, n in graph.items() if INFO.get(n["class_type"], {}).get("output_node")]
    while todo:
        node = todo.pop()
        if node in reached or node not in graph:
            continue
        reached.add(node)
        todo += [str(v[0]) for v in graph[node]["inputs"].values() if isinstance(v, list) and len(v) == 2]
    return reached != set(graph)


# -- against the server --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_renders_on_the_fake_server(comfy: FakeComfy, name: str) -> None:
    params: dict[str, Any] = {"prompt": "1girl, blue dress", "seed": 5, "steps": 2, "width": 192, "height": 256}
    with ComfyClient(comfy.url) as client:
        assert check_graph(bind(builtin(name), required(name)), client.object_info()) == []
        if name in NEEDS_IMAGE:
            buffer = io.BytesIO()
            Image.new("RGBA", (96, 128), (0, 0, 0, 0)).save(buffer, format="PNG")
            params["init_image"] = client.upload_image(buffer.getvalue(), "pose.png")
        if name == "background":
            params |= {"prompt": "scenery, park", "out_width": 320, "out_height": 180}
        result = client.run(bind(builtin(name), params), timeout=60)
    with Image.open(io.BytesIO(result.images[0].data)) as png:
        assert png.size == ((320, 180) if name == "background" else (192, 256))


def test_workflow_is_a_frozen_value() -> None:
    workflow = builtin("sprite")
    with pytest.raises(AttributeError):
        workflow.name = "other"  # type: ignore[misc]
    assert (
        isinstance(workflow, Workflow)
        and builtin("sprite") == workflow
        and builtin("sprite").graph is not workflow.graph
    )


def test_fixture_factory_is_callable(fake_comfyui: Callable[..., FakeComfy]) -> None:
    fake = fake_comfyui(step_delay=0.0)
    assert fake.alive() and fake.log() == {"requests": [], "prompts": [], "events": []}
    fake.kill()
    assert not fake.alive()
