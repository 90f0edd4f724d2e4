"""Sprites as cut-outs: the flat backdrop of a render keyed out by a flood fill from the border.

A visual-novel sprite is a figure on transparency, but image models draw a full frame. Sprite prompts
ask for a plain flat backdrop; `matte` estimates that colour from the border, removes every pixel
within ``tolerance`` of it that is *connected to the border* (so white eyes or a white shirt inside the
figure stay), and softens the figure's edge by ``feather`` pixels. A render whose border is not one flat
colour is returned unchanged: there is no backdrop to key, and `is_cutout` then says False.

The flood fill is a connected-component search done with whole-array numpy sweeps (each pass joins
runs of backdrop pixels along rows, then along columns), so a 832x1216 render takes milliseconds rather
than the seconds a per-pixel Python fill would.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import numpy.typing as npt
from comfyvn.errors import Invalid, TooLarge, Unprocessable
from PIL import Image, UnidentifiedImageError

__all__ = ["MAX_PIXELS", "backdrop_colour", "is_cutout", "matte", "open_image"]

#: Bigger images are refused (decoding them is memory the caller did not plan for).
MAX_PIXELS = 40_000_000
#: Share of border pixels that must match the backdrop colour for the render to count as "on a backdrop"
#: (the rest may be the figure: feet on the bottom edge, hair past the top).
FLAT_BORDER_SHARE = 0.6
#: Share of transparent border pixels that makes a picture a cut-out.
CUTOUT_BORDER_SHARE = 0.5
#: Flood-fill rounds (each joins whole row runs, then whole column runs). A backdrop pocket reachable
#: only through more turns than this stays opaque: the fill stays bounded in time on adversarial input,
#: and real renders need a handful.
MAX_ROUNDS = 64
#: Alpha below this counts as transparent (the Ren'Py exporter ignores fringes under 8 as well).
TRANSPARENT_BELOW = 8

BoolArray = npt.NDArray[np.bool_]
UInt8Array = npt.NDArray[np.uint8]


def open_image(data: bytes) -> Image.Image:
    """A decoded image of at most `MAX_PIXELS` pixels; anything else raises `Invalid`, `TooLarge` or
    `Unprocessable` (never Pillow's own errors)."""
    return _open(data)


def _open(data: bytes) -> Image.Image:
    if not isinstance(data, bytes | bytearray) or not data:
        raise Invalid("image must be non-empty bytes", field="image", code="invalid_image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise TooLarge(
                    f"image is {width}x{height}, over the {MAX_PIXELS} pixel limit",
                    field="image",
                    code="image_too_large",
                )
            image.load()
    except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError, SyntaxError) as exc:
        raise Unprocessable(
            f"not a readable image ({type(exc).__name__})", field="image", code="unreadable_image"
        ) from None
    return image


def _border(array: UInt8Array) -> UInt8Array:
    """The border pixels (top and bottom rows, left and right columns, corners once) of an HxW[xC] array."""
    if array.shape[0] <= 2 or array.shape[1] <= 2:
        return array.reshape(-1, *array.shape[2:])
    return np.concatenate([array[0], array[-1], array[1:-1, 0], array[1:-1, -1]])


def _rgba(image: Image.Image) -> UInt8Array:
    return np.asarray(image.convert("RGBA"), dtype=np.uint8)


def backdrop_colour(png_bytes: bytes, *, tolerance: int = 24) -> tuple[int, int, int] | None:
    """The flat colour the picture's border is made of (the median border colour), or None when the
    border is not flat: fewer than 60 % of its pixels lie within ``tolerance`` of that colour, or the
    border is already transparent."""
    return _backdrop(_rgba(_open(png_bytes)), tolerance)


def _backdrop(rgba: UInt8Array, tolerance: int) -> tuple[int, int, int] | None:
    border = _border(rgba)
    opaque = border[border[:, 3] >= TRANSPARENT_BELOW]
    if len(opaque) < FLAT_BORDER_SHARE * len(border):
        return None  # a transparent border: already a cut-out, nothing to key
    colour = np.median(opaque[:, :3], axis=0).round().astype(np.int16)
    close = np.abs(border[:, :3].astype(np.int16) - colour).max(axis=1) <= tolerance
    if close.mean() < FLAT_BORDER_SHARE:
        return None
    return int(colour[0]), int(colour[1]), int(colour[2])


def _spread_rows(mask: BoolArray, reached: BoolArray) -> BoolArray:
    """``reached`` grown along each row through the runs of ``mask`` it touches."""
    height, width = mask.shape
    starts = mask.copy()
    starts[:, 1:] &= ~mask[:, :-1]
    run_id = np.cumsum(starts.ravel()).reshape(height, width)
    run_id[~mask] = 0
    hit = np.zeros(int(run_id.max()) + 1, dtype=bool)
    hit[run_id[reached]] = True
    hit[0] = False
    grown: BoolArray = hit[run_id]
    return grown


def _flood_from_border(mask: BoolArray) -> BoolArray:
    """The pixels of ``mask`` 4-connected to the image border through ``mask`` (see `MAX_ROUNDS`)."""
    reached = np.zeros_like(mask)
    reached[0], reached[-1], reached[:, 0], reached[:, -1] = mask[0], mask[-1], mask[:, 0], mask[:, -1]
    columns = np.ascontiguousarray(mask.T)
    count = int(reached.sum())
    for _round in range(MAX_ROUNDS):
        reached = _spread_rows(mask, reached)
        reached = np.ascontiguousarray(_spread_rows(columns, np.ascontiguousarray(reached.T)).T)
        now = int(reached.sum())
        if now == count:
            break
        count = now
    return reached


def _feathered_alpha(background: BoolArray, feather: int) -> UInt8Array:
    """255 inside the figure, 0 on the keyed backdrop, and a ramp over the ``feather`` pixels of the figure
    nearest the backdrop (8-neighbour distance), so the outline blends into any scene."""
    alpha = np.where(background, 0, 255).astype(np.uint8)
    if feather <= 0:
        return alpha
    frontier = background.copy()
    for step in range(1, feather + 1):
        # a 3x3 dilation: down/up first, then left/right of that
        grown = frontier.copy()
        grown[1:] |= frontier[:-1]
        grown[:-1] |= frontier[1:]
        box = grown.copy()
        box[:, 1:] |= grown[:, :-1]
        box[:, :-1] |= grown[:, 1:]
        alpha[box & ~frontier] = round(255 * step / (feather + 1))
        frontier = box
    return alpha


def matte(png_bytes: bytes, *, tolerance: int = 24, feather: int = 1) -> bytes:
    """An RGBA PNG of the render with its flat backdrop made transparent.

    The backdrop colour is the median border colour; every pixel within ``tolerance`` (largest channel
    difference, 0-255) of it that is connected to the border becomes transparent, the ``feather``
    outermost pixels of the figure get a linear alpha ramp. Pixels of the backdrop colour enclosed by
    the figure are kept. When the border is not a flat colour (or already transparent) the input bytes
    come back unchanged. Raises `Invalid` for bad parameters, `Unprocessable` for unreadable bytes and
    `TooLarge` past `MAX_PIXELS`.
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or not 0 <= tolerance <= 255:
        raise Invalid("tolerance must be an integer from 0 to 255", field="tolerance", code="invalid_tolerance")
    if isinstance(feather, bool) or not isinstance(feather, int) or not 0 <= feather <= 16:
        raise Invalid("feather must be an integer from 0 to 16", field="feather", code="invalid_feather")
    rgba = _rgba(_open(png_bytes))
    colour = _backdrop(rgba, tolerance)
    if colour is None:
        return bytes(png_bytes)
    close = np.abs(rgba[:, :, :3].astype(np.int16) - np.array(colour, dtype=np.int16)).max(axis=2) <= tolerance
    background = _flood_from_border(close)
    out = rgba.copy()
    out[:, :, 3] = np.minimum(rgba[:, :, 3], _feathered_alpha(background, feather))
    # Invisible pixels take the one backdrop colour: render noise there would only cost PNG bytes and time.
    out[background, :3] = colour
    buffer = io.BytesIO()
    Image.fromarray(out, "RGBA").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def is_cutout(png_bytes: bytes) -> bool:
    """True when at least half of the picture's border is transparent (alpha < 8): a figure on
    transparency, as a sprite must be. Unreadable bytes raise `Unprocessable`."""
    border = _border(_rgba(_open(png_bytes)))
    return bool((border[:, 3] < TRANSPARENT_BELOW).mean() >= CUTOUT_BORDER_SHARE)
