"""Hook implementations of the layers plugin (wiring only): the flag, the events, the job kind, routes, CLI,
and the ComfyUI bridge's sprite matte."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from comfyvn import hookimpl

from . import jobs, routes, service
from .cli import layers_group

if TYPE_CHECKING:
    import click
    from comfyvn import Kernel
    from comfyvn_jobs import KindRegistrar

_SHARE = {"type": "number", "minimum": 0, "maximum": 1}
_NAME = {"type": "string", "minLength": 1, "maxLength": 255}
_COMMON: dict[str, Any] = {"source": _NAME, "split": _NAME}
MASK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["index", "depth", "coverage"],
    "properties": {
        **_COMMON,
        "index": {"type": "integer", "minimum": 0},
        "planes": {"type": "integer", "minimum": 1},
        "depth": {"type": "array", "items": _SHARE, "minItems": 2, "maxItems": 2},
        "coverage": _SHARE,
    },
}
PLANE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["index", "file", "parallax"],
    "properties": {
        **_COMMON,
        "index": {"type": "integer", "minimum": 0},
        "file": {"type": "string", "pattern": r"^[^/\\]+$"},
        "parallax": _SHARE,
        "coverage": _SHARE,
        "width": {"type": "integer", "minimum": 1},
        "height": {"type": "integer", "minimum": 1},
    },
}
DEBUG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["provider", "timings_ms"],
    "properties": {
        **_COMMON,
        "provider": {"type": "string", "minLength": 1},
        "device": {"type": "string"},
        "model": _NAME,
        "warnings": {"type": "array", "items": {"type": "string"}},
        "timings_ms": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}},
    },
}


@hookimpl
def register_flags(register: Any) -> None:
    register(
        service.FLAG, True, "Flat art -> depth layers: /api/layers/*, `comfyvn layers split` and the layers.split jobs."
    )


@hookimpl
def register_events(register: Any) -> None:
    register(
        "on_mask_ready",
        "A split's hard mask of one plane is ready: index (0 = farthest), depth range, coverage.",
        MASK_SCHEMA,
    )
    register(
        "on_plane_exported",
        "A split wrote one plane PNG (RGBA at the source size): index, file, parallax.",
        PLANE_SCHEMA,
    )
    register("on_debug", "A split finished: the provider that really ran, warnings and per-step timings.", DEBUG_SCHEMA)


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(layers_group)


@hookimpl
def register_routes(kernel: Kernel) -> list[Any]:
    return routes.make_routes(kernel)


# optionalhook: both hooks belong to the jobs plugin; without it the CLI still splits in-process.
@hookimpl(optionalhook=True)
def register_job_kinds(register: KindRegistrar) -> None:
    jobs.register_kinds(register)


@hookimpl(optionalhook=True)
def jobs_embedded_resources(kernel: Kernel) -> dict[str, float] | None:
    """``GPU=1`` when this machine's ONNX Runtime lists a GPU provider: one GPU split at a time here."""
    return {"GPU": 1} if service.gpu_offered() else None


# optionalhook: the ComfyUI bridge's hook; without the bridge nothing asks for sprite mattes.
@hookimpl(optionalhook=True)
def comfyui_matte_sprite(image: bytes, kernel: Kernel) -> dict[str, Any] | None:
    """A sprite render with scenery around the figure, cut out by the configured depth model (None without one)."""
    from .figure import matte_sprite  # numpy and the model load only when a render asks

    return matte_sprite(kernel, image)
