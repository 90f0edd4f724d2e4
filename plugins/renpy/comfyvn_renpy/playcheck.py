"""Play-check: play a Ren'Py game in the real engine, offscreen, as a player would, and check what they get.

`run_play_check` copies the game's ``game/`` folder to a temporary project, injects the checker script
(``playcheck_rpy/cvn_playcheck.rpy``) and its settings into the COPY only, and runs the engine offscreen
with a throwaway HOME under ``timeout``. The checker goes through the title screen (Start), clicks every
line and picks menu choices (the first enabled one, a given path, or in ``explore`` mode every choice once
over several playthroughs), and writes one JSON record per interaction: screens and images shown with
their bounds, the dialogue text as displayed, its rendered rect and its text box, the fonts.

`evaluate` turns those records into a `PlayReport` (pure: unit-testable without the engine):

- ``runs``: the engine ran to the end without a script error, a crash or a timeout;
- ``title_first``: the title screen (``main_menu``) comes before the first line;
- ``ends_on_title``: the story ends back on the title screen (it does not start again by itself);
- ``backdrop``: on every line something covers the whole screen behind (no checkerboard, no partial bg);
- ``sprites_inside``: no image that is not a backdrop sticks out at the top, bottom or sides;
- ``text_fits``: the dialogue fits its text box and the text box fits the screen;
- ``no_raw_markup``: no Markdown, HTML-like tag, ``{{macro}}`` or OOC marker reaches the player;
- ``glyphs``: every character shown is in the cmap of the font that draws it (fontTools).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import attrs

from .engine import Engine, find_engine

__all__ = [
    "CHECKER",
    "CHECKS",
    "MODES",
    "Finding",
    "PlayReport",
    "displayed_text",
    "evaluate",
    "raw_markup",
    "run_play_check",
]

CHECKER = Path(__file__).resolve().parent / "playcheck_rpy" / "cvn_playcheck.rpy"
CHECKS = (
    "runs",
    "title_first",
    "ends_on_title",
    "backdrop",
    "sprites_inside",
    "text_fits",
    "no_raw_markup",
    "glyphs",
)
MODES = ("first", "explore")
SCREENSHOTS = ("title", "first_line", "first_menu", "ending", "end")
_FINDINGS_KEPT = 200
_TOLERANCE = 1.0  # pixels: bounds are floats, and a sprite anchored at the bottom may touch the edge
_FINISH_MESSAGES = {
    "loop": "after the last line the story starts again from the beginning without the title screen",
    "cap": "the story did not end within the interaction cap (an endless loop?)",
    "time": "the story did not end within the time limit",
    "script_error": "the game stopped with a script error",
    "menu_without_choice": "a menu showed no choice that can be taken",
    "checker_error": "the play-check script failed inside the engine",
}
_MARKUP = (
    ("bold markdown `**`", re.compile(r"\*\*")),
    ("underline markdown `__`", re.compile(r"__")),
    ("strikethrough markdown `~~`", re.compile(r"~~")),
    ("asterisk emphasis `*x*`", re.compile(r"(?<![\w*])\*(?=[^\s*])[^*\n]*?(?<=[^\s*])\*(?![\w*])")),
    ("backtick", re.compile(r"`")),
    ("HTML-like tag", re.compile(r"</?[A-Za-z][A-Za-z0-9:_.-]*(?:\s[^<>]*)?/?>")),
    ("{{macro}}", re.compile(r"\{\{[^{}\n]*\}\}")),
    ("OOC marker", re.compile(r"\bOOC\b", re.IGNORECASE)),
    ("quote marker `> `", re.compile(r"(?m)^\s*>\s")),
)
# Not drawn as glyphs: spaces, controls, format characters (ZWJ, BOM…) and variation selectors.
_INVISIBLE = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})


@attrs.frozen
class Finding:
    """One problem a player would see, where the engine was (``file:line``, label) and the text involved."""

    check: str
    message: str
    where: str | None = None
    label: str | None = None
    text: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class PlayReport:
    """The outcome of one play-check: per-check verdicts, the findings, what was played and seen."""

    ok: bool
    checks: Mapping[str, bool]
    findings: tuple[Finding, ...]
    findings_total: int
    finish: str | None
    lines: int
    menus: int
    playthroughs: int
    screen: tuple[int, int] | None
    fonts: Mapping[str, Any]
    screenshots: Mapping[str, str]
    seconds: float = 0.0
    returncode: int | None = None
    timed_out: bool = False
    output: str = ""

    def failed(self) -> list[str]:
        """Names of the checks that failed, in `CHECKS` order."""
        return [name for name in CHECKS if not self.checks.get(name, False)]

    def to_wire(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for finding in self.findings:
            counts[finding.check] = counts.get(finding.check, 0) + 1
        return {
            "ok": self.ok,
            "checks": {name: {"ok": self.checks.get(name, False), "findings": counts.get(name, 0)} for name in CHECKS},
            "findings": [f.to_wire() for f in self.findings],
            "findings_total": self.findings_total,
            "finish": self.finish,
            "lines": self.lines,
            "menus": self.menus,
            "playthroughs": self.playthroughs,
            "screen": list(self.screen) if self.screen else None,
            "fonts": dict(self.fonts),
            "screenshots": dict(self.screenshots),
            "seconds": round(self.seconds, 3),
            "returncode": self.returncode,
            "timed_out": self.timed_out,
            "output": self.output,
        }


# -- text -----------------------------------------------------------------------------------------


def font_spans(text: str) -> list[tuple[str, str | None]]:
    """Ren'Py text split into (visible text, ``{font=…}`` in effect or None) runs, tags removed.

    Ren'Py's tokenizer: ``{{`` is a literal ``{``; ``{tag}`` … ``{/tag}`` are tags (not shown); a ``{`` with no
    closing ``}`` is shown as it is; ``}`` alone is literal.
    """
    spans: list[tuple[str, str | None]] = []
    fonts: list[str] = []
    buffer: list[str] = []

    def flush() -> None:
        if buffer:
            spans.append(("".join(buffer), fonts[-1] if fonts else None))
            buffer.clear()

    i = 0
    while i < len(text):
        char = text[i]
        if char == "{":
            if text.startswith("{{", i):
                buffer.append("{")
                i += 2
                continue
            end = text.find("}", i)
            if end < 0:
                buffer.append(text[i:])
                break
            tag = text[i + 1 : end]
            flush()
            if tag.startswith("font="):
                fonts.append(tag[5:])
            elif tag == "/font" and fonts:
                fonts.pop()
            i = end + 1
            continue
        buffer.append(char)
        i += 1
    flush()
    return spans


def displayed_text(text: str) -> str:
    """What a player reads for Ren'Py text ``text`` (already interpolated): text tags removed, ``{{`` → ``{``."""
    return "".join(part for part, _font in font_spans(text))


def raw_markup(text: str) -> list[str]:
    """The kinds of raw markup in displayed ``text`` (Markdown, HTML-like tags, ``{{macros}}``, OOC)."""
    return [name for name, pattern in _MARKUP if pattern.search(text)]


def _visible(char: str) -> bool:
    code = ord(char)
    if 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF:
        return False
    return unicodedata.category(char) not in _INVISIBLE


@lru_cache(maxsize=64)
def _cmap(path: str, index: int, stamp: tuple[int, int]) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    with TTFont(path, fontNumber=index, lazy=True) as font:
        return frozenset(font.getBestCmap() or {})


def font_cmap(spec: str, fonts: Mapping[str, str | None]) -> frozenset[int] | None:
    """The code points font ``spec`` (``file`` or ``index@file``) covers; None when its file was not found."""
    path = fonts.get(spec)
    if not path:
        return None
    index = int(spec.split("@", 1)[0]) if "@" in spec and spec.split("@", 1)[0].isdigit() else 0
    try:
        stat = Path(path).stat()
        return _cmap(path, index, (stat.st_mtime_ns, stat.st_size))
    except Exception:  # a file fontTools cannot read is a font no glyph comes from
        return None


# -- evaluation -----------------------------------------------------------------------------------


class _Collector:
    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.seen: set[tuple[str, str | None, str]] = set()
        self.failed: set[str] = set()
        self.total = 0

    def add(self, check: str, message: str, record: Mapping[str, Any] | None = None, text: str | None = None) -> None:
        self.failed.add(check)
        where = record.get("where") if record else None
        key = (check, where, message)
        if key in self.seen:
            return  # the same line seen again on another playthrough
        self.seen.add(key)
        self.total += 1
        if len(self.findings) < _FINDINGS_KEPT:
            excerpt = text if text is None or len(text) <= 160 else text[:159] + "…"
            label = record.get("label") if record else None
            self.findings.append(Finding(check, message, where, label, excerpt))


def _covers(bounds: Sequence[float], width: float, height: float) -> bool:
    x, y, w, h = bounds
    return x <= _TOLERANCE and y <= _TOLERANCE and x + w >= width - _TOLERANCE and y + h >= height - _TOLERANCE


def _outside(bounds: Sequence[float], width: float, height: float) -> list[str]:
    x, y, w, h = bounds
    edges = []
    if y < -_TOLERANCE:
        edges.append(f"top by {-y:.0f} px")
    if x < -_TOLERANCE:
        edges.append(f"left by {-x:.0f} px")
    if x + w > width + _TOLERANCE:
        edges.append(f"right by {x + w - width:.0f} px")
    if y + h > height + _TOLERANCE:
        edges.append(f"bottom by {y + h - height:.0f} px")
    return edges


def _check_stage(out: _Collector, record: Mapping[str, Any], width: float, height: float) -> None:
    images = [i for i in record.get("images") or [] if i.get("bounds")]
    line = displayed_text((record.get("textbox") or {}).get("text") or "") or None
    if not any(_covers(i["bounds"], width, height) for i in images):
        shown = ", ".join(
            f"{' '.join([i['tag'], *i.get('attributes', [])])} at {[round(v) for v in i['bounds']]}" for i in images
        )
        out.add(
            "backdrop", f"nothing covers the whole screen behind this line ({shown or 'no image shown'})", record, line
        )
    for image in images:
        if _covers(image["bounds"], width, height):
            continue
        edges = _outside(image["bounds"], width, height)
        if edges:
            name = " ".join([image["tag"], *image.get("attributes", [])])
            out.add("sprites_inside", f"image {name!r} is cut off at the {', '.join(edges)}", record, line)


def _check_textbox(out: _Collector, record: Mapping[str, Any], width: float, height: float) -> None:
    box = record.get("textbox") or {}
    rect = box.get("rect")
    text = displayed_text(box.get("text") or "")
    if rect is None:
        out.add("text_fits", "the dialogue text is not drawn on screen", record, text)
        return
    _x, y, _w, h = rect
    edges = _outside(rect, width, height)
    if edges:
        out.add("text_fits", f"the dialogue runs off the screen at the {', '.join(edges)}", record, text)
    window = box.get("window")
    if not window or not window.get("rect"):
        return
    _wx, wy, _ww, wh = window["rect"]
    if y + h > wy + wh + _TOLERANCE:
        out.add("text_fits", f"the page overflows its text box by {y + h - wy - wh:.0f} px at the bottom", record, text)
    if y < wy - _TOLERANCE:
        out.add("text_fits", f"the page overflows its text box by {wy - y:.0f} px at the top", record, text)
    window_edges = _outside(window["rect"], width, height)
    if window_edges:
        out.add("text_fits", f"the text box runs off the screen at the {', '.join(window_edges)}", record, text)
    if window.get("ysize") is None and window.get("ymaximum") is None and wh > height / 2:
        out.add(
            "text_fits", f"the text box grows to {wh / height:.0%} of the screen height to hold the page", record, text
        )


def _check_text(out: _Collector, record: Mapping[str, Any], fonts: Mapping[str, str | None]) -> None:
    box = record.get("textbox") or {}
    pieces: list[tuple[str, Any]] = []
    if box.get("text"):
        pieces.append((box["text"], box.get("font")))
    who = box.get("who") or {}
    if who.get("text"):
        pieces.append((who["text"], who.get("font")))
    for choice in record.get("choices") or []:
        pieces.append((choice[0], record.get("choice_font")))
    for text, font in pieces:
        shown = displayed_text(text)
        kinds = raw_markup(shown)
        if kinds:
            out.add("no_raw_markup", f"raw markup reaches the player: {', '.join(kinds)}", record, shown)
        missing = _missing_glyphs(text, font, fonts)
        if missing:
            chars = "".join(sorted(missing))[:40]
            out.add("glyphs", f"{len(missing)} character(s) no shipped font covers: {chars}", record, shown)


def _font_for(char: str, font: Any) -> str | None:
    if isinstance(font, str):
        return font
    if isinstance(font, Mapping) and "group" in font:
        code = ord(char)
        for start, end, name in font["group"]:
            if start <= code <= end:
                return str(name) if name else font.get("default")
        default = font.get("default")
        return str(default) if default else None
    return None


def _missing_glyphs(text: str, font: Any, fonts: Mapping[str, str | None]) -> set[str]:
    missing: set[str] = set()
    for part, tag_font in font_spans(text):
        for char in part:
            if not _visible(char):
                continue
            spec = tag_font or _font_for(char, font)
            cmap = font_cmap(spec, fonts) if spec else None
            if cmap is None or ord(char) not in cmap:
                missing.add(char)
    return missing


def evaluate(records: Iterable[Mapping[str, Any]], *, finished_run: bool = True) -> PlayReport:
    """The verdicts for the checker's ``records`` (one dict per JSON line, in order).

    ``finished_run`` is False when the engine process failed or timed out: ``runs`` then fails even if the
    records end cleanly.
    """
    out = _Collector()
    boot: Mapping[str, Any] = {}
    fonts: dict[str, str | None] = {}
    finish: Mapping[str, Any] | None = None
    screenshots: dict[str, str] = {}
    first_kind: str | None = None
    lines = menus = playthroughs = 0
    errors: list[str] = []
    for record in records:
        event = record.get("event")
        if event == "boot":
            boot = record
        elif event == "font":
            fonts[str(record.get("spec"))] = record.get("path")
        elif event == "finish":
            finish = record
        elif event == "screenshot" and record.get("ok"):
            screenshots[str(record["name"])] = str(record["path"])
        elif event == "checker_error":
            errors.append(str(record.get("error", ""))[-400:])
        elif event == "interaction":
            kind = record.get("kind")
            playthroughs = max(playthroughs, int(record.get("playthrough") or 0))
            if first_kind is None and kind in ("title", "say", "menu"):
                first_kind = kind
            if kind not in ("say", "menu"):
                continue
            lines += kind == "say"
            menus += kind == "menu"
            width, height = boot.get("screen") or (0, 0)
            _check_stage(out, record, width, height)
            if record.get("textbox") is not None:
                _check_textbox(out, record, width, height)
            _check_text(out, record, fonts)
    reason = finish.get("reason") if finish else None
    if reason != "title" or not finished_run:
        detail = _FINISH_MESSAGES.get(str(reason), "the engine stopped before the story ended")
        if reason not in ("loop",):
            out.add("runs", detail + (f": {errors[0]}" if errors else ""), finish)
        if reason != "title":
            out.add("ends_on_title", detail, finish)
    if first_kind != "title":
        out.add("title_first", "the game starts with the story: no title screen is shown first")
    checks = {name: name not in out.failed for name in CHECKS}
    if lines + menus == 0:
        out.add("runs", "no line of the story was shown")
        checks["runs"] = False
    screen = tuple(boot["screen"]) if boot.get("screen") else None
    return PlayReport(
        ok=all(checks.values()),
        checks=checks,
        findings=tuple(out.findings),
        findings_total=out.total,
        finish=reason,
        lines=lines,
        menus=menus,
        playthroughs=playthroughs,
        screen=(int(screen[0]), int(screen[1])) if screen else None,
        fonts=dict(boot.get("fonts") or {}),
        screenshots=screenshots,
    )


# -- running --------------------------------------------------------------------------------------


def game_root(path: Path) -> Path:
    """The Ren'Py project folder for ``path``: a folder holding ``game/``, or that ``game/`` folder itself."""
    from comfyvn.errors import Invalid

    if (path / "game").is_dir():
        return path
    if path.name == "game" and path.is_dir() and any(path.glob("*.rpy")):
        return path.parent
    raise Invalid("not a Ren'Py project: it has no game/ folder", field="game_dir", code="not_a_game")


def _ignore(directory: str, names: list[str]) -> set[str]:
    # Caches, saves and any checker left by an earlier run are not part of the game a player gets.
    if Path(directory).name == "game":
        return {n for n in names if n in ("cache", "saves") or n.startswith("cvn_playcheck")}
    return set()


def _parse(raw: str) -> list[dict[str, Any]]:
    """The checker's JSON lines; a line cut short by a killed engine is left out."""
    records = []
    for line in raw.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            records.append(value)
    return records


def _deliver(taken: Mapping[str, str], folder: Path) -> dict[str, str]:
    """Copy the screenshots the engine wrote into the temporary folder to ``folder``, each write atomic."""
    from comfyvn.paths import atomic_write_bytes

    folder.mkdir(parents=True, exist_ok=True)
    saved = {}
    for name, source in taken.items():
        target = folder / f"{name}.png"
        atomic_write_bytes(target, Path(source).read_bytes())
        saved[name] = str(target.resolve())
    return saved


def run_play_check(
    game_dir: Path,
    *,
    engine: Engine | None = None,
    screenshots: Path | None = None,
    mode: str = "first",
    path: Sequence[int | str] = (),
    timeout: float = 180,
    max_interactions: int = 3000,
    max_playthroughs: int = 8,
    line_shots: int = 0,
    keep_records: Path | None = None,
    settle: float = 0.0,
) -> PlayReport:
    """Play the Ren'Py game at ``game_dir`` offscreen in the real engine and check it (see module doc).

    ``mode`` "first" takes the first enabled choice (after ``path``: choice indexes or labels, one per menu);
    "explore" plays again from the title screen until every choice seen was taken once. Screenshots
    (``title``, ``first_line``, ``first_menu``, ``ending`` — the story's last frame when that is not a line,
    such as an ending card — and ``end``, the title screen it returns to; with ``line_shots`` N also
    ``line_001`` … for the first N lines) go to ``screenshots`` when given;
    ``keep_records`` keeps the raw JSON lines; ``settle`` seconds (at least) each interaction stays on
    screen before it is recorded and answered (animations and eased moves finish first; default: as soon
    as it is drawn). The game folder itself is never written to.
    """
    from comfyvn.errors import Invalid, OperationFailed
    from comfyvn.paths import atomic_write_text

    if mode not in MODES:
        raise Invalid(f"mode must be one of {', '.join(MODES)}", field="mode")
    if not 0 <= settle <= 60:
        raise Invalid("settle must be 0 to 60 seconds", field="settle")
    root = game_root(game_dir)
    engine = engine or find_engine()
    if engine is None:
        raise OperationFailed("Ren'Py is not installed: `apt-get install -y renpy` or set COMFYVN_RENPY_SDK")
    with tempfile.TemporaryDirectory(prefix="comfyvn-playcheck-") as tmp:
        base = Path(tmp)
        copy, home, records, shots = base / "project", base / "home", base / "records.jsonl", base / "shots"
        shutil.copytree(root / "game", copy / "game", ignore=_ignore)
        home.mkdir()
        shots.mkdir()
        shutil.copyfile(CHECKER, copy / "game" / CHECKER.name)
        settings = {
            "records": str(records),
            "screenshots": str(shots) if screenshots is not None else None,
            "mode": mode,
            "path": list(path),
            "max_interactions": max_interactions,
            "max_playthroughs": max_playthroughs,
            "line_shots": line_shots,
            # The checker counts ticks of Ren'Py's periodic callback (20 a second); 2 = drawn once.
            "settle_ticks": max(2, round(settle * 20)),
            "max_seconds": max(5.0, timeout - 20),
        }
        (copy / "game" / "cvn_playcheck.json").write_text(json.dumps(settings), encoding="utf-8")
        env = engine.environment(video="offscreen", home=home)
        command = ["timeout", "-k", "10", str(int(timeout)), *engine.command(str(copy), "run")]
        started = time.perf_counter()
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, errors="replace", env=env, timeout=timeout + 30, check=False
            )
            returncode, output = done.returncode, (done.stdout or "") + (done.stderr or "")
        except subprocess.TimeoutExpired:
            returncode, output = 124, ""
        timed_out = returncode in (124, 137)
        seconds = time.perf_counter() - started
        raw = records.read_text(encoding="utf-8", errors="replace") if records.is_file() else ""
        for name in ("traceback.txt", "errors.txt"):
            if (copy / name).is_file():
                output += f"\n--- {name}\n" + (copy / name).read_text(encoding="utf-8", errors="replace")
        # Fonts are read while the copy still exists: the records name files inside it.
        report = evaluate(_parse(raw), finished_run=returncode == 0 and not timed_out)
        saved = _deliver(report.screenshots, screenshots) if screenshots is not None else {}
        if keep_records is not None:
            atomic_write_text(keep_records, raw)
    return attrs.evolve(
        report,
        screenshots=saved,
        seconds=seconds,
        returncode=returncode,
        timed_out=timed_out,
        output="" if report.checks.get("runs") else output[-4000:],
    )
