"""Depth -> planes: a partition ordered far -> near, holes filled, edges feathered; and the figure matte."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from comfyvn.errors import Invalid
from comfyvn_layers.inpaint import fill_holes
from comfyvn_layers.matte import cut_figure
from comfyvn_layers.planes import build_planes, feather_alpha, parallax_factors, split_depth
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays


def ramp(height: int, width: int = 8) -> np.ndarray:
    """Depth = row from the bottom: the top row farthest (1.0), the bottom nearest (0.0)."""
    column = np.linspace(1.0, 0.0, height, dtype=np.float32)
    return np.repeat(column[:, None], width, axis=1)


def test_quantile_planes_of_a_row_ramp_are_equal_bands_from_the_top() -> None:
    split = split_depth(ramp(40), 4, "quantile")
    assert split.count == 4
    for index in range(4):
        rows = np.unique(np.nonzero(split.labels == index)[0])
        assert rows.tolist() == list(range(10 * index, 10 * index + 10))  # plane 0 = the top (far) band
    his = [hi for _, hi in split.ranges]
    assert his[0] == 1.0 and split.ranges[-1][0] == 0.0
    assert all(a > b for a, b in itertools.pairwise(his))  # far -> near: ranges decrease


def test_kmeans_cuts_at_the_gaps_where_quantiles_cut_through_a_layer() -> None:
    rng = np.random.default_rng(1)
    depth = np.full((60, 60), 0.9, np.float32)  # a big far wall
    depth[30:, :] = 0.5  # a floor
    depth[40:55, 10:20] = 0.1  # a small near figure
    depth += rng.normal(0, 0.01, depth.shape).astype(np.float32)
    layer = np.where(depth > 0.7, 0, np.where(depth > 0.3, 1, 2))
    assert np.array_equal(split_depth(depth, 3, "kmeans").labels, layer)
    assert not np.array_equal(split_depth(depth, 3, "quantile").labels, layer)


def test_explicit_thresholds_override_the_method() -> None:
    split = split_depth(ramp(10), 3, "kmeans", thresholds=[0.25, 0.6])
    assert split.cuts == (0.25, 0.6)
    assert split.ranges == ((0.6, 1.0), (0.25, 0.6), (0.0, 0.25))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"count": 1}, "planes"),
        ({"count": 9}, "planes"),
        ({"count": True}, "planes"),
        ({"method": "otsu"}, "method"),
        ({"count": 3, "thresholds": [0.5]}, "thresholds"),
        ({"count": 3, "thresholds": [0.6, 0.4]}, "thresholds"),
        ({"count": 2, "thresholds": [1.0]}, "thresholds"),
    ],
)
def test_bad_split_arguments_are_invalid_naming_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(Invalid) as caught:
        split_depth(ramp(8), **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_parallax_grows_toward_the_nearest_plane_which_moves_fully() -> None:
    factors = parallax_factors([(0.98, 1.0), (0.5, 0.9), (0.0, 0.5)])
    assert factors == [0.05, 0.4, 1.0]  # (1 - 0.99) / 0.75 = 0.013 is under the floor; 0.3 / 0.75 = 0.4


def scene() -> tuple[np.ndarray, np.ndarray]:
    """A striped red far wall, a green middle band, a solid blue near square; depth to match."""
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:, :, 0] = 200 + (np.arange(64) % 4 == 0) * 40  # stripes: texture the fill must continue
    depth = np.full((48, 64), 0.95, np.float32)
    rgb[24:, :] = (40, 180, 40)
    depth[24:, :] = 0.5
    rgb[14:38, 20:44] = (20, 20, 230)
    depth[14:38, 20:44] = 0.05
    return rgb, depth


def test_nearer_planes_leave_filled_opaque_holes_behind_them_and_the_backdrop_is_opaque() -> None:
    rgb, depth = scene()
    planes = build_planes(rgb, split_depth(depth, 3, "kmeans"), feather=0)
    far, middle, near = planes
    assert far.rgba[:, :, 3].min() == 255  # the backdrop
    square = (slice(14, 38), slice(20, 44))
    # Behind the blue square the far wall is red again (filled from its surroundings), never blue.
    hole = far.rgba[square]
    assert hole[:, :, 2].max() < 100 and hole[:10, :, 0].min() > 150
    assert middle.rgba[24:38, 20:44, 3].min() == 255 and middle.rgba[24:38, 20:44, 2].max() < 100
    assert middle.rgba[:14, :, 3].max() == 0  # transparent over the farther wall
    assert np.array_equal(near.rgba[square][:, :, :3], rgb[square]) and near.rgba[:, :, 3].sum() == 255 * 24 * 24
    # A plane's own pixels are the source pixels.
    for plane in planes:
        assert np.array_equal(plane.rgba[plane.mask][:, :3], rgb[plane.mask])


def test_feathering_ramps_the_edge_toward_farther_planes_inside_the_plane_but_not_at_the_border() -> None:
    rgb, depth = scene()
    near = build_planes(rgb, split_depth(depth, 3, "kmeans"), feather=4)[2]
    alpha = near.rgba[:, :, 3]
    assert alpha[26, 20:26].tolist() == [51, 102, 153, 204, 255, 255]  # 1/5 .. 5/5 over 4 pixels
    assert alpha[:, :20].max() == 0 and alpha[18:34, 24:40].min() == 255
    middle = build_planes(rgb, split_depth(depth, 3, "kmeans"), feather=4)[1]
    assert middle.rgba[47, :, 3].min() == 255 and middle.rgba[24:26, 5, 3].tolist() == [51, 102]


def test_a_transparent_source_pixel_stays_transparent_in_every_plane() -> None:
    rgb, depth = scene()
    rgba = np.dstack([rgb, np.full(depth.shape, 255, np.uint8)])
    rgba[0:5, 0:5, 3] = 0
    for plane in build_planes(rgba, split_depth(depth, 3), feather=2):
        assert plane.rgba[0:5, 0:5, 3].max() == 0


def test_fill_holes_at_a_large_size_continues_the_surroundings_and_keeps_the_rest() -> None:
    rgb = np.zeros((1100, 900, 3), np.uint8)
    rgb[:, :] = (30, 120, 210)
    rgb[:, 450:] = (220, 200, 40)
    hole = np.zeros(rgb.shape[:2], bool)
    hole[300:800, 100:350] = True  # inside the blue half
    rgb[hole] = (255, 0, 0)
    out = fill_holes(rgb, hole)
    assert np.array_equal(out[~hole], rgb[~hole])
    assert np.abs(out[hole].astype(int) - (30, 120, 210)).max() <= 3


@st.composite
def depth_maps(draw: st.DrawFn) -> tuple[np.ndarray, int, str]:
    height, width = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    # Few distinct levels make ties and empty planes likely, the cases a cut can get wrong.
    levels = draw(st.sampled_from([None, 2, 5]))
    values = st.floats(0, 1, width=32) if levels is None else st.sampled_from(np.linspace(0, 1, levels).tolist())
    depth = draw(arrays(np.float32, (height, width), elements=values))
    return depth, draw(st.integers(2, 8)), draw(st.sampled_from(["quantile", "kmeans"]))


@given(depth_maps())
def test_any_split_is_a_partition_ordered_far_to_near(case: tuple[np.ndarray, int, str]) -> None:
    depth, count, method = case
    split = split_depth(depth, count, method)
    assert split.labels.shape == depth.shape and split.labels.max() < count
    for index, (lo, hi) in enumerate(split.ranges):
        inside = depth[split.labels == index]
        assert lo <= hi and (inside.size == 0 or (inside.min() >= lo and inside.max() <= hi))
    # Far -> near: every pixel of a farther plane is at least as deep as every pixel of a nearer one.
    for far in range(count):
        for near in range(far + 1, count):
            a, b = depth[split.labels == far], depth[split.labels == near]
            if a.size and b.size:
                assert a.min() >= b.max()


@given(depth_maps())
def test_any_set_of_planes_partitions_the_image_and_covers_each_plane_behind_nearer_ones(
    case: tuple[np.ndarray, int, str],
) -> None:
    depth, count, method = case
    rgb = np.random.default_rng(0).integers(0, 256, (*depth.shape, 3), dtype=np.uint8)
    split = split_depth(depth, count, method)
    planes = build_planes(rgb, split, feather=0)
    masks = np.stack([p.mask for p in planes])
    assert np.array_equal(masks.sum(axis=0), np.ones(depth.shape))  # opaque in exactly one plane
    assert sum(p.coverage for p in planes) == pytest.approx(1.0)
    for plane in planes:
        assert np.array_equal(plane.rgba[:, :, 3] == 255, split.labels >= plane.index)
        assert np.array_equal(plane.rgba[:, :, 3] == 0, split.labels < plane.index)
    assert [p.parallax for p in planes] == sorted(p.parallax for p in planes) and planes[-1].parallax == 1.0


@given(st.integers(0, 8), arrays(np.bool_, (12, 12)))
def test_feathered_alpha_is_zero_outside_and_full_deep_inside(feather: int, solid: np.ndarray) -> None:
    alpha = feather_alpha(solid, feather)
    assert alpha[~solid].max(initial=0) == 0 and alpha.max(initial=0) <= 1
    assert (alpha[solid] > 0).all()


def test_cut_figure_keeps_the_near_figure_and_clears_the_backdrop() -> None:
    rgb, depth = scene()
    square = depth < 0.3
    backdrop = np.where(square, 0.05, 0.9) + np.random.default_rng(2).normal(0, 0.02, depth.shape)
    sprite = cut_figure(rgb, backdrop.astype(np.float32), feather=0)
    assert np.array_equal(sprite[:, :, 3] == 255, square) and np.array_equal(sprite[:, :, :3], rgb)
    # With three depths, a threshold chooses: past the floor keeps the floor too.
    assert np.array_equal(cut_figure(rgb, depth, 0.7, feather=0)[:, :, 3] == 255, depth < 0.7)


@pytest.mark.parametrize("threshold", [0.0, 1.0, float("nan"), True])
def test_cut_figure_refuses_a_threshold_outside_the_depth_range(threshold: float) -> None:
    rgb, depth = scene()
    with pytest.raises(Invalid) as caught:
        cut_figure(rgb, depth, threshold)
    assert caught.value.field == "threshold"
