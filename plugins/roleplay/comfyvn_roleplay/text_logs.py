"""Streaming parsers for plain-text chats: SillyTavern's ``.txt`` export and generic logs.

Speaker detection is the hard part: prose is full of ``Something:`` prefixes. Both parsers split
only on *accepted* speaker names — those the caller knows (card names, persona) plus, when asked,
names inferred by a first pass (:func:`scan_speakers`) that occur at least twice. Both passes read
line by line, so memory does not grow with the file.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from datetime import datetime

from .dates import parse_send_date
from .models import Kind, Message, ParseIssue, SceneBreak

__all__ = [
    "NARRATOR_NAMES",
    "accept_speakers",
    "iter_generic_log",
    "iter_st_text",
    "scan_speakers",
]

NARRATOR_NAMES = frozenset({"narrator", "narration", "system"})

_BREAK = re.compile(r"^\s*(?:-{3,}|\*{3,}|={3,}|(?:\*\s+){2,}\*)\s*$")
_TIME_PREFIX = re.compile(r"^\s*[\[(]([^\])]{1,40})[\])]\s*")
# A speaker name: starts with a word character, at most 40 characters, no sentence punctuation.
_NAME = r"[^\W][^:\n*\"“”!?\[\]()]{0,39}?"
_COLON = re.compile(rf"^({_NAME})\s*:(?:\s+|$)(.*)$", re.DOTALL)
# En and em dashes are real separators in pasted logs.
_DASH = re.compile(rf"^({_NAME})\s+[-\u2013\u2014]\s+(.*)$", re.DOTALL)
_TIME_ONLY = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?\s*$")
_MAX_NAME_WORDS = 5


def _line_text(raw: bytes | str) -> str:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    return raw.rstrip("\r\n").replace("\ufeff", "")


def _plausible(name: str) -> bool:
    name = name.strip()
    return bool(name) and len(name.split()) <= _MAX_NAME_WORDS and not name.endswith((".", ","))


def _split_prefix(line: str, *, dash: bool) -> tuple[str, str, str] | None:
    """(name, separator, rest) when ``line`` starts like a speaker turn."""
    m = _COLON.match(line)
    if m and _plausible(m.group(1)):
        return m.group(1).strip(), ":", m.group(2)
    if dash:
        m = _DASH.match(line)
        if m and _plausible(m.group(1)):
            return m.group(1).strip(), "-", m.group(2)
    return None


def _strip_time(line: str) -> tuple[str, str | None]:
    m = _TIME_PREFIX.match(line)
    if not m:
        return line, None
    return line[m.end() :], m.group(1).strip()


def _parse_stamp(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    if _TIME_ONLY.match(raw):
        # A clock time without a date cannot order messages across days; keep it raw only.
        return None
    return parse_send_date(raw)


def scan_speakers(lines: Iterable[bytes | str], *, block_starts_only: bool) -> Counter[str]:
    """First pass: count candidate speaker names (``Name:``, and ``Name -`` for generic logs).

    ``block_starts_only`` counts only lines after a blank line (SillyTavern's export separates
    every message with one), which keeps ``Note:`` inside a message from looking like a speaker.
    """
    counts: Counter[str] = Counter()
    after_blank = True
    for raw in lines:
        line = _line_text(raw)
        if not line.strip():
            after_blank = True
            continue
        if after_blank or not block_starts_only:
            body, _ = _strip_time(line) if not block_starts_only else (line, None)
            found = _split_prefix(body, dash=not block_starts_only)
            if found:
                counts[found[0]] += 1
        after_blank = False
    return counts


# Title-case labels that start prose lines ("Note: …") and must not become one-off speakers.
_PROSE_LABELS = frozenset(
    {
        "note",
        "notes",
        "warning",
        "edit",
        "ps",
        "p.s",
        "update",
        "answer",
        "question",
        "rule",
        "step",
        "example",
        "tip",
        "summary",
        "hint",
        "important",
        "source",
        "chapter",
        "part",
        "scene",
        "time",
        "location",
        "date",
        "ooc",
        "author's note",
        "a/n",
        "nb",
        "todo",
    }
)


def _name_like(name: str) -> bool:
    words = name.split()
    return 0 < len(words) <= 3 and all(w[0].isupper() for w in words) and name.lower() not in _PROSE_LABELS


def accept_speakers(counts: Counter[str], known: Collection[str] = (), *, min_count: int = 2) -> set[str]:
    """Speaker names to split on: ``known`` ones, inferred ones seen ``min_count`` times, and
    one-off names that look like names (Title Case, at most three words, not a prose label such as
    "Note"). If that leaves none, every candidate."""
    accepted = {k for k in known if k} | {n for n, c in counts.items() if c >= min_count or _name_like(n)}
    if not accepted:
        accepted = set(counts)
    return accepted


def _kind_for(name: str, user_names: Collection[str]) -> Kind:
    if name in user_names:
        return Kind.USER
    if name.lower() in NARRATOR_NAMES:
        return Kind.NARRATOR
    return Kind.CHARACTER


def _finish(index: int, line: int, name: str, parts: list[str], kind: Kind, stamp: str | None) -> Message:
    text = "\n".join(parts).strip("\n")
    return Message(
        index=index,
        line=line,
        name=name,
        text=text,
        kind=kind,
        send_date=_parse_stamp(stamp),
        send_date_raw=stamp,
    )


def iter_st_text(
    lines: Iterable[bytes | str], speakers: Collection[str], *, user_names: Collection[str] = ()
) -> Iterator[Message | ParseIssue]:
    """Parse SillyTavern's ``.txt`` export: ``{name}: {text}`` blocks separated by blank lines.

    A new message starts only at a block start whose prefix is one of ``speakers``; anything else
    (including blank lines) belongs to the message being read. Text before the first speaker is
    reported and kept as narration.
    """
    known = set(speakers)
    index = 0
    current: tuple[int, str, Kind] | None = None
    parts: list[str] = []
    after_blank = True
    for lineno, raw in enumerate(lines, start=1):
        line = _line_text(raw)
        if not line.strip():
            after_blank = True
            if current is not None:
                parts.append("")
            continue
        found = _split_prefix(line, dash=False) if after_blank else None
        after_blank = False
        if found and (found[0] in known or found[0].lower() in NARRATOR_NAMES):
            if current is not None:
                yield _finish(index, current[0], current[1], parts, current[2], None)
                index += 1
            current = (lineno, found[0], _kind_for(found[0], user_names))
            parts = [found[2]]
            continue
        if current is None:
            yield ParseIssue(lineno, "text before the first known speaker; kept as narration", "warning", line[:80])
            current = (lineno, "", Kind.NARRATOR)
            parts = []
        parts.append(line)
    if current is not None:
        yield _finish(index, current[0], current[1], parts, current[2], None)


def iter_generic_log(
    lines: Iterable[bytes | str], speakers: Collection[str], *, user_names: Collection[str] = ()
) -> Iterator[Message | SceneBreak | ParseIssue]:
    """Parse a generic log: ``Name: text``, ``[time] Name: text``, ``Name - text``, scene breaks.

    Lines that do not start a turn continue the current message (multi-line and multi-paragraph
    messages); text before any speaker becomes narration.
    """
    known = set(speakers)
    index = 0
    current: tuple[int, str, Kind, str | None] | None = None
    parts: list[str] = []
    for lineno, raw in enumerate(lines, start=1):
        line = _line_text(raw)
        if not line.strip():
            if current is not None:
                parts.append("")
            continue
        if _BREAK.match(line):
            if current is not None:
                yield _finish(index, current[0], current[1], parts, current[2], current[3])
                index += 1
                current, parts = None, []
            yield SceneBreak(lineno, line.strip())
            continue
        body, stamp = _strip_time(line)
        found = _split_prefix(body, dash=True)
        if found and (found[0] in known or found[0].lower() in NARRATOR_NAMES):
            if current is not None:
                yield _finish(index, current[0], current[1], parts, current[2], current[3])
                index += 1
            current = (lineno, found[0], _kind_for(found[0], user_names), stamp)
            parts = [found[2]]
            continue
        if current is None:
            current = (lineno, "", Kind.NARRATOR, stamp)
            parts = []
        parts.append(line)
    if current is not None:
        yield _finish(index, current[0], current[1], parts, current[2], current[3])
