"""Pictures fitted to the screen: what an image file holds (size, visible part) and how to show it.

Ren'Py draws an image at its own pixel size, so a small background leaves the screen half empty and a
tall sprite loses its head. The exporter reads each file's header (and, for pictures with an alpha
channel, the box around their visible pixels) once, then writes Ren'Py ``Transform`` expressions that
crop and scale them: backgrounds cover the whole screen (centred crop), sprites fit the stage with their
feet on the bottom edge, portraits fit the side-image box. It also draws the backdrop for scenes that
have no background: the cast's art blurred and darkened, else a dusk gradient.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from pathlib import Path

import attrs
from PIL import Image, ImageEnhance, ImageFilter, UnidentifiedImageError

from .gui import GuiSpec
from .gui_images import png_bytes
from .names import py_literal

__all__ = [
    "Picture",
    "backdrop_png",
    "cover_crop",
    "fit_zoom",
    "probe",
    "union_box",
]

# Bigger pictures are not decoded to find their visible box (they are shown whole): bounded memory.
MAX_DECODED_PIXELS = 40_000_000
Box = tuple[int, int, int, int]


@attrs.frozen
class Picture:
    """An image file as the exporter sees it: pixel ``size`` and ``box`` (left, top, right, bottom) of
    its visible pixels; ``cutout`` when transparent pixels surround the figure (a standing sprite)."""

    size: tuple[int, int]
    box: Box
    cutout: bool


def probe(path: Path) -> Picture | None:
    """Size and visible box of the image at ``path``; None when Pillow cannot read it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                full = (0, 0, width, height)
                has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
                if width <= 0 or height <= 0:
                    return None
                if not has_alpha or width * height > MAX_DECODED_PIXELS:
                    return Picture((width, height), full, False)
                alpha = image.convert("RGBA").getchannel("A")
                # Nearly invisible fringes (alpha < 8) do not count as part of the figure.
                box = alpha.point(lambda a: 255 if a >= 8 else 0).getbbox()
    except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError):
        return None
    if box is None:
        return Picture((width, height), full, False)
    return Picture((width, height), box, box != full)


def union_box(pictures: Sequence[Picture]) -> Box:
    """The smallest box holding the visible part of every picture (all of the same size)."""
    return (
        min(p.box[0] for p in pictures),
        min(p.box[1] for p in pictures),
        max(p.box[2] for p in pictures),
        max(p.box[3] for p in pictures),
    )


def fit_zoom(width: int, height: int, max_width: int, max_height: int) -> float:
    """The scale that makes ``width`` x ``height`` as large as possible inside ``max_width`` x ``max_height``."""
    return min(max_width / width, max_height / height)


def cover_crop(size: tuple[int, int], width: int, height: int) -> Box:
    """The centred part of an image of ``size`` with the aspect of ``width`` x ``height`` (scale to cover)."""
    source_w, source_h = size
    scale = max(width / source_w, height / source_h)
    crop_w = min(source_w, round(width / scale))
    crop_h = min(source_h, round(height / scale))
    left = (source_w - crop_w) // 2
    top = (source_h - crop_h) // 2
    return (left, top, crop_w, crop_h)


def _zoom(value: float) -> str:
    return repr(round(value, 5))


def background_expr(file: str, picture: Picture | None, spec: GuiSpec) -> str:
    """A displayable that covers the whole screen with ``file`` (scaled, centred, the overflow cropped)."""
    if picture is None:
        return f"Transform({py_literal(file)}, xysize=({spec.width}, {spec.height}))"
    crop = cover_crop(picture.size, spec.width, spec.height)
    return f"Transform({py_literal(file)}, crop={crop!r}, xysize=({spec.width}, {spec.height}))"


def _fitted(file: str, picture: Picture, box: Box, max_width: int, max_height: int) -> str:
    """``file`` cropped to ``box`` (left, top, right, bottom; no crop when it is the whole picture) and
    scaled to fit ``max_width`` x ``max_height``."""
    left, top, right, bottom = box
    zoom = fit_zoom(right - left, bottom - top, max_width, max_height)
    crop = (left, top, right - left, bottom - top)
    if crop == (0, 0, *picture.size):
        return f"Transform({py_literal(file)}, zoom={_zoom(zoom)})"
    return f"Transform({py_literal(file)}, crop={crop!r}, zoom={_zoom(zoom)})"


def sprite_expr(file: str, picture: Picture | None, box: Box | None, spec: GuiSpec) -> str:
    """A standing sprite: cropped to ``box`` (its visible part) and scaled to fit the stage, feet at the
    bottom of the cropped box, so the position transforms (``yalign 1.0``) put them on the screen's edge."""
    if picture is None:
        return (
            f"Transform({py_literal(file)}, fit='contain', xysize=({spec.sprite_max_width}, {spec.sprite_max_height}))"
        )
    return _fitted(file, picture, box or (0, 0, *picture.size), spec.sprite_max_width, spec.sprite_max_height)


def side_expr(file: str, picture: Picture | None, spec: GuiSpec) -> str:
    """A portrait fitted into the side-image box beside the text box (transparent margins cropped)."""
    box_w, box_h = spec.side_image_width, spec.side_image_height
    if picture is None:
        return f"Transform({py_literal(file)}, fit='contain', xysize=({box_w}, {box_h}))"
    return _fitted(file, picture, picture.box if picture.cutout else (0, 0, *picture.size), box_w, box_h)


def placeholder_sprite_expr(colour: str, spec: GuiSpec) -> str:
    """The neutral figure drawn for a missing sprite, tinted ``colour`` and fitted like a real sprite."""
    zoom = fit_zoom(200, 480, spec.sprite_max_width, round(spec.sprite_max_height * 0.85))
    return f"Transform('gui/placeholder_sprite.png', zoom={_zoom(zoom)}, matrixcolor=TintMatrix({py_literal(colour)}))"


def _gradient(width: int, height: int) -> Image.Image:
    stops = ((0.0, (18, 22, 44)), (0.55, (52, 40, 72)), (1.0, (14, 15, 26)))
    column = Image.new("RGB", (1, height))
    for y in range(height):
        t = y / max(1, height - 1)
        for (t0, c0), (t1, c1) in itertools.pairwise(stops):
            if t0 <= t <= t1:
                k = (t - t0) / (t1 - t0)
                column.putpixel((0, y), tuple(round(a + (b - a) * k) for a, b in zip(c0, c1, strict=True)))
                break
    return column.resize((width, height), Image.Resampling.NEAREST)


def backdrop_png(source: Path | None, spec: GuiSpec) -> bytes:
    """The backdrop of scenes without a background, at a quarter of the screen size (the game scales it):
    ``source`` (the cast's art) covering the frame, blurred and darkened; a dusk gradient without one."""
    width, height = max(16, spec.width // 4), max(9, spec.height // 4)
    image: Image.Image | None = None
    if source is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(source) as opened:
                    art = opened.convert("RGBA")
            art.thumbnail((width * 2, height * 2 * 3))
            base = Image.new("RGBA", art.size, (16, 19, 31, 255))
            base.alpha_composite(art)
            left, top, crop_w, crop_h = cover_crop(base.size, width, height)
            image = base.crop((left, top, left + crop_w, top + crop_h)).resize(
                (width, height), Image.Resampling.BICUBIC
            )
            image = image.convert("RGB").filter(ImageFilter.GaussianBlur(radius=max(4, width // 40)))
            image = ImageEnhance.Brightness(image).enhance(0.45)
        except (OSError, ValueError, Image.DecompressionBombError):
            image = None
    if image is None:
        image = _gradient(width, height)
    return png_bytes(image)
