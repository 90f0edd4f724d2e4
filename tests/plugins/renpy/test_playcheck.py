"""Play-check: the verdicts on recorded interactions (pure), and real engine runs of small hand-written games
— one a player accepts, one with every problem the checks look for, one that never ends."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from comfyvn import Kernel
from comfyvn.cli import make_cli
from comfyvn_renpy.engine import Engine
from comfyvn_renpy.playcheck import (
    CHECKER,
    CHECKS,
    displayed_text,
    evaluate,
    font_spans,
    raw_markup,
    run_play_check,
)
from hypothesis import given
from hypothesis import strategies as st

DEJAVU = "/usr/share/games/renpy/renpy/common/DejaVuSans.ttf"
NOTO_CJK = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
W, H = 1280, 720


# -- records -> verdicts (no engine) --------------------------------------------------------------


def boot(fonts: dict[str, str | None] | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"event": "boot", "screen": [W, H], "fonts": {}}]
    for spec, path in (fonts or {"DejaVuSans.ttf": DEJAVU}).items():
        out.append({"event": "font", "spec": spec, "path": path})
    return out


def line(
    text: str = "Hello.",
    images: list[tuple[str, list[float]]] | None = None,
    rect: list[float] | None = None,
    window: list[float] | None = None,
    font: Any = "DejaVuSans.ttf",
    where: str = "game/script.rpy:1",
    **extra: Any,
) -> dict[str, Any]:
    shown = [("bg", [0.0, 0.0, W, H])] if images is None else images
    return {
        "event": "interaction",
        "kind": extra.pop("kind", "say"),
        "playthrough": 1,
        "label": "start",
        "where": where,
        "images": [{"layer": "master", "tag": tag, "attributes": [], "bounds": b} for tag, b in shown],
        "textbox": {
            "text": text,
            "font": font,
            "rect": rect if rect is not None else [268.0, 585.0, 700.0, 54.0],
            "window": {"rect": window or [0.0, 535.0, W, 185.0], "ysize": 185, "ymaximum": None},
            "who": None,
        },
        **extra,
    }


TITLE = {"event": "interaction", "kind": "title", "playthrough": 0, "images": [], "textbox": None}
END = {"event": "finish", "reason": "title"}


def verdict(*records: dict[str, Any], fonts: dict[str, str | None] | None = None) -> dict[str, bool]:
    report = evaluate([*boot(fonts), TITLE, *records, TITLE, END])
    return dict(report.checks)


def failing(*records: dict[str, Any], fonts: dict[str, str | None] | None = None) -> set[str]:
    return {name for name, ok in verdict(*records, fonts=fonts).items() if not ok}


def test_a_clean_playthrough_passes_every_check() -> None:
    report = evaluate([*boot(), TITLE, line(), line("Bye.", where="game/script.rpy:2"), TITLE, END])
    assert report.ok and report.failed() == [] and report.lines == 2
    assert set(report.to_wire()["checks"]) == set(CHECKS)


@pytest.mark.parametrize(
    ("images", "fails"),
    [
        ([], True),  # nothing shown: Ren'Py's checkerboard
        ([("bg", [320.0, 180.0, 640.0, 360.0])], True),  # a small background in the middle
        ([("bg", [0.0, 0.0, W, H - 10])], True),  # a strip at the bottom is uncovered
        ([("bg", [-200.0, -100.0, W + 400, H + 200])], False),  # scaled to cover, centred crop
        ([("bg", [0.0, 0.0, W, H]), ("girl", [500.0, 100.0, 300.0, 620.0])], False),
    ],
)
def test_backdrop_must_cover_the_whole_screen(images: list[tuple[str, list[float]]], fails: bool) -> None:
    assert ("backdrop" in failing(line(images=images))) is fails


@pytest.mark.parametrize(
    ("bounds", "fails"),
    [
        ([500.0, 100.0, 300.0, 620.0], False),  # feet on the bottom edge
        ([500.0, -200.0, 300.0, 920.0], True),  # head cut off (608x920 in a 720-high window)
        ([-50.0, 100.0, 300.0, 600.0], True),  # past the left side
        ([1100.0, 100.0, 300.0, 600.0], True),  # past the right side
        ([500.0, 300.0, 300.0, 600.0], True),  # feet below the bottom edge
        ([500.0, 100.5, 300.0, 620.0], False),  # rounding within a pixel
    ],
)
def test_sprites_stay_inside_the_screen(bounds: list[float], fails: bool) -> None:
    images = [("bg", [0.0, 0.0, W, H]), ("girl", bounds)]
    assert ("sprites_inside" in failing(line(images=images))) is fails


def test_a_page_taller_than_its_text_box_fails_and_says_by_how_much() -> None:
    report = evaluate([*boot(), TITLE, line(rect=[268.0, 585.0, 700.0, 270.0]), TITLE, END])
    assert report.failed() == ["text_fits"]
    assert any("overflows its text box by 135 px" in f.message for f in report.findings)


def test_a_text_box_that_grows_over_half_the_screen_fails() -> None:
    record = line(rect=[6.0, 100.0, 780.0, 600.0], window=[0.0, 94.0, W, 626.0])
    record["textbox"]["window"].update(ysize=None, ymaximum=None)
    assert failing(record) == {"text_fits"}


def test_story_without_title_or_that_loops_fails_title_and_end() -> None:
    records = [*boot(), line(), {"event": "start_label", "count": 2}, {"event": "finish", "reason": "loop"}]
    report = evaluate(records)
    assert set(report.failed()) == {"title_first", "ends_on_title"}
    assert report.finish == "loop"


def test_a_run_without_an_end_fails_runs() -> None:
    report = evaluate([*boot(), TITLE, line(), {"event": "finish", "reason": "cap"}])
    assert {"runs", "ends_on_title"} <= set(report.failed())
    crashed = evaluate([*boot(), TITLE, line(), TITLE, END], finished_run=False)
    assert "runs" in crashed.failed()


@pytest.mark.parametrize(
    "text",
    [
        "He was **very** sure.",
        "A __bold__ claim.",
        "~~struck~~ out",
        "Just like you *were* going to do to me?",
        "Run `rm -rf` now.",
        "Status: <StatusPlaceHolderImpl/>",
        "Hello {{user}}!",
        "OOC: brb, dinner",
        "(ooc: lol)",
        "> quoted line",
        "<USER> waves.",
    ],
)
def test_raw_markup_is_found(text: str) -> None:
    assert raw_markup(text)
    assert "no_raw_markup" in failing(line(text.replace("{", "{{")))


@pytest.mark.parametrize(
    "text",
    [
        "She smiled. 5 * 3 = 15, and a lone * star.",
        "{i}Italic{/i} and {b}bold{/b} are Ren'Py tags, not markup.",
        "Snake_case_names and a_b are fine; so is 3 < 4 > 2.",
        "Cocoon, snooze, wooden: no marker in these words.",
        "A brace {{ shown literally.",
    ],
)
def test_plain_prose_and_renpy_tags_are_not_raw_markup(text: str) -> None:
    assert raw_markup(displayed_text(text)) == []


@given(st.text(max_size=80))
def test_escaped_text_is_displayed_exactly(text: str) -> None:
    # The exporter escapes `{` as `{{`; what the player reads is then the original text.
    assert displayed_text(text.replace("{", "{{")) == text


@given(st.lists(st.text(alphabet="abc xyz.,!", min_size=1, max_size=20), min_size=1, max_size=5))
def test_plain_words_never_look_like_markup(words: list[str]) -> None:
    assert raw_markup(" ".join(words)) == []


def test_font_tags_switch_the_font_for_their_span() -> None:
    assert font_spans("a{font=mono.ttf}b{b}c{/b}{/font}d") == [
        ("a", None),
        ("b", "mono.ttf"),
        ("c", "mono.ttf"),
        ("d", None),
    ]


def test_glyphs_missing_from_the_font_fail_and_are_named() -> None:
    report = evaluate([*boot(), TITLE, line("你好, world"), TITLE, END])
    assert report.failed() == ["glyphs"]
    assert "你" in report.findings[0].message and "好" in report.findings[0].message


def test_a_cjk_font_covers_cjk_text_including_a_ttc_index() -> None:
    fonts = {"DejaVuSans.ttf": DEJAVU, "0@cjk.ttc": NOTO_CJK}
    assert failing(line("你好\uff0c世界\u3002", font="0@cjk.ttc"), fonts=fonts) == set()
    # A font group: CJK ranges from the CJK font, the rest from DejaVu.
    group = {"group": [[0x3000, 0x9FFF, "0@cjk.ttc"], [0xFF00, 0xFFEF, "0@cjk.ttc"]], "default": "DejaVuSans.ttf"}
    assert failing(line("Hi 你好\uff0c世界", font=group), fonts=fonts) == set()
    assert failing(line("Hi 你好", font="DejaVuSans.ttf"), fonts=fonts) == {"glyphs"}


def test_a_font_file_that_is_not_found_covers_nothing() -> None:
    assert failing(line("Hello"), fonts={"DejaVuSans.ttf": None}) == {"glyphs"}


def test_choices_and_names_are_checked_too() -> None:
    menu = line("Which way?", kind="menu", choices=[["**Left**", True], ["Right", True]], choice_font="DejaVuSans.ttf")
    assert failing(menu) == {"no_raw_markup"}
    named = line("Hi.")
    named["textbox"]["who"] = {"text": "小明", "font": "DejaVuSans.ttf"}
    assert failing(named) == {"glyphs"}


def test_the_same_line_seen_twice_is_one_finding() -> None:
    bad = line(images=[])
    report = evaluate([*boot(), TITLE, bad, bad, TITLE, END])
    assert report.findings_total == 1


def test_a_record_cut_short_by_a_killed_engine_is_left_out() -> None:
    from comfyvn_renpy.playcheck import _parse

    raw = '{"event": "boot", "screen": [1280, 720]}\n{"event": "interaction", "kind": "sa'
    assert _parse(raw) == [{"event": "boot", "screen": [1280, 720]}]


def test_the_checker_ships_inside_the_package() -> None:
    assert CHECKER.is_file() and CHECKER.parent.parent.name == "comfyvn_renpy"
    assert "init 1999 python in cvn_playcheck" in CHECKER.read_text(encoding="utf-8")


# -- real engine ----------------------------------------------------------------------------------

SCREENS = """
init -1 python:
    gui.init(1280, 720)  # also what makes Ren'Py use the main_menu screen as the title screen
define config.name = "Play-check fixture"
define config.quit_action = Quit(confirm=False)

screen main_menu():
    tag menu
    add Solid("#223")
    vbox:
        align (0.5, 0.5)
        textbutton "Start" action Start()
        textbutton "Quit" action Quit(confirm=False)

screen say(who, what):
    window:
        id "window"
        ysize 200
        yalign 1.0
        background Solid("#000c")
        if who is not None:
            text who id "who" pos (40, 10)
        text what id "what" pos (40, 60) xmaximum 1200

screen input(prompt):
    window:
        yalign 1.0
        ysize 200
        text prompt pos (40, 10)
        input id "input" pos (40, 60)

screen choice(items):
    vbox:
        align (0.5, 0.3)
        for i in items:
            textbutton i.caption action i.action
"""

GOOD = """
image bg room = Solid("#446")
image bg wide = Transform(Solid("#464", xysize=(2000, 1200)), align=(0.5, 0.5))
image hero = Solid("#c88", xysize=(300, 600))
define e = Character("Eileen")
define han = FontGroup().add("fonts/han.otf", 0x4E00, 0x9FFF).add("DejaVuSans.ttf", None, None)
define m = Character("Ming", what_font=han)
label start:
    scene bg room
    show hero at right
    e "Hello there. {i}Emphasis{/i} is a tag, not raw markup, and 100%% fine."
    m "Hello, 你好."
    e "A tag: {font=fonts/han.otf}你好{/font}."
    $ player = renpy.input("Your name?", default="Rowan")
    e "Welcome, [player]."
    menu:
        "Which way?"
        "Left":
            scene bg wide
            e "Left it is."
        "Right":
            "Right it is."
    "The end."
    return
"""

BAD = """
define config.quit_action = Quit(confirm=False)
image bg small = Solid("#335", xysize=(640, 360))
image tall = Solid("#c55", xysize=(300, 1000))
define e = Character("Eileen")
label start:
    scene bg small
    show tall at right
    e "**Bold** and *this* and <b>tag</b> and {{{{user}} and OOC: out of character, 中文."
    e "%s"
    return
""" % ("Long line, said again. " * 90)

ENDLESS = """
define config.quit_action = Quit(confirm=False)
label start:
    scene black
label again:
    "Once more."
    jump again
"""


def han_font(path: Path) -> None:
    """A subset of Debian's Noto Sans CJK with the two Han characters the good game shows (fonts-noto-cjk)."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    with TTFont(NOTO_CJK, fontNumber=0) as font:
        subsetter = subset.Subsetter(subset.Options(layout_features=[], notdef_outline=True))
        subsetter.populate(text="你好")
        subsetter.subset(font)
        path.parent.mkdir(parents=True, exist_ok=True)
        font.save(path)


def make_game(root: Path, *scripts: str) -> Path:
    (root / "game").mkdir(parents=True)
    for index, script in enumerate(scripts):
        (root / "game" / f"script{index}.rpy").write_text(script, encoding="utf-8")
    return root


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def test_a_good_game_passes_explored_and_the_game_folder_is_untouched(engine: Engine, tmp_path: Path) -> None:
    game = make_game(tmp_path / "good", SCREENS, GOOD)
    han_font(game / "game" / "fonts" / "han.otf")
    before = tree_digest(game)
    shots = tmp_path / "shots"
    records = tmp_path / "records.jsonl"
    report = run_play_check(game, engine=engine, screenshots=shots, mode="explore", timeout=240, keep_records=records)
    assert report.failed() == [], json.dumps(report.to_wire(), indent=2)
    assert (report.playthroughs, report.menus, report.lines) == (2, 2, 12)  # both choices, once each
    played = [json.loads(line) for line in records.read_text(encoding="utf-8").splitlines()]
    said = [r["textbox"]["text"] for r in played if r.get("kind") == "say"]
    assert "Welcome, Rowan." in said  # the name field was accepted with its default, and interpolated
    assert [r["chosen"] for r in played if r.get("kind") == "menu"] == [0, 1]
    assert report.finish == "title" and report.screen == (1280, 720)
    assert tree_digest(game) == before  # no checker, cache, saves or log written into the user's folder
    for name in ("title", "first_line", "first_menu", "end"):
        assert (shots / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report.fonts.get("style.say_dialogue") == "DejaVuSans.ttf"


def test_a_bad_game_fails_every_check_a_player_would_notice(
    engine: Engine, tmp_path: Path, make_kernel: Callable[..., Kernel]
) -> None:
    import comfyvn_renpy.plugin as renpy_plugin

    game = make_game(tmp_path / "bad", BAD)
    result = CliRunner().invoke(
        make_cli(make_kernel(renpy_plugin)), ["renpy", "play-check", str(game), "--json", "--timeout", "240"]
    )
    assert result.exit_code == 1, result.output
    wire = json.loads(result.stdout)
    failed = {name for name, check in wire["checks"].items() if not check["ok"]}
    assert failed == {
        "title_first",
        "ends_on_title",
        "backdrop",
        "sprites_inside",
        "text_fits",
        "no_raw_markup",
        "glyphs",
    }
    assert wire["finish"] == "loop"
    messages = {f["check"]: f["message"] for f in wire["findings"]}
    assert "cut off at the top by 400 px" in messages["sprites_inside"]  # 1000 px high, bottom-anchored in 600
    assert "中" in messages["glyphs"] and "文" in messages["glyphs"]
    markup = next(f["message"] for f in wire["findings"] if f["check"] == "no_raw_markup")
    for kind in ("**", "*x*", "HTML-like", "{{macro}}", "OOC"):
        assert kind in markup


def test_a_story_that_never_ends_is_stopped_by_the_cap(engine: Engine, tmp_path: Path) -> None:
    game = make_game(tmp_path / "endless", ENDLESS)
    report = run_play_check(game, engine=engine, max_interactions=12, timeout=120)
    assert report.finish == "cap"
    assert {"runs", "ends_on_title"} <= set(report.failed())
    assert 5 <= report.lines <= 12


def test_a_folder_without_a_game_is_refused_with_exit_2(tmp_path: Path, make_kernel: Callable[..., Kernel]) -> None:
    import comfyvn_renpy.plugin as renpy_plugin

    result = CliRunner().invoke(make_cli(make_kernel(renpy_plugin)), ["renpy", "play-check", str(tmp_path)])
    assert result.exit_code == 2
    assert "no game/ folder" in result.output
