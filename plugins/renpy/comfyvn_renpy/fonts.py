"""Fonts for every script: check what the player will read against the game's fonts, ship what is missing.

Ren'Py draws text in DejaVu Sans unless told otherwise; characters it lacks (CJK, Thai, emoji…) show
as boxes. `plan_fonts` takes every character the player will see, finds a font for each one DejaVu
Sans does not have — the user's ``--font`` first, then the fonts installed on this machine (fontconfig)
— subsets each chosen font to the characters it draws plus basic Latin (fontTools), and ships it under
``game/fonts/`` beside its licence. ``game/fonts.rpy`` then points every ``gui.*_font`` that names
DejaVu Sans at a ``FontGroup`` sending those characters to the shipped fonts. What no font covers is
named in the plan's warnings; the export still succeeds.

The plan's `GameMetrics` measures characters in exactly those fonts at the game's text size, so the
paginator (text.py) wraps lines as the game will. Output is deterministic for a given machine: the
same project and fonts give the same bytes (subset fonts carry a fixed timestamp).
"""

from __future__ import annotations

import bisect
import functools
import io
import json
import logging
import math
import shutil
import subprocess
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
from comfyvn.errors import Invalid, NotFound
from comfyvn_scenario import Project

from .gui import DEFAULT_RESOLUTION, gui_spec
from .names import slug
from .text import BOLD, CODE, ITALIC, MARKUP_CHARS, Paginator, parse_markdown

__all__ = [
    "BASE_FONT",
    "FontPlan",
    "GameMetrics",
    "collect_characters",
    "configured_font",
    "default_pager",
    "find_base_font",
    "plan_fonts",
]

BASE_FONT = "DejaVuSans.ttf"
BASE_BOLD = "DejaVuSans-Bold.ttf"
BASE_DIRS = (Path("/usr/share/games/renpy/renpy/common"), Path("/usr/share/fonts/truetype/dejavu"))
MONO_FONT = "DejaVuSansMono.ttf"
# The interface the game shell writes (menus, preferences, confirmations) is ASCII English.
INTERFACE = frozenset(chr(c) for c in range(0x20, 0x7F))
LATIN1 = frozenset(chr(c) for c in [*range(0x20, 0x7F), *range(0xA0, 0x100)])
FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")
# 2000-01-01T00:00:00Z in the OpenType epoch (seconds since 1904): subset fonts carry no build time.
FIXED_TIMESTAMP = 3029529600
MAX_NAMED = 20
DEJAVU_EXTENTS = (1901 / 2048, 483 / 2048)  # DejaVu Sans ascender and descender, in ems
UNUSED_TABLES = ("GSUB", "GPOS", "GDEF", "BASE", "JSTF", "MATH", "VORG", "vhea", "vmtx")
_MAX_CODE = 0x10FFFF
_LICENCE_NAMES = ("license", "licence", "ofl", "copying", "copyright")


def _visible(ch: str) -> bool:
    """Whether ``ch`` is drawn: not space, control, format or a variation selector (private use is drawn)."""
    code = ord(ch)
    if ch.isspace() or 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF:
        return False
    return unicodedata.category(ch) not in ("Cc", "Cf", "Cs")


@attrs.frozen
class FontFace:
    """One face of a font file on this machine (``index`` > 0 only inside a collection)."""

    path: Path
    index: int
    family: str
    style: str


@attrs.frozen
class ShippedFont:
    """A font subset shipped in the game: its game path, the face it came from, what it draws."""

    game_path: str
    face: FontFace
    chars: frozenset[str]
    data: bytes
    origin: str  # "user" or "system"
    licence_path: str | None
    licence: bytes | None


@functools.lru_cache(maxsize=32)
def _cmap(path: Path, index: int) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    # The file is opened here so that it is closed even when fontTools gives up on it.
    with path.open("rb") as handle, TTFont(handle, fontNumber=index, lazy=True) as font:
        return frozenset(font.getBestCmap() or {})


@functools.lru_cache(maxsize=64)
def _pil_font(source: Path | bytes, index: int, size: int) -> Any:
    from PIL import ImageFont

    data = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    return ImageFont.truetype(data, size, index=index, layout_engine=ImageFont.Layout.BASIC)


@functools.lru_cache(maxsize=1)
def _builtin_widths() -> dict[str, Any]:
    return json.loads((Path(__file__).parent / "dejavu_widths.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def find_base_font(dirs: Iterable[Path] = BASE_DIRS) -> tuple[Path, Path | None] | None:
    """Ren'Py's default font (regular, bold) on this machine: the engine's copy or the system's DejaVu."""
    for folder in dirs:
        if (folder / BASE_FONT).is_file():
            bold = folder / BASE_BOLD
            return folder / BASE_FONT, bold if bold.is_file() else None
    return None


class GameMetrics:
    """Advance widths (pixels, hinted as FreeType renders them) in the fonts the game will use.

    Bold DejaVu Sans is the real bold face (Ren'Py's font replacement map); other bold text is
    Ren'Py's synthetic bold, ``size // 10`` pixels wider per glyph. Without any font file on this
    machine, DejaVu Sans widths of ASCII and Latin-1 come from a table and anything else counts 1 em.
    """

    def __init__(
        self,
        size: int,
        base: tuple[Path, Path | None] | None,
        groups: Iterable[tuple[frozenset[str], bytes]] = (),
        code: bytes | None = None,
    ) -> None:
        self.size = size
        self.base = base
        self.groups = [(chars, _pil_font(data, 0, size)) for chars, data in groups]
        self.code = _pil_font(code, 0, size) if code is not None else None
        self._regular = _pil_font(base[0], 0, size) if base else None
        self._bold = _pil_font(base[1], 0, size) if base and base[1] else None
        self._cache: dict[tuple[str, int], float] = {}
        self._skips: dict[int, int] = {}
        self._char_skips: dict[tuple[str, int], int] = {}

    def advance(self, ch: str, style: int) -> float:
        """The pen advance of ``ch`` drawn in ``style`` (text.ITALIC/BOLD/STRIKE/CODE bits)."""
        key = (ch, style)
        width = self._cache.get(key)
        if width is None:
            width = self._cache[key] = self._measure(ch, style)
        return width

    def lineskip(self, ch: str, style: int) -> int:
        """Ascent plus descent (whole pixels, as FreeType rounds them) of the font that draws ``ch``."""
        key = (ch, style)
        skip = self._char_skips.get(key)
        if skip is None:
            skip = self._char_skips[key] = self._lineskip(ch, style)
        return skip

    def _lineskip(self, ch: str, style: int) -> int:
        font = self._font(ch, style)
        if font is None:
            ascent, descent = DEJAVU_EXTENTS
            return math.ceil(ascent * self.size) + math.ceil(descent * self.size)
        skip = self._skips.get(id(font))
        if skip is None:
            skip = self._skips[id(font)] = sum(font.getmetrics())
        return skip

    def _font(self, ch: str, style: int) -> Any:
        if style & CODE and self.code is not None:
            return self.code
        for chars, font in self.groups:
            if ch in chars:
                return font
        if style & BOLD and not style & ITALIC and self._bold is not None:
            return self._bold
        return self._regular

    def _measure(self, ch: str, style: int) -> float:
        font = self._font(ch, style)
        real_bold = font is not None and font is self._bold
        fake_bold = float(self.size // 10) if style & BOLD and not real_bold else 0.0
        if font is not None:
            return float(font.getlength(ch)) + fake_bold
        table = _builtin_widths()
        bold = bool(style & BOLD and not style & ITALIC)
        units = table["bold" if bold else "regular"].get(ch)
        if units is None:
            return float(self.size) + fake_bold
        return float(round(units * self.size / table["units_per_em"])) + (0.0 if bold else fake_bold)


@attrs.frozen
class FontPlan:
    """What an export ships for its text: font files, ``fonts.rpy``, metrics, and the coverage report."""

    files: Mapping[str, bytes]
    metrics: GameMetrics
    code_font: str | None
    report: Mapping[str, Any]
    warnings: tuple[str, ...]


def configured_font(config: Mapping[str, Any]) -> str | None:
    """``renpy.font`` of ``comfyvn.json`` (a font path), when set."""
    section = config.get("renpy")
    value = section.get("font") if isinstance(section, Mapping) else None
    return value if isinstance(value, str) and value.strip() else None


def user_font_face(path: str, *, field: str = "font") -> FontFace:
    """The font at ``path`` (400 when it is no font fontTools reads, 404 when missing)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise NotFound(f"no font file {file.name!r}", field=field, code="font_not_found")
    from fontTools.ttLib import TTFont

    try:
        _cmap(file, 0)
        with file.open("rb") as handle, TTFont(handle, fontNumber=0, lazy=True) as font:
            family = str(font["name"].getDebugName(1) or file.stem)
    except Exception:  # fontTools raises many types for a file that is not a font
        raise Invalid(f"{file.name!r} is not a TrueType/OpenType font", field=field, code="invalid_font") from None
    return FontFace(file.resolve(), 0, family, "Regular")


def _faces_in(face: FontFace) -> list[FontFace]:
    """Every face of a collection file (a plain font file is one face)."""
    if face.path.suffix.lower() not in (".ttc", ".otc"):
        return [face]
    from fontTools.ttLib import TTCollection

    with TTCollection(str(face.path), lazy=True) as collection:
        names = [str(f["name"].getDebugName(1) or face.path.stem) for f in collection.fonts]
    return [FontFace(face.path, i, name, face.style) for i, name in enumerate(names)]


@functools.lru_cache(maxsize=1)
def _system_fonts() -> tuple[tuple[FontFace, tuple[tuple[int, int], ...]], ...]:
    """Every installed font fontconfig knows with its character ranges (empty without fontconfig)."""
    binary = shutil.which("fc-list")
    if binary is None:
        return ()
    try:
        done = subprocess.run(
            [binary, "--format", "%{file}\t%{index}\t%{family[0]}\t%{style[0]}\t%{charset}\n"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ()
    found = []
    for line in done.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) != 5 or not parts[0].lower().endswith(FONT_SUFFIXES) or not parts[1].isdigit():
            continue
        ranges = []
        for item in parts[4].split():
            low, _, high = item.partition("-")
            ranges.append((int(low, 16), int(high or low, 16)))
        found.append((FontFace(Path(parts[0]), int(parts[1]), parts[2], parts[3]), tuple(sorted(ranges))))
    return tuple(sorted(found, key=lambda f: (str(f[0].path), f[0].index)))


def _in_ranges(ranges: tuple[tuple[int, int], ...], codes: list[int]) -> set[int]:
    """The ``codes`` inside sorted, disjoint ``ranges`` (a binary search per code: fonts have thousands)."""
    covered = set()
    for code in codes:
        i = bisect.bisect_right(ranges, (code, _MAX_CODE)) - 1
        if i >= 0 and ranges[i][0] <= code <= ranges[i][1]:
            covered.add(code)
    return covered


def _preference(face: FontFace, text: frozenset[str]) -> tuple[int, int, int]:
    """Lower is better: regular faces, proportional before mono, the CJK variant the text is written in."""
    style = 0 if face.style.lower() in ("regular", "book", "normal", "roman") else 1
    mono = 1 if "mono" in face.family.lower() else 0
    if any("\u3040" <= c <= "\u30ff" for c in text):
        order = ("JP", "TC", "SC", "HK", "KR")
    elif any("\uac00" <= c <= "\ud7af" or "\u1100" <= c <= "\u11ff" for c in text):
        order = ("KR", "SC", "TC", "HK", "JP")
    else:
        order = ("SC", "TC", "HK", "JP", "KR")
    words = face.family.split()
    lang = next((i for i, code in enumerate(order) if code in words), len(order))
    return style, mono, lang


def _choose(missing: set[str], user: FontFace | None, text: frozenset[str]) -> list[tuple[FontFace, set[str], str]]:
    """Fonts for ``missing``: the user's font first, then system fonts, greedily by coverage."""
    chosen: list[tuple[FontFace, set[str], str]] = []
    left = set(missing)
    if user is not None and left:
        best = max(_faces_in(user), key=lambda f: (len(left & {chr(c) for c in _cmap(f.path, f.index)}), -f.index))
        got = {c for c in left if ord(c) in _cmap(best.path, best.index)}
        if got:
            chosen.append((best, got, "user"))
            left -= got
    system = _system_fonts()
    while left and system:
        codes = sorted(ord(c) for c in left)
        scored = []
        for face, ranges in system:
            claimed = _in_ranges(ranges, codes)
            if claimed:
                scored.append((-len(claimed), _preference(face, text), face.family, str(face.path), face.index, face))
        if not scored:
            break
        face = min(scored)[-1]
        real = {c for c in left if ord(c) in _cmap(face.path, face.index)}  # fontconfig's word is checked
        if not real:
            system = tuple(s for s in system if s[0] != face)
            continue
        chosen.append((face, real, "system"))
        left -= real
    return chosen


@functools.lru_cache(maxsize=8)
def _subset(face: FontFace, chars: frozenset[str]) -> tuple[bytes, str]:
    """The face cut down to ``chars`` plus basic Latin, with fixed timestamps; and its file suffix.

    Cached: loading a CJK collection takes about a second, and previews and repeated exports of one
    project ask for the same cut (fontTools' output depends only on the face and the characters)."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    options = subset.Options()
    options.name_IDs = ["*"]  # keep copyright, licence and designer records
    options.name_languages = ["*"]
    options.notdef_outline = True
    options.recalc_timestamp = False
    # Ren'Py 8.0 lays text out with FreeType alone (kerning from the kern table, no shaping): the
    # OpenType layout and vertical-metrics tables would only make the subset big and slow to cut.
    options.drop_tables = [*options.drop_tables, "DSIG", *UNUSED_TABLES]
    cover = _cmap(face.path, face.index)
    codes = sorted({ord(c) for c in chars} | {c for c in range(0x20, 0x7F) if c in cover})
    quiet = logging.getLogger("fontTools.subset")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # it logs every table it drops
    try:
        with TTFont(str(face.path), fontNumber=face.index, recalcTimestamp=False) as font:
            subsetter = subset.Subsetter(options)
            subsetter.populate(unicodes=codes)
            subsetter.subset(font)
            font["head"].created = FIXED_TIMESTAMP
            font["head"].modified = FIXED_TIMESTAMP
            out = io.BytesIO()
            font.save(out, reorderTables=True)
            suffix = ".otf" if "CFF " in font or "CFF2" in font else ".ttf"
    finally:
        quiet.setLevel(level)
    return out.getvalue(), suffix


@functools.lru_cache(maxsize=16)
def _licence(path: Path) -> bytes | None:
    """The licence of a font file: a licence file beside it, else its Debian package's copyright file."""
    try:
        beside = sorted(p for p in path.parent.iterdir() if p.is_file() and p != path)
    except OSError:
        beside = []
    for candidate in beside:
        if candidate.suffix.lower() not in FONT_SUFFIXES and any(
            candidate.name.lower().startswith(n) for n in _LICENCE_NAMES
        ):
            return candidate.read_bytes()
    dpkg = shutil.which("dpkg")
    if dpkg is None:
        return None
    try:
        done = subprocess.run([dpkg, "-S", str(path)], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    package = done.stdout.split(":", 1)[0].strip() if done.returncode == 0 else ""
    copyright_file = Path("/usr/share/doc") / package / "copyright"
    return copyright_file.read_bytes() if package and copyright_file.is_file() else None


def _ship(face: FontFace, chars: set[str], origin: str, taken: set[str]) -> ShippedFont:
    data, suffix = _subset(face, frozenset(chars))
    name = slug(face.family, fallback="font")
    while name in taken:
        name += "_2"
    taken.add(name)
    licence = _licence(face.path)
    return ShippedFont(
        game_path=f"fonts/{name}{suffix}",
        face=face,
        chars=frozenset(chars),
        data=data,
        origin=origin,
        licence_path=f"fonts/{name}.LICENSE.txt" if licence is not None else None,
        licence=licence,
    )


def _group_ranges(used: Iterable[str], owner: Mapping[str, str]) -> list[tuple[str, int, int]]:
    """``(game font, first, last)`` ranges over the used characters; DejaVu's are left to the default."""
    ranges: list[tuple[str, int, int]] = []
    for code in sorted({ord(c) for c in used}):
        font = owner.get(chr(code))
        if font is None:
            if ranges and ranges[-1][0] != "":
                ranges.append(("", code, code))  # a character of the default font ends the range
            continue
        if ranges and ranges[-1][0] == font:
            ranges[-1] = (font, ranges[-1][1], code)
        else:
            ranges.append((font, code, code))
    return [r for r in ranges if r[0]]


def fonts_rpy(header: str, ranges: list[tuple[str, int, int]]) -> str:
    """``game/fonts.rpy``: a FontGroup for the shipped fonts, set on every gui font naming DejaVu Sans.

    It runs at ``init -1``: after gui.rpy's ``define``s (``init offset = -2``) and, as ``fonts`` sorts
    before ``screens``, before the styles of screens.rpy read ``gui.text_font`` and the others.
    """
    adds = "".join(f"\n        .add({name!r}, 0x{low:04X}, 0x{high:04X})" for name, low, high in ranges)
    return (
        f"{header}"
        "## Characters DejaVu Sans lacks are drawn from the subset fonts in game/fonts/ (licences beside them).\n"
        "init -1 python:\n"
        f"    cvn_font_group = (\n        FontGroup(){adds}\n        .add({BASE_FONT!r}, None, None)\n    )\n"
        "    for _cvn_name, _cvn_value in list(gui.__dict__.items()):\n"
        f"        if _cvn_name.endswith('_font') and _cvn_value == {BASE_FONT!r}:\n"
        "            setattr(gui, _cvn_name, cvn_font_group)\n"
    )


def _describe(chars: Iterable[str]) -> str:
    listed = sorted(chars)
    named = ", ".join(f"{c!r} U+{ord(c):04X}" for c in listed[:MAX_NAMED])
    return named + (f" and {len(listed) - MAX_NAMED} more" if len(listed) > MAX_NAMED else "")


def plan_fonts(
    chars: Iterable[str],
    *,
    size: int,
    header: str = "",
    user_font: str | None = None,
    code_chars: Iterable[str] = (),
    base_dirs: Iterable[Path] = BASE_DIRS,
) -> FontPlan:
    """Cover ``chars`` (what the player sees) with fonts at text ``size``; see the module docstring.

    ``base_dirs``: where to look for DejaVu Sans (Ren'Py's copy, then the system's); ``code_chars``: the
    characters of inline code, set in DejaVu Sans Mono when it is installed and has them all.
    """
    found = find_base_font(base_dirs)
    user = user_font_face(user_font) if user_font else None
    used = frozenset(c for c in (*chars, *INTERFACE) if _visible(c))
    base_cover = {chr(c) for c in _cmap(found[0], 0)} if found else set(LATIN1)
    missing = {c for c in used if c not in base_cover}
    taken: set[str] = set()
    shipped = [_ship(face, got, origin, taken) for face, got, origin in _choose(missing, user, used)]
    owner = {c: font.game_path for font in shipped for c in font.chars}
    uncovered = missing - owner.keys()
    files: dict[str, bytes] = {}
    for font in shipped:
        files[f"game/{font.game_path}"] = font.data
        if font.licence_path and font.licence is not None:
            files[f"game/{font.licence_path}"] = font.licence
    if shipped:
        files["game/fonts.rpy"] = fonts_rpy(header, _group_ranges(used, owner)).encode("utf-8")
    code = _code_font({c for c in code_chars if _visible(c)}, taken)
    if code is not None:
        files[f"game/{code.game_path}"] = code.data
        if code.licence_path and code.licence is not None:
            files[f"game/{code.licence_path}"] = code.licence
    warnings = []
    if found is None:
        warnings.append(
            "fonts: Ren'Py's default font (DejaVu Sans) is not on this machine; ASCII and Latin-1 are taken as "
            "covered and measured from built-in widths (install renpy or fonts-dejavu-core to check the rest)"
        )
    if uncovered:
        warnings.append(
            f"fonts: {len(uncovered)} character(s) will not render (no font covers them): {_describe(uncovered)}; "
            "pass --font PATH with a font that has them (or renpy.font in comfyvn.json), or install one "
            "(CJK: apt-get install fonts-noto-cjk)"
        )
    for font in (*shipped, *([code] if code else [])):
        if font.licence is None:
            warnings.append(
                f"fonts: no licence file found for {font.face.path.name}; check that you may redistribute it"
            )
    report = {
        "default": {"font": BASE_FONT, "checked": found is not None},
        "characters": len(used),
        "shipped": [
            {
                "path": f"game/{font.game_path}",
                "family": font.face.family,
                "source": font.face.path.name,
                "face_index": font.face.index,
                "origin": font.origin,
                "characters": len(font.chars),
                "licence": f"game/{font.licence_path}" if font.licence_path else None,
            }
            for font in shipped
        ],
        "code_font": f"game/{code.game_path}" if code else None,
        "uncovered": [f"U+{ord(c):04X}" for c in sorted(uncovered)],
    }
    metrics = GameMetrics(size, found, [(f.chars, f.data) for f in shipped], code.data if code else None)
    return FontPlan(files, metrics, code.game_path if code else None, report, tuple(warnings))


def _code_font(chars: set[str], taken: set[str]) -> ShippedFont | None:
    """DejaVu Sans Mono cut to the code's characters, when installed and it has them all."""
    if not chars:
        return None
    mono = next((f for f, _r in _system_fonts() if f.path.name == MONO_FONT), None)
    if mono is None:
        mono = next(
            (FontFace(d / MONO_FONT, 0, "DejaVu Sans Mono", "Book") for d in BASE_DIRS if (d / MONO_FONT).is_file()),
            None,
        )
    if mono is None or any(ord(c) not in _cmap(mono.path, 0) for c in chars):
        return None
    return _ship(mono, chars, "system", taken)


def collect_characters(project: Project, extra: Iterable[str] = ()) -> tuple[set[str], set[str]]:
    """``(every character the player may see, the characters of inline code)`` in ``project``.

    Story text and menu choices count as their visible text (Markdown markup removed); character and
    speaker names, POV names, the title and ``extra`` strings count as they are.
    """
    seen: set[str] = set()
    code: set[str] = set()
    texts: set[str] = set(extra)
    names: set[str] = {str(project.title or project.id)}
    for char_id, spec in project.characters.items():
        names.add(str(spec.get("name") or char_id) if isinstance(spec, Mapping) else str(char_id))
    for pov in project.povs:
        names.add(str(pov.get("name") or pov.get("id") or ""))
    for scene in project.scenes.values():
        for node in scene.get("nodes") or ():
            if isinstance(node.get("text"), str):
                texts.add(node["text"])
            if isinstance(node.get("speaker"), str):
                names.add(node["speaker"])
            for choice in node.get("choices") or ():
                if isinstance(choice, Mapping):
                    texts.add(str(choice.get("label") or choice.get("description") or ""))
    plain = [text for text in texts if not MARKUP_CHARS.intersection(text)]
    seen.update("".join(plain))  # text without markup characters is its own visible text, without code
    for text in texts.difference(plain):
        parsed = parse_markdown(text)
        seen.update(parsed.text)
        for start, end, style in parsed.runs:
            if style & CODE:
                code.update(parsed.text[start:end])
    for name in names:
        seen.update(name)
    return seen, code


def default_pager() -> Paginator:
    """A paginator for the default 1920x1080 interface in Ren'Py's default font (no fonts shipped)."""
    spec = gui_spec(*DEFAULT_RESOLUTION)
    return Paginator(spec, GameMetrics(spec.text_size, find_base_font()))
