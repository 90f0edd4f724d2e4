"""A small project that exercises the game shell and art fitting: tall sprites with transparent margins,
characters shown without positions (the stage arranges them), card portraits (side images), a scene
with no background (the generated backdrop), a small 4:3 background (scaled to cover) and a menu."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw


def _figure(size: tuple[int, int], colour: str, margins: tuple[int, int, int, int]) -> Image.Image:
    """A figure on a transparent canvas, ``margins`` (left, top, right, bottom) left empty around it."""
    width, height = size
    left, top, right, bottom = margins
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    head = (width - left - right) // 3
    cx = (left + width - right) // 2
    draw.ellipse((cx - head // 2, top, cx + head // 2, top + head), fill="#f1d3b3")
    draw.rectangle((left, top + head, width - right - 1, height - bottom - 1), fill=colour)
    return image


def _portrait(size: tuple[int, int], colour: str) -> Image.Image:
    """An opaque rectangular picture (a character card's image)."""
    image = Image.new("RGB", size, colour)
    draw = ImageDraw.Draw(image)
    draw.ellipse((size[0] // 4, size[1] // 6, size[0] * 3 // 4, size[1] // 2), fill="#f1d3b3")
    draw.rectangle((size[0] // 6, size[1] // 2, size[0] * 5 // 6, size[1] - 1), fill="#2b2d42")
    return image


def _save(image: Image.Image, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path.as_posix()


def _node(node_id: str, text: str, target: str | None = None, **fields: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"id": node_id, "type": "dialogue" if "speaker" in fields else "narration", "text": text}
    node.update(fields)
    if target is not None:
        node["choices"] = [{"id": "next", "target": target}]
    elif "choices" not in node:
        node["end"] = True
    return node


def make_stage_project(root: Path) -> Path:
    """Write the project below ``root`` and return its folder."""
    folder = root / "stage"
    assets = folder / "assets"
    _save(_figure((608, 920), "#8d5fd3", (60, 40, 60, 30)), assets / "characters/mira/neutral.png")
    _save(_figure((608, 920), "#b07be8", (60, 40, 60, 30)), assets / "characters/mira/smile.png")
    _save(_figure((300, 500), "#3f88c5", (20, 10, 20, 0)), assets / "characters/jun/neutral.png")
    _save(_portrait((400, 600), "#6b4e71"), assets / "portraits/kai.png")
    _save(_portrait((512, 512), "#44355b"), assets / "portraits/mira.png")
    street = Image.new("RGB", (320, 240), "#304050")
    ImageDraw.Draw(street).rectangle((0, 160, 319, 239), fill="#202830")
    _save(street, assets / "backgrounds/street.png")
    project = {
        "format": "comfyvn-project",
        "format_version": 1,
        "id": "stage",
        "title": "Stage Test",
        "start": "opening",
        "scenes": ["opening", "street"],
        "characters": {
            "mira": {
                "name": "Mira",
                "color": "#c9a0ff",
                "default_expression": "neutral",
                "sprites": {
                    "neutral": "assets/characters/mira/neutral.png",
                    "smile": "assets/characters/mira/smile.png",
                },
                "portrait": "assets/portraits/mira.png",
            },
            "jun": {"name": "Jun", "color": "#7fc8f8", "sprites": {"neutral": "assets/characters/jun/neutral.png"}},
            "kai": {"name": "Kai", "color": "#f9c74f", "portrait": "assets/portraits/kai.png"},
        },
    }
    opening = {
        "id": "opening",
        "title": "Opening",
        "start": "n1",
        "nodes": [
            _node("n1", "The night is quiet.", "n2"),
            _node("n2", "I am here.", "n3", speaker="mira", characters=[{"id": "mira", "expression": "neutral"}]),
            _node("n3", "So am I.", "n4", speaker="jun", characters=[{"id": "jun"}]),
            _node("n4", "Only my portrait shows.", "n5", speaker="kai"),
            _node(
                "n5",
                "Where now?",
                speaker="mira",
                type="choice",
                characters=[{"id": "mira", "expression": "smile"}],
                choices=[
                    {"id": "street", "label": "To the street", "target": "street:s1"},
                    {"id": "stay", "label": "Stay here", "target": "n6"},
                ],
            ),
            _node("n6", "You stay.", background=None),
        ],
    }
    street_scene = {
        "id": "street",
        "title": "Street",
        "start": "s1",
        "background": "assets/backgrounds/street.png",
        "nodes": [_node("s1", "A small picture, scaled to cover the screen.")],
    }
    (folder / "scenes").mkdir(parents=True, exist_ok=True)
    (folder / "project.json").write_text(json.dumps(project, indent=2), encoding="utf-8")
    (folder / "scenes/opening.json").write_text(json.dumps(opening, indent=2), encoding="utf-8")
    (folder / "scenes/street.json").write_text(json.dumps(street_scene, indent=2), encoding="utf-8")
    return folder
