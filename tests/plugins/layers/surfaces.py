"""Helpers of the surface tests (routes, CLI, jobs, plugin): a picture whose depth is known under
`onnx_models.brightness_model`, and the models written to files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from .onnx_models import brightness_model, two_input_model, write, wrong_rank_model

__all__ = ["BANDS", "alpha_at", "bad_models", "band_centre", "banded_png", "good_model"]

# Three vertical bands, left to right: dark (near), mid grey, bright (far) under the brightness model.
BANDS = (30, 128, 230)


def banded_png(width: int = 96, height: int = 64) -> bytes:
    """An RGB PNG of three vertical bands of `BANDS` grey levels."""
    pixels = np.zeros((height, width, 3), np.uint8)
    for n, level in enumerate(BANDS):
        pixels[:, n * width // 3 : (n + 1) * width // 3] = level
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def band_centre(band: int, width: int = 96, height: int = 64) -> tuple[int, int]:
    """(x, y) in the middle of ``band`` (0 = left), far from any edge a feather could touch."""
    return (band * width // 3 + width // 6, height // 2)


def alpha_at(png: bytes | Path, xy: tuple[int, int]) -> int:
    """The alpha of one pixel of an RGBA PNG."""
    data = png.read_bytes() if isinstance(png, Path) else png
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode == "RGBA"
        value = image.getpixel(xy)
        assert isinstance(value, tuple)
        return int(value[3])


def good_model(folder: Path) -> Path:
    """A dynamic-input brightness model (depth = brightness, so bright is far)."""
    return write(folder, "bright.onnx", brightness_model(None))


def bad_models(folder: Path) -> dict[str, Path]:
    """Models no split can use, by what is wrong with them."""
    full = brightness_model(None)
    return {
        "not_onnx": write(folder, "notes.onnx", b"this is not a model"),
        "truncated": write(folder, "cut.onnx", full[: len(full) // 2]),
        "two_inputs": write(folder, "two.onnx", two_input_model()),
        "wrong_rank": write(folder, "rank.onnx", wrong_rank_model()),
    }
