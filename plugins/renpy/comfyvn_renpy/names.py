"""Ren'Py names and literals: unique valid labels, image names, escaped dialogue and Python literals.

Everything here is pure and deterministic: the same inputs in the same order give the same names, so
an edit to one line of a scene never renames labels elsewhere (dry-run diffs stay small).
"""

from __future__ import annotations

import hashlib
import json
import keyword
import re
import unicodedata
from typing import Any

__all__ = [
    "IMAGE_KEYWORDS",
    "NameRegistry",
    "escape_markup",
    "escape_say_text",
    "placeholder_colour",
    "py_literal",
    "say_string",
    "slug",
]

# Words the Ren'Py parser treats specially: never a label, image tag or image attribute.
IMAGE_KEYWORDS = frozenset(
    [
        "as",
        "at",
        "behind",
        "call",
        "expression",
        "hide",
        "if",
        "in",
        "image",
        "init",
        "jump",
        "menu",
        "onlayer",
        "python",
        "return",
        "scene",
        "show",
        "with",
        "while",
        "zorder",
        "transform",
        "define",
        "default",
        "label",
        "screen",
        "style",
        "testcase",
        "translate",
        "pass",
        "elif",
        "else",
    ]
)
_NOT_WORD = re.compile(r"[^0-9a-z_]+")
_NOT_IDENT = re.compile(r"[^0-9A-Za-z_]+")


def slug(text: str, *, lower: bool = True, fallback: str = "x") -> str:
    """ASCII word characters only (accents folded, the rest ``_``-joined), never empty."""
    # ASCII (the usual id) has nothing to fold: NFKD and the ASCII filter leave it as it is.
    ascii_only = text.isascii()
    folded = text if ascii_only else unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    value = _NOT_WORD.sub("_", folded.lower()) if lower else _NOT_IDENT.sub("_", folded)
    value = value.strip("_")
    return value or fallback


class NameRegistry:
    """Hands out unique names: the first claim of a base gets it, later ones ``base_2``, ``base_3``…"""

    def __init__(self, reserved: set[str] | frozenset[str] = frozenset()) -> None:
        self._used: set[str] = set(reserved)

    def claim(self, base: str) -> str:
        name, counter = base, 1
        while name in self._used or keyword.iskeyword(name) or name in IMAGE_KEYWORDS:
            counter += 1
            name = f"{base}_{counter}"
        self._used.add(name)
        return name


def escape_markup(text: str) -> str:
    """Double the characters Ren'Py interpolates in displayed text: ``[``, ``{`` and ``%``."""
    return text.replace("[", "[[").replace("{", "{{").replace("%", "%%")


def _char_escape(ch: str) -> str:
    if ch == "\n":
        return "\\n"
    if ch.isspace():
        return " "  # Ren'Py collapses whitespace runs to one space anyway
    category = unicodedata.category(ch)
    if category == "Cs":
        return "\ufffd"  # a lone surrogate cannot be written as UTF-8
    if category in ("Cc", "Cf", "Co", "Cn") and ord(ch) <= 0xFFFF:
        return f"\\u{ord(ch):04x}"  # the parser decodes \uXXXX; raw control characters could split lines
    return ch


def escape_say_text(text: str) -> str:
    """The body of a Ren'Py string literal showing ``text`` verbatim (no quotes around it).

    Order as renpy.md prescribes: ``\\`` → ``\\\\``, ``"`` → ``\\"``, newline → ``\\n``, then ``[``, ``{``,
    ``%`` doubled; other whitespace becomes a space, invisible control characters ``\\uXXXX``. Bodies
    of escaped pieces can be joined with text tags in between (`text.render`): the tags stay tags.
    """
    body = text.replace("\\", "\\\\").replace('"', '\\"')
    if not body.isprintable():  # only then is there a newline, tab or control character to rewrite
        body = "".join(_char_escape(ch) if (ch.isspace() or not ch.isprintable()) else ch for ch in body)
    return escape_markup(body)


def say_string(text: str) -> str:
    """A double-quoted Ren'Py string literal (dialogue, narration, menu choices) showing ``text`` verbatim."""
    return '"' + escape_say_text(text) + '"'


def py_literal(value: Any) -> str:
    """A Python expression for a JSON value (dict/list/str/number/bool/null), stable and single-line."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")  # fails exactly when the string holds a lone surrogate
        except UnicodeEncodeError:
            return repr(value.encode("utf-8", "replace").decode("utf-8"))
        return repr(value)
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if value == value and value not in (float("inf"), float("-inf")) else "None"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{py_literal(str(k))}: {py_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(py_literal(v) for v in value) + "]"
    return repr(json.loads(json.dumps(value, default=str)))


def placeholder_colour(key: str) -> str:
    """A stable, darkish ``#rrggbb`` for a placeholder image named ``key``."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    return "#" + "".join(f"{32 + b % 96:02x}" for b in digest[:3])
