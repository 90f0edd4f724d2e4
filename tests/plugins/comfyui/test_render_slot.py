"""``render.render_slot`` against fake ComfyUI servers: the cache and its digest, ``force``, a server that lacks the
configured checkpoint, every server failing, which workflow a portrait picks, the bridge sidecar, backgrounds at
the game's resolution."""

from __future__ import annotations

import io
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
from comfyvn.errors import NotFound, UpstreamError
from comfyvn_assets import AssetRegistry
from comfyvn_assets.destpath import check_dest_path
from comfyvn_comfyui.client import ComfyClient, OutputImage, RunResult
from comfyvn_comfyui.loras import LoraEntry, LoraStore
from comfyvn_comfyui.render import SlotRequest, dest_path, render_slot
from comfyvn_comfyui.servers import Server, ServerPool
from comfyvn_jobs.service import close_jobs
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from .fakecomfy import FakeComfy

MIRA = {"name": "Mira Vale", "description": "a lighthouse keeper with short silver hair and a green coat"}


@pytest.fixture
def kernel_with(make_kernel: Callable[..., Kernel], runtime: RuntimePaths) -> Iterator[Callable[..., Kernel]]:
    """``kernel_with(**comfyui)``: a kernel whose comfyvn.json has ``{"comfyui": {...}}``."""
    made: list[Kernel] = []

    def factory(**comfyui: Any) -> Kernel:
        if comfyui:
            runtime.config.mkdir(parents=True, exist_ok=True)
            (runtime.config / "comfyvn.json").write_text(json.dumps({"comfyui": comfyui}))
        made.append(make_kernel(comfyvn_jobs.plugin, comfyvn_assets.plugin, comfyvn_comfyui.plugin))
        return made[-1]

    yield factory
    for kernel in made:
        AssetRegistry.forget(kernel)
        close_jobs(kernel)


@pytest.fixture
def kernel(kernel_with: Callable[..., Kernel]) -> Kernel:
    return kernel_with()


def _server(fake: FakeComfy, name: str) -> Server:
    return Server(name, fake.url, "config")


def _sprite(**changes: Any) -> SlotRequest:
    fields: dict[str, Any] = {
        "kind": "sprite",
        "style": "anime",
        "character_id": "mira",
        "character": MIRA,
        "expression": "neutral",
        "project": "p1",
    }
    return SlotRequest(**{**fields, **changes})


def _background(**changes: Any) -> SlotRequest:
    place = {"key": "harbour-dusk-rain", "location": "Harbour", "time_of_day": "dusk", "weather": "rain", "ref": None}
    return SlotRequest(**{"kind": "background", "style": "painterly", "place": place, "project": "p1", **changes})


def _prompts(fake: FakeComfy) -> list[str]:
    return [p["prompt_id"] for p in fake.log()["prompts"]]


def _graph(fake: FakeComfy, prompt_id: str) -> dict[str, Any]:
    """The graph the fake queued, as its ``/history`` has it."""
    history = httpx.get(f"{fake.url}/history/{prompt_id}", timeout=10).json()
    graph: dict[str, Any] = history[prompt_id]["prompt"][2]
    return graph


def _classes(graph: dict[str, Any]) -> list[str]:
    return sorted(node["class_type"] for node in graph.values())


def _png(size: tuple[int, int], *, cutout: bool) -> bytes:
    if cutout:
        image = Image.new("RGBA", size, (0, 0, 0, 0))
        image.paste((200, 60, 60, 255), (size[0] // 4, size[1] // 8, 3 * size[0] // 4, size[1]))
    else:
        image = Image.new("RGB", size, (40, 90, 160))
        image.paste((200, 60, 60), (size[0] // 4, size[1] // 8, 3 * size[0] // 4, size[1]))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


# -- the cache ---------------------------------------------------------------------------------------------------


def test_a_render_is_cached_by_its_digest(kernel: Kernel, comfy: FakeComfy) -> None:
    servers = [_server(comfy, "one")]
    registry = AssetRegistry.for_kernel(kernel)

    first = render_slot(kernel, _sprite(), servers=servers, pool=ServerPool())
    assert (first["cached"], first["server"], first["retries"], first["failures"]) == (False, "one", 0, [])
    assert first["asset_path"] == "characters/mira/anime/neutral.png" == dest_path(_sprite())
    asset = registry.get(first["asset_uid"])
    assert asset.path == first["asset_path"] and asset.source == "comfyui"
    assert len(_prompts(comfy)) == 1

    again = render_slot(kernel, _sprite(), servers=servers, pool=ServerPool())
    assert (again["cached"], again["asset_uid"], again["server"]) == (True, first["asset_uid"], None)
    assert len(_prompts(comfy)) == 1  # nothing was queued

    # The character's looks changed: the cached render is stale, rendered again at the same path (same uid).
    changed = _sprite(character={**MIRA, "description": "a lighthouse keeper with long red hair"})
    stale = render_slot(kernel, changed, servers=servers, pool=ServerPool())
    assert (stale["cached"], stale["asset_uid"]) == (False, first["asset_uid"])
    assert len(_prompts(comfy)) == 2
    provenance = registry.get(first["asset_uid"]).provenance
    assert "long red hair" in provenance["prompt"] and provenance["render_digest"] != asset.provenance["render_digest"]
    assert render_slot(kernel, changed, servers=servers, pool=ServerPool())["cached"] is True

    forced = render_slot(kernel, _sprite(character=changed.character, force=True), servers=servers, pool=ServerPool())
    assert (forced["cached"], forced["asset_uid"]) == (False, first["asset_uid"])
    assert len(_prompts(comfy)) == 3
    assert len(registry.find(type="character.sprite")) == 1


def test_another_projects_character_of_the_same_id_does_not_replace_a_held_sprite(
    kernel: Kernel, comfy: FakeComfy
) -> None:
    # Two projects can each have an `alice` (ids come from names): the one with other looks must not
    # overwrite the sprite the first project holds (same path, same uid), or its export shows the wrong person.
    servers = [_server(comfy, "one")]
    registry = AssetRegistry.for_kernel(kernel)
    first = render_slot(kernel, _sprite(), servers=servers, pool=ServerPool())
    registry.add_ref(first["asset_uid"], "project:p1")
    held = registry.get(first["asset_uid"])

    other = {"name": "Mira Vale", "description": "an old sea captain with a white beard"}
    second = render_slot(kernel, _sprite(project="p2", character=other), servers=servers, pool=ServerPool())
    assert second["cached"] is False and second["asset_uid"] != first["asset_uid"]
    assert second["asset_path"] == "characters/mira/anime/projects/p2/neutral.png"
    assert registry.get(first["asset_uid"]).sha256 == held.sha256  # p1's sprite is untouched
    assert "sea captain" in registry.get(second["asset_uid"]).provenance["prompt"]

    # Neither project re-renders the other's look back and forth: both are cache hits now.
    again_p1 = render_slot(kernel, _sprite(), servers=servers, pool=ServerPool())
    again_p2 = render_slot(kernel, _sprite(project="p2", character=other), servers=servers, pool=ServerPool())
    assert (again_p1["cached"], again_p1["asset_uid"]) == (True, first["asset_uid"])
    assert (again_p2["cached"], again_p2["asset_uid"]) == (True, second["asset_uid"])
    # The same looks in another project share the one render.
    shared = render_slot(kernel, _sprite(project="p3"), servers=servers, pool=ServerPool())
    assert (shared["cached"], shared["asset_uid"]) == (True, first["asset_uid"])
    assert len(_prompts(comfy)) == 2


def test_a_cached_render_needs_no_server(kernel: Kernel, comfy: FakeComfy) -> None:
    rendered = render_slot(kernel, _sprite(), servers=[_server(comfy, "one")], pool=ServerPool())
    assert render_slot(kernel, _sprite(), servers=[], pool=ServerPool())["asset_uid"] == rendered["asset_uid"]
    with pytest.raises(NotFound) as caught:
        render_slot(kernel, _sprite(expression="happy"), servers=[], pool=ServerPool())
    assert caught.value.code == "comfyui_not_configured" and "comfyvn comfyui add" in caught.value.message


def test_loras_change_the_digest_and_reach_the_graph(kernel: Kernel, comfy: FakeComfy) -> None:
    servers = [_server(comfy, "one")]
    render_slot(kernel, _sprite(), servers=servers, pool=ServerPool())
    lora = comfy_lora(comfy)
    LoraStore(kernel.paths.data).set("mira", [LoraEntry(lora, 0.8, 0.6)])
    outcome = render_slot(kernel, _sprite(), servers=servers, pool=ServerPool())
    assert outcome["cached"] is False
    assert outcome["loras"] == [{"name": lora, "strength_model": 0.8, "strength_clip": 0.6}]
    graph = _graph(comfy, _prompts(comfy)[-1])
    loaders = [n["inputs"] for n in graph.values() if n["class_type"] == "LoraLoader"]
    assert [(n["lora_name"], n["strength_model"], n["strength_clip"]) for n in loaders] == [(lora, 0.8, 0.6)]
    provenance = AssetRegistry.for_kernel(kernel).get(outcome["asset_uid"]).provenance
    assert provenance["loras"] == outcome["loras"]


def comfy_lora(fake: FakeComfy) -> str:
    """A LoRA the fake lists."""
    info = httpx.get(f"{fake.url}/object_info/LoraLoader", timeout=10).json()
    names: list[str] = info["LoraLoader"]["input"]["required"]["lora_name"][0]
    return names[0]


# -- servers -----------------------------------------------------------------------------------------------------


def test_a_server_without_the_configured_checkpoint_hands_the_render_on(
    kernel_with: Callable[..., Kernel], fake_comfyui: Callable[..., FakeComfy]
) -> None:
    lacking = fake_comfyui(checkpoints=["other_model.safetensors"])
    having = fake_comfyui(checkpoints=["other_model.safetensors", "house_style.safetensors"])
    kernel = kernel_with(checkpoint="house_style.safetensors")
    pool = ServerPool()
    pool.acquire(_server(having, "having"))  # busier: the lacking server is asked first
    outcome = render_slot(
        kernel, _sprite(), servers=[_server(lacking, "lacking"), _server(having, "having")], pool=pool
    )
    assert outcome["server"] == "having" and outcome["retries"] == 1
    assert [f["server"] for f in outcome["failures"]] == ["lacking"]
    assert "house_style.safetensors" in outcome["failures"][0]["message"]
    assert _prompts(lacking) == []
    graph = _graph(having, _prompts(having)[0])
    checkpoints = [n["inputs"]["ckpt_name"] for n in graph.values() if n["class_type"] == "CheckpointLoaderSimple"]
    assert checkpoints == ["house_style.safetensors"]
    provenance = AssetRegistry.for_kernel(kernel).get(outcome["asset_uid"]).provenance
    assert provenance["checkpoint"] == "house_style.safetensors"
    assert provenance["comfyui_server"] == {"name": "having", "url": having.url}


def test_every_server_failing_is_an_upstream_error_naming_each(
    kernel: Kernel, fake_comfyui: Callable[..., FakeComfy]
) -> None:
    broken = fake_comfyui()
    broken.fail("execution_error")
    dead = fake_comfyui()
    dead.kill()
    servers = [_server(broken, "broken"), _server(dead, "dead")]
    with pytest.raises(UpstreamError) as caught:
        render_slot(kernel, _sprite(), servers=servers, pool=ServerPool())
    error = caught.value
    assert (error.code, error.field) == ("render_failed", "servers")
    assert "broken:" in error.message and "dead:" in error.message and "mira neutral" in error.message
    assert "OutOfMemoryError" in error.message
    assert AssetRegistry.for_kernel(kernel).by_path(dest_path(_sprite())) is None


# -- workflows and outputs ---------------------------------------------------------------------------------------


def test_a_cut_out_portrait_is_composited_into_the_pose(kernel: Kernel, comfy: FakeComfy) -> None:
    portrait = _png((256, 384), cutout=True)
    outcome = render_slot(kernel, _sprite(portrait=portrait), servers=[_server(comfy, "one")], pool=ServerPool())
    graph = _graph(comfy, _prompts(comfy)[0])
    loads = [n["inputs"]["image"] for n in graph.values() if n["class_type"] == "LoadImage"]
    assert len(loads) == 1
    folder, _, name = loads[0].rpartition("/")
    uploaded = httpx.get(f"{comfy.url}/view", params={"filename": name, "subfolder": folder, "type": "input"})
    assert uploaded.status_code == 200 and uploaded.content == portrait
    assert "VAEEncode" in _classes(graph) and "EmptyLatentImage" not in _classes(graph)
    provenance = AssetRegistry.for_kernel(kernel).get(outcome["asset_uid"]).provenance
    assert provenance["workflow"] == "sprite_pose_composite"

    # Another portrait is another render (the digest holds the portrait's hash).
    same = render_slot(kernel, _sprite(portrait=portrait), servers=[_server(comfy, "one")], pool=ServerPool())
    assert same["cached"] is True
    changed = _png((300, 400), cutout=True)
    again = render_slot(kernel, _sprite(portrait=changed), servers=[_server(comfy, "one")], pool=ServerPool())
    assert again["cached"] is False and len(_prompts(comfy)) == 2


def test_an_opaque_portrait_renders_from_text(kernel: Kernel, comfy: FakeComfy) -> None:
    outcome = render_slot(
        kernel, _sprite(portrait=_png((256, 384), cutout=False)), servers=[_server(comfy, "one")], pool=ServerPool()
    )
    graph = _graph(comfy, _prompts(comfy)[0])
    assert "LoadImage" not in _classes(graph) and "EmptyLatentImage" in _classes(graph)
    assert not [r for r in comfy.log()["requests"] if r["path"].endswith("/upload/image")]
    assert AssetRegistry.for_kernel(kernel).get(outcome["asset_uid"]).provenance["workflow"] == "sprite"


def test_the_bridge_sidecar_mirrors_the_comfyui_record(kernel: Kernel, comfy: FakeComfy) -> None:
    outcome = render_slot(kernel, _sprite(), servers=[_server(comfy, "one")], pool=ServerPool())
    registry = AssetRegistry.for_kernel(kernel)
    root = Path(registry.root)
    bridge = json.loads((root / outcome["bridge_sidecar"]).read_text())
    sidecar = json.loads((root / outcome["asset_sidecar"]).read_text())
    prompt_id = _prompts(comfy)[0]
    assert bridge["prompt_id"] == prompt_id == sidecar["provenance"]["prompt_id"]
    assert bridge["server"] == {"name": "one", "url": comfy.url} and bridge["workflow"] == "sprite"
    assert bridge["prompt"] == _graph(comfy, prompt_id)  # the graph exactly as queued
    assert bridge["history"]["status"]["status_str"] == "success"
    saved = [o for o in bridge["outputs"] if o["type"] == "output"]
    assert saved and all(o["filename"].startswith("comfyvn/sprite") or o["subfolder"] for o in saved)
    assert bridge["elapsed"] >= 0
    assert sidecar["uid"] == outcome["asset_uid"] and sidecar["path"] == outcome["asset_path"]
    with Image.open(root / outcome["asset_path"]) as picture:
        assert picture.mode == "RGBA" and picture.getchannel("A").getpixel((0, 0)) == 0  # a cut-out
        assert json.loads(picture.text["comfyvn:provenance"])["render_digest"] == sidecar["provenance"]["render_digest"]


def test_a_background_is_delivered_at_the_game_resolution(kernel: Kernel, comfy: FakeComfy) -> None:
    outcome = render_slot(kernel, _background(), servers=[_server(comfy, "one")], pool=ServerPool())
    assert outcome["asset_path"] == "backgrounds/p1/painterly/harbour-dusk-rain.png"
    graph = _graph(comfy, _prompts(comfy)[0])
    latent = next(n["inputs"] for n in graph.values() if n["class_type"] == "EmptyLatentImage")
    assert (latent["width"], latent["height"]) != (1920, 1080)  # generated smaller, delivered scaled
    asset = AssetRegistry.for_kernel(kernel).get(outcome["asset_uid"])
    assert asset.type == "background" and (asset.width, asset.height) == (1920, 1080)
    with Image.open(Path(AssetRegistry.for_kernel(kernel).root) / asset.path) as picture:
        assert picture.size == (1920, 1080)
    assert asset.provenance["place"]["location"] == "Harbour" and "harbour" in asset.provenance["prompt"].lower()
    assert asset.provenance["character"] is None and asset.provenance["pov"] is None


@pytest.mark.parametrize("kind", ["sprite", "background"])
def test_an_output_image_that_cannot_be_read_is_an_upstream_error_naming_the_server(
    kernel: Kernel, comfy: FakeComfy, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    # What a server hands back is input like any other: garbage (or a decompression bomb) from /view must be
    # a clear render failure, not Pillow's exception escaping the job.
    def garbage(self: ComfyClient, graph: dict[str, Any], **_: Any) -> RunResult:
        image = OutputImage("9", "x_00001_.png", "comfyvn", "output", b"<html>proxy error</html>")
        return RunResult("p-1", self.base_url, (image,), 0.1, {})

    monkeypatch.setattr(ComfyClient, "run", garbage)
    request = _sprite() if kind == "sprite" else _background()
    with pytest.raises(UpstreamError) as caught:
        render_slot(kernel, request, servers=[_server(comfy, "one")], pool=ServerPool())
    assert caught.value.code == "render_failed" and "one" in caught.value.message
    assert AssetRegistry.for_kernel(kernel).find() == []


def test_any_expression_name_gets_a_registry_path_of_its_own(kernel: Kernel, comfy: FakeComfy) -> None:
    # Expression names are free text in a project ("wow?", "Very Stern", even "../up"): each render still lands
    # in the character's folder, under a name of its own, instead of failing the registry's path checks.
    servers = [_server(comfy, "one")]
    paths = set()
    for expression in ("wow?", "wow!", "Very Stern", "../../up", "neutral"):
        outcome = render_slot(kernel, _sprite(expression=expression), servers=servers, pool=ServerPool())
        assert outcome["asset_path"].startswith("characters/mira/anime/") and outcome["asset_path"].count("/") == 3
        paths.add(outcome["asset_path"])
    assert len(paths) == 5 and "characters/mira/anime/neutral.png" in paths


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=80), st.text(min_size=1, max_size=80))
def test_every_expression_name_makes_a_valid_distinct_registry_path(first: str, second: str) -> None:
    one, two = dest_path(_sprite(expression=first)), dest_path(_sprite(expression=second))
    assert check_dest_path(one) == one and one.startswith("characters/mira/anime/") and one.count("/") == 3
    assert (one == two) == (first == second)
