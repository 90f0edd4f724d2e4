"""``comfyvn layers split IMAGE``, ``comfyvn layers matte IMAGE`` and ``comfyvn layers info [MODEL]``: parse ->
pipeline/service -> print.

``split`` runs in this process (no job: one picture, one session) and writes ``<dir>/<stem>.layers/`` next
to the picture unless ``--out`` says otherwise, the folder the Ren'Py export picks up. Warnings (a GPU asked
for and not used) go to stderr; ``--json`` prints layers.json. ``matte`` writes ``<dir>/<stem>.cutout.png``:
the figure on transparency, cut by depth (what the ComfyUI bridge's sprites get through its matte hook).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from comfyvn.errors import Invalid, NotFound
from comfyvn.paths import atomic_write_bytes

from . import service
from .jobs import MAX_FEATHER, MAX_PLANES, MIN_PLANES
from .settings import DEVICES, METHODS, LayersSettings, check_device, setup_hint

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["layers_group"]


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))


def _emit(kernel: Kernel, event: str, payload: dict[str, Any]) -> None:
    kernel.events.emit(event, payload)


def _shown(path: Path) -> str:
    """``path`` relative to the working folder when it is below it (shorter to read), else as is."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@click.group("layers")
def layers_group() -> None:
    """Flat art -> depth layers (a depth model on ONNX Runtime) for parallax backgrounds."""


@layers_group.command("split")
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--model", "model_path", default=None, help="The ONNX depth model (default: COMFYVN_DEPTH_MODEL, layers.model)."
)
@click.option(
    "--planes", type=click.IntRange(MIN_PLANES, MAX_PLANES), default=3, show_default=True, help="How many planes."
)
@click.option("--method", type=click.Choice(METHODS), default="quantile", show_default=True, help="How depth is cut.")
@click.option(
    "--device", type=click.Choice(DEVICES, case_sensitive=False), default=None, help="Default: layers.device or auto."
)
@click.option(
    "--feather", type=click.IntRange(0, MAX_FEATHER), default=4, show_default=True, help="Edge feather in pixels."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Default: <dir>/<stem>.layers/",
)
@click.option("--json", "as_json", is_flag=True, help="Print layers.json.")
@click.pass_obj
def split_command(
    kernel: Kernel,
    image: Path,
    model_path: str | None,
    planes: int,
    method: str,
    device: str | None,
    feather: int,
    out_dir: Path | None,
    as_json: bool,
) -> None:
    """Split IMAGE into depth planes for parallax.

    Writes planeN.png (far -> near, RGBA at the picture's size), depth.png and layers.json."""
    from .pipeline import split_image

    kernel.flags.require(service.FLAG)
    # The picture first: a missing one is the mistake to report, whatever the model settings say.
    if not image.is_file():
        raise Invalid(f"no picture {image.name!r} there", field="IMAGE", code="image_not_found")
    settings = LayersSettings.from_kernel(kernel, model=model_path)
    model = settings.require_model("--model PATH")
    image = image.resolve()
    out = (out_dir or service.default_out(image)).resolve()
    doc = split_image(
        image,
        model,
        out,
        planes=planes,
        method=method,
        device=check_device(device or settings.device),
        feather=feather,
        emit=lambda event, payload: _emit(kernel, event, payload),
    )
    for warning in doc.get("warnings", []):
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        _echo_json(doc)
        return
    source = doc["source"]
    click.echo(
        f"{source['file']} ({source['width']}x{source['height']}) -> {len(doc['planes'])} planes on {doc['provider']}"
        f" in {_shown(out)}"
    )
    for plane in doc["planes"]:
        lo, hi = plane["depth"]
        click.echo(
            f"  {plane['file']:<12} depth {lo:.2f}-{hi:.2f}  parallax {plane['parallax']:.2f}"
            f"  coverage {plane['coverage'] * 100:.0f}%"
        )
    timings = doc.get("timings_ms", {})
    click.echo("  " + ", ".join(f"{name} {ms:.0f} ms" for name, ms in timings.items()))


@layers_group.command("matte")
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--model", "model_path", default=None, help="The ONNX depth model (default: COMFYVN_DEPTH_MODEL, layers.model)."
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="Keep what is nearer than this depth (0 nearest, 1 farthest). Default: cut between figure and backdrop.",
)
@click.option(
    "--device", type=click.Choice(DEVICES, case_sensitive=False), default=None, help="Default: layers.device or auto."
)
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Default: <dir>/<stem>.cutout.png",
)
@click.pass_obj
def matte_command(
    kernel: Kernel,
    image: Path,
    model_path: str | None,
    threshold: float | None,
    device: str | None,
    out_file: Path | None,
) -> None:
    """Cut the figure out of IMAGE by depth: an RGBA PNG, transparent where the picture is far."""
    from .figure import cut_out

    kernel.flags.require(service.FLAG)
    # The picture first: a missing one is the mistake to report, whatever the model settings say.
    if not image.is_file():
        raise Invalid(f"no picture {image.name!r} there", field="IMAGE", code="image_not_found")
    settings = LayersSettings.from_kernel(kernel, model=model_path)
    model = settings.require_model("--model PATH")
    image = image.resolve()
    out = (out_file or image.with_name(f"{image.stem}.cutout.png")).resolve()
    if out == image:
        raise Invalid("--out must not be the picture itself", field="--out", code="out_is_source")
    cut = cut_out(image, model, device=check_device(device or settings.device), threshold=threshold)
    for warning in cut.warnings:
        click.echo(f"warning: {warning}", err=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, cut.png)
    click.echo(
        f"{image.name} ({cut.width}x{cut.height}) -> {_shown(out)}: figure {cut.coverage * 100:.0f}% of the picture,"
        f" {cut.model} on {cut.provider}"
    )


@layers_group.command("info")
@click.argument("model", required=False, default=None)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def info_command(kernel: Kernel, model: str | None, as_json: bool) -> None:
    """Show a depth model's input, output and the providers available.

    MODEL defaults to the configured one (COMFYVN_DEPTH_MODEL, layers.model)."""
    kernel.flags.require(service.FLAG)
    if model is not None and not Path(model).is_file():
        raise NotFound(f"no model file {Path(model).name!r} there", field="MODEL", code="model_not_found")
    status = service.model_status(kernel, model=model)
    if as_json:
        _echo_json(status)
    else:
        runtime = status["runtime"]
        if runtime["version"] is None:
            click.echo(f"runtime:   none ({service.RUNTIME_HINT})")
        else:
            click.echo(f"runtime:   onnxruntime {runtime['version']}")
            click.echo(f"providers: {', '.join(runtime['providers']) or '-'}")
        click.echo(f"device:    {status['device']}")
        if status["configured"]:
            info = status["model"]
            fed = info["input"]
            shape = ["?" if d is None else d for d in info["input_shape"]]
            click.echo(f"model:     {info['file']} (sha256 {info['sha256'][:12]}, from {status['source']})")
            click.echo(
                f"input:     {info['input_name']} {info['input_type']} {shape} {info['layout']},"
                f" fed {fed[2]}x{fed[3]} (multiple of {info['multiple']})"
            )
            click.echo(f"normalise: mean {info['mean']} std {info['std']}")
            click.echo(f"output:    {info['output_name']} ({info['output']})")
    if not status["configured"]:
        raise NotFound(
            setup_hint("the MODEL argument (comfyvn layers info MODEL)"), field="model", code="model_not_configured"
        )
