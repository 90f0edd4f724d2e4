"""Deterministic text cleanup for imported messages: macros, OOC asides, expressions.

Pure string functions; the converter decides which to apply from the detail level and options.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = [
    "EXPRESSION_CUES",
    "guess_expression",
    "resolve_macros",
    "split_ooc",
    "tidy",
]

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


_MACRO_BRACES = re.compile(r"\{\{([^{}]*)\}\}")
_MACRO_ANGLE = re.compile(r"<(USER|BOT|CHAR|GROUP|CHARIFNOTGROUP)>", re.IGNORECASE)
_MAX_MACRO_PASSES = 8  # nested macros ({{random::{{user}}::x}}) resolve inside out
# Card fields a macro may name; anything else unknown is removed (and reported by the caller).
_FIELD_MACROS = ("description", "personality", "scenario", "persona", "mesexamples", "charprompt")


def resolve_macros(
    text: str,
    user: str,
    char: str,
    *,
    fields: dict[str, str] | None = None,
    unknown: list[str] | None = None,
) -> str:
    """Expand SillyTavern macros: ``{{user}}``/``{{char}}`` (any case), ``<USER>``/``<BOT>``/``<CHAR>``.

    Also ``{{newline}}``, ``{{trim}}``, ``{{noop}}``, ``{{// comments}}``, ``{{random::a::b}}`` and
    ``{{pick:a,b}}`` (the first option: an import is deterministic) and card fields from ``fields``.
    Other macros (``{{time}}``, ``{{roll:d6}}``…) cannot be evaluated at import time and are removed;
    their names are appended to ``unknown`` when given. No ``{{…}}`` macro survives.
    """
    if "{" not in text and "<" not in text:
        return text
    known = {"user": user, "char": char, "group": char, "charifnotgroup": char, "bot": char}
    known.update({k.lower(): v for k, v in (fields or {}).items()})

    def angle(m: re.Match[str]) -> str:
        return user if m.group(1).lower() == "user" else char

    def braces(m: re.Match[str]) -> str:
        body = m.group(1).strip()
        key = body.lower()
        if key in known:
            return known[key]
        if key == "newline":
            return "\n"
        if key in ("trim", "noop", "") or key.startswith("//"):
            return ""
        name, _, args = body.partition(":")
        if name.strip().lower() in ("random", "pick"):
            args = args[1:] if args.startswith(":") else args
            options = args.split("::") if "::" in args else args.split(",")
            return options[0].strip() if options else ""
        if key in _FIELD_MACROS:
            return ""
        if unknown is not None:
            unknown.append(name.strip()[:40])
        return ""

    text = _MACRO_ANGLE.sub(angle, text)
    for _ in range(_MAX_MACRO_PASSES):
        if "{{" not in text:
            break
        text = _MACRO_BRACES.sub(braces, text)
    return text


_OOC_START = re.compile(r"\(\(|[(\[]\s*OOC\b|^[ \t]*OOC\s*[:\-\u2013\u2014]", re.IGNORECASE | re.MULTILINE)
_CLOSER = {"(": ")", "[": "]"}


def _balanced_end(text: str, start: int, opener: str, depth: int) -> int:
    """Index just past the bracket that closes ``depth`` openers at ``start``; end of line if none."""
    closer = _CLOSER[opener]
    i = start
    while i < len(text):
        c = text[i]
        if c == opener:
            depth += 1
        elif c == closer:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    newline = text.find("\n", start)
    return len(text) if newline < 0 else newline


def split_ooc(text: str) -> tuple[str, list[str]]:
    """Remove out-of-character asides; return the rest and the asides (their inner text) removed.

    Forms: ``((…))``, ``(OOC: …)``/``(OOC …)``, ``[OOC: …]``/``[OOC …]`` (brackets balanced; an
    unclosed aside runs to the end of its line) and a line starting ``OOC:`` (to the end of the line).
    """
    if "((" not in text and "ooc" not in text.lower():
        return text, []
    found: list[str] = []
    out: list[str] = []
    pos = 0
    while True:
        m = _OOC_START.search(text, pos)
        if m is None:
            break
        token = m.group(0)
        if token == "((":
            end = _balanced_end(text, m.start() + 2, "(", 2)
            inner = text[m.start() + 2 : end].removesuffix("))")
        elif token.lstrip()[0] in "([":
            opener = token.lstrip()[0]
            end = _balanced_end(text, m.end(), opener, 1)
            inner = text[m.end() : end].removesuffix(_CLOSER[opener])
        else:
            newline = text.find("\n", m.end())
            end = len(text) if newline < 0 else newline
            inner = text[m.end() : end]
        out.append(text[pos : m.start()])
        if inner.strip(" \t:"):
            found.append(inner.strip(" \t:").strip())
        pos = end
    out.append(text[pos:])
    return "".join(out), found


def tidy(text: str, *, unquote: bool = False) -> str:
    """Normalise whitespace (no trailing blanks, at most one empty line); optionally drop quotes
    that wrap the whole line, which a VN text box does not need."""
    # Substring tests first: most text has neither, and each regex scans the whole text.
    if " \n" in text or "\t\n" in text:
        text = _TRAILING.sub("\n", text)
    if "\n\n\n" in text:
        text = _BLANKS.sub("\n\n", text)
    text = text.strip()
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
