"""Cutting a figure out of a flat render by depth: a sprite with a transparent background.

Without a threshold the depth is split in two by 1-D k-means (the figure in front of a backdrop makes two
clear modes in the depth histogram) and the nearer part is kept.
"""

from __future__ import annotations

import math

import numpy as np
from comfyvn.errors import Invalid

from .planes import MAX_FEATHER, feather_alpha, split_depth

__all__ = ["cut_figure"]


def cut_figure(rgb: np.ndarray, depth: np.ndarray, threshold: float | None = None, *, feather: int = 2) -> np.ndarray:
    """``rgb`` (H x W x 3 uint8) as RGBA where only pixels nearer than ``threshold`` (depth 0 near .. 1 far;
    default: the k-means cut between figure and backdrop) stay opaque, the edge feathered inward by
    ``feather`` pixels."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise Invalid("the image must be H x W x 3 uint8 RGB", field="image")
    if depth.shape != rgb.shape[:2]:
        raise Invalid("the image and the depth map differ in size", field="depth")
    if isinstance(feather, bool) or not isinstance(feather, int) or not 0 <= feather <= MAX_FEATHER:
        raise Invalid(f"feather must be a whole number of pixels from 0 to {MAX_FEATHER}", field="feather")
    if threshold is None:
        cut = split_depth(depth, 2, "kmeans").cuts[0]
    elif isinstance(threshold, int | float) and not isinstance(threshold, bool) and math.isfinite(threshold):
        if not 0 < threshold < 1:
            raise Invalid("threshold must be between 0 and 1 (depth: 0 nearest, 1 farthest)", field="threshold")
        cut = float(threshold)
    else:
        raise Invalid("threshold must be a number between 0 and 1", field="threshold")
    figure = depth < cut
    alpha = np.rint(feather_alpha(figure, feather) * 255).astype(np.uint8)
    return np.dstack([rgb, alpha])
