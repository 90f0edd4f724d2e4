"""Played as a player plays (issue 10): exported games run offscreen in the real Ren'Py engine through the
title screen, every line and the menus, and what the player gets is checked — title first, a backdrop
behind every line, sprites whole, pages inside the text box, no raw markup, every glyph in a shipped font,
the story ending on the title screen. Cases: the demo, a card with expression sprites, a CJK card and
lorebook, a chat with very long messages and inline emphasis, a card-only project.

All inputs are written by the tests (cards and sprites drawn with Pillow); nothing third-party is used.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import comfyvn_renpy.plugin
import comfyvn_roleplay.plugin
import comfyvn_scenario.plugin
import pytest
from click.testing import CliRunner
from comfyvn import Kernel
from comfyvn.cli import make_cli
from comfyvn_renpy import find_demo_project, find_engine
from comfyvn_renpy.playcheck import PlayReport, displayed_text, run_play_check
from PIL import Image, ImageDraw
from PIL.PngImagePlugin import PngInfo

EXPRESSIONS = ("neutral", "joy", "sadness", "anger", "surprise")
SHEET_W, SHEET_H = 608, 920  # SillyTavern's Seraphina sprites: taller than a 720 or 600 px window


@pytest.fixture(scope="module", autouse=True)
def real_engine() -> None:
    assert find_engine() is not None, "Ren'Py is not installed: `apt-get install -y renpy` (the noxfile does it)"


@pytest.fixture
def kernel(make_kernel: Callable[..., Kernel]) -> Kernel:
    return make_kernel(comfyvn_scenario.plugin, comfyvn_roleplay.plugin, comfyvn_renpy.plugin)


def cli(kernel: Kernel, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(make_cli(kernel), [*args, "--json"])
    assert result.exit_code == 0, result.output
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def play(kernel: Kernel, project: Path, game: Path, **options: Any) -> tuple[PlayReport, list[dict[str, Any]]]:
    """Export ``project`` to ``game`` and play it; the report and the checker's records."""
    cli(kernel, "export", "renpy", str(project), "--out", str(game))
    records = game.parent / f"{game.name}-records.jsonl"
    options.setdefault("timeout", 480)  # generous: a loaded 2-core runner is slow; the checker's cap stops loops
    report = run_play_check(game, screenshots=game.parent / f"{game.name}-shots", keep_records=records, **options)
    lines = [json.loads(line) for line in records.read_text(encoding="utf-8").splitlines() if line.strip()]
    return report, lines


def assert_a_player_accepts(report: PlayReport) -> None:
    wire = report.to_wire()
    wire.pop("output", None)
    assert report.failed() == [], json.dumps({**wire, "findings": wire["findings"][:25]}, indent=1, ensure_ascii=False)
    assert report.lines > 0


def pages(records: Sequence[dict[str, Any]]) -> list[str]:
    """The text of every line and menu caption the player read, in order."""
    return [
        displayed_text(r["textbox"]["text"])
        for r in records
        if r.get("event") == "interaction" and r.get("kind") in ("say", "menu") and r.get("textbox")
    ]


def shown_tags(records: Sequence[dict[str, Any]]) -> set[str]:
    return {i["tag"] for r in records if r.get("event") == "interaction" for i in r.get("images") or []}


# -- inputs drawn by the tests --------------------------------------------------------------------


def card_png(path: Path, data: dict[str, Any], colour: tuple[int, int, int] = (200, 120, 160)) -> Path:
    """A V2 character card: a 400x600 portrait with the card JSON in a ``chara`` tEXt chunk."""
    image = Image.new("RGB", (400, 600), (30, 30, 46))
    draw = ImageDraw.Draw(image)
    draw.ellipse((130, 80, 270, 230), fill=colour)
    draw.rectangle((110, 240, 290, 600), fill=colour)
    info = PngInfo()
    card = {"spec": "chara_card_v2", "spec_version": "2.0", "data": data}
    info.add_text("chara", base64.b64encode(json.dumps(card, ensure_ascii=False).encode()).decode())
    image.save(path, pnginfo=info)
    return path


def sprite_folder(root: Path, name: str) -> Path:
    """Transparent 608x920 expression sprites (a figure from head to feet) in ``root/<name>/<expr>.png``."""
    folder = root / name
    folder.mkdir(parents=True)
    for index, expression in enumerate(EXPRESSIONS):
        image = Image.new("RGBA", (SHEET_W, SHEET_H), (0, 0, 0, 0))
        draw = ImageDraw.Draw(image)
        tone = (230 - index * 20, 160 + index * 10, 180, 255)
        draw.ellipse((224, 20, 384, 200), fill=tone)  # the head touches the top of the sheet
        draw.rectangle((184, 200, 424, SHEET_H - 1), fill=tone)  # the body down to the feet
        image.save(folder / f"{expression}.png")
    return root


def chat(path: Path, character: str, user: str, messages: Sequence[tuple[str, str]]) -> Path:
    lines = [{"user_name": user, "character_name": character, "create_date": "2024-05-01@20h00m00s"}]
    for index, (speaker, text) in enumerate(messages):
        lines.append(
            {
                "name": speaker,
                "is_user": speaker == user,
                "is_system": False,
                "send_date": f"2024-05-01@20h{index:02d}m00s",
                "mes": text,
            }
        )
    path.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n", encoding="utf-8")
    return path


GREETING = (
    '*You wake under a ceiling of woven branches.* "Ah, you\'re awake at last. I was so worried." '
    '*She sets a cup of tea beside you, steam curling between you.* "Drink. It helps."'
)

ELORA = {
    "name": "Elora",
    "description": "{{char}} is the warden of a glade deep in an old forest. She heals travellers.",
    "personality": "gentle, watchful",
    "scenario": "{{user}} was found hurt at the edge of the glade.",
    "first_mes": GREETING,
    "mes_example": "",
    "alternate_greetings": ['*The lanterns flicker as {{char}} looks up.* "Another traveller? Come in."'],
    "tags": ["fantasy"],
}


# -- cases ----------------------------------------------------------------------------------------


def test_the_demo_plays_as_a_complete_game(kernel: Kernel, tmp_path: Path) -> None:
    report, records = play(kernel, find_demo_project(), tmp_path / "demo", mode="explore", max_playthroughs=2)
    assert_a_player_accepts(report)
    assert report.playthroughs == 2  # explored: a second way through from the title screen
    assert {"alice", "bob"} <= shown_tags(records)


def test_a_card_with_expression_sprites_shows_her_whole(kernel: Kernel, tmp_path: Path) -> None:
    card = card_png(tmp_path / "Elora.png", ELORA)
    sprites = sprite_folder(tmp_path / "sprites", "Elora")
    log = chat(
        tmp_path / "elora.jsonl",
        "Elora",
        "Rowan",
        [
            ("Elora", GREETING),
            ("Rowan", "*I try to sit up.* Where am I?"),
            ("Elora", '*She smiles, relieved.* "In my glade. You are safe here, Rowan."'),
            ("Rowan", "Thank you. I thought the wolves had me."),
            ("Elora", '*Her face darkens.* "They nearly did. Rest now; I will keep watch."'),
        ],
    )
    project = tmp_path / "project"
    cli(
        kernel, "import", "sillytavern", str(log), "--card", str(card), "--sprites", str(sprites), "--out", str(project)
    )
    report, records = play(kernel, project, tmp_path / "game")
    assert_a_player_accepts(report)
    with_sprite = [r for r in records if r.get("kind") == "say" and any(i["tag"] == "elora" for i in r["images"])]
    assert with_sprite, "her expression sprites are never shown"


def test_a_cjk_card_and_lorebook_render_in_a_shipped_font(kernel: Kernel, tmp_path: Path) -> None:
    card = card_png(
        tmp_path / "林月.png",
        {
            "name": "林月",
            "description": "{{char}}是山中茶馆的老板娘\uff0c说话温柔\uff0c喜欢讲古老的传说。",
            "personality": "温柔\uff0c好奇",
            "scenario": "雨夜\uff0c{{user}}走进了茶馆。",
            "first_mes": "*她放下茶壶\uff0c抬头微笑。*「欢迎光临。外面下着大雨\uff0c先喝杯热茶吧。」",
            "mes_example": "",
            "alternate_greetings": [],
            "tags": ["日常"],
        },
    )
    world = tmp_path / "青山镇.json"
    world.write_text(
        json.dumps(
            {
                "name": "青山镇",
                "entries": {
                    "0": {
                        "uid": 0,
                        "key": ["茶馆"],
                        "content": "青山镇唯一的茶馆\uff0c开了一百年。",
                        "comment": "茶馆",
                    },
                    "1": {"uid": 1, "key": ["传说"], "content": "传说山顶住着一条白龙。", "comment": "传说"},
                },
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    log = chat(
        tmp_path / "林月.jsonl",
        "林月",
        "小明",
        [
            ("林月", "*她放下茶壶\uff0c抬头微笑。*「欢迎光临。外面下着大雨\uff0c先喝杯热茶吧。」"),
            ("小明", "谢谢。这家茶馆开了多久了\uff1f"),
            ("林月", "「一百年了。」*她望向窗外的山。*「你听说过山顶白龙的传说吗\uff1f」"),
            ("小明", "没有\uff0c请讲给我听。"),
        ],
    )
    project = tmp_path / "project"
    cli(kernel, "import", "sillytavern", str(log), "--card", str(card), "--world", str(world), "--out", str(project))
    report, records = play(kernel, project, tmp_path / "game")
    assert_a_player_accepts(report)
    assert any("茶" in page for page in pages(records)), "the Chinese lines are not shown"


LONG = " ".join(
    f"Sentence {n} of the storm: the wind tore at the shutters while the lamp swung and the old sailor kept talking."
    for n in range(1, 19)
)  # one message of about 2,000 characters


def test_very_long_messages_and_inline_emphasis_read_as_a_visual_novel(kernel: Kernel, tmp_path: Path) -> None:
    assert len(LONG) >= 1858
    log = chat(
        tmp_path / "storm.jsonl",
        "Mira",
        "Jonah",
        [
            ("Mira", f'*She pulls the door shut.* "{LONG}"'),
            ("Jonah", "*I step back.* You were going to lock me in?"),
            ("Mira", '*Her eyes narrow.* "Just like you *were* going to do to me?" *She laughs.*'),
            ("Jonah", "That is **not** fair. __Really__ not. ~~Fine.~~ `sigh`\n> quoted from the log"),
            ("Mira", "OOC: I have to go soon <StatusPlaceHolderImpl/>"),
            ("Mira", LONG),
        ],
    )
    project = tmp_path / "project"
    cli(kernel, "import", "sillytavern", str(log), "--out", str(project))
    report, records = play(kernel, project, tmp_path / "game")
    assert_a_player_accepts(report)
    read = pages(records)
    assert any("Just like you were going to do to me?" in page for page in read), read  # one sentence, one page
    joined = " ".join(read)
    for n in (1, 9, 18):  # the long message is all there, spread over pages
        assert f"Sentence {n} of the storm" in joined


def test_a_card_alone_makes_a_playable_opening(kernel: Kernel, tmp_path: Path) -> None:
    card = card_png(tmp_path / "Elora.png", ELORA)
    sprites = sprite_folder(tmp_path / "sprites", "Elora")
    project = tmp_path / "project"
    cli(kernel, "import", "card", str(card), "--sprites", str(sprites), "--out", str(project))
    report, records = play(kernel, project, tmp_path / "game", mode="explore", max_playthroughs=2)
    assert_a_player_accepts(report)
    read = " ".join(pages(records))
    assert "warden of a glade" in read and "I was so worried" in read  # description and greeting
