"""The import's shortcuts give exactly what the slower general code gives.

A 100,000-message chat is imported in a few seconds because the common cases skip work: message
lines are decoded by orjson, SillyTavern's own date format has its own pattern, one-line paragraphs
and in-order action pairs skip the scanners, a scene-break rule is found without a regex. Each test
here compares a shortcut with the general code it stands for, on generated input.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import pytest
from comfyvn_roleplay import dates, st_chat
from comfyvn_roleplay._inline_scan import pair, paired_line, paragraphs, scan
from comfyvn_roleplay.convert import is_scene_break
from comfyvn_roleplay.markup import _tidy, render
from comfyvn_roleplay.models import Kind
from comfyvn_roleplay.st_chat import classify, iter_st_chat, message_from_object
from hypothesis import given, settings
from hypothesis import strategies as st

# -- orjson for message lines ----------------------------------------------------------------------

_KEYS = ["name", "mes", "is_user", "is_system", "swipes", "swipe_id", "send_date", "extra", "title"]
_KEYS += ["original_avatar", "force_avatar", "display_text", "image", "type", "gen_started", "x"]
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too: orjson would make those floats
    | st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**19, -(10**19), 1674559896839])
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["2024-7-12@01h31m37s", "1674559896839", "\r\nline", "\ud800", "é", "日本"])
)
_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), children, max_size=6),
    max_leaves=15,
)
_messages = st.dictionaries(st.sampled_from(_KEYS), _values, max_size=8).map(lambda d: {"mes": "", **d})


def _line(value: Any, ascii_only: bool) -> bytes:
    # ensure_ascii writes a lone surrogate as "\ud800", which orjson refuses and json reads.
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


_raw_lines = st.one_of(
    st.tuples(_messages, st.booleans()).map(lambda v: _line(*v)),
    st.tuples(_values, st.booleans()).map(lambda v: _line(*v)),
    st.sampled_from(
        [
            b"",
            b"   ",
            b'\xef\xbb\xbf{"mes": "bom"}',
            b'{"mes": NaN, "send_date": Infinity}',
            b'{"mes": "x\xff"}',
            b'{"mes": "a"} trailing',
            b'\x0c{"mes": "form feed"}',
            b'{"mes": 123456789012345678901234567890}',
            b'{"swipe_id": -9223372036854775809, "swipes": ["a"]}',
            b'{"mes": "big in text 12345678901234567890"}',
            b"null",
            b'{"chat_metadata": {"n": 99999999999999999999}}',
        ]
    ),
)


@settings(max_examples=300)
@given(st.lists(st.tuples(_raw_lines, st.sampled_from([b"", b"\n", b"\r\n"])), max_size=12))
def test_orjson_decoding_gives_what_json_gives(
    monkeypatch: pytest.MonkeyPatch, lines: list[tuple[bytes, bytes]]
) -> None:
    raw = [line + end for line, end in lines]
    fast = repr(list(iter_st_chat(raw)))
    with monkeypatch.context() as patch:
        patch.setattr(st_chat, "_orjson_message", lambda _raw: None)  # every line through the json module
        slow = repr(list(iter_st_chat(raw)))
    assert fast == slow


def _fast_message(raw: bytes | str) -> dict[str, Any] | None:
    """What iter_st_chat reads with orjson: a message line orjson decodes as the json module would."""
    obj = st_chat._orjson_message(raw)
    return obj if obj is not None and st_chat._exact(raw) else None  # type: ignore[arg-type]


def test_the_usual_message_line_takes_the_orjson_path() -> None:
    line = b'{"name": "Mira", "is_user": false, "mes": "Hi", "send_date": "2024-7-12@01h31m37s", "extra": {}}'
    assert _fast_message(line) == json.loads(line)
    # What orjson reads differently, or not at all, is left to the json module.
    assert _fast_message(b'{"mes": "x", "n": 18446744073709551616}') is None
    assert _fast_message(b'{"chat_metadata": {}}') is None  # a header
    assert _fast_message('{"mes": "x"}') is None  # str lines: the json module


def test_message_fields_land_where_they_belong() -> None:
    # message_from_object passes Message's fields by position: each value must reach its own field.
    obj = {
        "name": "Mira",
        "is_user": False,
        "is_system": True,
        "mes": "",
        "swipes": ["one", "two"],
        "swipe_id": 1,
        "send_date": "2024-7-12@01h31m37s",
        "original_avatar": "Mira%20Vale.png",
        "title": "t",
        "gen_started": "2024",
        "extra": {"display_text": "shown", "image": "pic.png"},
    }
    message, issues = message_from_object(obj, index=4, line=9)
    assert issues == []
    assert (message.index, message.line, message.name, message.text) == (4, 9, "Mira", "two")
    assert (message.kind, message.hidden) == (Kind.CHARACTER, True)
    assert message.send_date == datetime(2024, 7, 12, 1, 31, 37)
    assert message.send_date_raw == "2024-7-12@01h31m37s"
    assert (message.swipes, message.swipe_id) == (("one", "two"), 1)
    assert (message.avatar, message.display_text, message.image, message.title) == (
        "Mira Vale.png",
        "shown",
        "pic.png",
        "t",
    )
    assert message.extra == {"gen_started": "2024", "extra": obj["extra"]}


def test_an_unhashable_extra_type_is_no_crash() -> None:
    # Regression: a list in extra.type on a hidden message raised TypeError (unhashable) in classify.
    assert classify("Mira", False, True, {"type": ["narrator"]}) == (Kind.CHARACTER, True)
    (message,) = [r for r in iter_st_chat([b'{"name": "A", "is_system": true, "mes": "x", "extra": {"type": []}}'])]
    assert message.hidden


# -- dates -----------------------------------------------------------------------------------------


def _at_reference(value: str) -> datetime | None:
    """parse_send_date's general "@" branch, which the compact pattern stands in for."""
    m = dates._AT.match(value)
    assert m is not None
    y, mo, d, h, mi, s, ms = m.groups()
    base = dates._safe(int(y), int(mo), int(d), int(h), int(mi), int(s))
    if base is not None and ms:
        base = base.replace(microsecond=int(ms) * 1000)
    return base


_digit = st.sampled_from([*"0123456789", "\u0663", "\uff10"])  # \d matches any decimal digit
_field = st.lists(_digit, min_size=1, max_size=2).map("".join)


@settings(max_examples=500)
@given(st.tuples(st.lists(_digit, min_size=4, max_size=4).map("".join), _field, _field, _field, _field, _field))
def test_compact_send_dates_read_as_the_general_pattern_reads_them(parts: tuple[str, ...]) -> None:
    value = "{}-{}-{}@{}h{}m{}s".format(*parts)
    assert dates._COMPACT.fullmatch(value)
    assert dates.parse_send_date(value) == _at_reference(value)


@pytest.mark.parametrize(
    "value", ["2024-7-12@01h31m37s", "2024-07-12@1h1m1s", "2024-2-30@00h00m00s", "1999-1-1@0h0m0s"]
)
def test_compact_send_date_examples(value: str) -> None:
    assert dates.parse_send_date(value) == _at_reference(value)


# -- markup ----------------------------------------------------------------------------------------

_BLOCK_START_RULE = r"[ \t]*(?:[>#`~=|]|[-+*](?:[ \t]|$)|\d{1,9}[.)](?:[ \t]|$)|[-*_][-*_ \t]*$)"
_BLOCK_ANYWHERE = re.compile("^" + _BLOCK_START_RULE, re.MULTILINE)
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def _paragraphs_reference(text: str) -> list[str] | None:
    """paragraphs() as it was written with regexes: one block-start search, a split at blank lines."""
    if "\0" in text or _BLOCK_ANYWHERE.search(text):
        return None
    out = []
    for para in _BLANK_LINE.split(text):
        content = para.strip(" \t\n")
        if not content:
            continue
        if content[0].isspace() or content[-1].isspace():
            return None
        out.append(content)
    return out


_PIECES = [" ", "\t", "\n", "\n\n", "\n\n\n", "\n \n", "-", "*", "_", ">", "#", "`", "~", "=", "|", "+", "1."]
_PIECES += ["2)", "٣.", ".", ")", "a", "word", "*word*", "* ", "- x", "*\t", "**", "***", "_x", "-y", "\0", "\r"]
_PIECES += ["\u00a0", "\u2028", "\x0b", "\x0c", "\x1c", "\x85", "“", '"', "猫"]
_texts = st.lists(st.sampled_from(_PIECES), max_size=14).map("".join)


@settings(max_examples=1000)
@given(_texts)
def test_paragraphs_equal_the_regex_reading(text: str) -> None:
    assert paragraphs(text) == _paragraphs_reference(text)


_LINE_PIECES = [
    "*",
    " ",
    "\t",
    "word",
    "Smiles",
    ".",
    ",",
    "!",
    "(",
    ")",
    "猫",
    "。",
    "\u00a0",
    "\u3000",
    "é",
    "_",
    "**",
]


@settings(max_examples=1000)
@given(st.lists(st.sampled_from(_LINE_PIECES), max_size=16).map("".join))
def test_paired_line_is_scan_and_pair_in_order(line: str) -> None:
    parts = paired_line(line)
    scanned = scan(line)
    if scanned is None:
        assert parts is None
        return
    pieces, stars = scanned
    tags = pair(stars)
    in_order = len(tags) == len(stars) and all(tags[index] is (n % 2 == 0) for n, (index, _, _) in enumerate(stars))
    assert (parts is not None) == in_order
    if parts is not None:
        assert [p for p in parts if p] == [p for p in pieces if p != "*"]
        assert paired_line(line, plain=True) == parts


_MESSAGE_PIECES = [*_PIECES, *_LINE_PIECES, "<b>", "</b>", "<br>", "<div>", "&amp;", "\\*", '"Hi," she says.', "«x»"]


@settings(max_examples=500)
@given(st.lists(st.sampled_from(_MESSAGE_PIECES), max_size=20).map("".join), st.booleans())
def test_segments_are_tidy_and_never_empty(text: str, split: bool) -> None:
    # The converter relies on it: it does not tidy segment text again.
    for segment in render(text, split_actions=split).segments:
        assert segment.text and _tidy(segment.text) == segment.text, segment


# -- scene breaks ----------------------------------------------------------------------------------

_BREAK_TEXT = re.compile(r"^\s*(?:-{3,}|\*{3,}|={3,})\s*$")


@settings(max_examples=1000)
@given(st.lists(st.sampled_from(["-", "*", "=", " ", "\n", "\t", "\u00a0", "\u2028", "a", "--", "***"]), max_size=10))
def test_scene_break_equals_its_regex(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert is_scene_break(text) == bool(_BREAK_TEXT.match(text))
