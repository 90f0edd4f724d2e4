"""Fonts for every script: coverage checked with fontTools, missing scripts shipped as licensed subsets."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from comfyvn import Kernel
from comfyvn.cli import make_cli
from comfyvn_renpy import ExportOptions, build_bundle, fonts, write_bundle
from comfyvn_renpy.engine import Engine
from comfyvn_renpy.fonts import GameMetrics, find_base_font, plan_fonts
from comfyvn_renpy.gui import gui_spec
from comfyvn_renpy.text import BOLD, ITALIC
from comfyvn_scenario import Project, save_project
from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTFont
from PIL import ImageFont

NOTO = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
ZH = "她推开了那扇沉重的木门\uff0c屋里弥漫着檀香的味道。“你终于来了。”老人说道。"
PRIVATE = "\U000f0041"  # a private-use character no installed font has


def _project(text: str, *, name: str = "美玲", choice: str = "继续", title: str = "月光") -> Project:
    nodes = [
        {
            "id": "a",
            "type": "dialogue",
            "speaker": "mei",
            "text": text * 6,
            "choices": [{"id": "go", "label": choice, "target": "b"}, {"id": "stay", "label": "Stay", "target": "a"}],
        },
        {"id": "b", "type": "narration", "text": "The end.", "end": True},
    ]
    meta = {"id": "fonts", "title": title, "start": "s", "characters": {"mei": {"name": name}}}
    return Project(meta=meta, scenes={"s": {"id": "s", "start": "a", "nodes": nodes}})


def _tiny_font(path: Path, chars: str) -> Path:
    """A TrueType font with a square glyph for each of ``chars`` (and .notdef)."""
    builder = FontBuilder(1000, isTTF=True)
    names = [".notdef", *(f"g{ord(c):x}" for c in chars)]
    builder.setupGlyphOrder(names)
    builder.setupCharacterMap({ord(c): f"g{ord(c):x}" for c in chars})
    pen = TTGlyphPen(None)
    pen.moveTo((100, 0))
    pen.lineTo((100, 700))
    pen.lineTo((600, 700))
    pen.lineTo((600, 0))
    pen.closePath()
    square = pen.glyph()
    builder.setupGlyf({name: square for name in names})
    builder.setupHorizontalMetrics({name: (700, 100) for name in names})
    builder.setupHorizontalHeader(ascent=800, descent=-200)
    builder.setupNameTable({"familyName": "Tiny Test", "styleName": "Regular"})
    builder.setupOS2()
    builder.setupPost()
    builder.save(str(path))
    return path


def _group_ranges(rpy: str) -> list[tuple[str, int, int]]:
    return [
        (m[0], int(m[1], 16), int(m[2], 16))
        for m in re.findall(r"\.add\('([^']+)', 0x([0-9A-F]+), 0x([0-9A-F]+)\)", rpy)
    ]


@pytest.mark.skipif(not NOTO.is_file(), reason="Debian's fonts-noto-cjk is not installed (nox installs it)")
def test_cjk_text_ships_a_licensed_subset_that_covers_every_character() -> None:
    bundle = build_bundle(_project(ZH), ExportOptions())
    fonts = bundle.export_manifest["fonts"]
    assert fonts["uncovered"] == [] and not [w for w in bundle.warnings if w.startswith("fonts:")]
    (shipped,) = fonts["shipped"]
    assert shipped["origin"] == "system" and shipped["source"] == NOTO.name
    assert "SIL OPEN FONT LICENSE Version 1.1" in bundle.files[shipped["licence"]].decode()
    subset = TTFont(io.BytesIO(bundle.files[shipped["path"]]))
    cmap = subset.getBestCmap()
    needed = {c for c in ZH + "美玲月光继续" if ord(c) >= 0x3000}  # what DejaVu Sans lacks
    assert {ord(c) for c in needed} <= set(cmap)
    assert len(subset.getGlyphOrder()) < 200  # a subset, not the 65,000-glyph collection
    rpy = bundle.files["game/fonts.rpy"].decode()
    assert "init -1 python:" in rpy and "FontGroup()" in rpy
    game_path = shipped["path"].removeprefix("game/")
    ranges = _group_ranges(rpy)
    for char in needed:
        assert any(font == game_path and low <= ord(char) <= high for font, low, high in ranges), char
    for char in "Stay The end.":
        assert not any(low <= ord(char) <= high for _f, low, high in ranges)  # Latin stays in DejaVu Sans


@pytest.mark.skipif(not NOTO.is_file(), reason="Debian's fonts-noto-cjk is not installed (nox installs it)")
def test_exports_with_fonts_are_byte_identical() -> None:
    first = build_bundle(_project(ZH), ExportOptions(pov_mode="disabled"))
    fonts._subset.cache_clear()  # cut the font again rather than reuse the first export's bytes
    second = build_bundle(_project(ZH), ExportOptions(pov_mode="disabled"))
    assert any(path.endswith(".otf") for path in first.files)
    assert first.all_files() == second.all_files()


def test_a_character_no_font_covers_is_named_and_the_export_succeeds(
    renpy_kernel: Callable[..., Kernel], tmp_path: Path
) -> None:
    project = _project(f"Hello {PRIVATE} there.", name="Mei", choice="Go", title="Moonlight")
    bundle = build_bundle(project, ExportOptions())
    assert bundle.export_manifest["fonts"]["uncovered"] == ["U+F0041"]
    (warning,) = [w for w in bundle.warnings if w.startswith("fonts:")]
    assert "U+F0041" in warning and "--font" in warning and "fonts-noto-cjk" in warning
    source = save_project(project, tmp_path / "project")
    result = CliRunner().invoke(
        make_cli(renpy_kernel()), ["export", "renpy", str(source), "--out", str(tmp_path / "game")]
    )
    assert result.exit_code == 0, result.output
    assert "will not render" in result.output and "U+F0041" in result.output
    assert (tmp_path / "game" / "game" / "script.rpy").is_file()


def test_a_user_font_covers_what_the_system_lacks_and_ships_with_its_licence(
    renpy_kernel: Callable[..., Kernel], tmp_path: Path
) -> None:
    folder = tmp_path / "myfont"
    folder.mkdir()
    font = _tiny_font(folder / "Tiny.ttf", f"A{PRIVATE}")
    (folder / "OFL.txt").write_text("Tiny Test is under the SIL Open Font License 1.1\n", encoding="utf-8")
    source = save_project(
        _project(f"Hello {PRIVATE}.", name="Mei", choice="Go", title="Moonlight"), tmp_path / "project"
    )
    cli = make_cli(renpy_kernel())
    out = tmp_path / "game"
    result = CliRunner().invoke(cli, ["export", "renpy", str(source), "--out", str(out), "--json", "--font", str(font)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["options"]["font"] == "Tiny.ttf" and not [w for w in data["warnings"] if "render" in w]
    manifest = json.loads((out / "export_manifest.json").read_text(encoding="utf-8"))
    (shipped,) = manifest["fonts"]["shipped"]
    assert shipped["origin"] == "user" and shipped["family"] == "Tiny Test"
    assert (out / shipped["licence"]).read_text(encoding="utf-8").startswith("Tiny Test is under")
    assert 0xF0041 in TTFont(out / shipped["path"]).getBestCmap()
    not_a_font = tmp_path / "notes.ttf"
    not_a_font.write_text("hello", encoding="utf-8")
    bad = CliRunner().invoke(cli, ["export", "renpy", str(source), "--out", str(out), "--font", str(not_a_font)])
    assert bad.exit_code == 2 and "not a TrueType/OpenType font" in bad.output
    assert str(tmp_path) not in bad.output.replace(str(not_a_font), "")
    missing = CliRunner().invoke(cli, ["export", "renpy", str(source), "--out", str(out), "--font", "nope.ttf"])
    assert missing.exit_code == 2


def test_the_configured_font_and_the_http_font_field(
    renpy_kernel: Callable[..., Kernel], http_for: Callable[..., Any]
) -> None:
    kernel = renpy_kernel()
    fonts = kernel.paths.data / "fonts"
    fonts.mkdir(parents=True)
    _tiny_font(fonts / "Tiny.ttf", f"A{PRIVATE}")
    save_project(
        _project(f"Hi {PRIVATE}.", name="Mei", choice="Go", title="Moonlight"), kernel.paths.data / "projects" / "p"
    )
    http = http_for(kernel)
    done = http.request("POST", "/api/export/renpy", json={"project": "p", "font": "Tiny.ttf", "dry_run": True})
    assert done.status_code == 200, done.text
    assert done.json()["options"]["font"] == "Tiny.ttf" and str(fonts) not in done.text
    assert not [w for w in done.json()["warnings"] if "render" in w]
    for font, status in (("../projects/p/project.json", 400), ("missing.ttf", 404), (7, 400)):
        answer = http.request("POST", "/api/export/renpy", json={"project": "p", "font": font})
        assert answer.status_code == status and answer.json()["error"]["field"] == "font", answer.text
    # renpy.font in comfyvn.json is the default for every export.
    (kernel.paths.config / "comfyvn.json").write_text(
        json.dumps({"renpy": {"font": str(fonts / "Tiny.ttf")}}), encoding="utf-8"
    )
    configured = renpy_kernel()
    answer = http_for(configured).request("POST", "/api/export/renpy", json={"project": "p", "dry_run": True})
    assert answer.status_code == 200 and answer.json()["options"]["font"] == "Tiny.ttf", answer.text


def test_metrics_use_the_real_bold_face_and_each_fonts_line_height() -> None:
    base = find_base_font()
    if base is None:
        pytest.skip("DejaVu Sans is not on this machine")
    metrics = GameMetrics(33, base)
    regular = ImageFont.truetype(str(base[0]), 33, layout_engine=ImageFont.Layout.BASIC)  # Ren'Py does not shape
    assert metrics.advance("W", 0) == regular.getlength("W")
    assert metrics.advance("W", BOLD) > metrics.advance("W", 0)
    # Bold italic has no DejaVu face in Ren'Py's replacement map: synthetic bold, size // 10 wider.
    assert metrics.advance("W", BOLD | ITALIC) == regular.getlength("W") + 3
    assert metrics.lineskip("W", 0) == sum(regular.getmetrics())


def test_without_dejavu_on_the_machine_latin1_counts_as_covered_and_is_measured_from_a_table() -> None:
    plan = plan_fonts(set("Héllo wörld"), size=33, base_dirs=())
    assert plan.report["default"]["checked"] is False and plan.report["uncovered"] == []
    assert any("not on this machine" in w for w in plan.warnings)
    base = find_base_font()
    if base is not None:
        regular = ImageFont.truetype(str(base[0]), 33, layout_engine=ImageFont.Layout.BASIC)
        for char in "Héllo W":
            assert abs(plan.metrics.advance(char, 0) - regular.getlength(char)) <= 1


@pytest.mark.skipif(not NOTO.is_file(), reason="Debian's fonts-noto-cjk is not installed (nox installs it)")
def test_a_cjk_game_lints_clean_in_the_real_engine(engine: Engine, tmp_path: Path) -> None:
    spec = gui_spec(1280, 720)
    bundle = build_bundle(_project(ZH + " *强调* 与 `代码`"), ExportOptions(resolution=(spec.width, spec.height)))
    write_bundle(bundle, tmp_path / "game")
    lint = engine.lint(tmp_path / "game", timeout=300)
    assert lint.ok, lint.problems[:10]
