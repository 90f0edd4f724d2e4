"""Layered backgrounds: the planes the layers plugin cut from a flat background, shown with parallax.

The layers plugin writes, next to a background ``<dir>/<stem>.<ext>``, the folder ``<stem>.layers/``
holding ``layers.json`` (format ``comfyvn-layers``, version 1) and one RGBA PNG per plane, far to near.
This module never imports that plugin: the folder convention and the file format are the contract.
`read_layers` checks a folder strictly and returns the planes, or the one problem that makes the exporter
fall back to the flat image (a warning of the export). The game shows the planes stacked far to near,
each covering the screen like a flat background (`art.cover_crop`), zoomed just enough (`plane_zoom`)
that its edges never show when the camera of ``comfyvn_parallax.rpy`` (`PARALLAX_RPY`) moves it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import warnings
from pathlib import Path
from typing import Any

import attrs
from PIL import Image, UnidentifiedImageError

from .gui import GuiSpec
from .names import py_literal

__all__ = [
    "LAYERS_FORMAT",
    "LAYERS_VERSION",
    "PARALLAX_FILE",
    "PARALLAX_RPY",
    "LayerPlane",
    "Layers",
    "layered_expr",
    "layers_folder",
    "plane_zoom",
    "read_layers",
]

LAYERS_FORMAT = "comfyvn-layers"
LAYERS_VERSION = 1
PARALLAX_FILE = "game/comfyvn_parallax.rpy"
MAX_LAYERS_JSON = 1 << 20  # a layers.json is a few hundred bytes; anything this large is not one
MIN_PLANES, MAX_PLANES = 2, 8  # the layers plugin splits into 2..8 planes
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TEXT_KEPT = 200  # provenance strings copied into the manifest are cut to this length

# The camera, as fractions of the screen: the slow drift's amplitude (x, y) and periods in seconds, and
# how far a full turn toward a speaker at the screen's edge moves the nearest plane. A plane moves by
# its parallax factor times these; the generated script and `plane_zoom` share the numbers.
DRIFT = (0.012, 0.008)
DRIFT_PERIOD = (37.0, 23.0)
LOOK = 0.035
LOOK_SECONDS = 1.2


class _Problem(Exception):
    """Why a layers folder cannot be used (the text goes into the export's warning)."""


@attrs.frozen
class LayerPlane:
    """One plane of a layered background: its file in the layers folder, where it goes in the game
    (``dest``, below ``game/``), its parallax factor (0 < f <= 1; the nearest plane 1) and depth range."""

    name: str
    source: Path
    dest: str
    parallax: float
    depth: tuple[float, float]


@attrs.frozen
class Layers:
    """A valid layers folder: the planes far to near and what the manifest records about it."""

    folder: str
    planes: tuple[LayerPlane, ...]
    layers_sha256: str
    provenance: dict[str, Any]


def layers_folder(image: Path) -> Path:
    """Where the layered version of background ``image`` lives: the sibling folder ``<stem>.layers``."""
    return image.parent / f"{image.stem}.layers"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _text(value: Any) -> str | None:
    return " ".join(value.split())[:_TEXT_KEPT] if isinstance(value, str) else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _inside(folder: Path, name: str, what: str) -> Path:
    """The regular file ``name`` directly inside ``folder`` (links resolved), else a problem."""
    if not name or "\x00" in name or "/" in name or "\\" in name or name in (".", "..") or Path(name).is_absolute():
        raise _Problem(f"{what} {name!r} is not a file name inside the layers folder")
    path = (folder / name).resolve()
    if path.parent != folder:
        raise _Problem(f"{what} {name!r} leads outside the layers folder")
    if not path.is_file():
        raise _Problem(f"{what} {name!r} is missing")
    return path


def _load_json(folder: Path) -> tuple[dict[str, Any], str]:
    path = _inside(folder, "layers.json", "the file")
    if path.stat().st_size > MAX_LAYERS_JSON:
        raise _Problem(f"layers.json is larger than {MAX_LAYERS_JSON} bytes")
    data = path.read_bytes()
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _Problem(f"layers.json is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(value, dict):
        raise _Problem("layers.json is not a JSON object")
    if value.get("format") != LAYERS_FORMAT:
        raise _Problem(f"layers.json's format is not {LAYERS_FORMAT!r}")
    version = value.get("version")
    if isinstance(version, bool) or version != LAYERS_VERSION:
        raise _Problem(f"layers.json has version {version!r}; this exporter reads version {LAYERS_VERSION}")
    return value, hashlib.sha256(data).hexdigest()


def _check_source(doc: dict[str, Any], image: Path, size: tuple[int, int]) -> None:
    source = doc.get("source")
    if not isinstance(source, dict):
        raise _Problem("layers.json has no source object")
    width, height = source.get("width"), source.get("height")
    if isinstance(width, bool) or isinstance(height, bool) or not isinstance(width, int) or not isinstance(height, int):
        raise _Problem("layers.json's source has no integer width and height")
    if (width, height) != size:
        raise _Problem(f"the planes were cut from a {width}x{height} image, the background is {size[0]}x{size[1]}")
    sha = source.get("sha256")
    if sha is not None:
        if not isinstance(sha, str) or not _SHA256.match(sha):
            raise _Problem("layers.json's source sha256 is not a SHA-256 hex digest")
        if sha != _sha256(image):
            raise _Problem("the planes were cut from another version of the background (sha256 differs)")


def _plane_size(path: Path, name: str) -> tuple[int, int]:
    """The size of PNG ``path`` after checking it is a whole PNG (signature, chunks and CRCs)."""
    with path.open("rb") as stream:
        if stream.read(8) != _PNG_MAGIC:
            raise _Problem(f"plane {name!r} is not a PNG file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                size = image.size
                image.verify()
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError, Image.DecompressionBombError):
        raise _Problem(f"plane {name!r} is not a readable PNG") from None
    return size


def _planes(doc: dict[str, Any], folder: Path, size: tuple[int, int], dest_stem: str) -> list[LayerPlane]:
    planes = doc.get("planes")
    if not isinstance(planes, list) or not MIN_PLANES <= len(planes) <= MAX_PLANES:
        raise _Problem(f"layers.json must list {MIN_PLANES} to {MAX_PLANES} planes")
    found: list[LayerPlane] = []
    for position, entry in enumerate(planes):
        if not isinstance(entry, dict):
            raise _Problem(f"plane {position} is not a JSON object")
        index = entry.get("index")
        if isinstance(index, bool) or index != position:
            raise _Problem(f"plane {position} has index {index!r} (planes are listed far to near, from 0)")
        name = entry.get("file")
        if not isinstance(name, str):
            raise _Problem(f"plane {position} names no file")
        if not name.lower().endswith(".png"):
            raise _Problem(f"plane {position} file {name!r} is not a .png")
        if any(p.name == name for p in found):
            raise _Problem(f"plane file {name!r} is listed twice")
        path = _inside(folder, name, "plane file")
        parallax = _number(entry.get("parallax"))
        if parallax is None or not 0 < parallax <= 1:
            raise _Problem(f"plane {position} has parallax {entry.get('parallax')!r}; it must be a number in (0, 1]")
        depth = entry.get("depth")
        low = _number(depth[0]) if isinstance(depth, list) and len(depth) == 2 else None
        high = _number(depth[1]) if isinstance(depth, list) and len(depth) == 2 else None
        if low is None or high is None or not 0 <= low <= high <= 1:
            raise _Problem(f"plane {position} has no depth range [low, high] within 0..1")
        plane_size = _plane_size(path, name)
        if plane_size != size:
            raise _Problem(f"plane {name!r} is {plane_size[0]}x{plane_size[1]}, the background is {size[0]}x{size[1]}")
        if found:
            farther = found[-1]
            if (low + high) > sum(farther.depth) or parallax < farther.parallax:
                raise _Problem(f"planes are not listed far to near ({name!r} is farther than {farther.name!r})")
        found.append(LayerPlane(name, path, f"{dest_stem}_plane{position}.png", parallax, (low, high)))
    return found


def _provenance(doc: dict[str, Any]) -> dict[str, Any]:
    """What made the planes, for the manifest: model (base name, sha256, output kind), provider, device,
    method. Never a path of the machine (the model's file is named by its base name)."""
    found = doc.get("model")
    model: dict[str, Any] = found if isinstance(found, dict) else {}
    file = _text(model.get("file"))
    return {
        "model": {
            "file": Path(file.replace("\\", "/")).name if file else None,
            "sha256": _text(model.get("sha256")),
            "output": _text(model.get("output")),
        },
        "provider": _text(doc.get("provider")),
        "device": _text(doc.get("device")),
        "method": _text(doc.get("method")),
    }


def read_layers(
    image: Path, size: tuple[int, int] | None, dest_stem: str, shown: str
) -> tuple[Layers | None, str | None]:
    """The layered version of background ``image`` (``size``: its pixel size, None when unreadable), with
    plane files to be copied to ``<dest_stem>_plane<i>.png``; ``shown`` names the layers folder in
    messages and the manifest (relative to the project, never a path of the machine).

    ``(None, None)``: no layers folder (a flat background). ``(None, warning)``: a layers folder that
    cannot be used, and why; the flat image is shown. Otherwise ``(layers, None)``."""
    folder = layers_folder(image)
    if not folder.exists() and not folder.is_symlink():
        return None, None
    try:
        if folder.is_symlink() or not folder.is_dir():
            # A link could lead anywhere on the machine: the planes must really sit next to the image.
            raise _Problem("it is not a folder (a link to a folder is not followed)")
        if size is None:
            raise _Problem("the background itself cannot be read")
        real = folder.resolve()
        doc, layers_sha = _load_json(real)
        _check_source(doc, image, size)
        planes = _planes(doc, real, size, dest_stem)
    except _Problem as problem:
        return None, f"layered background {shown!r} not used: {problem}; the flat image is shown"
    except OSError as exc:
        return (
            None,
            f"layered background {shown!r} not used: it cannot be read ({type(exc).__name__}); the flat image is shown",
        )
    return Layers(shown, tuple(planes), layers_sha, _provenance(doc)), None


def plane_zoom(parallax: float) -> float:
    """How much a screen-sized plane of ``parallax`` is enlarged so that its edges stay off screen at the
    camera's largest offset (drift plus a full turn), with a pixel's margin for rounding at 1280 wide."""
    reach = max(DRIFT[0] + LOOK, DRIFT[1])
    return round(1 + 2 * parallax * reach + 2 / 1280, 5)


def layered_expr(layers: Layers, crop: tuple[int, int, int, int], spec: GuiSpec) -> str:
    """The ``image`` expression of a layered background: its planes far to near in one screen-sized
    ``Fixed``, each cropped and scaled like the flat image (``crop``) and moved by `cvn_parallax`."""
    size = f"xysize=({spec.width}, {spec.height})"
    parts = [
        f"At(Transform({py_literal(p.dest)}, crop={crop!r}, {size}), "
        f"cvn_parallax({p.parallax!r}, {plane_zoom(p.parallax)!r}))"
        for p in layers.planes
    ]
    return f"Fixed({', '.join(parts)}, {size})"


PARALLAX_RPY = f'''\
## ComfyVN parallax: the planes of a layered background move with one camera shared by all of them.
## A plane moves by its parallax factor (the farthest little, the nearest the most) times the camera's
## offset: a slow drift, plus a turn toward the side of the stage where the speaking character stands
## (narration and characters not on the stage: back to the centre), eased over {LOOK_SECONDS} s.

# Where the camera turns: -1 (left edge) .. 1 (right edge); the turn eases from cvn_look_from, which it
# had at cvn_look_since (seconds, wall clock), to cvn_look.
default cvn_look = 0.0
default cvn_look_from = 0.0
default cvn_look_since = 0.0

# How often the planes are redrawn at most: a gentle drift needs no more, and a renderer without vsync
# (software OpenGL, offscreen) would otherwise draw as many frames as it can queue. Lower it there.
define cvn_parallax_fps = 60

init -10 python:
    import math
    import time as _cvn_time

    CVN_DRIFT = {DRIFT!r}
    CVN_DRIFT_PERIOD = {DRIFT_PERIOD!r}
    CVN_LOOK = {LOOK!r}
    CVN_LOOK_SECONDS = {LOOK_SECONDS!r}

    def cvn_look_now(now):
        """The camera's turn at time `now`: eased (cosine) from cvn_look_from to cvn_look."""
        span = now - store.cvn_look_since
        if span < 0 or span >= CVN_LOOK_SECONDS:
            return store.cvn_look
        k = 0.5 - 0.5 * math.cos(math.pi * span / CVN_LOOK_SECONDS)
        return store.cvn_look_from + (store.cvn_look - store.cvn_look_from) * k

    def cvn_camera(now):
        """The camera's offset at time `now`, in screen pixels (x, y), for a plane of parallax 1."""
        x = CVN_DRIFT[0] * math.sin(2 * math.pi * now / CVN_DRIFT_PERIOD[0]) - CVN_LOOK * cvn_look_now(now)
        y = CVN_DRIFT[1] * math.sin(2 * math.pi * now / CVN_DRIFT_PERIOD[1])
        return x * config.screen_width, y * config.screen_height

    class CvnParallax(object):
        """The ATL `function` of one plane: offsets it by `factor` times the camera, every frame.
        A class, not a closure: the shown planes are saved with the game and must pickle."""

        def __init__(self, factor):
            self.factor = factor

        def __call__(self, trans, st, at):
            x, y = cvn_camera(_cvn_time.time())
            trans.xoffset = self.factor * x
            trans.yoffset = self.factor * y
            return 1.0 / max(1, store.cvn_parallax_fps)

    def cvn_look_toward_speaker(event, interact=True, **kwargs):
        # A line begins: turn toward its speaker's side of the stage (centre when nobody there speaks).
        if event != "begin":
            return
        look = 0.0
        tag = renpy.get_say_image_tag()
        bounds = renpy.get_image_bounds(tag) if tag else None
        if bounds is not None and config.screen_width > 0:
            x, _y, w, _h = bounds
            look = max(-1.0, min(1.0, ((x + w / 2.0) / config.screen_width - 0.5) * 2.0))
        if look != store.cvn_look:
            now = _cvn_time.time()
            store.cvn_look_from = cvn_look_now(now)
            store.cvn_look = look
            store.cvn_look_since = now

    config.all_character_callbacks.append(cvn_look_toward_speaker)

init -10:
    # One plane: centred, zoomed so its edges never show (`scale`), moved by the camera times `factor`.
    transform cvn_parallax(factor=1.0, scale=1.0):
        subpixel True
        xanchor 0.5 yanchor 0.5 xpos 0.5 ypos 0.5 zoom scale
        function CvnParallax(factor)
'''
