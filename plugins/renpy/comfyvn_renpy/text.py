"""Story text → Ren'Py text: inline Markdown to text tags, and pages that fit the text box.

A node's ``text`` holds inline Markdown (docs/scenario.md): ``*x*``/``_x_`` italic, ``**x**``/``__x__``
bold, ``~~x~~`` strikethrough, `` `x` `` code; everything else is literal. markdown-it-py parses it
(inline rules only: no HTML, links, entities or backslash escapes, so ``<tag>``, ``[x](y)``, ``&amp;``
and ``\\`` all reach the player verbatim) into styled runs of visible text.

Pagination measures the visible text with the game's own fonts (`Metrics`) at the size of
`gui.GuiSpec`, wrapping lines the way Ren'Py's default ``tex`` layout does (its Knuth-Plass costs, not
greedy: it can use more lines than a greedy wrap), and fills each page with whole sentences. A single
sentence longer than the box is the only thing split, first at clause marks (``, ; : —`` and the CJK
comma, semicolon and colon), then between words, then between characters. Every page is rendered on
its own, so an ``{i}`` open at a page end is closed there and reopened on the next page.
"""

from __future__ import annotations

import functools
import itertools
import operator
import unicodedata
from collections.abc import Callable, Sequence
from typing import Protocol

import attrs
from markdown_it import MarkdownIt
from markdown_it.token import Token

from .gui import GuiSpec
from .names import escape_say_text

__all__ = [
    "BOLD",
    "CODE",
    "ITALIC",
    "MARKUP_CHARS",
    "STRIKE",
    "Metrics",
    "Paginator",
    "Parsed",
    "measure",
    "parse_markdown",
    "render",
]

ITALIC, BOLD, STRIKE, CODE = 1, 2, 4, 8
_TAG_ORDER = ((BOLD, "b"), (ITALIC, "i"), (STRIKE, "s"), (CODE, "font"))
MARKUP_CHARS = frozenset("*_~`")  # text without any of these has no markup: it shows as it is
_TOKEN_STYLE = {"em": ITALIC, "strong": BOLD, "s": STRIKE}

# Sentence ends, the quotes/brackets that may close a sentence after its mark, clause marks.
_TERMINALS = frozenset(".!?\u2026\u203c\u2047\u2048\u2049\u3002\uff01\uff1f\uff0e")
_CJK_TERMINALS = frozenset("\u3002\uff01\uff1f\uff0e")
_CLOSERS = frozenset("\"')]}\u00bb\u2019\u201d\u300d\u300f\u3011\u300b\u3009\uff09\uff3d\uff5d\u3015")
_CLAUSE = frozenset(",;:\u2014\u2013\u3001\uff0c\uff1b\uff1a")
_CJK_CLAUSE = frozenset("\u3001\uff0c\uff1b\uff1a")
_ABBREVIATIONS = frozenset(["mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "prof", "mt"])
# Characters a CJK line may not start with (closing punctuation, small kana, prolonged sound mark).
_NO_BREAK_BEFORE = frozenset(
    "\u3001\u3002\uff0c\uff0e\uff1a\uff1b\uff01\uff1f\u300d\u300f\u3011\u300b\u3009\uff09\u3015\u30fc"
    "\u3041\u3043\u3045\u3047\u3049\u3063\u3083\u3085\u3087\u30a1\u30a3\u30a5\u30a7\u30a9\u30c3\u30e3\u30e5"
    "\u30e7\u309d\u309e\u30fd\u30fe\u2026\u00bb\u201d\u2019!?.,)]}\"'"
)
_NO_BREAK_AFTER = frozenset("\u300c\u300e\u3010\u300a\u3008\uff08\u3014\u201c\u2018\u00ab([{\"'")

_md = MarkdownIt("zero", {"html": False}).enable(["emphasis", "strikethrough", "backticks"])


class Metrics(Protocol):
    """Pixel sizes of one character in one style (a bit set of `ITALIC`, `BOLD`, …) in the game's fonts."""

    def advance(self, ch: str, style: int) -> float:
        """The pen advance."""

    def lineskip(self, ch: str, style: int) -> int:
        """The height of a line holding it: the drawing font's ascent plus descent, whole pixels."""


@attrs.frozen
class Parsed:
    """Visible text and its styled runs ``(start, end, style)``, which cover the text in order."""

    text: str
    runs: tuple[tuple[int, int, int], ...]

    def without(self, bits: int) -> Parsed:
        """The same text with the style ``bits`` removed (adjacent runs that become equal merged)."""
        runs: list[tuple[int, int, int]] = []
        for start, end, style in self.runs:
            style &= ~bits
            if runs and runs[-1][2] == style:
                runs[-1] = (runs[-1][0], end, style)
            else:
                runs.append((start, end, style))
        return Parsed(self.text, tuple(runs))


def parse_markdown(text: str) -> Parsed:
    """Inline Markdown → visible text with style runs (text without markup characters skips the parser)."""
    if not MARKUP_CHARS.intersection(text):
        return Parsed(text, ((0, len(text), 0),) if text else ())
    tokens: list[Token] = []
    _md.inline.parse(text, _md, {}, tokens)
    parts: list[str] = []
    runs: list[tuple[int, int, int]] = []
    style, pos = 0, 0
    for token in tokens:
        kind = token.type
        if kind.endswith("_open") and kind[:-5] in _TOKEN_STYLE:
            style |= _TOKEN_STYLE[kind[:-5]]
            continue
        if kind.endswith("_close") and kind[:-6] in _TOKEN_STYLE:
            style &= ~_TOKEN_STYLE[kind[:-6]]
            continue
        content = token.content if kind in ("text", "code_inline") else token.markup + token.content
        if not content:
            continue
        run_style = style | CODE if kind == "code_inline" else style
        if runs and runs[-1][2] == run_style:
            runs[-1] = (runs[-1][0], pos + len(content), run_style)
        else:
            runs.append((pos, pos + len(content), run_style))
        parts.append(content)
        pos += len(content)
    return Parsed("".join(parts), tuple(runs))


def render(parsed: Parsed, start: int = 0, end: int | None = None, *, code_font: str | None = None) -> str:
    """The escaped body of a Ren'Py string showing ``parsed.text[start:end]`` with balanced text tags.

    Code is set in ``code_font`` (a ``{font=…}`` tag) when given, else shown as plain text.
    """
    stop = len(parsed.text) if end is None else end
    out: list[str] = []
    stack: list[tuple[int, str]] = []
    for run_start, run_end, style in parsed.runs:
        a, b = max(start, run_start), min(stop, run_end)
        if a >= b:
            continue
        if code_font is None:
            style &= ~CODE
        keep = 0
        while keep < len(stack) and style & stack[keep][0]:
            keep += 1
        for _bit, tag in reversed(stack[keep:]):
            out.append(f"{{/{tag}}}")
        del stack[keep:]
        held = sum(bit for bit, _tag in stack)
        for bit, tag in _TAG_ORDER:
            if style & bit and not held & bit:
                out.append(f"{{font={code_font}}}" if bit == CODE else f"{{{tag}}}")
                stack.append((bit, tag))
        out.append(escape_say_text(parsed.text[a:b]))
    out += [f"{{/{tag}}}" for _bit, tag in reversed(stack)]
    return "".join(out)


def _breakable(prev: str, ch: str) -> bool:
    """Whether a line may break between two non-space characters (ideographic text only, kinsoku kept)."""
    if ch in _NO_BREAK_BEFORE or prev in _NO_BREAK_AFTER:
        return False
    return _ideographic(ch) or _ideographic(prev)


def _ideographic(ch: str) -> bool:
    code = ord(ch)
    return (
        0x2E80 <= code <= 0x9FFF  # CJK radicals, punctuation, kana, ideographs
        or 0xAC00 <= code <= 0xD7AF  # Hangul syllables
        or 0xF900 <= code <= 0xFAFF
        or 0xFF00 <= code <= 0xFFEF  # full-width forms
        or 0x20000 <= code <= 0x3FFFF
    )


def _tex_breaks(words: Sequence[tuple[float, float, int]], width: float) -> list[tuple[int, int]]:
    """The lines ``(first word, end word)`` Ren'Py's ``tex`` layout (renpy/text/texwrap.pyx) makes of
    words ``(start_x, end_x, lineskip)``: Knuth-Plass with its costs (100000 a line, the square of the
    space left on every line but the last, 100000 a pixel for a single word wider than the line)."""
    count = len(words)
    if count == 0:
        return []
    if words[-1][1] - words[0][0] <= width:
        return [(0, count)]
    scores = [0.0] * (count + 1)
    splits = [0] * (count + 1)
    for j in range(1, count + 1):
        end_x = words[j - 1][1]
        best, split = float("inf"), j - 1
        for i in range(j - 1, -1, -1):
            score = scores[i] + 100000.0
            line = end_x - words[i][0]
            if line > width:
                if i < j - 1:
                    break
                score += 100000.0 * (line - width)
            elif j != count:
                score += (width - line) * (width - line)
            if score < best:
                best, split = score, i
        scores[j], splits[j] = best, split
    lines, j = [], count
    while j > 0:
        lines.append((splits[j], j))
        j = splits[j]
    return lines[::-1]


def measure(parsed: Parsed, start: int, end: int, width: float, metrics: Metrics) -> list[int]:
    """The line heights (font line skips) of ``parsed.text[start:end]`` wrapped at ``width`` pixels.

    Whitespace runs count once, as Ren'Py collapses them; a newline starts a paragraph. A line is as
    tall as the tallest font on it (Ren'Py's place_vertical)."""
    text = parsed.text
    styles = _style_array(parsed, start, end)
    heights: list[int] = []
    words: list[tuple[float, float, int]] = []
    x, word_start, skip, prev = 0.0, -1.0, 0, ""

    def close_paragraph() -> None:
        breaks = _tex_breaks(words, width)
        if not breaks:
            heights.append(metrics.lineskip(" ", 0))
        heights.extend(max(w[2] for w in words[a:b]) for a, b in breaks)

    for offset in range(end - start):
        ch = text[start + offset]
        if ch == "\n":
            if word_start >= 0:
                words.append((word_start, x, skip))
            close_paragraph()
            words, x, word_start, prev = [], 0.0, -1.0, ""
            continue
        if ch.isspace():
            if prev == " ":
                continue  # Ren'Py collapses whitespace runs
            if word_start >= 0:
                words.append((word_start, x, skip))
                word_start = -1.0
            x += metrics.advance(" ", styles[offset])
            prev = " "
            continue
        if word_start >= 0 and prev and _breakable(prev, ch) and not unicodedata.combining(ch):
            words.append((word_start, x, skip))
            word_start = -1.0
        if word_start < 0:
            word_start, skip = x, 0
        x += metrics.advance(ch, styles[offset])
        skip = max(skip, metrics.lineskip(ch, styles[offset]))
        prev = ch
    if word_start >= 0:
        words.append((word_start, x, skip))
    close_paragraph()
    return heights


class _Measures:
    """The per-character facts `measure` needs, taken once for a whole text: pagination measures many
    overlapping slices of one message (each page grows sentence by sentence), and `measured` walks a
    slice with list lookups instead of font and Unicode calls per character. Same results as `measure`."""

    NEWLINE, SPACE, GLYPH = 0, 1, 2

    def __init__(self, parsed: Parsed, metrics: Metrics) -> None:
        text = parsed.text
        styles = _style_array(parsed, 0, len(text))
        self.metrics = metrics
        self.kinds: list[int] = []
        self.advances: list[float] = []  # a space counts as " " (whitespace runs draw as one space)
        self.skips: list[int] = []
        # Whether a line may break before the character, when the character before it is a glyph too.
        self.breaks: list[bool] = []
        for i, ch in enumerate(text):
            style = styles[i]
            if ch == "\n":
                self.kinds.append(self.NEWLINE)
                self.advances.append(0.0)
                self.skips.append(0)
                self.breaks.append(False)
            elif ch.isspace():
                self.kinds.append(self.SPACE)
                self.advances.append(metrics.advance(" ", style))
                self.skips.append(0)
                self.breaks.append(False)
            else:
                prev = text[i - 1] if i else ""
                self.kinds.append(self.GLYPH)
                self.advances.append(metrics.advance(ch, style))
                self.skips.append(metrics.lineskip(ch, style))
                self.breaks.append(
                    bool(prev) and not prev.isspace() and _breakable(prev, ch) and not unicodedata.combining(ch)
                )

    def measured(self, start: int, end: int, width: float) -> list[int]:
        """`measure` of ``text[start:end]``."""
        kinds, advances, skips, breaks = self.kinds, self.advances, self.skips, self.breaks
        heights: list[int] = []
        words: list[tuple[float, float, int]] = []
        x, word_start, skip, after_space = 0.0, -1.0, 0, False
        for i in range(start, end):
            kind = kinds[i]
            if kind == self.NEWLINE:
                if word_start >= 0:
                    words.append((word_start, x, skip))
                self._close(words, width, heights)
                words, x, word_start, after_space = [], 0.0, -1.0, False
                continue
            if kind == self.SPACE:
                if after_space:
                    continue  # Ren'Py collapses whitespace runs
                if word_start >= 0:
                    words.append((word_start, x, skip))
                    word_start = -1.0
                x += advances[i]
                after_space = True
                continue
            # Inside a word the character before is a glyph: `breaks` was worked out for that case.
            if word_start >= 0 and breaks[i]:
                words.append((word_start, x, skip))
                word_start = -1.0
            if word_start < 0:
                word_start, skip = x, 0
            x += advances[i]
            skip = max(skip, skips[i])
            after_space = False
        if word_start >= 0:
            words.append((word_start, x, skip))
        self._close(words, width, heights)
        return heights

    def _close(self, words: list[tuple[float, float, int]], width: float, heights: list[int]) -> None:
        breaks = _tex_breaks(words, width)
        if not breaks:
            heights.append(self.metrics.lineskip(" ", 0))
        heights.extend(max(w[2] for w in words[a:b]) for a, b in breaks)


def _style_array(parsed: Parsed, start: int, end: int) -> list[int]:
    styles = [0] * (end - start)
    for run_start, run_end, style in parsed.runs:
        if style:
            for i in range(max(start, run_start), min(end, run_end)):
                styles[i - start] = style
    return styles


def _sentence_ends(text: str, start: int, end: int) -> list[int]:
    """Positions (exclusive) where a sentence or paragraph ends inside ``text[start:end]``."""
    ends: list[int] = []
    i = start
    while i < end:
        ch = text[i]
        if ch == "\n":
            ends.append(i + 1)
            i += 1
            continue
        if ch not in _TERMINALS:
            i += 1
            continue
        j = i + 1
        while j < end and (text[j] in _TERMINALS or text[j] in _CLOSERS):
            j += 1
        if j >= end:
            ends.append(end)
        elif text[i] in _CJK_TERMINALS or (text[j].isspace() and _ends_sentence(text, i, j, end)):
            ends.append(j)  # CJK sentences need no space after their mark
        i = j
    return ends


def _ends_sentence(text: str, mark: int, after: int, end: int) -> bool:
    """A mark followed by space ends a sentence unless an abbreviation precedes it or lower case follows."""
    k = after
    while k < end and text[k].isspace() and text[k] != "\n":
        k += 1
    if k < end and text[k].islower():
        return False
    word_start = mark
    while word_start > 0 and not text[word_start - 1].isspace():
        word_start -= 1
    word = text[word_start:mark].lower().lstrip("\"'(\u201c\u2018")
    return not (text[mark] == "." and word in _ABBREVIATIONS)


def _clause_ends(text: str, start: int, end: int) -> list[int]:
    return [
        i + 1 for i in range(start, end - 1) if text[i] in _CLAUSE and (text[i + 1].isspace() or text[i] in _CJK_CLAUSE)
    ]


def _word_ends(text: str, start: int, end: int) -> list[int]:
    return [
        i
        for i in range(start + 1, end)
        if (text[i].isspace() and not text[i - 1].isspace())
        or (not text[i].isspace() and not text[i - 1].isspace() and _breakable(text[i - 1], text[i]))
    ]


def _char_ends(text: str, start: int, end: int) -> list[int]:
    return [i for i in range(start + 1, end) if not unicodedata.combining(text[i]) and text[i] not in "\u200d\ufe0f"]


_LEVELS: tuple[Callable[[str, int, int], list[int]], ...] = (_sentence_ends, _clause_ends, _word_ends, _char_ends)


def _pieces(text: str, start: int, end: int, level: int) -> list[tuple[int, int]]:
    cuts = [c for c in _LEVELS[level](text, start, end) if start < c < end]
    bounds = [start, *cuts, end]
    return [(a, b) for a, b in itertools.pairwise(bounds) if text[a:b].strip()]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


class Paginator:
    """Turns node text into Ren'Py string literals, one per page that fits the text box.

    ``metrics`` measures characters in the fonts the game uses; ``code_font`` is the game path of a
    monospace font for code (None: code is plain text). Results are cached per text.
    """

    #: Share of the dialogue width pages are filled to: hinting and kerning in the engine's renderer
    #: differ from the measuring font renderer by a pixel here and there.
    FILL = 0.97

    def __init__(self, spec: GuiSpec, metrics: Metrics, *, code_font: str | None = None) -> None:
        self.spec, self.metrics, self.code_font = spec, metrics, code_font
        self.width = spec.dialogue_width * self.FILL
        self.lines = spec.dialogue_lines
        # Ren'Py adds the line spacing after every line; the page must end above the text box's bottom.
        self.height = spec.textbox_height - spec.dialogue_ypos
        self._cache: dict[str, tuple[str, ...]] = {}
        self._lines: dict[str, str] = {}
        self._plain: dict[str, float] = {}

    def _fits(self, parsed: Parsed, measures: _Measures, start: int, end: int) -> bool:
        start, end = _trim(parsed.text, start, end)
        heights = measures.measured(start, end, self.width)
        spacing = self.spec.line_spacing
        return len(heights) <= self.lines and sum(heights) + spacing * len(heights) <= self.height

    def _short(self, text: str) -> bool:
        """Plain one-line text narrower than the box: the common case, decided without wrapping."""
        if "\n" in text:
            return False
        widths = self._plain
        for ch in set(text).difference(widths):
            widths[ch] = self.metrics.advance(ch, 0)
        # reduce adds left to right like a loop would (the same float rounding), without the loop's cost.
        return functools.reduce(operator.add, map(widths.__getitem__, text), 0.0) <= self.width

    def spans(self, parsed: Parsed) -> list[tuple[int, int]]:
        """Page boundaries ``(start, end)`` in ``parsed.text``: trimmed, non-empty, in order."""
        text = parsed.text
        start, end = _trim(text, 0, len(text))
        if start == end:
            return []
        if (len(parsed.runs) <= 1 and not (parsed.runs and parsed.runs[0][2])) and self._short(text[start:end]):
            return [(start, end)]
        pages: list[list[int]] = []
        measures = _Measures(parsed, self.metrics)

        def place(a: int, b: int, level: int) -> None:
            if pages and self._fits(parsed, measures, pages[-1][0], b):
                pages[-1][1] = b
            elif self._fits(parsed, measures, a, b) or level + 1 >= len(_LEVELS):
                pages.append([a, b])
            else:
                pieces = _pieces(text, a, b, level + 1)
                if len(pieces) <= 1:
                    place(a, b, level + 1)
                    return
                for piece_start, piece_end in pieces:
                    place(piece_start, piece_end, level + 1)

        for a, b in _pieces(text, start, end, 0):
            place(a, b, 0)
        return [_trim(text, a, b) for a, b in pages]

    def pages(self, text: str) -> tuple[str, ...]:
        """Double-quoted Ren'Py strings, one per page of ``text`` (none for whitespace-only text)."""
        cached = self._cache.get(text)
        if cached is None:
            if not MARKUP_CHARS.intersection(text) and self._short(text.strip()):
                cached = (f'"{escape_say_text(text.strip())}"',) if text.strip() else ()  # the common case
            else:
                parsed = self._parse(text)
                cached = tuple(f'"{render(parsed, a, b, code_font=self.code_font)}"' for a, b in self.spans(parsed))
            self._cache[text] = cached
        return cached

    def line(self, text: str) -> str:
        """One double-quoted Ren'Py string for ``text`` without paging (menu choices)."""
        cached = self._lines.get(text)
        if cached is None:
            cached = self._lines[text] = f'"{render(self._parse(text), code_font=self.code_font)}"'
        return cached

    def _parse(self, text: str) -> Parsed:
        parsed = parse_markdown(text)
        return parsed if self.code_font is not None else parsed.without(CODE)
