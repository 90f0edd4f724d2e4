"""A depth map -> N planes, far to near: a partition by depth, then RGBA layers a game can move apart.

`split_depth` labels every pixel with exactly one plane (0 = farthest), cutting the depth range at
quantiles (planes of about equal area) or by 1-D k-means (cuts where the depth histogram has gaps), or at
explicit thresholds. `iter_planes` / `build_planes` turn the labels into layers: plane ``i`` shows its own
pixels, is opaque over everything nearer (the hole the nearer planes leave is inpainted, so moving them
reveals background, not emptiness) and transparent over everything farther; its edge toward the farther
planes, the only edge it has, is feathered inward by ``feather`` pixels. The farthest plane is the
backdrop: fully opaque.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import attrs
import cv2
import numpy as np
from comfyvn.errors import Invalid

from .inpaint import fill_holes

__all__ = [
    "MAX_PLANES",
    "METHODS",
    "MIN_PLANES",
    "DepthSplit",
    "Plane",
    "build_planes",
    "feather_alpha",
    "iter_planes",
    "parallax_factors",
    "split_depth",
]

METHODS = ("quantile", "kmeans")
MIN_PLANES, MAX_PLANES = 2, 8
MAX_FEATHER = 64
_BINS = 1024  # k-means runs on a depth histogram: exact enough, and independent of the image size


@attrs.frozen
class DepthSplit:
    """``labels``: uint8 H x W, the plane of each pixel (0 = farthest). ``cuts``: the ascending depth cut
    points. ``ranges``: per plane far -> near, ``(lo, hi)`` in depth (0 near .. 1 far), so they decrease."""

    labels: np.ndarray
    cuts: tuple[float, ...]
    ranges: tuple[tuple[float, float], ...]
    method: str

    @property
    def count(self) -> int:
        return len(self.ranges)


@attrs.frozen
class Plane:
    """One layer, far -> near by ``index``. ``rgba``: H x W x 4 uint8 (holes filled, edge feathered);
    ``mask``: the hard partition mask (bool H x W) before filling and feathering."""

    index: int
    rgba: np.ndarray
    mask: np.ndarray
    depth: tuple[float, float]
    coverage: float
    parallax: float


def _check_count(count: int) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or not MIN_PLANES <= count <= MAX_PLANES:
        raise Invalid(f"planes must be a whole number from {MIN_PLANES} to {MAX_PLANES}", field="planes")


def _kmeans_cuts(depth: np.ndarray, count: int) -> np.ndarray:
    hist, edges = np.histogram(depth, bins=_BINS, range=(0.0, 1.0))
    centres = (edges[:-1] + edges[1:]) / 2
    weights = hist.astype(np.float64)
    # Start from the quantiles (deterministic, and already a fair answer); Lloyd's steps on the histogram.
    cdf = np.cumsum(weights) / weights.sum()
    means = centres[np.minimum(np.searchsorted(cdf, (np.arange(count) + 0.5) / count), _BINS - 1)].copy()
    for _ in range(100):
        cuts = (means[:-1] + means[1:]) / 2
        group = np.searchsorted(cuts, centres, side="right")
        mass = np.bincount(group, weights=weights, minlength=count)
        sums = np.bincount(group, weights=weights * centres, minlength=count)
        updated = np.where(mass > 0, sums / np.maximum(mass, 1e-12), means)
        updated.sort()
        if np.allclose(updated, means, atol=1e-7):
            break
        means = updated
    final: np.ndarray = (means[:-1] + means[1:]) / 2
    return final


def split_depth(
    depth: np.ndarray, count: int = 3, method: str = "quantile", thresholds: Sequence[float] | None = None
) -> DepthSplit:
    """Partition ``depth`` (float H x W, 0 near .. 1 far) into ``count`` planes. ``thresholds``, when given,
    are the ``count - 1`` ascending cut points in (0, 1) and override ``method``."""
    if depth.ndim != 2 or depth.size == 0:
        raise Invalid("the depth map must be a non-empty 2-D array", field="depth")
    _check_count(count)
    if method not in METHODS:
        raise Invalid(f"unknown method {method[:40]!r}: use one of {', '.join(METHODS)}", field="method")
    values = np.clip(np.nan_to_num(depth.astype(np.float32, copy=False), nan=1.0), 0.0, 1.0)
    if thresholds is not None:
        cuts = np.asarray(list(thresholds), np.float64)
        if (
            len(cuts) != count - 1
            or not np.all(np.isfinite(cuts))
            or np.any(cuts <= 0)
            or np.any(cuts >= 1)
            or np.any(np.diff(cuts) <= 0)
        ):
            raise Invalid(
                f"thresholds must be {count - 1} ascending numbers strictly between 0 and 1", field="thresholds"
            )
    elif method == "quantile":
        cuts = np.quantile(values, np.arange(1, count) / count)
    else:
        cuts = _kmeans_cuts(values, count)
    cuts = np.maximum.accumulate(cuts)  # float noise must never make the cuts descend
    nearness = np.searchsorted(cuts.astype(np.float32), values, side="right")  # 0 = nearest bin
    labels = (count - 1 - nearness).astype(np.uint8)
    bounds = [0.0, *(float(c) for c in cuts), 1.0]
    ranges = tuple((bounds[count - 1 - i], bounds[count - i]) for i in range(count))
    return DepthSplit(labels=labels, cuts=tuple(float(c) for c in cuts), ranges=ranges, method=method)


def parallax_factors(ranges: Sequence[tuple[float, float]]) -> list[float]:
    """How far each plane (far -> near) moves relative to the nearest: ``1 - mid depth`` scaled so the
    nearest plane is 1.0, never below 0.05 (even the horizon drifts a little)."""
    raw = [1.0 - (lo + hi) / 2 for lo, hi in ranges]
    nearest = max(raw[-1], 1e-6)
    return [round(min(1.0, max(0.05, r / nearest)), 4) for r in raw]


def feather_alpha(solid: np.ndarray, feather: int) -> np.ndarray:
    """``solid`` (bool) as alpha 0..1, ramping down over ``feather`` pixels inside its edge. The image
    border is not an edge: a plane reaching it stays opaque there."""
    if feather <= 0 or solid.all():
        return solid.astype(np.float32)
    padded = np.pad(solid.astype(np.uint8), feather + 1, mode="edge")
    inside = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    pad = feather + 1
    dist = inside[pad:-pad, pad:-pad]
    return np.minimum(dist / (feather + 1), 1.0).astype(np.float32)


def _as_rgba(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise Invalid("the image must be H x W x 3 (RGB) or H x W x 4 (RGBA) uint8", field="image")
    if image.shape[2] == 4:
        return image
    return np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])


def iter_planes(image: np.ndarray, split: DepthSplit, *, feather: int = 4) -> Iterator[Plane]:
    """The planes of ``image`` (RGB or RGBA uint8, the size of the split) far -> near, one at a time so a
    large image never holds them all at once. A transparent source pixel stays transparent in every plane."""
    rgba = _as_rgba(image)
    if rgba.shape[:2] != split.labels.shape:
        raise Invalid("the image and the depth map differ in size", field="depth")
    if isinstance(feather, bool) or not isinstance(feather, int) or not 0 <= feather <= MAX_FEATHER:
        raise Invalid(f"feather must be a whole number of pixels from 0 to {MAX_FEATHER}", field="feather")
    rgb, source_alpha = np.ascontiguousarray(rgba[:, :, :3]), rgba[:, :, 3]
    labels, total = split.labels, split.labels.size
    parallax = parallax_factors(split.ranges)
    for index in range(split.count):
        mask = labels == index
        nearer = labels > index
        colour = fill_holes(rgb, nearer) if nearer.any() else rgb.copy()
        alpha = feather_alpha(labels >= index, feather if index > 0 else 0)
        alpha *= source_alpha.astype(np.float32) * (1 / 255)
        out = np.dstack([colour, np.rint(alpha * 255).astype(np.uint8)])
        yield Plane(
            index=index,
            rgba=out,
            mask=mask,
            depth=split.ranges[index],
            coverage=float(np.count_nonzero(mask)) / total,
            parallax=parallax[index],
        )


def build_planes(image: np.ndarray, split: DepthSplit, *, feather: int = 4) -> list[Plane]:
    """All planes of `iter_planes` as a list, far -> near."""
    return list(iter_planes(image, split, feather=feather))
