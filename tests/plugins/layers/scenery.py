"""A figure on scenery whose depth is known under `onnx_models.brightness_model` (depth = brightness): a dark
figure (near) in front of a bright sky, bright houses and a pale meadow (far). The border is not one flat
colour, so a flood fill from the border (the ComfyUI bridge's own matte) has nothing to key."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["FIGURE", "HEIGHT", "SCENERY", "WIDTH", "figure_on_scenery"]

WIDTH, HEIGHT = 96, 128
#: Points (x, y) well inside the figure (head, chest, legs) and out in the scenery (sky, houses, meadow).
FIGURE = ((48, 22), (48, 60), (40, 110))
SCENERY = ((2, 2), (93, 10), (8, 70), (88, 80), (20, 120), (90, 125))


def figure_on_scenery() -> bytes:
    """An RGB PNG, `WIDTH` x `HEIGHT`: the figure of `FIGURE` on the scenery of `SCENERY`."""
    pixels = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    for y in range(HEIGHT):
        pixels[y, :] = (150 + y * 60 // HEIGHT, 180 + y * 40 // HEIGHT, 250)  # sky, paler toward the horizon
    pixels[HEIGHT * 3 // 4 :, :] = (190, 235, 170)  # meadow
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    for x in range(0, WIDTH, 24):
        draw.rectangle((x, HEIGHT // 2, x + 12, HEIGHT * 3 // 4), fill=(245, 215, 190))  # houses
    draw.ellipse((38, 12, 58, 32), fill=(70, 45, 40))  # head
    draw.rectangle((32, 32, 64, 124), fill=(30, 40, 80))  # body and legs
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
