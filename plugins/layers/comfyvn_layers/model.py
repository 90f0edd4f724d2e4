"""What a depth model expects and returns, read from the ONNX graph, its metadata and an optional sidecar.

A usable model has one image input (4-D NCHW float, 3 channels) and a single-channel depth output (3-D
``N,H,W`` or 4-D ``N,1,H,W``). What the graph cannot say comes from settings, later sources overriding
earlier ones: the defaults, then the model's ``custom_metadata_map``, then a sidecar JSON file named like
the model with ``.json`` for its suffix (``midas_small.onnx`` -> ``midas_small.json``)::

    {"input_size": 518 | [h, w], "multiple": 14, "mean": [r, g, b], "std": [r, g, b],
     "output": "depth" | "inverse_depth"}

Metadata values are the same, as JSON text (``"[0.5, 0.5, 0.5]"``) or a bare word. The defaults fit the
common models (MiDaS, DPT, Depth Anything): ImageNet mean/std and inverse (relative) depth output.
Every problem is `Unprocessable` with code ``invalid_model``, naming files by base name only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from comfyvn.errors import Unprocessable

from .runtime import file_sha256, session_for

__all__ = [
    "DEFAULT_SIZE",
    "OUTPUT_KINDS",
    "SETTING_KEYS",
    "ModelInfo",
    "inspect_model",
    "metadata_settings",
    "parse_settings",
    "read_sidecar",
    "round_to_multiple",
    "sidecar_path",
]

DEFAULT_SIZE = 518  # Depth Anything's training size; MiDaS-style fixed models say their own.
DEFAULT_MULTIPLE_DYNAMIC = 14  # ViT patch size of DA-V2 and DPT-hybrid; a fixed input needs none.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OUTPUT_KINDS = ("depth", "inverse_depth")
SETTING_KEYS = ("input_size", "multiple", "mean", "std", "output")
MAX_SIDE = 4096
MAX_SIDECAR_BYTES = 64 * 1024
_FLOAT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16"}


@attrs.frozen
class ModelInfo:
    """A depth model as the pipeline will feed it. ``input_shape`` has ``None`` for dynamic dimensions;
    ``height`` x ``width`` is the size fed (the fixed one, or the configured size rounded to ``multiple``);
    ``mean``/``std`` are RGB on the 0..1 scale."""

    path: Path
    sha256: str
    input_name: str
    input_shape: tuple[int | None, ...]
    input_type: str
    height: int
    width: int
    multiple: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    output_name: str
    output_kind: str
    layout: str = "NCHW"

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary without any server path (the file by base name)."""
        return {
            "file": self.path.name,
            "sha256": self.sha256,
            "input_name": self.input_name,
            "input_shape": list(self.input_shape),
            "input_type": self.input_type,
            "input": [1, 3, self.height, self.width],
            "multiple": self.multiple,
            "mean": list(self.mean),
            "std": list(self.std),
            "output_name": self.output_name,
            "output": self.output_kind,
            "layout": self.layout,
        }


def _bad(message: str, field: str = "model") -> Unprocessable:
    return Unprocessable(message, field=field, code="invalid_model")


def round_to_multiple(value: int, multiple: int) -> int:
    """``value`` rounded to the nearest multiple of ``multiple`` (at least one multiple)."""
    return max(multiple, round(value / multiple) * multiple)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _side(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIDE:
        raise _bad(f"{where}: input_size must be whole numbers from 1 to {MAX_SIDE}")
    return value


def parse_settings(data: Mapping[str, Any], *, where: str, strict: bool = True) -> dict[str, Any]:
    """Validated settings from ``data`` (keys of `SETTING_KEYS`), normalised: ``input_size`` becomes
    ``(h, w)``, ``mean``/``std`` 3-tuples of floats. ``where`` names the source in messages; ``strict``
    refuses unknown keys (a sidecar is ours; model metadata carries other keys too)."""
    unknown = sorted(k for k in data if k not in SETTING_KEYS)
    if strict and unknown:
        raise _bad(f"{where}: unknown key {unknown[0][:40]!r} (known: {', '.join(SETTING_KEYS)})")
    out: dict[str, Any] = {}
    if "input_size" in data:
        size = data["input_size"]
        if isinstance(size, list) and len(size) == 2:
            out["input_size"] = (_side(size[0], where), _side(size[1], where))
        elif isinstance(size, int) and not isinstance(size, bool):
            out["input_size"] = (_side(size, where), _side(size, where))
        else:
            raise _bad(f"{where}: input_size must be a number or [height, width]")
    if "multiple" in data:
        multiple = data["multiple"]
        if isinstance(multiple, bool) or not isinstance(multiple, int) or not 1 <= multiple <= 256:
            raise _bad(f"{where}: multiple must be a whole number from 1 to 256")
        out["multiple"] = multiple
    for key in ("mean", "std"):
        if key in data:
            values = data[key]
            if not (isinstance(values, list) and len(values) == 3 and all(_number(v) for v in values)):
                raise _bad(f"{where}: {key} must be a list of 3 numbers (RGB, 0..1 scale)")
            if key == "std" and not all(v > 0 for v in values):
                raise _bad(f"{where}: std values must be above 0")
            if not all(-10 <= v <= 10 for v in values):
                raise _bad(f"{where}: {key} values must be on the 0..1 scale")
            out[key] = tuple(float(v) for v in values)
    if "output" in data:
        if data["output"] not in OUTPUT_KINDS:
            raise _bad(f"{where}: output must be one of {', '.join(OUTPUT_KINDS)}")
        out["output"] = data["output"]
    return out


def metadata_settings(metadata: Mapping[str, str], *, where: str) -> dict[str, Any]:
    """Settings from an ONNX ``custom_metadata_map``: each known key's value is JSON text or a bare word."""
    data: dict[str, Any] = {}
    for key in SETTING_KEYS:
        if key in metadata:
            raw = metadata[key]
            try:
                data[key] = json.loads(raw)
            except ValueError:
                data[key] = raw.strip()
    return parse_settings(data, where=where, strict=False)


def sidecar_path(model: Path) -> Path:
    """Where a model's sidecar lives: next to it, the model's suffix replaced by ``.json``."""
    return model.with_suffix(".json")


def read_sidecar(path: Path) -> dict[str, Any]:
    """The validated settings of a sidecar JSON file (`parse_settings`, strict)."""
    where = f"sidecar {path.name!r}"
    try:
        raw = path.read_bytes()[: MAX_SIDECAR_BYTES + 1]
    except OSError as exc:
        raise _bad(f"{where} cannot be read", field="sidecar") from exc
    if len(raw) > MAX_SIDECAR_BYTES:
        raise _bad(f"{where} is over {MAX_SIDECAR_BYTES // 1024} KB", field="sidecar")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bad(f"{where} is not valid JSON", field="sidecar") from exc
    if not isinstance(data, dict):
        raise _bad(f"{where} must hold a JSON object", field="sidecar")
    try:
        return parse_settings(data, where=where)
    except Unprocessable as exc:
        raise _bad(exc.message, field="sidecar") from exc


def _dims(shape: Any) -> tuple[int | None, ...]:
    # onnxruntime gives ints for fixed dimensions and strings or None for symbolic ones.
    return tuple(d if isinstance(d, int) and d > 0 else None for d in shape)


def inspect_model(path: Path, sidecar: Path | Mapping[str, Any] | None = None, *, device: str = "cpu") -> ModelInfo:
    """Read what the model at ``path`` expects and returns. ``sidecar`` is a JSON file or an already-loaded
    mapping; without one, ``<model stem>.json`` next to the model is used when it exists. The session comes
    from `session_for` (``device``), so inspecting before a run on the same device loads the model once."""
    path = Path(path)
    name = path.name
    session, _, _ = session_for(path, device)
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise _bad(f"depth model {name!r} has {len(inputs)} inputs; it must take exactly one image")
    if not outputs:
        raise _bad(f"depth model {name!r} has no output")
    image, depth = inputs[0], outputs[0]
    shape = _dims(image.shape)
    if len(shape) != 4:
        raise _bad(f"depth model {name!r}: the input must be 4-D (N, 3, H, W), it is {len(shape)}-D")
    if shape[0] not in (None, 1) or shape[1] not in (None, 3):
        raise _bad(f"depth model {name!r}: the input must be (1, 3, H, W) NCHW, it is {list(shape)}")
    if image.type not in _FLOAT_TYPES:
        raise _bad(f"depth model {name!r}: the input must be float or float16, it is {image.type}")
    out_shape = _dims(depth.shape)
    if len(out_shape) not in (3, 4) or (len(out_shape) == 4 and out_shape[1] not in (None, 1)):
        raise _bad(f"depth model {name!r}: the output must be (N, H, W) or (N, 1, H, W), it is {list(out_shape)}")

    where = f"depth model {name!r} metadata"
    settings = metadata_settings(session.get_modelmeta().custom_metadata_map, where=where)
    if sidecar is None and sidecar_path(path).is_file():
        sidecar = sidecar_path(path)
    if isinstance(sidecar, Path):
        settings.update(read_sidecar(sidecar))
    elif sidecar is not None:
        try:
            settings.update(parse_settings(sidecar, where="sidecar"))
        except Unprocessable as exc:
            raise _bad(exc.message, field="sidecar") from exc

    fixed_h, fixed_w = shape[2], shape[3]
    dynamic = fixed_h is None or fixed_w is None
    multiple = settings.get("multiple", DEFAULT_MULTIPLE_DYNAMIC if dynamic else 1)
    want_h, want_w = settings.get("input_size", (DEFAULT_SIZE, DEFAULT_SIZE))
    height = fixed_h if fixed_h is not None else round_to_multiple(want_h, multiple)
    width = fixed_w if fixed_w is not None else round_to_multiple(want_w, multiple)
    if "input_size" in settings and not dynamic and settings["input_size"] != (fixed_h, fixed_w):
        raise _bad(
            f"depth model {name!r}: input_size {list(settings['input_size'])} does not match its fixed input"
            f" {fixed_h}x{fixed_w}"
        )
    return ModelInfo(
        path=path,
        sha256=file_sha256(path),
        input_name=image.name,
        input_shape=shape,
        input_type=_FLOAT_TYPES[image.type],
        height=height,
        width=width,
        multiple=multiple,
        mean=settings.get("mean", IMAGENET_MEAN),
        std=settings.get("std", IMAGENET_STD),
        output_name=depth.name,
        output_kind=settings.get("output", "inverse_depth"),
    )
