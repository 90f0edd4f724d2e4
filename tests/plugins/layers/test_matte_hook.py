"""The layers plugin's answer to the ComfyUI bridge's ``comfyui_matte_sprite`` hook: a sprite render with scenery
around the figure comes back as an RGBA cut-out (figure opaque, scenery transparent) when a depth model is
configured; with the flag off, without a model, or with a model or picture that fails, the answer is None (a
warning logged), never an exception that would lose the render."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from pathlib import Path

import comfyvn_assets.plugin
import comfyvn_comfyui.plugin
import comfyvn_jobs.plugin
import comfyvn_layers.plugin as layers_plugin
import numpy as np
import pytest
from comfyvn import Kernel
from comfyvn_assets import AssetRegistry
from comfyvn_jobs.service import close_jobs
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from .onnx_models import PLAIN, brightness_model, model_bytes, write
from .scenery import FIGURE, HEIGHT, SCENERY, WIDTH, figure_on_scenery
from .surfaces import bad_models

KernelFactory = Callable[..., Kernel]


def _rgba(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        assert image.mode == "RGBA"
        return np.asarray(image)


def failing_at_run_model() -> bytes:
    """A model that loads and inspects fine (dynamic input, 4-D depth output) but fails inside ONNX Runtime at
    run time: it reshapes the whole picture's mean into 7 x 7 values."""
    nodes = [
        helper.make_node("ReduceMean", ["image", "axes"], ["mean"], keepdims=1),
        helper.make_node("Reshape", ["mean", "shape"], ["depth"]),
    ]
    return model_bytes(
        nodes,
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "height", "width"])],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, 1, 7, 7])],
        initializers=[
            numpy_helper.from_array(np.array([1], np.int64), "axes"),
            numpy_helper.from_array(np.array([1, 1, 7, 7], np.int64), "shape"),
        ],
        metadata={**PLAIN, "output": "depth"},
    )


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """Depth = brightness: the dark figure of `scenery.figure_on_scenery` is near, its bright scenery far."""
    return write(tmp_path, "bright.onnx", brightness_model(None))


def _kernel(make_kernel: KernelFactory, model: Path | None, **env: str) -> Kernel:
    return make_kernel(layers_plugin, env={**({"COMFYVN_DEPTH_MODEL": str(model)} if model else {}), **env})


def test_a_figure_on_scenery_comes_back_cut_out(make_kernel: KernelFactory, model: Path) -> None:
    kernel = _kernel(make_kernel, model)
    answer = layers_plugin.comfyui_matte_sprite(image=figure_on_scenery(), kernel=kernel)
    assert answer is not None
    assert (answer["method"], answer["model"], answer["provider"]) == ("depth", "bright.onnx", "CPUExecutionProvider")
    assert answer["warnings"] == []
    rgba = _rgba(answer["png"])
    assert rgba.shape == (HEIGHT, WIDTH, 4)
    for x, y in FIGURE:
        assert rgba[y, x, 3] == 255, (x, y)
    for x, y in SCENERY:
        assert rgba[y, x, 3] == 0, (x, y)
    border = np.concatenate([rgba[0, :, 3], rgba[-1, :, 3], rgba[:, 0, 3], rgba[:, -1, 3]])
    assert (border == 0).all()
    # The colours are the picture's own: only the alpha is new.
    with Image.open(io.BytesIO(figure_on_scenery())) as source:
        assert np.array_equal(rgba[:, :, :3], np.asarray(source.convert("RGB")))
    assert 0.1 < answer["coverage"] < 0.4


def test_the_bridge_gets_the_answer_through_its_hook(make_kernel: KernelFactory, model: Path) -> None:
    # With the bridge loaded the hook has its spec (firstresult): the call returns the one answer, not a list.
    kernel = make_kernel(
        comfyvn_jobs.plugin,
        comfyvn_assets.plugin,
        comfyvn_comfyui.plugin,
        layers_plugin,
        env={"COMFYVN_DEPTH_MODEL": str(model)},
    )
    try:
        assert kernel.plugins.records["comfyvn_layers"].status == "loaded"
        answer = kernel.pm.hook.comfyui_matte_sprite(image=figure_on_scenery(), kernel=kernel)
        assert isinstance(answer, dict) and answer["method"] == "depth"
    finally:
        AssetRegistry.forget(kernel)
        close_jobs(kernel)


def test_with_the_flag_off_there_is_no_answer(make_kernel: KernelFactory, model: Path) -> None:
    kernel = _kernel(make_kernel, model, COMFYVN_FEATURE_ENABLE_FLAT2LAYERS="0")
    assert layers_plugin.comfyui_matte_sprite(image=figure_on_scenery(), kernel=kernel) is None


def test_without_a_model_there_is_no_answer(make_kernel: KernelFactory) -> None:
    kernel = _kernel(make_kernel, None)
    assert layers_plugin.comfyui_matte_sprite(image=figure_on_scenery(), kernel=kernel) is None


@pytest.mark.parametrize("kind", ["not_onnx", "truncated", "two_inputs", "wrong_rank", "missing", "fails_at_run"])
def test_a_broken_model_is_no_answer_and_a_warning(
    make_kernel: KernelFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    models = {
        **bad_models(tmp_path),
        "missing": tmp_path / "gone.onnx",
        "fails_at_run": write(tmp_path, "reshape.onnx", failing_at_run_model()),
    }
    kernel = _kernel(make_kernel, models[kind])
    caplog.set_level(logging.WARNING)
    assert layers_plugin.comfyui_matte_sprite(image=figure_on_scenery(), kernel=kernel) is None
    assert any("depth matte failed" in record.getMessage() for record in caplog.records), caplog.text


def test_a_picture_that_cannot_be_read_is_no_answer(
    make_kernel: KernelFactory, model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    kernel = _kernel(make_kernel, model)
    assert layers_plugin.comfyui_matte_sprite(image=b"<html>proxy error</html>", kernel=kernel) is None
    assert "depth matte failed" in caplog.text
