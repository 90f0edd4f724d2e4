"""Small projects the viewer's tests store next to the demo: a line long enough to need several text
boxes (with bold and italic), and a Japanese/Chinese one."""

from __future__ import annotations

import json
from pathlib import Path

CJK_LINES = ("夜の駅で、最後の列車が静かに待っている。", "我们一起坐上了开往黎明的列车。")
LONG = (
    "The conductor checks the ticket **twice**, then a third time, holding it up to the lamp as if the light "
    "could tell her something the printing could not. Outside, the platform empties one *hurried* traveller "
    "at a time. Somewhere a door slams, and the whole carriage shivers. She hands it back without a word. "
    "The train does not move. Nobody on board seems to mind, and the silence stretches on and on until "
    "someone at the far end laughs. Then, at last, the wheels begin to turn and the station slides away. "
    "Night swallows the lamps one by one, and the only light left is the one above your seat."
)


def long_project(folder: Path) -> Path:
    (folder / "scenes").mkdir(parents=True)
    project = {
        "format": "comfyvn-project",
        "format_version": 1,
        "id": "long",
        "title": "Long",
        "start": "s",
        "scenes": ["s"],
        "characters": {"cora": {"name": "Cora"}},
    }
    scene = {
        "id": "s",
        "start": "a",
        "nodes": [
            {"id": "a", "type": "dialogue", "speaker": "cora", "text": LONG, "end": True},
        ],
    }
    (folder / "project.json").write_text(json.dumps(project), encoding="utf-8")
    (folder / "scenes" / "s.json").write_text(json.dumps(scene), encoding="utf-8")
    return folder


def cjk_project(folder: Path) -> Path:
    """A two-node project whose lines and speaker are Japanese and Chinese."""
    (folder / "scenes").mkdir(parents=True)
    project = {
        "format": "comfyvn-project",
        "format_version": 1,
        "id": "cjk",
        "title": "夜行列車",
        "start": "eki",
        "scenes": ["eki"],
        "characters": {"hana": {"name": "花子", "color": "#e07a5f"}},
    }
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
    (folder / "project.json").write_text(json.dumps(project, ensure_ascii=False), encoding="utf-8")
    (folder / "scenes" / "eki.json").write_text(json.dumps(scene, ensure_ascii=False), encoding="utf-8")
    return folder
