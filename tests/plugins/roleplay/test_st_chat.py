"""SillyTavern JSONL parsing: headers, dates, swipes, hidden/system/narrator, bad lines, fuzzing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from comfyvn.errors import ComfyVNError
from comfyvn_roleplay.dates import parse_send_date
from comfyvn_roleplay.models import ChatHeader, Kind, Message, ParseIssue
from comfyvn_roleplay.st_chat import avatar_file, iter_st_chat
from comfyvn_server.errors import http_status
from hypothesis import given
from hypothesis import strategies as st
from rp_fixtures import HEADERS, SEND_DATES, jsonl


def parse(text: str, **kw):
    return list(iter_st_chat(text.split("\n"), **kw))


@pytest.mark.parametrize("variant", list(HEADERS))
def test_every_header_variant(variant: str) -> None:
    header = HEADERS[variant]
    body = [{"name": "Aqua", "is_user": False, "mes": "Hi"}, {"name": "You", "is_user": True, "mes": "Yo"}]
    records = parse(jsonl([header, *body]))
    messages = [r for r in records if isinstance(r, Message)]
    assert [m.text for m in messages] == ["Hi", "Yo"]
    assert not [r for r in records if isinstance(r, ParseIssue)]
    headers = [r for r in records if isinstance(r, ChatHeader)]
    if header is None:
        assert headers == []
        return
    (h,) = headers
    if variant == "newer_unused":
        assert h.user_name is None and h.character_name is None
        assert h.metadata["integrity"] == header["chat_metadata"]["integrity"]  # kept verbatim
    else:
        assert h.user_name == "You" and h.character_name == "Aqua"
        assert h.create_date is not None


def test_narrator_name_from_header_names_unnamed_narration() -> None:
    records = parse(
        jsonl([HEADERS["newer_unused"], {"mes": "Night falls.", "is_user": False, "extra": {"type": "narrator"}}])
    )
    (msg,) = [r for r in records if isinstance(r, Message)]
    assert msg.kind is Kind.NARRATOR and msg.name == "Fate"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("epoch_ms_number", datetime(2023, 1, 24, 11, 31, 36, 839000, tzinfo=UTC)),
        ("epoch_ms_string", datetime(2023, 1, 24, 11, 31, 36, 839000, tzinfo=UTC)),
        ("human", datetime(2023, 6, 19, 14, 20)),
        ("at_compact", datetime(2024, 7, 12, 1, 31, 37)),
        ("at_spaced_ms", datetime(2024, 6, 5, 14, 56, 50, 682000)),
        ("iso", datetime(2025, 11, 23, 10, 0, tzinfo=UTC)),
    ],
)
def test_every_send_date_format(key: str, expected: datetime) -> None:
    assert parse_send_date(SEND_DATES[key]) == expected
    (msg,) = [
        r for r in parse(jsonl([{"name": "A", "mes": "x", "send_date": SEND_DATES[key]}])) if isinstance(r, Message)
    ]
    assert msg.send_date == expected and msg.send_date_raw == SEND_DATES[key]


@pytest.mark.parametrize(
    "value", ["", "yesterday", "2024-13-45@99h99m99s", None, True, [1], "June 40, 2023 2:20pm", "13:61pm"]
)
def test_unrecognised_dates_are_none(value: object) -> None:
    assert parse_send_date(value) is None


def test_unrecognised_date_is_a_warning_not_a_skip() -> None:
    records = parse(jsonl([{"name": "A", "mes": "x", "send_date": "someday"}]))
    assert [r.severity for r in records if isinstance(r, ParseIssue)] == ["warning"]
    assert [r.text for r in records if isinstance(r, Message)] == ["x"]


def test_flags_untangled() -> None:
    lines = [
        {
            "name": "SillyTavern System",
            "is_user": False,
            "is_system": True,
            "mes": "Welcome",
            "extra": {"type": "welcome"},
        },
        {"name": "Aqua", "is_user": False, "is_system": True, "mes": "hidden by the user"},
        {"name": "You", "is_user": True, "is_system": True, "mes": "hidden user line"},
        {"name": "System", "is_user": False, "mes": "The sky darkens.", "extra": {"type": "narrator"}},
        {"name": "Aqua", "mes": "no is_system key at all"},
        {"name": "Aqua", "is_user": False, "is_system": False, "is_name": True, "mes": "legacy is_name"},
    ]
    msgs = [r for r in parse(jsonl(lines)) if isinstance(r, Message)]
    assert [(m.kind, m.hidden) for m in msgs] == [
        (Kind.SYSTEM, False),
        (Kind.CHARACTER, True),
        (Kind.USER, True),
        (Kind.NARRATOR, False),
        (Kind.CHARACTER, False),
        (Kind.CHARACTER, False),
    ]
    assert msgs[-1].extra["is_name"] is True  # unknown/legacy keys are kept


def test_swipes_and_swipe_id() -> None:
    line = {"name": "Aqua", "mes": "", "swipes": ["first", "second", None], "swipe_id": 1}
    (msg,) = [r for r in parse(jsonl([line])) if isinstance(r, Message)]
    assert msg.text == "second" and msg.swipes == ("first", "second", "") and msg.swipe_id == 1
    bad = {"name": "Aqua", "mes": "kept", "swipes": ["a"], "swipe_id": 7}
    records = parse(jsonl([bad]))
    assert [r.text for r in records if isinstance(r, Message)] == ["kept"]
    assert any(isinstance(r, ParseIssue) and "swipe_id" in r.message for r in records)


def test_display_text_image_avatar_and_crlf() -> None:
    line = {
        "name": "Aqua",
        "mes": "a\r\nb",
        "original_avatar": "Aqua%20(2).png",
        "extra": {"display_text": "translated", "image": "user/images/x.png"},
    }
    (msg,) = [r for r in parse(jsonl([line])) if isinstance(r, Message)]
    assert msg.text == "a\nb" and msg.display_text == "translated" and msg.image == "user/images/x.png"
    assert msg.avatar == "Aqua (2).png"
    assert avatar_file("/thumbnail?type=avatar&file=Seraphina.png") == "Seraphina.png"


def test_malformed_lines_reported_with_line_numbers_and_import_continues() -> None:
    text = "\n".join(
        [
            json.dumps(HEADERS["2023_epoch"]),
            "{broken",
            json.dumps({"name": "A", "mes": "ok"}),
            "[1]",
            json.dumps({"user_name": "late header"}),
            "",
            json.dumps({"name": "B", "mes": "still ok"}),
        ]
    )
    records = parse(text)
    skipped = [(r.line, r.severity) for r in records if isinstance(r, ParseIssue)]
    assert skipped == [(2, "skipped"), (4, "skipped"), (5, "skipped")]
    assert [r.text for r in records if isinstance(r, Message)] == ["ok", "still ok"]
    with pytest.raises(ComfyVNError) as err:
        parse(text, strict=True)
    assert err.value.field == "line 2" and http_status(err.value) == 422


def test_bom_and_bytes_input() -> None:
    data = ("\ufeff" + jsonl([HEADERS["2023_epoch"], {"name": "Aqua", "mes": "é"}])).encode("utf-8")
    records = list(iter_st_chat(data.splitlines(keepends=True)))
    assert isinstance(records[0], ChatHeader)
    assert records[1].text == "é"
    broken = list(iter_st_chat([b'{"name": "A", "mes": "\xff"}']))
    assert any(isinstance(r, ParseIssue) and "UTF-8" in r.message for r in broken)


@given(st.lists(st.binary(max_size=200), max_size=20))
def test_random_bytes_never_crash(lines: list[bytes]) -> None:
    for record in iter_st_chat(lines):
        assert isinstance(record, ChatHeader | Message | ParseIssue)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "name",
                    "mes",
                    "is_user",
                    "is_system",
                    "swipes",
                    "swipe_id",
                    "send_date",
                    "extra",
                    "original_avatar",
                    "chat_metadata",
                    "user_name",
                    "type",
                    "display_text",
                    "x",
                ]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)


@given(st.lists(json_values, max_size=15))
def test_random_json_lines_never_crash(values: list[object]) -> None:
    lines = [json.dumps(v) for v in values]
    for record in iter_st_chat(lines):
        assert isinstance(record, ChatHeader | Message | ParseIssue)


names = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12).filter(
    lambda s: s.strip() == s and s != "SillyTavern System"
)
texts = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\r"), max_size=80)


@given(st.sampled_from(list(HEADERS)), st.lists(st.tuples(names, texts, st.booleans()), min_size=1, max_size=25))
def test_generated_chat_round_trips(header_key: str, turns: list[tuple[str, str, bool]]) -> None:
    records = [HEADERS[header_key]] + [
        {"name": n, "is_user": u, "is_system": False, "send_date": SEND_DATES["at_compact"], "mes": t, "extra": {}}
        for n, t, u in turns
    ]
    msgs = [r for r in iter_st_chat(jsonl(records).split("\n")) if isinstance(r, Message)]
    assert [(m.name, m.text, m.kind is Kind.USER) for m in msgs] == [(n, t, u) for n, t, u in turns]
    assert [m.index for m in msgs] == list(range(len(turns)))
