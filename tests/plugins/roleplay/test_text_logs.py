"""Plain-text chats: SillyTavern's .txt export and generic logs; JSON message arrays."""

from __future__ import annotations

import io
import json
from pathlib import Path

from comfyvn_roleplay.json_messages import iter_json_array, iter_json_messages
from comfyvn_roleplay.models import ChatHeader, Kind, Message, ParseIssue, SceneBreak
from comfyvn_roleplay.text_logs import accept_speakers, iter_generic_log, iter_st_text, scan_speakers
from hypothesis import given
from hypothesis import strategies as st

ST_TXT = """Aqua: Hello there!

Note: this is still Aqua's message.

You: Hi.
Second line of mine.

Aqua: Bye:

You: *waves*
"""


def test_st_txt_splits_only_on_known_speakers() -> None:
    msgs = [r for r in iter_st_text(ST_TXT.splitlines(), {"Aqua", "You"}, user_names={"You"}) if isinstance(r, Message)]
    assert [(m.name, m.kind) for m in msgs] == [
        ("Aqua", Kind.CHARACTER),
        ("You", Kind.USER),
        ("Aqua", Kind.CHARACTER),
        ("You", Kind.USER),
    ]
    assert msgs[0].text == "Hello there!\n\nNote: this is still Aqua's message."
    assert msgs[1].text == "Hi.\nSecond line of mine."
    assert msgs[2].text == "Bye:"


def test_st_txt_speaker_inference_needs_two_block_starts() -> None:
    counts = scan_speakers(ST_TXT.splitlines(), block_starts_only=True)
    assert accept_speakers(counts) == {"Aqua", "You"}  # "Note" appears once: not a speaker


def test_st_txt_text_before_first_speaker_is_kept_and_reported() -> None:
    records = list(iter_st_text(["Preamble", "", "Aqua: hi"], {"Aqua"}))
    assert isinstance(records[0], ParseIssue)
    assert [(r.kind, r.text) for r in records if isinstance(r, Message)] == [
        (Kind.NARRATOR, "Preamble"),
        (Kind.CHARACTER, "hi"),
    ]


GENERIC = """The tavern is loud tonight.
[12:01] Alice: Hello!
  She waves.
[2024-01-01 12:02] Bob: Hey.
Alice - Over here
---
Narrator: Later that night.
Bob: Quiet now.
***
Alice: Bye.
"""


def test_generic_log_variants_continuations_and_breaks() -> None:
    lines = GENERIC.splitlines()
    speakers = accept_speakers(scan_speakers(lines, block_starts_only=False))
    assert {"Alice", "Bob"} <= speakers
    records = list(iter_generic_log(lines, speakers))
    shapes = [
        ("break", r.marker) if isinstance(r, SceneBreak) else (r.kind.value, r.name, r.text)
        for r in records
        if not isinstance(r, ParseIssue)
    ]
    assert shapes == [
        ("narrator", "", "The tavern is loud tonight."),
        ("character", "Alice", "Hello!\n  She waves."),
        ("character", "Bob", "Hey."),
        ("character", "Alice", "Over here"),
        ("break", "---"),
        ("narrator", "Narrator", "Later that night."),
        ("character", "Bob", "Quiet now."),
        ("break", "***"),
        ("character", "Alice", "Bye."),
    ]
    bob = next(r for r in records if isinstance(r, Message) and r.name == "Bob")
    assert bob.send_date is not None and bob.send_date.hour == 12  # dated stamp parsed
    alice = next(r for r in records if isinstance(r, Message) and r.name == "Alice")
    assert alice.send_date is None and alice.send_date_raw == "12:01"  # clock-only kept raw


def test_prose_colons_are_not_speakers() -> None:
    lines = ["Alice: The rule is simple.", "Rule one: never run.", "Alice: Got it?", "Bob: Yes.", "Bob: Sure."]
    speakers = accept_speakers(scan_speakers(lines, block_starts_only=False))
    assert "Rule one" not in speakers
    msgs = [r for r in iter_generic_log(lines, speakers) if isinstance(r, Message)]
    assert msgs[0].text == "The rule is simple.\nRule one: never run."


@given(st.lists(st.text(max_size=60), max_size=30))
def test_text_parsers_never_crash(lines: list[str]) -> None:
    speakers = accept_speakers(scan_speakers(lines, block_starts_only=False))
    for record in iter_generic_log(lines, speakers):
        assert isinstance(record, Message | SceneBreak | ParseIssue)
    for record in iter_st_text(lines, speakers):
        assert isinstance(record, Message | ParseIssue)


@given(st.lists(st.binary(max_size=60), max_size=20))
def test_text_parsers_accept_random_bytes(lines: list[bytes]) -> None:
    list(iter_generic_log(lines, {"A"}))
    list(iter_st_text(lines, {"A"}))


def test_json_message_shapes() -> None:
    data = [
        {"role": "system", "content": "You are a narrator."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": [{"type": "text", "text": "Hi"}, {"type": "image_url", "image_url": {}}]},
        {"speaker": "Bob", "text": "yo"},
        {"name": "Aqua", "mes": "st-shaped", "is_user": False},
        "not an object",
    ]
    records = list(iter_json_messages(io.BytesIO(json.dumps(data).encode()), user_name="Me", character_name="Aqua"))
    msgs = [r for r in records if isinstance(r, Message)]
    assert [(m.kind, m.name, m.text) for m in msgs] == [
        (Kind.SYSTEM, "", "You are a narrator."),
        (Kind.USER, "Me", "Hello"),
        (Kind.CHARACTER, "Aqua", "Hi"),
        (Kind.CHARACTER, "Bob", "yo"),
        (Kind.CHARACTER, "Aqua", "st-shaped"),
    ]
    assert [r.line for r in records if isinstance(r, ParseIssue)] == [6]


def test_json_wrapper_object_and_header() -> None:
    doc = {"messages": [{"user_name": "You", "character_name": "Aqua"}, {"role": "user", "content": "x"}]}
    records = list(iter_json_messages([json.dumps(doc)]))
    assert isinstance(records[0], ChatHeader) and isinstance(records[1], Message)


def test_json_array_streams_across_chunk_boundaries() -> None:
    items = [{"name": f"n{i}", "text": "é" * i} for i in range(50)] + [12345678901234567890]
    raw = json.dumps(items, ensure_ascii=False).encode("utf-8")
    chunks = [raw[i : i + 7] for i in range(0, len(raw), 7)]  # splits multi-byte characters too
    values = [v for _, v in iter_json_array(chunks)]
    assert values == items


@given(st.binary(max_size=300))
def test_json_array_random_bytes_never_crash(data: bytes) -> None:
    for item in iter_json_messages(io.BytesIO(data)):
        assert isinstance(item, Message | ParseIssue | ChatHeader)


@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["name", "speaker", "role", "text", "mes", "content", "is_user"]),
            st.none() | st.text(max_size=10) | st.integers() | st.lists(st.text(max_size=5), max_size=3),
            max_size=4,
        ),
        max_size=10,
    )
)
def test_json_array_random_objects_never_crash(objs: list[dict]) -> None:
    for item in iter_json_messages([json.dumps(objs)]):
        assert isinstance(item, Message | ParseIssue | ChatHeader)


def test_a_log_whose_first_line_is_timestamped_is_not_taken_for_json(tmp_path: Path) -> None:
    from comfyvn_roleplay.importer import detect_format

    log = tmp_path / "log.txt"
    log.write_text("[21:04] Kai: hello\n[21:05] Ren: hi\n")
    assert detect_format(log) == "text"
    log.write_text('  [\n {"name": "Kai", "text": "hello"}]')
    assert detect_format(log) == "json"
