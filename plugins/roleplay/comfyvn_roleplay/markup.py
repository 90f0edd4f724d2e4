"""SillyTavern message markup → story text: block Markdown flattened, actions cut out, tags dropped.

A chat message is Markdown with a roleplay convention on top: ``*an action*`` outside quotes is
narration, while ``*emphasis*`` inside a spoken sentence is just italics. SillyTavern renders the
message as HTML, so writers also use tags (``<b>``, ``<br>``, or extension placeholders such as
``<StatusPlaceHolderImpl/>``).

:func:`render` parses a message with markdown-it (raw HTML disabled) and walks the tokens. It
returns :class:`Segment` s — runs of speech or action per block — whose text is *story text*: the
inline Markdown subset a node's ``text`` may hold (``*italic*``, ``**bold**``, ``~~strike~~``,
```code```; everything else literal, with CommonMark backslash escapes where a literal character
would otherwise read as markup). :func:`story_parser` is the parser configuration that reads story
text back; :func:`plain_text` strips it to plain characters.

Most messages need none of the parser: text without block markers skips the block parser,
paragraphs whose only markup is lone asterisks and line breaks skip the inline parser
(``_inline_scan``), and messages made only of those skip the token walker too. Each shortcut gives
exactly what the full parse gives; the tests compare them on generated text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import NamedTuple

import attrs
from markdown_it import MarkdownIt
from markdown_it.token import Token

from ._inline_scan import HARD, SOFT, has_inline_syntax, pair, paired_line, paragraphs, scan

__all__ = ["Rendered", "Segment", "escape", "plain_text", "render", "story_parser"]

# Block rules we keep: paragraphs, quotes, lists, headings, fences, rules. Indented code is off:
# chat text is often indented prose, never code. Links and reference definitions are off: square
# brackets in roleplay are stage directions or OOC, and a definition line would vanish silently.
_DISABLED = ["link", "image", "autolink", "reference", "code", "html_inline", "html_block", "linkify"]


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable("strikethrough")
    md.disable([r for r in _DISABLED if r in _rule_names(md)])
    # Keep escapes and entities as their own tokens: a literal "\*" must not look like an action.
    md.disable("text_join")
    return md


def _rule_names(md: MarkdownIt) -> set[str]:
    rules = md.get_all_rules()
    return {name for chain in rules.values() for name in chain}


_MD = _parser()


def story_parser() -> MarkdownIt:
    """The markdown-it configuration that reads a node's story text (inline rules only are used)."""
    md = _parser()
    md.enable("text_join")
    return md


_STORY = story_parser()

ITALIC, BOLD, STRIKE = "em", "strong", "s"
_ORDER = (STRIKE, BOLD, ITALIC)  # outermost first, so markers always nest the same way
_MARK = {ITALIC: "*", BOLD: "**", STRIKE: "~~"}

_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9_:.-]*)((?:\s[^<>]*?)?)\s*(/?)>")
_COMMENT_OR_RAW = re.compile(r"<!--.*?(?:-->|$)|<(style|script)\b[^>]*>.*?(?:</\1\s*>|$)", re.DOTALL | re.IGNORECASE)
_TAG_STYLE = {"b": BOLD, "strong": BOLD, "i": ITALIC, "em": ITALIC, "s": STRIKE, "strike": STRIKE, "del": STRIKE}
# Unicode noncharacters never occur in interchange text; strip them so nothing can collide.
_NONCHARS = re.compile("[\ufdd0-\ufdef\ufffe\uffff]")
_OPEN_QUOTES = {"“": "”", "«": "»", "「": "」", "『": "』", "„": "“"}
_CLOSE_QUOTES = {v: k for k, v in _OPEN_QUOTES.items() if k != "„"}
_QUOTE_CHAR = re.compile('["“”«»「」『』„]')
_ENTITY_LIKE = re.compile(r"&(?=#\d+;|#[xX][0-9A-Fa-f]+;|[A-Za-z][A-Za-z0-9]*;)")
_ESCAPABLE = re.compile(r"[\\*_~`&]")
_BACKTICKS = re.compile(r"`+")
_ASTERISKS = re.compile(r"(\*+)")
_SPEECH_START = re.compile(r'["“«「『„]')
_MANY_NEWLINES = re.compile(r"\n{3,}")


class Segment(NamedTuple):
    """A run of one block: ``speech`` (or the whole text when actions are not split) or ``action``.

    ``text`` is never empty and is tidy: no line starts or ends with whitespace and no two empty
    lines follow each other (the converter relies on it and does not tidy again).
    """

    # A named tuple, not an attrs class: a message makes several (see _new_tuple below).
    kind: str
    text: str
    block: int


# _new_tuple(Segment, (kind, text, block)) is Segment(kind, text, block) without the named tuple's
# Python-level __new__: half the cost, and a message makes several.
_new_tuple = tuple.__new__


class Rendered(NamedTuple):
    """A rendered message: its segments in order, and what was dropped on the way."""

    segments: tuple[Segment, ...]
    dropped_tags: tuple[str, ...] = ()

    def text(self) -> str:
        """All segments as one story text (blocks separated by a blank line)."""
        out: list[str] = []
        last = None
        for seg in self.segments:
            if out:
                out.append("\n\n" if seg.block != last else " ")
            out.append(seg.text)
            last = seg.block
        return "".join(out)


def escape(text: str) -> str:
    """Backslash-escape the characters that story text would otherwise read as markup."""
    if not _ESCAPABLE.search(text):
        return text
    out: list[str] = []
    n = len(text)
    for i, c in enumerate(text):
        if c in "\\*`":
            out.append("\\" + c)
        elif c == "_":
            # Intraword underscores (snake_case) are never emphasis; escape only at word edges.
            inner = 0 < i < n - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()
            out.append(c if inner else "\\_")
        elif c == "~":
            paired = (i > 0 and text[i - 1] == "~") or (i < n - 1 and text[i + 1] == "~")
            out.append("\\~" if paired else c)
        elif c == "&" and _ENTITY_LIKE.match(text, i):
            out.append("\\&")
        else:
            out.append(c)
    return "".join(out)


def _code(content: str) -> str:
    longest = max((len(m) for m in _BACKTICKS.findall(content)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if content.startswith("`") or content.endswith("`") or not content.strip() else ""
    return f"{fence}{pad}{content}{pad}{fence}"


@attrs.define
class _Run:
    parts: list[str]  # already in story syntax (escaped literal, or a code span); joined once
    styles: tuple[str, ...]
    action: bool
    block: int
    last: str  # the last plain character, for telling an action's opening asterisk


def _serialize(runs: Sequence[_Run]) -> str:
    """Runs → story text with canonical markers; whitespace is kept outside the markers."""
    if len(runs) == 1 and not runs[0].styles:
        return "".join(runs[0].parts)
    out: list[str] = []
    open_styles: list[str] = []
    for run in runs:
        wanted = [s for s in _ORDER if s in run.styles]
        body = "".join(run.parts)
        lead = body[: len(body) - len(body.lstrip())]
        trail = body[len(body.rstrip()) :] if body.strip() else ""
        core = body.strip()
        if not core:
            # Markers never enclose bare whitespace: close what is open, reopen after.
            out.extend(_MARK[s] for s in reversed(open_styles))
            open_styles.clear()
            out.append(body)
            continue
        keep = 0
        while keep < min(len(open_styles), len(wanted)) and open_styles[keep] == wanted[keep]:
            keep += 1
        closing = open_styles[keep:]
        if closing:
            out.extend(_MARK[s] for s in reversed(closing))
            del open_styles[keep:]
        out.append(lead)
        for style in wanted[keep:]:
            out.append(_MARK[style])
            open_styles.append(style)
        out.append(core)
        if trail:
            out.extend(_MARK[s] for s in reversed(open_styles))
            open_styles.clear()
            out.append(trail)
    out.extend(_MARK[s] for s in reversed(open_styles))
    return "".join(out)


# What the walker reads of an inline token: (type, content, markup).
_Item = tuple[str, str, str]


def _items(children: Iterable[Token]) -> list[_Item]:
    """Inline tokens as walker items, text joined with escapes and entities (``\\<``, ``&lt;``), so a
    tag written with them is still a tag; only an escaped asterisk stays apart (it must not open an
    action)."""
    out: list[_Item] = []
    text: list[str] = []
    for tok in children:
        if tok.type == "text" or (tok.type == "text_special" and tok.content != "*"):
            text.append(tok.content)
            continue
        if text:
            out.append(("text", "".join(text), ""))
            text = []
        out.append((tok.type, tok.content, tok.markup))
    if text:
        out.append(("text", "".join(text), ""))
    return out


def _track_quotes(quote: list[str], text: str) -> None:
    """Update ``quote``, the open quote characters (innermost last), with those in ``text``."""
    for m in _QUOTE_CHAR.finditer(text):
        c = m.group(0)
        if c == '"' and '"' in quote:
            # A straight quote closes the open straight quote and any quote left open inside it.
            del quote[len(quote) - 1 - quote[::-1].index('"') :]
        elif c == '"' or c in _OPEN_QUOTES:
            quote.append(c)
        elif c in _CLOSE_QUOTES and _CLOSE_QUOTES[c] in quote:
            del quote[len(quote) - 1 - quote[::-1].index(_CLOSE_QUOTES[c]) :]


class _Walker:
    """Turns markdown-it tokens into runs; one instance per message."""

    def __init__(self, split_actions: bool) -> None:
        self.split_actions = split_actions
        self.runs: list[_Run] = []
        self.block = 0
        self.styles: list[str] = []
        self.tag_styles: list[str] = []
        self.quote: list[str] = []  # open quote characters, innermost last
        self.action_depth = 0  # the em nesting level that opened the current action (0: none)
        self.em_depth = 0
        self.em_action: list[bool] = []
        self.dropped: dict[str, None] = {}

    # -- output ------------------------------------------------------------------------------
    def emit(self, story: str, literal: str) -> None:
        if not literal:
            return
        styles = tuple(dict.fromkeys([*self.styles, *self.tag_styles])) if self.styles or self.tag_styles else ()
        action = self.action_depth != 0
        if self.runs:
            last = self.runs[-1]
            if last.styles == styles and last.action == action and last.block == self.block:
                last.parts.append(story)
                last.last = literal[-1]
                return
        self.runs.append(_Run([story], styles, action, self.block, literal[-1]))

    def newline(self) -> None:
        self.emit("\n", "\n")

    def end_block(self) -> None:
        self.block += 1
        self.quote.clear()
        self.tag_styles.clear()
        self.action_depth = 0

    # -- inline ------------------------------------------------------------------------------
    def _quotes(self, text: str) -> None:
        if not self.action_depth:
            _track_quotes(self.quote, text)

    def _text(self, text: str) -> None:
        if "<" not in text:
            self._plain(text)
            return
        pos = 0
        for m in _TAG.finditer(text):
            self._plain(text[pos : m.start()])
            self._tag(m.group(1) == "/", m.group(2), m.group(0))
            pos = m.end()
        self._plain(text[pos:])

    def _plain(self, text: str) -> None:
        if not text:
            return
        if not (self.split_actions and "*" in text):
            self._speech(text)
            return
        # An asterisk markdown-it could not pair: "*walks away." opens an action the writer never
        # closed (it runs to the end of the block); other stray asterisks stay literal.
        parts = _ASTERISKS.split(text)
        for i, part in enumerate(parts):
            if i % 2 == 0:
                self._speech(part)
                continue
            after = parts[i + 1][:1] if i + 1 < len(parts) else ""
            before = self._last_char()
            opener = part == "*" and (not before or before.isspace()) and after and not after.isspace()
            if opener and not self.quote and not self.action_depth:
                self.action_depth = -1
                continue
            self.emit(escape(part), part)

    def _speech(self, text: str) -> None:
        if self.action_depth == -1:
            # An unclosed action stops where speech starts.
            m = _SPEECH_START.search(text)
            if m is None:
                self.emit(escape(text), text)
                return
            self.emit(escape(text[: m.start()]), text[: m.start()])
            self.action_depth = 0
            text = text[m.start() :]
        self._quotes(text)
        self.emit(escape(text), text)

    def _last_char(self) -> str:
        if self.runs and self.runs[-1].block == self.block:
            return self.runs[-1].last
        return ""

    def _tag(self, closing: bool, name: str, raw: str) -> None:
        lname = name.lower()
        if lname == "br":
            self.newline()
            return
        style = _TAG_STYLE.get(lname)
        if style is None:
            self.dropped.setdefault(raw if len(raw) <= 40 else f"<{'/' if closing else ''}{name}>", None)
            return
        if closing:
            if style in self.tag_styles:
                self.tag_styles.remove(style)
        else:
            self.tag_styles.append(style)

    def inline(self, items: Iterable[_Item]) -> None:
        for kind, content, markup in items:
            if kind == "text":
                if "<" in content or "*" in content or self.action_depth == -1 or not content:
                    self._text(content)
                    continue
                # Plain text, the most common item: what _text does, with its calls inlined.
                if not self.action_depth and _QUOTE_CHAR.search(content):
                    _track_quotes(self.quote, content)
                story = escape(content) if _ESCAPABLE.search(content) else content
                styles = (
                    tuple(dict.fromkeys([*self.styles, *self.tag_styles])) if self.styles or self.tag_styles else ()
                )
                action = self.action_depth != 0
                runs = self.runs
                if runs:
                    last = runs[-1]
                    if last.styles == styles and last.action == action and last.block == self.block:
                        last.parts.append(story)
                        last.last = content[-1]
                        continue
                runs.append(_Run([story], styles, action, self.block, content[-1]))
            elif kind == "text_special":
                # An escaped asterisk is literal: never an action, whatever surrounds it.
                self.emit(escape(content), content)
            elif kind in ("softbreak", "hardbreak"):
                self.newline()
            elif kind == "code_inline":
                self.emit(_code(content), content)
            elif kind == "em_open":
                self.em_depth += 1
                starts_action = self.split_actions and markup == "*" and not self.quote and not self.action_depth
                self.em_action.append(starts_action)
                if starts_action:
                    self.action_depth = self.em_depth
                else:
                    self.styles.append(ITALIC)
            elif kind == "em_close":
                self.em_depth -= 1
                if self.em_action and self.em_action.pop():
                    self.action_depth = 0
                elif ITALIC in self.styles:
                    self.styles.reverse()
                    self.styles.remove(ITALIC)
                    self.styles.reverse()
            elif kind == "strong_open":
                self.styles.append(BOLD)
            elif kind == "strong_close" and BOLD in self.styles:
                self.styles.reverse()
                self.styles.remove(BOLD)
                self.styles.reverse()
            elif kind == "s_open":
                self.styles.append(STRIKE)
            elif kind == "s_close" and STRIKE in self.styles:
                self.styles.reverse()
                self.styles.remove(STRIKE)
                self.styles.reverse()

    # -- blocks ------------------------------------------------------------------------------
    def blocks(self, tokens: Sequence[Token]) -> None:
        in_list = 0
        for tok in tokens:
            kind = tok.type
            if kind == "inline":
                self.inline(_items(tok.children or ()))
            elif kind in ("paragraph_close", "heading_close"):
                if in_list:
                    self.newline()
                else:
                    self.end_block()
            elif kind in ("bullet_list_open", "ordered_list_open"):
                in_list += 1
            elif kind in ("bullet_list_close", "ordered_list_close"):
                in_list -= 1
                if not in_list:
                    self.end_block()
            elif kind == "list_item_open" and tok.info:
                self.emit(escape(f"{tok.info}{tok.markup} "), f"{tok.info}{tok.markup} ")
            elif kind == "fence":
                content = tok.content.rstrip("\n")
                self.emit(escape(content), content)
                self.end_block()
            elif kind == "hr":
                self.end_block()


# Short replies ("*nods*", "Yes.") repeat word for word; longer messages rarely do, and for them the
# cache's bookkeeping (hashing the text, keeping the order) would cost more than it saves.
_CACHE_MAX_CHARS = 64


def _fast_items(content: str) -> list[_Item] | None:
    """The walker items markdown-it's inline parser gives for ``content`` when its only markup is
    single asterisks and line breaks; None for any other inline syntax."""
    scanned = scan(content)
    if scanned is None:
        return None
    pieces, stars = scanned
    tags = pair(stars)
    out: list[_Item] = []
    start = 0  # pieces[start:index] are text not yet output (and unpaired asterisks)
    for index, piece in enumerate(pieces):
        if piece == "*":
            opens = tags.get(index)
            if opens is None:
                continue
            item: _Item = ("em_open" if opens else "em_close", "", "*")
        elif piece == SOFT:
            item = ("softbreak", "", "")
        elif piece == HARD:
            item = ("hardbreak", "", "")
        else:
            continue
        if start < index:
            out.append(("text", "".join(pieces[start:index]), ""))
        out.append(item)
        start = index + 1
    if start < len(pieces):
        out.append(("text", "".join(pieces[start:]), ""))
    return out


def _inline_items(content: str) -> list[_Item]:
    items = _fast_items(content)
    if items is None:
        children: list[Token] = []
        _MD.inline.parse(content, _MD, {}, children)
        items = _items(children)
    return items


def render(text: str, *, split_actions: bool = True) -> Rendered:
    """Render one message to story-text segments (see the module docstring)."""
    if len(text) <= _CACHE_MAX_CHARS:
        # A Rendered is immutable, so it can be shared.
        return _render_cached(text, split_actions)
    return _render(text, split_actions)


@lru_cache(maxsize=1024)
def _render_cached(text: str, split_actions: bool) -> Rendered:
    return _render(text, split_actions)


def _render(text: str, split_actions: bool, *, block_parser: bool = False) -> Rendered:
    """:func:`render` without its cache; ``block_parser`` always runs markdown-it's full parse, which
    plain paragraphs otherwise skip (the tests compare the two)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.isascii() and max(text) >= "\ufdd0":  # the regex is slow on every character
        text = _NONCHARS.sub("", text)
    if "<" in text:
        text = _COMMENT_OR_RAW.sub("", text)
    contents = None if block_parser else paragraphs(text)
    if contents is not None and "<" not in text:
        simple = _render_simple(contents, split_actions, _has_quote(text), not has_inline_syntax(text))
        if simple is not None:
            return simple
    walker = _Walker(split_actions)
    if contents is None:
        walker.blocks(_MD.parse(text))
    else:
        for content in contents:
            walker.inline(_inline_items(content))
            walker.end_block()
    segments: list[Segment] = []
    _assemble(walker.runs, segments)
    return Rendered(tuple(segments), tuple(walker.dropped))


def _assemble(runs: list[_Run], segments: list[Segment]) -> None:
    """Consecutive runs of one block and kind make one segment."""
    count = len(runs)
    start = 0
    for end in range(1, count + 1):
        first = runs[start]
        if end < count and runs[end].action == first.action and runs[end].block == first.block:
            continue
        if end - start == 1 and not first.styles:
            story = "".join(first.parts)
            story = _tidy(story) if "\n" in story else story.strip()
        else:
            story = _tidy(_serialize(runs[start:end]))
        if story:
            segments.append(_new_tuple(Segment, ("action" if first.action else "speech", story, first.block)))
        start = end


def _has_quote(text: str) -> bool:
    # '"' is the only ASCII quote character: ASCII text needs no regex scan.
    return '"' in text or (not text.isascii() and _QUOTE_CHAR.search(text) is not None)


def _render_simple(
    contents: list[str], split_actions: bool, quotes: bool = True, plain: bool = False
) -> Rendered | None:
    """What the walker makes of paragraphs of text, line breaks and paired lone asterisks (most
    chat messages), in one pass; None, having done nothing, for anything else, unpaired asterisks
    included (one may open an action the writer never closed). ``quotes``: whether the text has
    quote characters at all; ``plain``: whether it has no inline syntax but lone asterisks."""
    segments: list[Segment] = []
    for block, content in enumerate(contents):
        if split_actions and not (quotes and _has_quote(content)):
            # Pairs in order and no quote to make one emphasis: each pair is an action, the rest speech.
            paired = paired_line(content, plain=plain)
            if paired is not None:
                for index, part in enumerate(paired):
                    story = part.strip()
                    if story:
                        segments.append(_new_tuple(Segment, ("action" if index % 2 else "speech", story, block)))
                continue
        scanned = scan(content)
        if scanned is None:
            return None
        pieces, stars = scanned
        if not stars and len(pieces) == 1:
            # One line of text: one speech segment, what the loop below makes of it.
            story = pieces[0].strip()
            if story:
                segments.append(_new_tuple(Segment, ("speech", story, block)))
            continue
        tags = pair(stars)
        if len(tags) != len(stars):
            return None
        quote: list[str] = []
        em_action: list[bool] = []  # per open emphasis: whether it is an action
        italic = 0  # open emphases that are italics
        action = False
        parts: list[str] = []  # the current run: text of one style and kind
        italic_run = run_action = False
        earlier: list[_Run] = []  # the segment's runs before the current one (another style)
        for index, piece in enumerate(pieces):
            if piece == "*":
                if tags[index]:
                    starts_action = split_actions and not quote and not action
                    em_action.append(starts_action)
                    if starts_action:
                        action = True
                    else:
                        italic += 1
                elif em_action.pop():
                    action = False
                else:
                    italic -= 1
                continue
            if piece in (SOFT, HARD):
                piece = "\n"
            elif quotes and not action and _QUOTE_CHAR.search(piece):
                _track_quotes(quote, piece)
            if parts and action != run_action:
                _finish(parts, italic_run, earlier, run_action, block, segments)
                parts, earlier = [], []
            elif parts and bool(italic) != italic_run:
                earlier.append(_Run(parts, (ITALIC,) if italic_run else (), run_action, block, ""))
                parts = []
            if not parts:
                italic_run, run_action = bool(italic), action
            parts.append(piece)
        if parts:
            _finish(parts, italic_run, earlier, run_action, block, segments)
    return _new_tuple(Rendered, (tuple(segments), ()))


def _finish(
    parts: list[str], italic: bool, earlier: list[_Run], action: bool, block: int, segments: list[Segment]
) -> None:
    """Close a segment of _render_simple: its earlier runs and the current one."""
    if earlier or italic:
        story = _tidy(_serialize([*earlier, _Run(parts, (ITALIC,) if italic else (), action, block, "")]))
    else:
        story = "".join(parts)
        story = _tidy(story) if "\n" in story else story.strip()
    if story:
        segments.append(_new_tuple(Segment, ("action" if action else "speech", story, block)))


def _tidy(text: str) -> str:
    if "\n" not in text:
        return text.strip()
    lines = [line.strip() for line in text.split("\n")]
    out = "\n".join(lines).strip()
    return _MANY_NEWLINES.sub("\n\n", out)


def plain_text(story: str) -> str:
    """The characters a reader sees in story text (markers and escapes removed)."""
    parts: list[str] = []
    for tok in _STORY.parseInline(story):
        for child in tok.children or ():
            if child.type in ("text", "code_inline", "text_special"):
                parts.append(child.content)
            elif child.type in ("softbreak", "hardbreak"):
                parts.append("\n")
    return "".join(parts)
