"""Sprite matting: a flat backdrop keyed out by a flood fill from the border, the figure kept whole."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from comfyvn.errors import Invalid, TooLarge, Unprocessable
from comfyvn_comfyui import matte as matte_module
from comfyvn_comfyui.matte import backdrop_colour, is_cutout, matte
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageDraw

WHITE = (255, 255, 255)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def rgba(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode == "RGBA"
        return np.asarray(image)


def figure(size: tuple[int, int] = (200, 300), backdrop: tuple[int, int, int] = WHITE) -> Image.Image:
    """A red body touching the bottom edge, with a white eye inside it (the colour of the backdrop)."""
    image = Image.new("RGB", size, backdrop)
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.rectangle((w // 4, h // 5, 3 * w // 4, h - 1), fill=(200, 40, 40))
    draw.rectangle((w // 2 - 10, h // 3, w // 2 + 10, h // 3 + 10), fill=backdrop)
    return image


def test_backdrop_becomes_transparent_and_figure_stays_opaque() -> None:
    out = rgba(matte(png(figure())))
    assert out.shape == (300, 200, 4)
    assert out[0, 0, 3] == 0 and out[150, 10, 3] == 0 and out[299, 0, 3] == 0
    assert out[200, 100, 3] == 255 and tuple(out[200, 100, :3]) == (200, 40, 40)


def test_backdrop_colour_inside_the_figure_is_kept() -> None:
    # The eye is pure backdrop colour but enclosed by the body: not connected to the border.
    out = rgba(matte(png(figure())))
    assert out[105, 100, 3] == 255 and tuple(out[105, 100, :3]) == WHITE


def test_backdrop_pocket_reached_around_a_corner_is_keyed() -> None:
    # An L-shaped gap opening to the border: reachable only by turning (rows, then columns).
    image = Image.new("RGB", (120, 120), WHITE)
    draw = ImageDraw.Draw(image)
    draw.rectangle((20, 20, 100, 119), fill=(0, 0, 255))
    draw.rectangle((50, 60, 60, 119), fill=WHITE)  # a slot open at the bottom edge
    draw.rectangle((30, 60, 60, 70), fill=WHITE)  # turning left off the slot
    draw.rectangle((30, 40, 40, 70), fill=WHITE)  # and up again
    out = rgba(matte(png(image), feather=0))
    assert out[45, 35, 3] == 0  # the far end of the pocket
    assert out[30, 80, 3] == 255


def test_noise_within_tolerance_is_keyed_and_beyond_it_is_not() -> None:
    rng = np.random.default_rng(7)
    array = np.clip(240 + rng.integers(-12, 13, (120, 100, 3)), 0, 255).astype(np.uint8)
    array[40:80, 30:70] = (20, 30, 40)
    out = rgba(matte(png(Image.fromarray(array)), tolerance=24, feather=0))
    alpha = out[:, :, 3]
    assert (alpha[:40] == 0).all() and (alpha[80:] == 0).all()
    assert (alpha[40:80, 30:70] == 255).all()
    # With a tolerance below the noise, only part of the border matches: not a flat backdrop, unchanged.
    data = png(Image.fromarray(array))
    assert matte(data, tolerance=2) == data


def test_gradient_backdrop_is_left_alone() -> None:
    gradient = np.tile(np.linspace(0, 255, 160, dtype=np.uint8)[:, None, None], (1, 90, 3))
    data = png(Image.fromarray(gradient))
    assert backdrop_colour(data) is None
    assert matte(data) == data
    assert not is_cutout(data)


def test_coloured_backdrop_and_feathered_edge() -> None:
    green = (0, 200, 0)
    out = rgba(matte(png(figure(backdrop=green)), feather=2))
    assert out[5, 5, 3] == 0
    # The body's left edge is at x=50: a ramp of two feather steps, then fully opaque.
    assert out[200, 50, 3] == round(255 / 3) and out[200, 51, 3] == round(510 / 3) and out[200, 52, 3] == 255
    assert backdrop_colour(png(figure(backdrop=green))) == green


def test_no_feather_gives_a_hard_edge() -> None:
    out = rgba(matte(png(figure()), feather=0))
    assert out[200, 49, 3] == 0 and out[200, 50, 3] == 255


def test_is_cutout_after_matte_and_not_before() -> None:
    data = png(figure())
    assert not is_cutout(data)
    assert is_cutout(matte(data))


def test_already_transparent_picture_is_returned_unchanged() -> None:
    data = matte(png(figure()))
    assert matte(data) == data


def test_full_frame_picture_is_not_a_cutout() -> None:
    array = np.random.default_rng(1).integers(0, 256, (64, 48, 3), dtype=np.uint8)
    data = png(Image.fromarray(array))
    assert matte(data) == data and not is_cutout(data)


def test_sprite_sized_render_mattes_well_under_a_second() -> None:
    data = png(figure(size=(832, 1216)))
    matte(data)  # warm numpy's code paths once
    started = time.perf_counter()
    out = matte(data)
    assert time.perf_counter() - started < 1.0
    assert is_cutout(out)


def test_bad_input_raises_meaningful_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(Unprocessable) as caught:
        matte(b"not a png")
    assert caught.value.field == "image"
    with pytest.raises(Invalid):
        matte(b"")
    with pytest.raises(Invalid) as bad_tolerance:
        matte(png(figure()), tolerance=300)
    assert bad_tolerance.value.field == "tolerance"
    with pytest.raises(Invalid):
        matte(png(figure()), feather=-1)
    monkeypatch.setattr(matte_module, "MAX_PIXELS", 100)
    with pytest.raises(TooLarge):
        matte(png(figure()))


@given(
    backdrop=st.tuples(*[st.integers(0, 255)] * 3),
    box=st.tuples(st.integers(1, 30), st.integers(1, 30), st.integers(1, 30), st.integers(1, 30)),
    fill=st.tuples(*[st.integers(0, 255)] * 3),
)
def test_matte_keys_exactly_the_backdrop_around_any_box(
    backdrop: tuple[int, int, int], box: tuple[int, int, int, int], fill: tuple[int, int, int]
) -> None:
    left, top, width, height = box
    image = Image.new("RGB", (64, 64), backdrop)
    ImageDraw.Draw(image).rectangle((left, top, left + width, top + height), fill=fill)
    out = rgba(matte(png(image), tolerance=0, feather=0))
    inside = np.zeros((64, 64), dtype=bool)
    inside[top : top + height + 1, left : left + width + 1] = True
    # Where the box has the backdrop's colour it is backdrop too; everything else keeps full alpha.
    expect_clear = ~inside | (fill == backdrop)
    assert ((out[:, :, 3] == 0) == expect_clear).all()
    assert (out[:, :, :3][~expect_clear] == fill).all()
