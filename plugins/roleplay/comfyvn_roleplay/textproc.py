"""Deterministic text cleanup for imported messages: macros, ``*actions*``, OOC, expressions.

Pure string functions; the converter decides which to apply from the detail level and options.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = [
    "EXPRESSION_CUES",
    "guess_expression",
    "resolve_macros",
    "split_actions",
    "split_ooc",
    "tidy",
]

_MACRO = re.compile(r"\{\{\s*(user|char)\s*\}\}|<(USER|BOT)>", re.IGNORECASE)
# Single-asterisk spans; ``**bold**`` is emphasis, not an action.
_ACTION = re.compile(r"(?<!\*)\*(?!\*)([^*]+?)(?<!\*)\*(?!\*)")
_OOC = re.compile(r"\(\((.*?)\)\)|[\[(]\s*OOC\s*:(.*?)[\])]", re.IGNORECASE | re.DOTALL)
_BLANKS = re.compile(r"\n{3,}")
_TRAILING = re.compile(r"[ \t]+\n")
_QUOTED = re.compile(r'^\s*["“](.*)["”]\s*$', re.DOTALL)

#: Words in a message that name an emotion, mapped to SillyTavern's default expression labels.
EXPRESSION_CUES: dict[str, str] = {
    "smile": "joy",
    "smiles": "joy",
    "smiling": "joy",
    "grin": "joy",
    "grins": "joy",
    "laughs": "amusement",
    "laugh": "amusement",
    "giggles": "amusement",
    "chuckles": "amusement",
    "blush": "embarrassment",
    "blushes": "embarrassment",
    "blushing": "embarrassment",
    "frown": "disapproval",
    "frowns": "disapproval",
    "cries": "sadness",
    "crying": "sadness",
    "tears": "sadness",
    "sobs": "grief",
    "sighs": "disappointment",
    "gasps": "surprise",
    "gasp": "surprise",
    "startled": "surprise",
    "glares": "anger",
    "scowls": "anger",
    "growls": "anger",
    "shouts": "anger",
    "trembles": "fear",
    "shivers": "fear",
    "pouts": "annoyance",
    "rolls her eyes": "annoyance",
    "rolls his eyes": "annoyance",
    "winks": "desire",
    "nods": "approval",
    "beams": "excitement",
    "grimaces": "disgust",
    "confused": "confusion",
    "tilts her head": "curiosity",
    "tilts his head": "curiosity",
    "nervously": "nervousness",
    "proudly": "pride",
    "relieved": "relief",
}
_WORD = re.compile(r"[a-z]+(?: (?:her|his|their) (?:eyes|head))?")


def resolve_macros(text: str, user: str, char: str) -> str:
    """Replace ``{{user}}``/``{{char}}`` (any case) and ``<USER>``/``<BOT>`` with names."""
    if "{" not in text and "<" not in text:
        return text

    def sub(m: re.Match[str]) -> str:
        which = (m.group(1) or m.group(2)).lower()
        return user if which == "user" else char

    return _MACRO.sub(sub, text)


def split_ooc(text: str) -> tuple[str, list[str]]:
    """Remove ``((…))`` and ``(OOC: …)`` asides; return the rest and the asides removed."""
    if "(" not in text and "[" not in text:
        return text, []
    found: list[str] = []

    def sub(m: re.Match[str]) -> str:
        found.append((m.group(1) if m.group(1) is not None else m.group(2) or "").strip())
        return ""

    return _OOC.sub(sub, text), found


def split_actions(text: str) -> list[tuple[str, str]]:
    """Cut a message into ``("speech"|"action", text)`` parts at single-asterisk spans."""
    if "*" not in text:
        return [("speech", text)]
    parts: list[tuple[str, str]] = []
    last = 0
    for m in _ACTION.finditer(text):
        before = text[last : m.start()]
        if before.strip():
            parts.append(("speech", before))
        if m.group(1).strip():
            parts.append(("action", m.group(1)))
        last = m.end()
    tail = text[last:]
    if tail.strip():
        parts.append(("speech", tail))
    return parts


def tidy(text: str, *, unquote: bool = False) -> str:
    """Normalise whitespace (no trailing blanks, at most one empty line); optionally drop quotes
    that wrap the whole line, which a VN text box does not need."""
    text = _BLANKS.sub("\n\n", _TRAILING.sub("\n", text)).strip()
    if unquote:
        m = _QUOTED.match(text)
        if m and '"' not in m.group(1) and "“" not in m.group(1):
            text = m.group(1).strip()
    return text


def guess_expression(text: str, labels: Sequence[str]) -> str | None:
    """The expression a message names, among the character's sprite ``labels``; None if none.

    A label named outright (``*joy*``, "with surprise") wins; otherwise a cue word such as
    "smiles" maps to a default SillyTavern label when the character has that sprite.
    """
    if not labels:
        return None
    lowered = text.lower()
    available = {label.lower(): label for label in labels}
    words = _WORD.findall(lowered)
    for word in words:
        if word in available:
            return available[word]
    for word in words:
        cue = EXPRESSION_CUES.get(word)
        if cue is not None and cue in available:
            return available[cue]
    return None
