"""One image -> a depth map at full resolution: resize and normalise (numpy/OpenCV), run, normalise back.

The depth returned is relative: 0 is the nearest pixel, 1 the farthest. A model whose output is inverse
depth (disparity: bigger is nearer, as MiDaS and Depth Anything give) is flipped.
"""

from __future__ import annotations

import time

import attrs
import cv2
import numpy as np
from comfyvn.errors import Invalid, Unprocessable

from .model import ModelInfo
from .runtime import session_for

__all__ = ["DepthResult", "estimate_depth", "normalise_depth", "preprocess"]


@attrs.frozen
class DepthResult:
    """``depth``: float32 H x W in 0 (nearest) .. 1 (farthest) at the source size; ``provider``: what ran."""

    depth: np.ndarray
    provider: str
    warnings: tuple[str, ...]
    timings_ms: dict[str, float]


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


def preprocess(rgb: np.ndarray, info: ModelInfo) -> np.ndarray:
    """``rgb`` (H x W x 3 uint8) as the model's input: resized to its size, scaled to 0..1, normalised by
    mean/std, NCHW, in the model's float type."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise Invalid("the image must be H x W x 3 uint8 RGB", field="image")
    h, w = rgb.shape[:2]
    shrink = info.width < w and info.height < h
    resized = cv2.resize(rgb, (info.width, info.height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    # (x / 255 - mean) / std as one multiply-add per channel, in float32.
    scale = np.asarray([1 / (255 * s) for s in info.std], np.float32)
    shift = np.asarray([-m / s for m, s in zip(info.mean, info.std, strict=True)], np.float32)
    chw = np.empty((1, 3, info.height, info.width), np.float32)
    for c in range(3):
        np.multiply(resized[:, :, c], scale[c], out=chw[0, c], casting="unsafe")
        chw[0, c] += shift[c]
    return chw.astype(np.float16) if info.input_type == "float16" else chw


def normalise_depth(raw: np.ndarray, size: tuple[int, int], output_kind: str) -> np.ndarray:
    """The model output ``raw`` (N,H,W or N,1,H,W) as float32 ``size`` (h, w), 0 nearest .. 1 farthest."""
    plane = np.asarray(raw, dtype=np.float32).reshape(raw.shape[-2:])
    finite = np.isfinite(plane)
    if not finite.any():
        raise Unprocessable("the depth model returned no finite values", field="model", code="invalid_model")
    if not finite.all():
        # A few NaN/inf pixels (fp16 overflow) go to the far end rather than failing the whole image.
        far = plane[finite].min() if output_kind == "inverse_depth" else plane[finite].max()
        plane = np.where(finite, plane, far)
    h, w = size
    full = cv2.resize(plane, (w, h), interpolation=cv2.INTER_LINEAR) if tuple(plane.shape) != (h, w) else plane
    # The range of the full-size map, so 0 and 1 are pixels of the picture.
    lo, hi = float(full.min()), float(full.max())
    span = hi - lo
    if span <= 0:
        return np.zeros((h, w), np.float32)
    out = (full - lo) * (1 / span)
    if output_kind == "inverse_depth":
        out = 1 - out
    return np.clip(out, 0, 1, out=out).astype(np.float32, copy=False)


def estimate_depth(rgb: np.ndarray, info: ModelInfo, device: str = "auto") -> DepthResult:
    """Depth of ``rgb`` (H x W x 3 uint8) with the model ``info`` describes, on ``device``."""
    session, provider, warnings = session_for(info.path, device)
    start = time.perf_counter()
    tensor = preprocess(rgb, info)
    timings = {"preprocess": _ms(start)}
    start = time.perf_counter()
    (raw,) = session.run([info.output_name], {info.input_name: tensor})
    timings["inference"] = _ms(start)
    start = time.perf_counter()
    if raw.ndim not in (3, 4) or raw.shape[0] != 1 or (raw.ndim == 4 and raw.shape[1] != 1) or 0 in raw.shape:
        raise Unprocessable(
            f"depth model {info.path.name!r} returned shape {list(raw.shape)}; expected (1, H, W) or (1, 1, H, W)",
            field="model",
            code="invalid_model",
        )
    depth = normalise_depth(raw, rgb.shape[:2], info.output_kind)
    timings["postprocess"] = _ms(start)
    return DepthResult(depth=depth, provider=provider, warnings=tuple(warnings), timings_ms=timings)
