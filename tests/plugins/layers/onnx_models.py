"""Tiny ONNX depth models built at test time with ``onnx.helper``, whose depth is a known function of the
pixel, plus broken ones. Settings (normalisation, output kind) go into the model's metadata, as a real
exporter would put them, unless a test wants them in a sidecar.

- `brightness_model`: depth = mean of the three input channels (fed as x / 255 with mean 0, std 1, so
  depth is the pixel's brightness in 0..1): dark pixels are near, bright ones far.
- `row_model`: depth = the pixel's row counted from the bottom: the top of the picture is far, the
  bottom near, like a landscape photo; the input only sets the shape.
- ``output="inverse_depth"`` on either makes the same graph claim inverse depth: bright becomes near.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = [
    "brightness_model",
    "colour_output_model",
    "model_bytes",
    "row_model",
    "two_input_model",
    "write",
    "wrong_rank_model",
]

PLAIN = {"mean": "[0, 0, 0]", "std": "[1, 1, 1]"}  # the model sees x / 255 exactly
OPSET = 18


def model_bytes(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    *,
    initializers: list[onnx.TensorProto] | None = None,
    metadata: dict[str, str] | None = None,
) -> bytes:
    """A checked ONNX model with ``metadata`` in its ``metadata_props``, serialised."""
    graph = helper.make_graph(nodes, "depth", inputs, outputs, initializer=initializers or [])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="comfyvn-tests")
    model.ir_version = 8  # readable by every onnxruntime the plugin accepts (>= 1.17)
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data


def _image(shape: list[Any], name: str = "image", dtype: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


def brightness_model(
    size: int | None = 64,
    *,
    output: str | None = "depth",
    four_d: bool = True,
    metadata: dict[str, str | None] | None = None,
) -> bytes:
    """depth = channel mean. ``size=None``: dynamic height and width. ``four_d=False``: output N,H,W.
    ``metadata`` entries override the defaults; a ``None`` value (or ``output=None``) leaves a key out."""
    h, w = (size, size) if size else ("height", "width")
    nodes = [helper.make_node("ReduceMean", ["image", "axes"], ["depth"], keepdims=1 if four_d else 0)]
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    out_shape = [1, 1, h, w] if four_d else [1, h, w]
    meta = {**PLAIN, "output": output, **(metadata or {})}
    return model_bytes(
        nodes,
        [_image([1, 3, h, w])],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, out_shape)],
        initializers=[axes],
        metadata={k: v for k, v in meta.items() if v is not None},
    )


def row_model(size: int = 64, *, output: str = "depth") -> bytes:
    """depth = ``size - 1 - row`` for every column: the top row farthest. Fixed ``size`` x ``size`` input."""
    ramp = np.arange(size - 1, -1, -1, dtype=np.float32).reshape(1, 1, size, 1)
    nodes = [
        helper.make_node("ReduceMean", ["image", "axes"], ["mean"], keepdims=1),
        helper.make_node("Mul", ["mean", "zero"], ["flat"]),
        helper.make_node("Add", ["flat", "ramp"], ["depth"]),
    ]
    initializers = [
        numpy_helper.from_array(np.array([1], np.int64), "axes"),
        numpy_helper.from_array(np.zeros((1,), np.float32), "zero"),
        numpy_helper.from_array(ramp, "ramp"),
    ]
    return model_bytes(
        nodes,
        [_image([1, 3, size, size])],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, 1, size, size])],
        initializers=initializers,
        metadata={**PLAIN, "output": output},
    )


def two_input_model() -> bytes:
    """Two image inputs summed: not a depth model this plugin can feed."""
    nodes = [
        helper.make_node("Add", ["image", "other"], ["sum"]),
        helper.make_node("ReduceMean", ["sum", "axes"], ["depth"], keepdims=1),
    ]
    return model_bytes(
        nodes,
        [_image([1, 3, 8, 8]), _image([1, 3, 8, 8], "other")],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, 1, 8, 8])],
        initializers=[numpy_helper.from_array(np.array([1], np.int64), "axes")],
    )


def wrong_rank_model() -> bytes:
    """A 3-D (C, H, W) input: no batch dimension."""
    nodes = [helper.make_node("ReduceMean", ["image", "axes"], ["depth"], keepdims=1)]
    return model_bytes(
        nodes,
        [_image([3, 8, 8])],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, 8, 8])],
        initializers=[numpy_helper.from_array(np.array([0], np.int64), "axes")],
    )


def colour_output_model() -> bytes:
    """Returns the 3-channel image itself: not single-channel depth."""
    nodes = [helper.make_node("Identity", ["image"], ["depth"])]
    return model_bytes(
        nodes, [_image([1, 3, 8, 8])], [helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, 3, 8, 8])]
    )


def write(folder: Path, name: str, data: bytes) -> Path:
    """``data`` written to ``folder/name``; the path."""
    path = folder / name
    path.write_bytes(data)
    return path
