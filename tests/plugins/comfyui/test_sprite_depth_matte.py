"""A sprite render whose border is scenery (no flat backdrop for the flood fill) against a fake ComfyUI: with the
layers plugin loaded and a depth model configured, the ``comfyui_matte_sprite`` hook cuts the figure out and the
provenance names the depth matte; without the plugin (or without a model) the render is kept as it came and the
provenance says why. The scenery reaches the render the way it does in practice: a framed card portrait redrawn
image-to-image (``comfyui.portrait_img2img``) keeps it."""

from __future__ import annotations

import importlib.util
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import comfyvn_assets.plugin
import comfyvn_comfyui.plugin
import comfyvn_jobs.plugin
import comfyvn_layers.plugin
import httpx
import numpy as np
import pytest
from comfyvn import Kernel, RuntimePaths, hookimpl
from comfyvn_assets import AssetRegistry
from comfyvn_comfyui.matte import is_cutout
from comfyvn_comfyui.render import SlotRequest, render_slot
from comfyvn_comfyui.servers import Server, ServerPool
from comfyvn_jobs.service import close_jobs
from PIL import Image, ImageDraw

from .fakecomfy import FakeComfy

MIRA = {"name": "Mira Vale", "description": "a lighthouse keeper with short silver hair and a green coat"}
SIZE = (256, 384)
BODY = (0.5, 0.7)  # inside the figure both the portrait and the fake's painting draw (fractions of the size)


def _onnx_models() -> ModuleType:
    """The layers tests' model builders, loaded by path (the two test packages do not import each other)."""
    path = Path(__file__).resolve().parents[1] / "layers" / "onnx_models.py"
    spec = importlib.util.spec_from_file_location("layers_onnx_models", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def framed_portrait() -> bytes:
    """A card portrait with scenery to its edges (a bright sky going from blue to pale, bright houses, a meadow)
    and a dark figure in the middle: under the brightness model the figure is near, the scenery far."""
    w, h = SIZE
    pixels = np.zeros((h, w, 3), np.uint8)
    for y in range(h):
        pixels[y, :] = (60 + y * 170 // h, 120 + y * 110 // h, 250)
    pixels[int(h * 0.8) :, :] = (150, 230, 120)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    for x in range(0, w, 48):
        draw.rectangle((x, int(h * 0.55), x + 24, int(h * 0.8)), fill=(250, 220, 190))
    draw.ellipse((w // 2 - 30, int(h * 0.15), w // 2 + 30, int(h * 0.3)), fill=(50, 35, 30))
    draw.rectangle((int(w * 0.3), int(h * 0.3), int(w * 0.7), int(h * 0.95)), fill=(20, 25, 60))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def kernel_with(
    make_kernel: Callable[..., Kernel], runtime: RuntimePaths, tmp_path: Path
) -> Iterator[Callable[..., Kernel]]:
    """``kernel_with(layers=, model=, extra=())``: a kernel that redraws framed portraits image-to-image, with the
    layers plugin when ``layers``, ``layers.model`` set to a brightness depth model when ``model``, and the plugin
    objects of ``extra``."""
    made: list[Kernel] = []

    def factory(*, layers: bool, model: bool, extra: tuple[object, ...] = ()) -> Kernel:
        config: dict[str, Any] = {"comfyui": {"portrait_img2img": True}}
        if model:
            models = _onnx_models()
            path = models.write(tmp_path, "bright.onnx", models.brightness_model(None))
            config["layers"] = {"model": str(path), "device": "cpu"}
        runtime.config.mkdir(parents=True, exist_ok=True)
        (runtime.config / "comfyvn.json").write_text(json.dumps(config))
        plugins = [comfyvn_jobs.plugin, comfyvn_assets.plugin, comfyvn_comfyui.plugin]
        made.append(make_kernel(*plugins, *([comfyvn_layers.plugin] if layers else []), *extra))
        return made[-1]

    yield factory
    for kernel in made:
        AssetRegistry.forget(kernel)
        close_jobs(kernel)


def _render(kernel: Kernel, comfy: FakeComfy) -> tuple[bytes, dict[str, Any]]:
    request = SlotRequest(
        kind="sprite",
        style="anime",
        character_id="mira",
        character=MIRA,
        expression="neutral",
        project="p1",
        portrait=framed_portrait(),
    )
    outcome = render_slot(kernel, request, servers=[Server("one", comfy.url, "config")], pool=ServerPool())
    registry = AssetRegistry.for_kernel(kernel)
    asset = registry.get(outcome["asset_uid"])
    assert asset.provenance["workflow"] == "sprite_img2img"
    return (Path(registry.root) / asset.path).read_bytes(), asset.provenance


def _server_output(kernel: Kernel, comfy: FakeComfy) -> bytes:
    """The PNG the fake saved for the last render, fetched from its ``/view`` as the bridge sidecar names it."""
    root = Path(AssetRegistry.for_kernel(kernel).root)
    (sidecar,) = root.rglob("*.bridge.json")
    output = json.loads(sidecar.read_text())["outputs"][0]
    params = {"filename": output["filename"], "subfolder": output["subfolder"], "type": output["type"]}
    response = httpx.get(f"{comfy.url}/view", params=params, timeout=10)
    assert response.status_code == 200
    return response.content


def _pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        assert image.mode == "RGB"
        return np.asarray(image)


def _alpha(png: bytes, where: tuple[float, float]) -> int:
    """The alpha at ``where`` (fractions of the width and height: the server renders at its own size)."""
    with Image.open(io.BytesIO(png)) as image:
        rgba = np.asarray(image.convert("RGBA"))
    height, width = rgba.shape[:2]
    return int(rgba[min(height - 1, int(where[1] * height)), min(width - 1, int(where[0] * width)), 3])


def test_hook_comfyui_matte_sprite(kernel_with: Callable[..., Kernel], comfy: FakeComfy) -> None:
    """The scenery around the figure is cut away by the layers plugin's answer (a depth matte)."""
    data, provenance = _render(kernel_with(layers=True, model=True), comfy)
    assert is_cutout(data)
    assert _alpha(data, BODY) == 255
    for corner in ((0, 0), (1, 0), (0, 1), (1, 1), (0.05, 0.5), (0.95, 0.5)):  # sky, meadow, houses
        assert _alpha(data, corner) == 0, corner
    matte = provenance["matte"]
    assert matte["method"] == "depth" and matte["model"] == "bright.onnx"
    assert matte["provider"] == "CPUExecutionProvider" and matte["warnings"] == []


@pytest.mark.parametrize(("layers", "model"), [(False, False), (True, False)], ids=["no-layers-plugin", "no-model"])
def test_without_a_depth_matte_the_render_keeps_its_scenery(
    kernel_with: Callable[..., Kernel], comfy: FakeComfy, layers: bool, model: bool
) -> None:
    kernel = kernel_with(layers=layers, model=model)
    data, provenance = _render(kernel, comfy)
    assert not is_cutout(data)
    # The render as the server drew it, scenery and all (the registry adds its provenance chunk to the file).
    assert np.array_equal(_pixels(data), _pixels(_server_output(kernel, comfy)))
    assert provenance["matte"]["method"] == "none" and "no flat backdrop" in provenance["matte"]["reason"]


def test_a_flat_backdrop_is_still_keyed_by_the_flood_fill(kernel_with: Callable[..., Kernel], comfy: FakeComfy) -> None:
    # The fake paints a text-only sprite on a flat light backdrop: the depth matte is not asked.
    kernel = kernel_with(layers=True, model=True)
    request = SlotRequest(kind="sprite", style="anime", character_id="mira", character=MIRA, expression="neutral")
    outcome = render_slot(kernel, request, servers=[Server("one", comfy.url, "config")], pool=ServerPool())
    asset = AssetRegistry.for_kernel(kernel).get(outcome["asset_uid"])
    assert asset.provenance["matte"] == {"method": "flood_fill"}
    assert is_cutout((Path(AssetRegistry.for_kernel(kernel).root) / asset.path).read_bytes())


class _Matte:
    """A plugin answering ``comfyui_matte_sprite`` with ``answer(image)`` (or raising what it raises)."""

    def __init__(self, name: str, answer: Callable[[bytes], Any]) -> None:
        self.name, self.answer = name, answer

    @hookimpl
    def comfyui_matte_sprite(self, image: bytes) -> Any:
        return self.answer(image)


def _opaque(image: bytes) -> bytes:
    with Image.open(io.BytesIO(image)) as picture:
        out = io.BytesIO()
        picture.convert("RGBA").save(out, "PNG")
        return out.getvalue()


def _small_cutout(_image: bytes) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(out, "PNG")
    return out.getvalue()


def _raise(_image: bytes) -> Any:
    raise RuntimeError("the matting service is down")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (_raise, "the matte hook failed (RuntimeError)"),
        (lambda image: ["not", "a", "dict"], "the answer is list, not an object"),
        (lambda image: {"method": "x"}, "the answer has no PNG bytes"),
        (lambda image: {"png": b"<html>", "method": "x"}, "the cut-out cannot be read"),
        (lambda image: {"png": _opaque(image), "method": "x"}, "the cut-out's border is not transparent"),
        (lambda image: {"png": _small_cutout(image), "method": "x"}, "the cut-out is 8x8"),
    ],
    ids=["raises", "not-a-dict", "no-png", "unreadable", "opaque", "wrong-size"],
)
def test_a_matte_plugin_that_fails_or_answers_garbage_leaves_the_render_as_it_came(
    kernel_with: Callable[..., Kernel], comfy: FakeComfy, answer: Callable[[bytes], Any], reason: str
) -> None:
    kernel = kernel_with(layers=False, model=False, extra=(_Matte("matter", answer),))
    data, provenance = _render(kernel, comfy)
    assert np.array_equal(_pixels(data), _pixels(_server_output(kernel, comfy)))
    assert provenance["matte"]["method"] == "none" and reason in provenance["matte"]["reason"]


def test_an_answer_is_recorded_by_base_names(kernel_with: Callable[..., Kernel], comfy: FakeComfy) -> None:
    # A plugin that hands back a model path or a long warning list: provenance keeps base names and a bounded list.
    def answer(image: bytes) -> dict[str, Any]:
        with Image.open(io.BytesIO(image)) as picture:
            rgba = np.asarray(picture.convert("RGBA")).copy()
        rgba[:, :8, 3] = rgba[:, -8:, 3] = rgba[:8, :, 3] = rgba[-8:, :, 3] = 0
        out = io.BytesIO()
        Image.fromarray(rgba, "RGBA").save(out, "PNG")
        warnings = [f"warning {n}" for n in range(20)]
        return {"png": out.getvalue(), "method": "sam", "model": "/srv/models/sam.onnx", "warnings": warnings}

    kernel = kernel_with(layers=False, model=False, extra=(_Matte("matter", answer),))
    data, provenance = _render(kernel, comfy)
    assert is_cutout(data)
    assert provenance["matte"] == {"method": "sam", "model": "sam.onnx", "warnings": [f"warning {n}" for n in range(8)]}
