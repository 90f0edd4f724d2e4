"""markdown-it's reading of the simplest chat text, without running markdown-it.

Most roleplay messages are paragraphs of prose with ``*actions*`` and line breaks. For text that
holds no block construct, :func:`paragraphs` finds the paragraphs the block parser would; for a
paragraph whose only markup is lone asterisks and line breaks, :func:`scan` and :func:`pair` find
the emphasis the inline parser would. ``markup`` uses them to skip the parser, and its tests compare
the result with markdown-it's on generated text.
"""

from __future__ import annotations

import re

from markdown_it.common.utils import isMdAsciiPunct, isPunctChar, isWhiteSpace

__all__ = ["HARD", "SOFT", "has_inline_syntax", "pair", "paired_line", "paragraphs", "scan"]

# A line that may open a block construct (quote, heading, fence, list item, rule, setext underline).
# Text without one is plain paragraphs, which the block parser would only split at blank lines.
_BLOCK_START = re.compile(r"[ \t]*(?:[>#`~=|]|[-+*](?:[ \t]|$)|\d{1,9}[.)](?:[ \t]|$)|[-*_][-*_ \t]*$)")
_BLOCK_FIRST = frozenset(">#`~=|-+*_")  # a line's first character, past spaces and tabs, if it opens one
_BULLET_OR_RULE = frozenset(("", " ", "\t", "-", "*", "_"))  # what follows "*", "-", "_" that opens one
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
SOFT, HARD = "\n", "\n\n"  # line breaks among scan's pieces (text pieces hold no newline)
_FLANKS: dict[str, tuple[bool, bool]] = {}


def _opens_block(line: str) -> bool:
    """Whether ``line`` may open a block construct: the _BLOCK_START test, its regex run only for a
    line that starts like one ("*She smiles*" does not: a bullet needs a space after its marker)."""
    start = line.lstrip(" \t")
    first = start[:1]
    if not first or (first not in _BLOCK_FIRST and not first.isdecimal()):
        return False
    if first in "*-_" and start[1:2] not in _BULLET_OR_RULE:
        return False
    return _BLOCK_START.match(line) is not None


def paragraphs(text: str) -> list[str] | None:
    """The inline content of each paragraph markdown-it finds in ``text`` (newlines normalised), or
    None where the text may hold a block construct, a NUL, or starts or ends a paragraph with
    whitespace other than spaces and tabs (which parser versions trim differently)."""
    if "\0" in text:
        return None
    # The usual chat message: one-line paragraphs between "\n\n" (any other newline: the general case).
    lines = text.split("\n\n") if "\n" in text else [text]
    out: list[str] = []
    for line in lines:
        if not line:
            continue
        if "\n" in line:
            return _paragraph_runs(text)
        # _opens_block's first tests, inlined: most lines start with a letter, a quote or "*word".
        first = line[0]
        if (
            (first in _BLOCK_FIRST or first.isdecimal() or first == " " or first == "\t")
            and not (first in "*-_" and line[1:2] not in _BULLET_OR_RULE)
            and _opens_block(line)
        ):
            return None
        content = line.strip(" \t")
        if not content:
            continue
        if content[0].isspace() or content[-1].isspace():
            return None
        out.append(content)
    return out


def _paragraph_runs(text: str) -> list[str] | None:
    """:func:`paragraphs` for any text: paragraphs are runs of lines between blank ones (spaces and
    tabs only)."""
    out: list[str] = []
    run: list[str] = []
    for line in (*text.split("\n"), ""):  # the empty line closes the last run
        if line.strip(" \t"):
            if _opens_block(line):
                return None
            run.append(line)
            continue
        if not run:
            continue
        content = "\n".join(run).strip(" \t\n")
        run = []
        if content[0].isspace() or content[-1].isspace():
            return None
        out.append(content)
    return out


def _flanks(around: str) -> tuple[bool, bool]:
    """(can open, can close) for a lone asterisk between ``around[0]`` and ``around[1]``, as
    markdown-it's delimiter scan decides (a line's start and end count as a space)."""
    found = _FLANKS.get(around)
    if found is not None:
        return found
    before, after = around[0], around[1]
    white_before, white_after = isWhiteSpace(ord(before)), isWhiteSpace(ord(after))
    punct_before = isMdAsciiPunct(ord(before)) or isPunctChar(before)
    punct_after = isMdAsciiPunct(ord(after)) or isPunctChar(after)
    left = not (white_after or (punct_after and not (white_before or punct_before)))
    right = not (white_before or (punct_before and not (white_after or punct_after)))
    if len(_FLANKS) < 65536:  # bounded: a chat could use every pair of characters
        _FLANKS[around] = (left, right)
    return left, right


def scan(content: str) -> tuple[list[str], list[tuple[int, bool, bool]]] | None:
    """Paragraph ``content`` as pieces — text, ``"*"``, :data:`SOFT` or :data:`HARD` — and its
    asterisks as ``(index in pieces, can open, can close)``; None when it holds other inline syntax.

    The text is what markdown-it's inline parser keeps: a line break drops one trailing space (two
    or more make a hard break and all go) and the next line's leading spaces and tabs.
    """
    if has_inline_syntax(content):  # left to markdown-it
        return None
    if "\n" not in content and "*" not in content:
        return ([content] if content else []), []  # one line of plain text, the commonest paragraph
    pieces: list[str] = []
    stars: list[tuple[int, bool, bool]] = []
    flanks = _FLANKS
    lines = content.split("\n") if "\n" in content else [content]
    last_line = len(lines) - 1
    for number, line in enumerate(lines):
        brk = ""
        if number:
            line = line.lstrip(" \t")
        if number < last_line:
            brk = HARD if line.endswith("  ") else SOFT
            line = line.rstrip(" ") if brk == HARD else line.removesuffix(" ")
        if "*" in line:
            parts = line.split("*")
            if parts[0]:
                pieces.append(parts[0])
            for j in range(1, len(parts)):
                part = parts[j]
                # Runs of asterisks were refused above, so only a line's ends meet an empty part.
                around = (parts[j - 1][-1:] or " ") + (part[:1] or " ")
                can_open, can_close = flanks.get(around) or _flanks(around)
                stars.append((len(pieces), can_open, can_close))
                pieces.append("*")
                if part:
                    pieces.append(part)
        elif line:
            pieces.append(line)
        if brk:
            pieces.append(brk)
    return pieces, stars


def has_inline_syntax(text: str) -> bool:
    """Whether ``text`` holds inline syntax other than lone asterisks, which :func:`scan` leaves to
    markdown-it: escapes, code, underscores, strikethrough, entities and runs of asterisks (bold,
    and the rule of three)."""
    # Substring tests are several times faster than a regex.
    return "\\" in text or "`" in text or "_" in text or "~" in text or "&" in text or "**" in text


def paired_line(content: str, *, plain: bool = False) -> list[str] | None:
    """``content`` split at its asterisks, when it is one line whose asterisks markdown-it pairs in
    order (the first with the second, the third with the fourth…) and that holds no other inline
    syntax; None otherwise. Even indexes are the text outside the pairs, odd ones the text inside.
    ``plain``: the caller has found no other inline syntax (:func:`has_inline_syntax`) already.

    This is what :func:`scan` and :func:`pair` find for the commonest chat paragraph,
    ``*action* speech *action*``, without building their lists.
    """
    if "\n" in content or (not plain and has_inline_syntax(content)):
        return None
    parts = content.split("*")
    if not len(parts) % 2:
        return None  # an odd number of asterisks: one is left unpaired
    flanks = _FLANKS
    for j in range(1, len(parts)):
        around = (parts[j - 1][-1:] or " ") + (parts[j][:1] or " ")
        can_open, can_close = flanks.get(around) or _flanks(around)
        # pair() pushes an asterisk that opens while none is open, and pairs one that closes the
        # open one: in-order pairs need each odd asterisk to open and each even one to close.
        if not (can_open if j % 2 else can_close):
            return None
    return parts


def pair(stars: list[tuple[int, bool, bool]]) -> dict[int, bool]:
    """The asterisks that become emphasis: piece index → True for an opener, False for a closer.

    The CommonMark emphasis rules reduce to a stack for lone asterisks: a closer takes the nearest
    opener still open (delimiters between them are spent), and the rule of three never applies to
    runs of length one.
    """
    tags: dict[int, bool] = {}
    openers: list[int] = []
    for index, can_open, can_close in stars:
        if can_close and openers:
            tags[openers.pop()] = True
            tags[index] = False
        elif can_open:
            openers.append(index)
    return tags
