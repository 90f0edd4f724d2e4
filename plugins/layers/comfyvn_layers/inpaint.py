"""Filling the hole a nearer plane leaves in a farther one (OpenCV's ``cv2.inpaint``).

The Navier-Stokes method is used rather than Telea's: on a large hole Telea's gradient term drifts (a
flat blue wall comes back up to 11 levels off in places), Navier-Stokes continues it exactly, and it is a
little faster. At full resolution either costs over half a second for a hole covering two thirds of a
1024 x 1024 image, and a background plane's hole is often that big. So a large image is filled in two
passes: the whole hole at a working size (`WORK_SIDE` on the long side), scaled back up, then a thin band
along the hole's rim again at full resolution, so the fill meets the real pixels without a blurred seam.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["WORK_SIDE", "fill_holes"]

WORK_SIDE = 512
RADIUS = 3
METHOD = cv2.INPAINT_NS


def fill_holes(rgb: np.ndarray, hole: np.ndarray, *, work_side: int = WORK_SIDE) -> np.ndarray:
    """``rgb`` (H x W x 3 uint8) with the pixels where ``hole`` (H x W bool) is set replaced by colour
    continued from the pixels around them. A copy; ``rgb`` is untouched. Pixels outside the hole are
    unchanged."""
    mask = hole.astype(np.uint8)
    if not mask.any():
        return rgb.copy()
    if mask.all():
        # Nothing to continue from: a neutral mid-grey rather than OpenCV's undefined result.
        return np.full_like(rgb, 128)
    h, w = mask.shape
    scale = work_side / max(h, w)
    if scale >= 1:
        return cv2.inpaint(rgb, mask, RADIUS, METHOD)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    # A small pixel touching any hole pixel is hole too, so no near-plane colour leaks into the fill.
    small_hole = (cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0).astype(np.uint8)
    if small_hole.all():
        small_hole = np.asarray(cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST), np.uint8)
    filled = cv2.resize(cv2.inpaint(small, small_hole, RADIUS, METHOD), (w, h), interpolation=cv2.INTER_LINEAR)
    out = rgb.copy()
    inside = mask.astype(bool)
    out[inside] = filled[inside]
    # The rim: hole pixels within a few working-size pixels of known ones, redone at full resolution.
    width = 2 * math.ceil(1 / scale) + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    rim = inside & (cv2.erode(mask, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=1) == 0)
    if rim.any():
        out = cv2.inpaint(out, rim.astype(np.uint8), RADIUS, METHOD)
    return out
