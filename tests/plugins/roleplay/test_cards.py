"""Character cards V1/V2/V3 from PNG (written here with Pillow), JSON and CHARX; lorebooks."""

from __future__ import annotations

import base64
import io
import json
import zipfile
import zlib

import pytest
from comfyvn.cli import exit_code
from comfyvn.errors import ComfyVNError
from comfyvn_roleplay.cards import NoCharacterData, embed_card_png, parse_mes_example, png_text_chunks, read_card
from comfyvn_roleplay.lorebook import lorebook_to_dict, parse_lorebook, read_lorebook
from comfyvn_server.errors import http_status
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin
from rp_fixtures import EXAMPLES

V1 = {
    "name": "Aqua",
    "description": "A goddess.",
    "personality": "vain",
    "scenario": "Axel",
    "first_mes": "Hi {{user}}",
    "mes_example": "<START>\n{{user}}: hi\n{{char}}: *pouts* hello",
    "creatorcomment": "c",
    "talkativeness": "0.5",
    "create_date": "2023-5-1 @10h 00m 00s 000ms",
    "tags": ["a"],
    "fav": False,
}
BOOK = {
    "name": "Aqua lore",
    "entries": [
        {
            "keys": ["Axel"],
            "content": "A town.\r\nWith lines.",
            "enabled": True,
            "insertion_order": 5,
            "id": 3,
            "comment": "town",
        }
    ],
}
V2 = {
    "spec": "chara_card_v2",
    "spec_version": "2.0",
    **{k: V1[k] for k in ("name", "description", "first_mes")},
    "data": {
        **{k: V1[k] for k in ("name", "description", "personality", "scenario", "first_mes", "mes_example")},
        "creator_notes": "n",
        "system_prompt": "",
        "post_history_instructions": "",
        "alternate_greetings": ["Alt {{char}}"],
        "character_book": BOOK,
        "tags": ["t"],
        "creator": "me",
        "character_version": "2",
        "extensions": {"world": "Axel", "talkativeness": "0.7", "x_custom": {"k": 1}},
    },
}
V3 = {
    "spec": "chara_card_v3",
    "spec_version": "3.0",
    "data": {
        **V2["data"],
        "nickname": "Aq",
        "group_only_greetings": ["group hi"],
        "creation_date": 1700000000,
        "assets": [
            {"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"},
            {
                "type": "emotion",
                "uri": "data:image/png;base64," + base64.b64encode(b"PNGDATA").decode(),
                "name": "joy",
                "ext": "png",
            },
            {"type": "emotion", "uri": "https://example.invalid/sad.png", "name": "sadness", "ext": "png"},
        ],
    },
}


def _png(**chunks: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def _b64(obj: object) -> str:
    return base64.b64encode(json.dumps(obj).encode("utf-8")).decode("ascii")


@pytest.mark.parametrize(
    ("card", "key", "spec"),
    [(V1, "chara", "chara_card_v1"), (V2, "chara", "chara_card_v2"), (V3, "ccv3", "chara_card_v3")],
)
def test_png_card_round_trip(card: dict, key: str, spec: str) -> None:
    data = embed_card_png(None, **{key: card})
    read = read_card(data, filename="Aqua.png")
    assert read.raw == card and read.spec == spec and read.name == "Aqua"
    assert read.source == f"png:{key}" and read.filename == "Aqua.png"


def test_ccv3_wins_and_keyword_case_insensitive() -> None:
    data = _png(Chara=_b64(V2), CCV3=_b64(V3))
    assert read_card(data).spec == "chara_card_v3"


def test_fields_normalised() -> None:
    v1 = read_card(json.dumps(V1).encode())
    assert v1.talkativeness == 0.5 and v1.creator_notes == "c" and v1.first_mes == "Hi {{user}}"
    v2 = read_card(_png(chara=_b64(V2)))
    assert v2.alternate_greetings == ("Alt {{char}}",) and v2.extensions["x_custom"] == {"k": 1}
    assert v2.talkativeness == 0.7
    assert v2.character_book is not None and v2.character_book.entries[0].content == "A town.\nWith lines."
    v3 = read_card(_png(ccv3=_b64(V3)))
    assert v3.nickname == "Aq" and v3.group_only_greetings == ("group hi",)
    joy, sad = [a for a in v3.assets if a.type == "emotion"]
    assert joy.data == b"PNGDATA" and sad.data is None  # remote URIs are never fetched


def test_newer_v3_version_and_pygmalion_accepted() -> None:
    assert read_card(json.dumps({**V3, "spec_version": "3.7"}).encode()).spec_version == "3.7"
    pyg = read_card(json.dumps({"char_name": "Py", "char_persona": "p", "char_greeting": "g"}).encode())
    assert (pyg.name, pyg.description, pyg.first_mes, pyg.spec) == ("Py", "p", "g", "pygmalion")


def test_ztxt_and_itxt_chunks_read() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("chara", _b64(V2), zip=True)  # Pillow writes iTXt compressed
    out = io.BytesIO()
    Image.new("RGB", (2, 2)).save(out, "PNG", pnginfo=info)
    assert read_card(out.getvalue()).name == "Aqua"
    assert "chara" in png_text_chunks(out.getvalue())


def test_charx_zip() -> None:
    card = {
        **V3,
        "data": {
            **V3["data"],
            "assets": [
                {"type": "emotion", "uri": "embeded://assets/emotion/images/joy.png", "name": "joy", "ext": "png"}
            ],
        },
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("card.json", json.dumps(card))
        zf.writestr("assets/emotion/images/joy.png", b"JOY")
    read = read_card(buf.getvalue(), filename="aqua.charx")
    assert read.source == "charx" and read.assets[0].data == b"JOY"


def test_png_without_card_is_422_no_character_data() -> None:
    with pytest.raises(NoCharacterData) as err:
        read_card(_png(Software="paint"))
    assert (
        http_status(err.value) == 422
        and exit_code(err.value) == 2
        and "has no character card data (no chara/ccv3 chunk)" in err.value.message
    )
    with pytest.raises(ComfyVNError):
        read_card(b"PK\x03\x04 broken zip")
    with pytest.raises(NoCharacterData):
        read_card(json.dumps({"unrelated": 1}).encode())


def test_truncated_png_still_yields_text_before_the_cut() -> None:
    data = _png(chara=_b64(V1))
    idx = data.index(b"tEXt")
    crc_end = idx + 4 + len(b"chara\0" + _b64(V1).encode()) + 4
    assert read_card(data[:crc_end] + b"\x00\x00\x00\xffIDAT").name == "Aqua"


@given(st.binary(max_size=400))
def test_random_bytes_never_crash_card_reader(data: bytes) -> None:
    for blob in (data, b"\x89PNG\r\n\x1a\n" + data):
        try:
            read_card(blob)
        except ComfyVNError:
            pass


@given(st.binary(max_size=200))
def test_random_chunk_payloads_never_crash(payload: bytes) -> None:
    import struct

    chunk = (
        struct.pack(">I", len(payload) + 6) + b"tEXt" + b"chara\0" + payload + struct.pack(">I", zlib.crc32(payload))
    )
    try:
        read_card(b"\x89PNG\r\n\x1a\n" + chunk)
    except ComfyVNError:
        pass


def test_mes_example_blocks() -> None:
    blocks = parse_mes_example(
        V1["mes_example"] + "\n<START>\n<USER>: a\n<BOT>: b\nmore", char_name="Aqua", user_name="You"
    )
    assert blocks == [
        [
            {"role": "user", "speaker": "You", "text": "hi"},
            {"role": "char", "speaker": "Aqua", "text": "*pouts* hello"},
        ],
        [{"role": "user", "speaker": "You", "text": "a"}, {"role": "char", "speaker": "Aqua", "text": "b\nmore"}],
    ]


WORLD = {
    "entries": {
        "7": {
            "uid": 7,
            "key": ["Axel", "/ax(e|l)/i"],
            "keysecondary": ["town"],
            "comment": "c",
            "content": "x",
            "constant": False,
            "selective": True,
            "selectiveLogic": 3,
            "order": 50,
            "position": 4,
            "disable": True,
            "probability": 80,
            "depth": 2,
            "extraKey": 1,
        }
    },
    "originalData": {"entries": []},
}


def test_lorebook_shapes() -> None:
    wi = read_lorebook(json.dumps(WORLD).encode(), name="w")
    (e,) = wi.entries
    assert (e.uid, e.keys, e.secondary_keys, e.enabled, e.selective_logic, e.position) == (
        "7",
        ("Axel", "/ax(e|l)/i"),
        ("town",),
        False,
        3,
        4,
    )
    assert e.extensions["extraKey"] == 1 and wi.extensions["originalData"] == {"entries": []}
    v3 = parse_lorebook({"spec": "lorebook_v3", "data": BOOK})
    assert v3.source_format == "lorebook_v3" and v3.entries[0].keys == ("Axel",) and v3.entries[0].order == 5
    out = lorebook_to_dict(wi)
    assert out["entries"][0]["position"] == "at_depth" and out["entries"][0]["selective_logic"] == "and_all"
    lenient = parse_lorebook({"entries": [{"keys": "a, b", "content": 3}]})
    assert lenient.entries[0].keys == ("a", "b") and lenient.entries[0].content == "3"
    with pytest.raises(ComfyVNError):
        parse_lorebook({"nope": 1})


def test_example_png_card_matches_example_json() -> None:
    png = read_card((EXAMPLES / "Mira Vale.png").read_bytes())
    js = read_card((EXAMPLES / "Mira Vale.json").read_bytes())
    assert png.raw == js.raw and png.name == "Mira Vale"
