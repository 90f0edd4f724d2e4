"""A figure cut out of a flat picture by depth: the sprite matte the render pipeline asks for.

`cut_out` runs the depth model over a picture and keeps what is nearer than the cut (`matte.cut_figure`):
a figure drawn in front of scenery comes back on transparency. `comfyui_matte_sprite` is this plugin's
answer to the ComfyUI bridge's hook of that name (a sprite render whose border is not one flat colour,
so no flood fill can key it): the configured model, or None (no model, flag off, any failure, logged).
Nothing here imports the bridge: the hook is the whole contract.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import structlog
from comfyvn.errors import ComfyVNError

from .settings import LayersSettings

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["METHOD", "FigureCut", "cut_out", "matte_sprite"]

log = structlog.get_logger("comfyvn.layers.figure")

#: The ``method`` this plugin's matte answers carry (the bridge records it in the sprite's provenance).
METHOD = "depth"


@attrs.frozen
class FigureCut:
    """``png``: the RGBA cut-out; ``coverage``: the share of the picture left opaque (alpha >= 128);
    ``model``: the model file's base name; ``provider``: the execution provider that really ran."""

    png: bytes
    width: int
    height: int
    coverage: float
    model: str
    provider: str
    warnings: tuple[str, ...]
    timings_ms: dict[str, float]


def _encode(rgba: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def cut_out(
    source: Path | bytes,
    model: Path,
    *,
    device: str = "auto",
    threshold: float | None = None,
    feather: int = 2,
) -> FigureCut:
    """The figure of ``source`` (a file or its bytes) on transparency, by the depth ``model`` on ``device``.

    ``threshold`` (depth 0 nearest .. 1 farthest) keeps what is nearer; None cuts between the two modes of
    the depth histogram (figure and backdrop). Transparency the picture already had is kept. Raises what
    `pipeline.load_image`, `model.inspect_model` and `matte.cut_figure` raise (bad picture, bad model,
    bad threshold or feather)."""
    from .depth import estimate_depth
    from .matte import cut_figure
    from .model import inspect_model
    from .pipeline import load_image
    from .runtime import session_for

    start = time.perf_counter()
    rgba, _name, _sha = load_image(source)
    session_for(Path(model), device)  # opened (or reused) first, so inspecting below reuses it
    info = inspect_model(Path(model), device=device)
    load_ms = round((time.perf_counter() - start) * 1000, 3)
    result = estimate_depth(np.ascontiguousarray(rgba[:, :, :3]), info, device)
    start = time.perf_counter()
    cut = cut_figure(np.ascontiguousarray(rgba[:, :, :3]), result.depth, threshold, feather=feather)
    cut[:, :, 3] = np.minimum(cut[:, :, 3], rgba[:, :, 3])
    png = _encode(cut)
    timings = {"load": load_ms, **result.timings_ms, "cut": round((time.perf_counter() - start) * 1000, 3)}
    height, width = cut.shape[:2]
    return FigureCut(
        png=png,
        width=width,
        height=height,
        coverage=round(float((cut[:, :, 3] >= 128).mean()), 6),
        model=info.path.name,
        provider=result.provider,
        warnings=tuple(result.warnings),
        timings_ms=timings,
    )


def matte_sprite(kernel: Kernel, image: bytes) -> dict[str, Any] | None:
    """The bridge's ``comfyui_matte_sprite`` answer: ``{"png", "method": "depth", "model", "provider",
    "warnings", "coverage"}`` for ``image`` cut by the configured model, or None when the flag is off, no
    model is configured, or anything fails (logged as a warning: a matte never breaks a render)."""
    from .service import FLAG

    if not kernel.flags.is_enabled(FLAG):
        return None
    try:
        settings = LayersSettings.from_kernel(kernel)
        if settings.model is None:
            return None
        cut = cut_out(bytes(image), settings.require_model(), device=settings.device)
    except ComfyVNError as exc:
        log.warning("depth matte failed; the sprite keeps its backdrop", code=exc.code, error=exc.message[:300])
        return None
    except Exception as exc:
        # ONNX Runtime raises its own types (a model that fails at run time, a provider that cannot load);
        # the render is finished and paid for, so it is kept unmatted rather than lost.
        log.warning(
            "depth matte failed; the sprite keeps its backdrop", error=f"{type(exc).__name__}: {str(exc)[:300]}"
        )
        return None
    return {
        "png": cut.png,
        "method": METHOD,
        "model": cut.model,
        "provider": cut.provider,
        "warnings": list(cut.warnings),
        "coverage": cut.coverage,
    }
