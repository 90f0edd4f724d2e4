"""A flat image -> a folder of depth planes: ``plane0.png`` .. (far -> near), ``depth.png``, ``layers.json``.

``layers.json`` (format ``comfyvn-layers``, version 1) is the contract with the Ren'Py exporter; it is
written last, so a reader that finds it finds every file it names. ``depth.png`` is 16-bit grayscale,
black nearest, white farthest. Every file is written atomically; planes left over from an earlier split
with more planes are removed.
"""

from __future__ import annotations

import hashlib
import io
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from comfyvn.errors import Invalid, NotFound, TooLarge, Unprocessable
from comfyvn.paths import atomic_write_bytes, atomic_write_json
from PIL import Image

from .depth import estimate_depth
from .model import inspect_model
from .planes import MAX_FEATHER, MAX_PLANES, METHODS, MIN_PLANES, iter_planes, split_depth
from .runtime import session_for

__all__ = ["FORMAT", "MAX_PIXELS", "VERSION", "load_image", "split_image"]

FORMAT, VERSION = "comfyvn-layers", 1
MAX_PIXELS = 40_000_000
MAX_SOURCE_BYTES = 256 * 1024 * 1024
PNG_LEVEL = 1  # zlib: a textured 1024 x 1024 RGBA plane in 0.25 s (level 3: 0.37 s) for ~3% more bytes

Emit = Callable[[str, dict[str, Any]], None]


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


def load_image(source: Path | bytes) -> tuple[np.ndarray, str, str]:
    """``(rgba uint8 H x W x 4, base name, sha256)`` of an image file or its bytes. The size is checked from
    the header before any pixel is decoded: over `MAX_PIXELS` is `TooLarge`; not an image is `Unprocessable`
    (``invalid_image``); a missing file `NotFound`."""
    if isinstance(source, bytes | bytearray):
        data, name = bytes(source), "upload"
    else:
        name = Path(source).name
        try:
            with open(source, "rb") as handle:
                data = handle.read(MAX_SOURCE_BYTES + 1)
        except FileNotFoundError as exc:
            raise NotFound(f"image {name!r} not found", field="image", code="image_not_found") from exc
        except OSError as exc:
            raise Unprocessable(f"image {name!r} cannot be read", field="image", code="invalid_image") from exc
    if len(data) > MAX_SOURCE_BYTES:
        raise TooLarge(f"image {name!r} is over {MAX_SOURCE_BYTES >> 20} MB", field="image")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit (below PIL's bomb limit) is checked from the header just after.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise TooLarge(
                        f"image {name!r} is {width} x {height}: over {MAX_PIXELS // 1_000_000} megapixels",
                        field="image",
                    )
                rgba = np.asarray(image.convert("RGBA"))
    except Image.DecompressionBombError as exc:  # past PIL's own limit, before ours could look
        raise TooLarge(f"image {name!r} is over {MAX_PIXELS // 1_000_000} megapixels", field="image") from exc
    except (OSError, ValueError) as exc:
        raise Unprocessable(f"{name!r} is not a readable image", field="image", code="invalid_image") from exc
    return rgba, name, hashlib.sha256(data).hexdigest()


def _png(array: np.ndarray) -> bytes:
    # OpenCV writes channels as BGR(A); 2-D arrays (the 16-bit depth map) are written as grayscale.
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGBA2BGRA)
    ok, encoded = cv2.imencode(".png", array, [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL])
    if not ok:  # pragma: no cover - OpenCV fails only on arrays we never build
        raise Unprocessable("a plane could not be encoded as PNG", code="encode_failed")
    return encoded.tobytes()


def _check(planes: int, method: str, feather: int) -> None:
    if isinstance(planes, bool) or not isinstance(planes, int) or not MIN_PLANES <= planes <= MAX_PLANES:
        raise Invalid(f"planes must be a whole number from {MIN_PLANES} to {MAX_PLANES}", field="planes")
    if method not in METHODS:
        raise Invalid(f"method is one of {', '.join(METHODS)}", field="method")
    if isinstance(feather, bool) or not isinstance(feather, int) or not 0 <= feather <= MAX_FEATHER:
        raise Invalid(f"feather must be a whole number of pixels from 0 to {MAX_FEATHER}", field="feather")


def split_image(
    source: Path | bytes,
    model: Path,
    out_dir: Path,
    *,
    planes: int = 3,
    method: str = "quantile",
    device: str = "auto",
    feather: int = 4,
    emit: Emit | None = None,
    sidecar: Path | dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Split ``source`` into ``planes`` depth planes with the depth model ``model`` on ``device``; write
    them, ``depth.png`` and ``layers.json`` into ``out_dir`` and return the ``layers.json`` content.

    ``emit(name, payload)`` is called with ``on_mask_ready`` per plane mask, ``on_plane_exported`` per
    written plane and ``on_debug`` once with the provider and timings. The caller chooses ``out_dir``
    (trusted); the names written inside it are fixed.
    """
    _check(planes, method, feather)
    send: Emit = emit or (lambda _name, _payload: None)
    out_dir = Path(out_dir)
    start = time.perf_counter()
    rgba, source_name, source_sha = load_image(source)
    height, width = rgba.shape[:2]
    session_for(Path(model), device)  # opened (or reused) first, so inspecting below reuses it
    info = inspect_model(Path(model), sidecar, device=device)
    timings: dict[str, float] = {"load": _ms(start)}

    result = estimate_depth(np.ascontiguousarray(rgba[:, :, :3]), info, device)
    timings.update(result.timings_ms)
    start = time.perf_counter()
    split = split_depth(result.depth, planes, method)
    timings["postprocess"] = round(timings["postprocess"] + _ms(start), 3)

    out_dir.mkdir(parents=True, exist_ok=True)
    write_ms, inpaint_start = 0.0, time.perf_counter()
    entries: list[dict[str, Any]] = []
    for plane in iter_planes(rgba, split, feather=feather):
        lo, hi = (round(v, 6) for v in plane.depth)
        coverage = round(plane.coverage, 6)
        send(
            "on_mask_ready",
            {"index": plane.index, "depth": [lo, hi], "coverage": coverage, "source": source_name, "planes": planes},
        )
        file = f"plane{plane.index}.png"
        wrote = time.perf_counter()
        atomic_write_bytes(out_dir / file, _png(plane.rgba))
        write_ms += (time.perf_counter() - wrote) * 1000
        entries.append(
            {"index": plane.index, "file": file, "depth": [lo, hi], "parallax": plane.parallax, "coverage": coverage}
        )
        send(
            "on_plane_exported",
            {
                "index": plane.index,
                "file": file,
                "parallax": plane.parallax,
                "coverage": coverage,
                "width": width,
                "height": height,
                "source": source_name,
            },
        )
    timings["inpaint"] = round((time.perf_counter() - inpaint_start) * 1000 - write_ms, 3)

    wrote = time.perf_counter()
    atomic_write_bytes(out_dir / "depth.png", _png(np.rint(result.depth * 65535).astype(np.uint16)))
    layers: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "source": {"file": source_name, "sha256": source_sha, "width": width, "height": height},
        "model": {
            "file": info.path.name,
            "sha256": info.sha256,
            "input": [1, 3, info.height, info.width],
            "output": info.output_kind,
        },
        "device": device,
        "provider": result.provider,
        "warnings": list(result.warnings),
        "method": method,
        "feather": feather,
        "depth_map": "depth.png",
        "planes": entries,
        "timings_ms": timings,
    }
    timings["write"] = round(write_ms + _ms(wrote), 3)
    atomic_write_json(out_dir / "layers.json", layers)
    for stale in range(planes, MAX_PLANES):
        (out_dir / f"plane{stale}.png").unlink(missing_ok=True)
    send(
        "on_debug",
        {
            "provider": result.provider,
            "timings_ms": dict(timings),
            "device": device,
            "warnings": list(result.warnings),
            "source": source_name,
            "model": info.path.name,
        },
    )
    return layers
