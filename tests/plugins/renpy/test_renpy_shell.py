"""The game shell (title screen, game menu, screens, gui pictures, ending) and art fitting (backgrounds cover
the screen, sprites fit the stage, card portraits become side images), without and with the real engine."""

from __future__ import annotations

import io
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from comfyvn import Kernel
from comfyvn.cli import make_cli
from comfyvn.errors import ComfyVNError
from comfyvn_renpy import ExportOptions, build_bundle, write_bundle
from comfyvn_renpy.art import cover_crop, fit_zoom
from comfyvn_renpy.engine import Engine
from comfyvn_renpy.gui import gui_spec
from comfyvn_renpy.shell import SCREENS
from comfyvn_scenario import load_project
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from stage_project import make_stage_project

# The screens Ren'Py's own template has (players and modders look for these names).
RENPY_SCREENS = {
    "main_menu",
    "game_menu",
    "navigation",
    "save",
    "load",
    "file_slots",
    "preferences",
    "history",
    "about",
    "quick_menu",
    "say",
    "choice",
    "confirm",
    "nvl",
    "skip_indicator",
    "notify",
}


def _defines(text: str) -> dict[str, str]:
    return dict(re.findall(r"^define (\S+) = (.+)$", text, re.M))


def _style_block(screens: str, name: str) -> str:
    found = re.search(rf"^style {name}:\n((?:    .*\n)+)", screens, re.M)
    assert found, name
    return found.group(1)


@pytest.fixture
def stage(tmp_path: Path) -> Path:
    return make_stage_project(tmp_path)


def test_every_build_has_the_renpy_screens_and_its_own_shell(demo_project: Path) -> None:
    bundle = build_bundle(load_project(demo_project), ExportOptions(pov_mode="both"))
    for root in ("", "forks/alice/", "forks/bob/"):
        screens = bundle.files[f"{root}game/screens.rpy"].decode()
        names = set(re.findall(r"^screen (\w+)\(", screens, re.M))
        assert names >= RENPY_SCREENS and set(SCREENS) == names, root
        assert f"{root}game/gui.rpy" in bundle.files and f"{root}game/gui/textbox.png" in bundle.files
        options = bundle.files[f"{root}game/options.rpy"].decode()
        assert "quit_action" not in options
    # Each fork is a game of its own: its own name and save folder.
    saves = {
        _defines(bundle.files[f"{r}game/options.rpy"].decode())["config.save_directory"] for r in ("", "forks/alice/")
    }
    assert len(saves) == 2
    assert "(Alice)" in _defines(bundle.files["forks/alice/game/options.rpy"].decode())["config.name"]


@pytest.mark.parametrize("resolution", [(1920, 1080), (1280, 720), (2560, 1080)])
def test_say_screen_uses_the_paginators_geometry(stage: Path, resolution: tuple[int, int]) -> None:
    bundle = build_bundle(load_project(stage), ExportOptions(resolution=resolution))
    spec = gui_spec(*resolution)
    gui = bundle.files["game/gui.rpy"].decode()
    assert f"gui.init({resolution[0]}, {resolution[1]})" in gui
    values = _defines(gui)
    assert int(values["gui.text_size"]) == spec.text_size
    assert int(values["gui.dialogue_width"]) == spec.dialogue_width
    assert int(values["gui.textbox_height"]) == spec.textbox_height
    # The text box holds dialogue_lines lines below the dialogue's top (line height with the spacing).
    assert spec.dialogue_ypos + spec.dialogue_lines * spec.line_height <= spec.textbox_height
    screens = bundle.files["game/screens.rpy"].decode()
    dialogue = _style_block(screens, "say_dialogue")
    assert "size gui.text_size" in dialogue and "xsize gui.dialogue_width" in dialogue
    assert "line_spacing gui.line_spacing" in dialogue
    # The choices live above the text box: the line being answered (the menu caption) stays readable.
    assert "define config.narrator_menu = True" in gui
    top, height = int(values["gui.choice_top"]), int(values["gui.choice_area_height"])
    assert top >= 0 and top + height <= resolution[1] - spec.textbox_height
    assert "area (0, gui.choice_top, config.screen_width, gui.choice_area_height)" in screens


def test_resolution_option_validation(
    renpy_kernel: Callable[..., Kernel], demo_project: Path, tmp_path: Path, http_for: Callable[..., Any]
) -> None:
    assert ExportOptions().resolution == (1920, 1080)
    assert ExportOptions(resolution="1280x720").resolution == (1280, 720)
    assert ExportOptions(resolution=[2560, 1440]).resolution == (2560, 1440)
    assert ExportOptions(resolution="1280x720").to_wire()["resolution"] == "1280x720"
    for bad in ("1279x720", "1280x719", "800x600", "big", "1920x", "x1080", "99999x1080", [1920], (True, 1080)):
        with pytest.raises(ComfyVNError) as caught:
            ExportOptions(resolution=bad)  # type: ignore[arg-type]
        assert caught.value.code == "invalid_resolution" and caught.value.field == "resolution"
    kernel = renpy_kernel()
    cli = make_cli(kernel)
    out = tmp_path / "o"
    bad = CliRunner().invoke(cli, ["export", "renpy", str(demo_project), "--out", str(out), "--resolution", "640x480"])
    assert bad.exit_code == 2 and "--resolution" in bad.output and "1280x720" in bad.output
    assert not out.exists()
    good = CliRunner().invoke(
        cli, ["export", "renpy", str(demo_project), "--out", str(out), "--resolution", "1280x720"]
    )
    assert good.exit_code == 0, good.output
    assert "gui.init(1280, 720)" in (out / "game/gui.rpy").read_text()
    shutil.copytree(demo_project, kernel.paths.data / "projects" / "demo")
    http = http_for(kernel)
    for value in ("10x10", "wide", 1920, [1, 2, 3]):
        answer = http.request("POST", "/api/export/renpy", json={"project": "demo", "resolution": value})
        assert answer.status_code == 400 and answer.json()["error"]["field"] == "resolution", answer.text
    done = http.request("POST", "/api/export/renpy", json={"project": "demo", "resolution": [1280, 720]})
    assert done.status_code == 200, done.text
    game = kernel.paths.data / "projects" / "demo" / done.json()["out"]
    assert "gui.init(1280, 720)" in (game / "game/gui.rpy").read_text()
    preview = http.request("GET", "/api/export/renpy/preview", params={"project": "demo", "resolution": "1x1"})
    assert preview.status_code == 400 and preview.json()["error"]["field"] == "resolution"


def test_gui_pictures_are_drawn_deterministically_without_metadata(stage: Path) -> None:
    first = build_bundle(load_project(stage), ExportOptions(resolution="1280x720"))
    second = build_bundle(load_project(stage), ExportOptions(resolution="1280x720"))
    pictures = {p: d for p, d in first.files.items() if p.startswith(("game/gui/", "game/images/bg/cvn_"))}
    assert len(pictures) >= 10
    for path, data in pictures.items():
        assert second.files[path] == data, path
        assert b"tIME" not in data and b"tEXt" not in data and b"iTXt" not in data, path
        Image.open(io.BytesIO(data)).verify()
    textbox = Image.open(io.BytesIO(pictures["game/gui/textbox.png"]))
    assert textbox.size == (1280, gui_spec(1280, 720).textbox_height)
    backdrop = Image.open(io.BytesIO(pictures["game/images/bg/cvn_backdrop.png"]))
    assert backdrop.size == (320, 180)
    # Another resolution draws other pictures (sizes follow the window).
    other = build_bundle(load_project(stage), ExportOptions(resolution="1920x1080"))
    assert other.files["game/gui/textbox.png"] != pictures["game/gui/textbox.png"]


def test_backgrounds_cover_sprites_fit_and_portraits_are_side_images(stage: Path) -> None:
    bundle = build_bundle(load_project(stage), ExportOptions(resolution="1280x720"))
    images = bundle.files["game/images.rpy"].decode()
    # 320x240 (4:3) → the centred 16:9 band, stretched to the whole screen.
    assert (
        "image bg street = Transform('images/bg/bg_street.png', crop=(0, 30, 320, 180), xysize=(1280, 720))" in images
    )
    # Sprites are cropped to their visible box (every expression the same) and scaled to 92% of the height.
    mira = re.findall(
        r"^image mira (\w+) = Transform\('[^']+', crop=\((\d+), (\d+), (\d+), (\d+)\), zoom=([0-9.]+)\)$", images, re.M
    )
    assert {m[0] for m in mira} == {"neutral", "smile"} and len({m[1:] for m in mira}) == 1
    _name, left, top, width, height, zoom = mira[0]
    assert (int(left), int(top), int(width), int(height)) == (60, 40, 488, 850)
    assert round(int(height) * float(zoom)) == round(720 * 0.92)
    # Card portraits are side images (the Character's image tag), fitted to the side-image box.
    assert re.search(r"^image side kai = Transform\('images/characters/kai_portrait\.png', zoom=0\.5\)$", images, re.M)
    assert "image side mira = " in images
    characters = bundle.files["game/characters.rpy"].decode()
    assert "Character('Kai', color='#f9c74f', image='kai')" in characters
    assert "game/images/characters/kai_portrait.png" in bundle.files
    # Kai is never on the stage: no placeholder figure, no warning.
    assert not re.search(r"^image kai = ", images, re.M) and not bundle.warnings
    # Characters shown without a position are arranged at run time; the title screen has key art.
    assert "$ cvn_arrange()" in bundle.files["game/scenes/scene_opening.rpy"].decode()
    assert re.search(r"^image cvn_keyart = Fixed\('bg street', ", images, re.M)


def test_character_ids_never_take_the_shells_image_tags() -> None:
    from comfyvn_renpy.layout import build_layout
    from comfyvn_scenario import Project

    characters = {cid: {"name": cid} for cid in ("side", "cvn_keyart", "bg")}
    scene = {"id": "a", "start": "n", "nodes": [{"id": "n", "type": "narration", "text": "t", "end": True}]}
    layout = build_layout(Project(meta={"id": "x", "start": "a", "characters": characters}, scenes={"a": scene}))
    assert not {"side", "cvn_keyart", "bg"} & set(layout.char_tags.values())


def test_opaque_expression_pictures_are_side_images_not_standing_sprites(stage: Path) -> None:
    # Jun's only expression becomes an opaque picture (a framed image with a background, as many
    # SillyTavern expression packs are): it is shown beside the text box (300x500 fitted into the
    # 240x300 side-image box of a 720-line window: x0.6) and follows the expression.
    Image.new("RGB", (300, 500), "#3f88c5").save(stage / "assets/characters/jun/neutral.png")
    bundle = build_bundle(load_project(stage), ExportOptions(resolution="1280x720"))
    images = bundle.files["game/images.rpy"].decode()
    scene = bundle.files["game/scenes/scene_opening.rpy"].decode()
    assert "show jun" not in scene and "$ cvn_face['jun'] = 'neutral'" in scene
    assert (
        "image side jun = ConditionSwitch(\"cvn_face.get('jun') == 'neutral'\", 'jun neutral', 'True', 'jun neutral')"
        in images
    )
    assert re.search(
        r"^image jun neutral = Transform\('images/characters/jun_neutral\.png', zoom=0\.6\)$", images, re.M
    )
    assert "'jun neutral'" not in images.split("image cvn_keyart")[1].splitlines()[0]  # not standing on the title
    # Mira's transparent figures still stand on the stage.
    assert "show mira neutral" in scene


def test_missing_portrait_is_reported(stage: Path) -> None:
    (stage / "assets/portraits/kai.png").unlink()
    bundle = build_bundle(load_project(stage), ExportOptions(resolution="1280x720"))
    assert "image side kai" not in bundle.files["game/images.rpy"].decode()
    assert any("kai.png" in w for w in bundle.warnings)
    assert "assets/portraits/kai.png" in bundle.export_manifest["missing_assets"]["portraits"]


def test_scenes_without_background_get_the_backdrop_and_the_story_ends_on_the_ending_card(stage: Path) -> None:
    bundle = build_bundle(load_project(stage), ExportOptions(resolution="1280x720"))
    script = bundle.files["game/script.rpy"].decode()
    story = script[script.index("label cvn_story:") :]
    assert story.splitlines()[1].strip() == "scene bg cvn_backdrop"  # the start scene has no background
    assert "scene bg cvn_backdrop" in bundle.files["game/scenes/scene_opening.rpy"].decode()  # background: null
    start = script[script.index("label start:") :].splitlines()
    assert [line.strip() for line in start[1:3]] == ["call cvn_story from cvn_story_done", "jump cvn_the_end"]
    ending = script[script.index("label cvn_the_end:") :].split("\n\n")[0]
    assert "show screen cvn_the_end" in ending and ending.rstrip().endswith("return")
    the_end = bundle.files["game/screens.rpy"].decode()
    assert 'text _("The End")' in the_end and "[config.name!q]" in the_end
    # The ending card's words sit in the title's column: the key art behind them keeps the right half.
    card = the_end[the_end.index("screen cvn_the_end():") :].split("\nstyle ")[0]
    assert "xpos gui.navigation_xpos" in card and "xalign 0.5" not in card


@given(
    st.integers(1, 6000),
    st.integers(1, 6000),
    st.integers(1280, 7680),
    st.integers(720, 4320),
)
def test_cover_crop_fills_the_screen_with_a_centred_part(w: int, h: int, sw: int, sh: int) -> None:
    left, top, cw, ch = cover_crop((w, h), sw, sh)
    assert left >= 0 and top >= 0 and left + cw <= w and top + ch <= h
    assert abs(left - (w - left - cw)) <= 1 and abs(top - (h - top - ch)) <= 1  # centred
    assert cw == w or ch == h  # nothing more is cut than the aspect needs
    # Scaled to the screen, the crop keeps the screen's aspect (within one source pixel of rounding).
    assert abs(cw * sh - ch * sw) <= max(sw, sh)


@given(st.integers(1, 8000), st.integers(1, 8000), st.integers(1280, 7680), st.integers(720, 4320))
def test_sprites_always_fit_the_stage(w: int, h: int, sw: int, sh: int) -> None:
    spec = gui_spec(sw, sh)
    zoom = fit_zoom(w, h, spec.sprite_max_width, spec.sprite_max_height)
    assert w * zoom <= spec.sprite_max_width + 1e-6 and h * zoom <= spec.sprite_max_height + 1e-6
    assert h * zoom <= sh * 0.95  # the whole figure, head included, stays on the screen
    assert max(w * zoom / spec.sprite_max_width, h * zoom / spec.sprite_max_height) == pytest.approx(1.0)


def test_stage_project_lints_clean(engine: Engine, stage: Path, tmp_path: Path) -> None:
    bundle = build_bundle(load_project(stage), ExportOptions(resolution="1280x720", pov_mode="disabled"))
    write_bundle(bundle, tmp_path / "out")
    lint = engine.lint(tmp_path / "out")
    assert lint.ok, (lint.problems, lint.run.stdout[-2000:], lint.run.stderr[-2000:])


# Each probe prints what the player sees: shown images with their bounds, the screens, the side image.
PROBE_RPY = """
init python:
    import json as _cvn_json

    def cvn_probe(step):
        tags = list(renpy.get_showing_tags("master", sort=True))
        bounds = {}
        for t in tags:
            b = renpy.get_image_bounds(t)
            bounds[t] = None if b is None else [int(round(v)) for v in b]
        names = ("main_menu", "say", "choice", "save", "cvn_the_end")
        screens = [s for s in names if renpy.get_screen(s) is not None]
        side = renpy.get_screen("say") is not None and renpy.get_side_image("side") is not None
        record = {"step": step, "tags": tags, "bounds": bounds, "screens": screens, "side": side}
        print("CVN-PROBE " + _cvn_json.dumps(record))

testcase cvn_shell_check:
    # A loaded machine renders slowly: wait for transitions instead of calling the test stuck.
    $ _test.timeout = 90.0
    $ _test.transition_timeout = 30.0
    $ _test.maximum_framerate = False
    pause 2.0
    $ cvn_probe("title")
    "Start"
    pause 1.5
    $ cvn_probe("n1")
    click button 3
    pause 2.0
    $ cvn_probe("right_click")
    type ESCAPE
    pause 2.0
    $ cvn_probe("escape")
    click
    pause 1.0
    $ cvn_probe("n2")
    click
    pause 1.0
    $ cvn_probe("n3")
    click
    pause 1.0
    $ cvn_probe("n4")
    click
    pause 1.0
    $ cvn_probe("n5")
    "To the street"
    pause 1.5
    $ cvn_probe("s1")
    click
    pause 2.0
    $ cvn_probe("end")
    click
    pause 3.0
    $ cvn_probe("title_again")
    $ renpy.quit()
"""


def test_real_engine_title_first_art_fitted_and_the_end_returns_to_the_title(
    engine: Engine, stage: Path, tmp_path: Path
) -> None:
    width, height = 1280, 720
    bundle = build_bundle(load_project(stage), ExportOptions(resolution=(width, height), pov_mode="disabled"))
    out = tmp_path / "out"
    write_bundle(bundle, out)
    (out / "game/zz_probe.rpy").write_text(PROBE_RPY, encoding="utf-8")
    run = engine.test(out, "cvn_shell_check", timeout=420)
    probes = {
        record["step"]: record
        for line in run.stdout.splitlines()
        if line.startswith("CVN-PROBE ")
        for record in [json.loads(line[len("CVN-PROBE ") :])]
    }
    assert run.returncode == 0 and "title_again" in probes, (run.stdout[-3000:], run.stderr[-3000:])
    # The title screen comes first, and the story's end (an ending card) leads back to it.
    assert probes["title"]["screens"] == ["main_menu"]
    assert probes["end"]["screens"] == ["cvn_the_end"]
    assert probes["title_again"]["screens"] == ["main_menu"]
    # Right-click opens the game menu (its Save page); Escape goes back to the story.
    assert probes["right_click"]["screens"] == ["save"] and "say" in probes["escape"]["screens"]
    for step in ("n1", "n2", "n3", "n4", "n5", "s1"):
        probe = probes[step]
        assert "say" in probe["screens"], probe
        # Something covers the whole screen behind every line: a background or the generated backdrop.
        assert probe["tags"][0] == "bg" and probe["bounds"]["bg"] == [0, 0, width, height], probe
        for tag in probe["tags"][1:]:
            x, y, w, h = probe["bounds"][tag]
            # The whole figure is on the screen, feet on the bottom edge, at most ~95% of the height.
            assert x >= 0 and y >= 0 and x + w <= width and y + h == height and h <= 0.95 * height, probe
    # One character shown without a position stands in the middle; two share the stage left and right.
    x, _y, w, _h = probes["n2"]["bounds"]["mira"]
    assert abs(x + w / 2 - width / 2) <= 2
    mira, jun = probes["n3"]["bounds"]["mira"], probes["n3"]["bounds"]["jun"]
    assert mira[0] + mira[2] / 2 < width / 2 < jun[0] + jun[2] / 2
    # Kai has only a card portrait: it is his side image; Mira, on the stage, shows no side image.
    assert probes["n4"]["side"] is True and probes["n2"]["side"] is False
    assert "choice" in probes["n5"]["screens"] and "say" in probes["n5"]["screens"]
