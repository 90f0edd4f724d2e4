"""Small projects the viewer's tests store next to the demo: a line long enough to need several text
boxes (with bold and italic), and a Japanese/Chinese one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CJK_LINES = ("夜の駅で、最後の列車が静かに待っている。", "我们一起坐上了开往黎明的列车。")
LONG = (
    "The conductor checks the ticket **twice**, then a third time, holding it up to the lamp as if the light "
    "could tell her something the printing could not. Outside, the platform empties one *hurried* traveller "
    "at a time. Somewhere a door slams, and the whole carriage shivers. She hands it back without a word. "
    "The train does not move. Nobody on board seems to mind, and the silence stretches on and on until "
    "someone at the far end laughs. Then, at last, the wheels begin to turn and the station slides away. "
    "Night swallows the lamps one by one, and the only light left is the one above your seat."
)


def _write(folder: Path, project_id: str, title: str, characters: dict[str, Any], scene: dict[str, Any]) -> Path:
    """``folder`` as a one-scene project (``scenes/<scene id>.json``) with ``characters``."""
    (folder / "scenes").mkdir(parents=True, exist_ok=True)
    project = {
        "format": "comfyvn-project",
        "format_version": 1,
        "id": project_id,
        "title": title,
        "start": scene["id"],
        "scenes": [scene["id"]],
        "characters": characters,
    }
    (folder / "project.json").write_text(json.dumps(project, ensure_ascii=False), encoding="utf-8")
    (folder / "scenes" / f"{scene['id']}.json").write_text(json.dumps(scene, ensure_ascii=False), encoding="utf-8")
    return folder


def long_project(folder: Path) -> Path:
    scene = {
        "id": "s",
        "start": "a",
        "nodes": [
            {"id": "a", "type": "dialogue", "speaker": "cora", "text": LONG, "end": True},
        ],
    }
    return _write(folder, "long", "Long", {"cora": {"name": "Cora"}}, scene)


def cjk_project(folder: Path) -> Path:
    """A two-node project whose lines and speaker are Japanese and Chinese."""
    scene = {
        "id": "eki",
        "start": "a",
        "nodes": [
            {
                "id": "a",
                "type": "dialogue",
                "speaker": "hana",
                "text": CJK_LINES[0],
                "choices": [{"id": "go", "label": "乗る", "target": "b"}],
            },
            {"id": "b", "type": "narration", "text": CJK_LINES[1], "end": True},
        ],
    }
    return _write(folder, "cjk", "夜行列車", {"hana": {"name": "花子", "color": "#e07a5f"}}, scene)


#: (node, speaker id or None, the side image's file or None) of `side_project`, in order.
SIDE_LINES = (
    ("dark", None, None),  # narration: no side image
    ("whisper", "moth", "moth_calm.png"),  # face-only, never shown yet: its default picture
    ("rook_in", "rook", None),  # standing on the stage: the export hides its portrait
    ("moth_glad", "moth", "moth_glad.png"),  # face-only, shown glad: that picture
    ("rook_out", "rook", "rook_portrait.png"),  # gone from the stage: its card portrait
)


def side_project(folder: Path) -> Path:
    """A face-only character (every expression an opaque framed picture, no standing sprite: the export
    shows it only as the side image) and a standing one with a card portrait, speaking in turn."""
    from PIL import Image, ImageDraw

    art = folder / "art"
    art.mkdir(parents=True)
    for name, colour in (("moth_calm", "#3a7bd5"), ("moth_glad", "#f2a03d"), ("rook_portrait", "#7e3ad5")):
        picture = Image.new("RGB", (240, 240), colour)
        ImageDraw.Draw(picture).ellipse((60, 50, 180, 190), fill="#f4e1c6")
        picture.save(art / f"{name}.png")
    figure = Image.new("RGBA", (300, 600), (0, 0, 0, 0))
    ImageDraw.Draw(figure).rectangle((90, 60, 210, 600), fill="#2f8f5b")
    figure.save(art / "rook.png")
    Image.new("RGB", (640, 360), "#28304a").save(art / "room.png")
    characters = {
        "moth": {
            "name": "Moth",
            "default_expression": "calm",
            "sprites": {"calm": "art/moth_calm.png", "glad": "art/moth_glad.png"},
        },
        "rook": {"name": "Rook", "portrait": "art/rook_portrait.png", "sprites": {"neutral": "art/rook.png"}},
    }

    def line(node_id: str, speaker: str | None, text: str, nxt: str | None, **extra: Any) -> dict[str, Any]:
        node: dict[str, Any] = {"id": node_id, "type": "dialogue" if speaker else "narration", "text": text, **extra}
        if speaker:
            node["speaker"] = speaker
        node.update({"choices": [{"id": "on", "label": "On", "target": nxt}]} if nxt else {"end": True})
        return node

    scene = {
        "id": "s",
        "start": "dark",
        "background": "art/room.png",
        "nodes": [
            line("dark", None, "A lamp flickers in the attic.", "whisper"),
            line("whisper", "moth", "Who's there?", "rook_in"),
            line("rook_in", "rook", "Only me.", "moth_glad", characters=[{"id": "rook", "position": "center"}]),
            line("moth_glad", "moth", "Oh, good!", "rook_out", characters=[{"id": "moth", "expression": "glad"}]),
            line("rook_out", "rook", "Goodnight.", None, characters=[{"id": "rook", "hide": True}]),
        ],
    }
    return _write(folder, "side", "Side", characters, scene)


# Three answers as long as a chat's swipes (`--swipes-as-choices` makes each alternative reply a choice).
LONG_CHOICES = (
    "Mira laughs and pulls you towards the lighthouse stairs, promising the view from the top is worth every "
    "one of the two hundred steps, and that she has counted them twice.",
    "Mira shakes her head, sits down on the harbour wall and starts telling you about the storm of '09, the "
    "night the lamp went dark and the whole village came out with lanterns.",
    "Mira points at the fishing boats coming in and asks whether you have ever gutted a mackerel, because the "
    "market opens in an hour and she could use a second pair of hands.",
)


def choices_project(folder: Path) -> Path:
    """One captioned menu of three long choices, each leading to its own ending."""
    nodes: list[dict[str, Any]] = [
        {
            "id": "menu",
            "type": "choice",
            "text": "What happens next?",
            "choices": [{"id": f"c{n}", "label": label, "target": f"e{n}"} for n, label in enumerate(LONG_CHOICES)],
        }
    ]
    nodes += [
        {"id": f"e{n}", "type": "dialogue", "speaker": "mira", "text": "And so the day went.", "end": True}
        for n in range(len(LONG_CHOICES))
    ]
    return _write(
        folder, "choices", "Harbour", {"mira": {"name": "Mira"}}, {"id": "s", "start": "menu", "nodes": nodes}
    )
