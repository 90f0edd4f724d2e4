"""Flat -> layers: a full split of a 1024 x 1024 image against a bare onnxruntime ``session.run`` of the same
model on the same input tensor (target: the split's inference at least 0.8x the bare run's speed), with
pre- and post-processing, hole filling and writing reported separately.

Run: ``python3 -m pytest tests/bench/test_bench_layers.py --benchmark-enable -q -s``. The model is built
here with ``onnx.helper``: a small convolutional net at Depth Anything's 518 x 518 input, with seeded random
weights, so inference costs what a real (if small) network costs. ``COMFYVN_BENCH_LAYERS_DEVICE`` picks the
device (default ``auto``); the bare session gets the same providers. Rounds alternate between the two so
they share the machine's noise, and the best round of each is compared.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from bench_targets import at_least
from comfyvn_layers.depth import preprocess
from comfyvn_layers.model import inspect_model
from comfyvn_layers.pipeline import split_image
from comfyvn_layers.runtime import available_providers, choose_providers, clear_sessions
from onnx import TensorProto, helper, numpy_helper
from PIL import Image, ImageDraw

SIDE = 1024
INPUT = 518
ROUNDS = 7
DEVICE = os.environ.get("COMFYVN_BENCH_LAYERS_DEVICE", "auto")


def conv_depth_model() -> bytes:
    """image (1,3,518,518) -> four 3x3 convolutions (two of stride 2), a 1x1 head, a 9x9 average ->
    depth (1,1,130,130)."""
    rng = np.random.default_rng(7)
    layers = [(3, 32, 2), (32, 64, 2), (64, 64, 1), (64, 64, 1)]
    nodes, inits, last = [], [], "image"
    for n, (cin, cout, stride) in enumerate(layers):
        weight = rng.normal(0, (2 / (9 * cin)) ** 0.5, (cout, cin, 3, 3)).astype(np.float32)
        inits += [
            numpy_helper.from_array(weight, f"w{n}"),
            numpy_helper.from_array(np.zeros(cout, np.float32), f"b{n}"),
        ]
        nodes += [
            helper.make_node("Conv", [last, f"w{n}", f"b{n}"], [f"c{n}"], pads=[1, 1, 1, 1], strides=[stride, stride]),
            helper.make_node("Relu", [f"c{n}"], [f"r{n}"]),
        ]
        last = f"r{n}"
    head = rng.normal(0, 0.1, (1, 64, 1, 1)).astype(np.float32)
    inits += [numpy_helper.from_array(head, "head"), numpy_helper.from_array(np.zeros(1, np.float32), "hb")]
    nodes.append(helper.make_node("Conv", [last, "head", "hb"], ["raw"]))
    # Smoothed, as a real model's depth is: random weights on a textured picture give speckle otherwise,
    # and speckled planes would make the hole filling below cost what no real depth map makes it cost.
    nodes.append(helper.make_node("AveragePool", ["raw"], ["depth"], kernel_shape=[9, 9], pads=[4, 4, 4, 4]))
    graph = helper.make_graph(
        nodes,
        "bench-depth",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, INPUT, INPUT])],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, 1, 130, 130])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data


def scene(path: Path) -> Path:
    """A 1024 x 1024 picture with a sky gradient, hills, a figure and some texture."""
    y = np.linspace(0, 1, SIDE, dtype=np.float32)[:, None, None]
    sky = (np.array([140, 190, 250]) * (1 - 0.4 * y)).repeat(SIDE, axis=1).astype(np.uint8)
    image = Image.fromarray(sky)
    draw = ImageDraw.Draw(image)
    draw.polygon(
        [(0, 650), (250, 430), (520, 600), (800, 400), (1024, 560), (1024, 1024), (0, 1024)], fill=(80, 140, 80)
    )
    draw.ellipse((360, 480, 660, 1000), fill=(40, 30, 70))
    noise = np.random.default_rng(1).integers(-12, 12, (SIDE, SIDE, 3))
    pixels = np.clip(np.asarray(image).astype(int) + noise, 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def test_bench_layers_split_against_a_bare_session_run(tmp_path: Path, benchmark: Any) -> None:
    benchmark.group = "layers"
    clear_sessions()
    model = tmp_path / "bench.onnx"
    model.write_bytes(conv_depth_model())
    source = scene(tmp_path / "scene.png")
    info = inspect_model(model, {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}, device=DEVICE)
    providers, _ = choose_providers(DEVICE, available_providers())
    bare = ort.InferenceSession(str(model), providers=providers)
    tensor = preprocess(np.asarray(Image.open(source).convert("RGB")), info)

    def bare_run() -> float:
        start = time.perf_counter()
        bare.run(["depth"], {"image": tensor})
        return (time.perf_counter() - start) * 1000

    def split() -> tuple[dict[str, Any], float]:
        start = time.perf_counter()
        layers = split_image(source, model, tmp_path / "out", planes=3, device=DEVICE)
        return layers, (time.perf_counter() - start) * 1000

    bare_run(), split()  # warm both: first runs allocate the arenas
    bare_ms: list[float] = []
    runs: list[tuple[dict[str, Any], float]] = []
    for _ in range(ROUNDS):
        bare_ms.append(bare_run())
        runs.append(split())
    best_layers, _ = min(runs, key=lambda run: run[0]["timings_ms"]["inference"])
    best = {key: min(run[0]["timings_ms"][key] for run in runs) for key in best_layers["timings_ms"]}
    inference, bare_best = best["inference"], min(bare_ms)
    total = min(total for _, total in runs)
    benchmark.pedantic(lambda: bare.run(["depth"], {"image": tensor}), rounds=3, iterations=1)

    provider = best_layers["provider"]
    assert provider == bare.get_providers()[0]
    benchmark.extra_info.update({"provider": provider, "timings_ms": best, "bare_ms": bare_best, "total_ms": total})
    stages = ", ".join(f"{key} {value:.1f}" for key, value in best.items())
    print(f"\nlayers ({provider}, {SIDE}x{SIDE} -> {INPUT}x{INPUT}): bare session.run {bare_best:.1f} ms;")
    print(f"split best per stage (ms): {stages}; whole split {total:.1f} ms = {total / bare_best:.1f}x the bare run")
    at_least("layers inference speed vs a bare session.run", bare_best / inference, 0.8, "x")


@pytest.fixture(autouse=True)
def _forget_sessions() -> Any:
    yield
    clear_sessions()
