"""A project whose only background has a hand-made layers folder (the layers plugin's contract):
a sky with a sun far away, green hills with a cyan house in the middle, red bushes near the camera.
Each plane has a colour no other plane (nor the sprites) has, so a screenshot shows which planes are on
screen and where each one has moved. Two characters stand at the far left and far right of the stage."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

SIZE = (1440, 900)  # 16:10, so the 16:9 game crops it (45 px top and bottom) as it crops a flat background
SUN = (255, 214, 0)
HOUSE = (0, 230, 230)
BUSH = (210, 20, 40)
HILLS = (40, 150, 60)
PARALLAX = (0.2, 0.5, 1.0)


def _sky() -> Image.Image:
    width, height = SIZE
    image = Image.new("RGBA", SIZE)
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / (height - 1)
        draw.line([(0, y), (width, y)], fill=(round(40 + 80 * t), round(90 + 90 * t), round(200 + 40 * t), 255))
    draw.ellipse((560, 150, 680, 270), fill=(*SUN, 255))  # the sun: centre x = 620 of 1440
    return image


def _hills() -> Image.Image:
    width, height = SIZE
    image = Image.new("RGBA", SIZE, (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.polygon(
        [(0, 470), (360, 410), (720, 450), (1080, 400), (width, 440), (width, height), (0, height)], fill=(*HILLS, 255)
    )
    draw.rectangle((760, 330, 860, 430), fill=(*HOUSE, 255))  # the house on the hill: centre x = 810
    return image


def _bushes() -> Image.Image:
    image = Image.new("RGBA", SIZE, (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((640, 470, 840, 600), fill=(*BUSH, 255))  # centre x = 740
    return image


PLANES = (("plane0.png", _sky, [0.66, 1.0]), ("plane1.png", _hills, [0.33, 0.66]), ("plane2.png", _bushes, [0.0, 0.33]))


def layers_doc(source: Path) -> dict[str, Any]:
    """layers.json as the layers plugin writes it (plan: "layers.json (contract ...; version 1)")."""
    return {
        "format": "comfyvn-layers",
        "version": 1,
        "source": {
            "file": source.name,
            "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
            "width": SIZE[0],
            "height": SIZE[1],
        },
        "model": {
            "file": "depth_anything_v2_small.onnx",
            "sha256": "ab" * 32,
            "input": [1, 3, 518, 518],
            "output": "inverse_depth",
        },
        "device": "auto",
        "provider": "CPUExecutionProvider",
        "warnings": [],
        "method": "quantile",
        "feather": 4,
        "depth_map": "depth.png",
        "planes": [
            {"index": i, "file": name, "depth": depth, "parallax": PARALLAX[i], "coverage": 0.33}
            for i, (name, _draw, depth) in enumerate(PLANES)
        ],
        "timings_ms": {
            "load": 1.0,
            "preprocess": 2.0,
            "inference": 30.0,
            "postprocess": 3.0,
            "inpaint": 5.0,
            "write": 4.0,
        },
    }


def write_layers(source: Path, doc: dict[str, Any] | None = None) -> Path:
    """The folder ``<stem>.layers`` next to ``source`` with the three planes and ``doc`` (default: valid)."""
    folder = source.parent / f"{source.stem}.layers"
    folder.mkdir(parents=True, exist_ok=True)
    for name, draw, _depth in PLANES:
        draw().save(folder / name)
    Image.new("I;16", SIZE).save(folder / "depth.png")
    (folder / "layers.json").write_text(json.dumps(doc if doc is not None else layers_doc(source)), encoding="utf-8")
    return folder


def _figure(colour: str) -> Image.Image:
    image = Image.new("RGBA", (160, 480), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((40, 0, 120, 80), fill="#f1d3b3")
    draw.rectangle((20, 80, 139, 479), fill=colour)
    return image


def make_layered_project(root: Path, *, layers: bool = True) -> Path:
    """The project below ``root`` (returned): one scene on the layered meadow; narration, Ana (far left)
    speaks, Ben (far right) speaks, narration again."""
    folder = root / "meadow"
    backgrounds = folder / "assets" / "backgrounds"
    backgrounds.mkdir(parents=True)
    flat = Image.alpha_composite(Image.alpha_composite(_sky(), _hills()), _bushes()).convert("RGB")
    flat.save(backgrounds / "meadow.png")
    if layers:
        write_layers(backgrounds / "meadow.png")
    for name, colour in (("ana", "#5a3d8a"), ("ben", "#3d5a8a")):
        path = folder / "assets" / "characters" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        _figure(colour).save(path)
    project = {
        "format": "comfyvn-project",
        "format_version": 1,
        "id": "meadow",
        "title": "Meadow",
        "start": "meadow",
        "scenes": ["meadow"],
        "characters": {
            "ana": {"name": "Ana", "color": "#c9a0ff", "sprites": {"neutral": "assets/characters/ana.png"}},
            "ben": {"name": "Ben", "color": "#7fc8f8", "sprites": {"neutral": "assets/characters/ben.png"}},
        },
    }
    nodes = [
        {"id": "n1", "type": "narration", "text": "The meadow is still.", "choices": [{"id": "c", "target": "n2"}]},
        {
            "id": "n2",
            "type": "dialogue",
            "speaker": "ana",
            "text": "Over here, on the left.",
            "characters": [{"id": "ana", "expression": "neutral", "position": "far_left"}],
            "choices": [{"id": "c", "target": "n3"}],
        },
        {
            "id": "n3",
            "type": "dialogue",
            "speaker": "ben",
            "text": "And I am on the right.",
            "characters": [{"id": "ben", "expression": "neutral", "position": "far_right"}],
            "choices": [{"id": "c", "target": "n4"}],
        },
        {"id": "n4", "type": "narration", "text": "The wind moves the grass.", "end": True},
    ]
    scene = {
        "id": "meadow",
        "title": "Meadow",
        "start": "n1",
        "background": "assets/backgrounds/meadow.png",
        "nodes": nodes,
    }
    (folder / "scenes").mkdir()
    (folder / "project.json").write_text(json.dumps(project, indent=2), encoding="utf-8")
    (folder / "scenes" / "meadow.json").write_text(json.dumps(scene, indent=2), encoding="utf-8")
    return folder


def broken(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of ``doc`` with top-level ``changes``."""
    out = copy.deepcopy(doc)
    out.update(changes)
    return out
