"""Uploads that are not chats are refused; TavernAI legacy and Agnaistic chats; lorebook names."""

from __future__ import annotations

import json
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from comfyvn.cli import make_cli
from comfyvn.errors import Unprocessable
from comfyvn_roleplay.cards import embed_card_png
from comfyvn_roleplay.convert import ImportOptions
from comfyvn_roleplay.formats import sniff_binary
from comfyvn_roleplay.importer import detect_format, import_chat, store_raw
from comfyvn_scenario import ProjectStore, validate_project_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from rp_fixtures import EXAMPLES

CARD = {"name": "Aqua", "first_mes": "Hi {{user}}!", "description": "A goddess."}


def png(card: dict[str, Any] | None = None) -> bytes:
    if card is not None:
        return embed_card_png(None, chara=card)
    out = BytesIO()
    Image.new("RGB", (4, 4), (200, 10, 10)).save(out, format="PNG")
    return out.getvalue()


def zip_bytes() -> bytes:
    out = BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("card.json", json.dumps(CARD))
    return out.getvalue()


def jpeg() -> bytes:
    out = BytesIO()
    Image.new("RGB", (4, 4)).save(out, format="JPEG")
    return out.getvalue()


NOT_CHATS = {
    "card.png": (png(CARD), "PNG character card — pass it with --card"),
    "picture.png": (png(), "PNG image"),
    "photo.jpg": (jpeg(), "JPEG image"),
    "card.charx": (zip_bytes(), "zip archive"),
    "noise.bin": (bytes(range(256)) * 8, "binary data"),
    "utf16.txt": ("Kai: hello\nRen: hi there\n".encode("utf-16-le"), "UTF-16 text without a byte-order mark"),
    "utf16bom.txt": ("Kai: hello\n".encode("utf-16"), "UTF-16 text"),
}


@pytest.mark.parametrize("name", sorted(NOT_CHATS))
def test_cli_refuses_non_text_chats_and_writes_no_project(kernel: Any, tmp_path: Path, name: str) -> None:
    data, what = NOT_CHATS[name]
    (tmp_path / name).write_bytes(data)
    out = tmp_path / "project"
    for command in ("sillytavern", "text"):
        result = CliRunner().invoke(make_cli(kernel), ["import", command, str(tmp_path / name), "--out", str(out)])
        assert result.exit_code == 2, result.output
        assert f"{name} is not a chat: this is" in result.output and what in result.output
        assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".comfyvn")]
    # The upload itself is kept (uploads are stored before they are parsed).
    raw = kernel.paths.plugin_dir("roleplay") / "raw"
    assert any(p.read_bytes() == data for p in raw.iterdir() if not p.name.endswith(".meta.json"))


def test_http_refuses_a_png_card_as_chat_with_422(kernel: Any, http_for: Any) -> None:
    client = http_for(kernel)
    response = client.post("/api/roleplay/import", files={"file": ("card.png", png(CARD), "image/png")})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "not_a_chat" and error["field"] == "chat" and "--card" in error["message"]
    # No project in the store (where HTTP imports go), and nothing left staged.
    assert ProjectStore.for_kernel(kernel).list_projects() == []
    staging = kernel.paths.plugin_dir("roleplay") / "staging"
    assert not staging.exists() or not list(staging.iterdir())
    assert not (kernel.paths.data / "projects").exists() or not list((kernel.paths.data / "projects").iterdir())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_property_any_bytes_import_or_are_refused_cleanly(tmp_path_factory: Any, data: bytes) -> None:
    tmp = tmp_path_factory.mktemp("bytes")
    raw = store_raw(tmp / "raw", data, "upload.bin")
    out = tmp / "project"
    try:
        import_chat(raw, out, options=ImportOptions())
    except Unprocessable as exc:
        if exc.code == "not_a_chat":
            assert not out.exists()  # refused before anything was written
        return
    assert validate_project_dir(out)[1].valid


def test_sniff_accepts_text_with_a_few_odd_bytes() -> None:
    assert sniff_binary("Kai: café ☕\n".encode()) is None
    assert sniff_binary(b"Kai: caf\xe9 latin-1 is mostly ascii and still text\n" * 10) is None


TAVERN = [
    "Aqua: *She smiles.* Welcome, {{user}}!\n",
    "You: Hello. (OOC: brb)\n",
    "Nice to meet you.\n",  # TavernAI saved model replies without the name
    "You: Bye\n",
]


@pytest.mark.parametrize("wrap", [None, "messages", "chat"])
def test_tavernai_legacy_chat(tmp_path: Path, wrap: str | None) -> None:
    body = TAVERN if wrap is None else {wrap: TAVERN}
    raw = store_raw(tmp_path / "raw", json.dumps(body).encode(), "1674559896839.json")
    assert detect_format(raw.path) == "tavernai_json"
    result = import_chat(raw, tmp_path / "p", options=ImportOptions())
    project, report = validate_project_dir(tmp_path / "p")
    assert report.valid
    nodes = [n for s in project.scenes.values() for n in s["nodes"]]
    assert [(n["type"], n.get("speaker"), n["text"]) for n in nodes] == [
        ("narration", None, "She smiles."),
        ("dialogue", "aqua", "Welcome, You!"),
        ("dialogue", "you", "Hello."),
        ("dialogue", "aqua", "Nice to meet you."),
        ("dialogue", "you", "Bye"),
    ]
    assert result.source_format == "tavernai_json"
    assert result.to_dict()["source_format_label"].startswith("TavernAI legacy chat")


AGNAI = {
    "name": "Exported",
    "greeting": "Hello!",
    "sampleChat": "",
    "scenario": "A quiet shrine.",
    "treeLeafId": "x",
    "messages": [
        {
            "_id": "1",
            "createdAt": "2024-05-01T10:00:00.000Z",
            "characterId": "imported",
            "name": "Aqua",
            "msg": "Hello!",
        },
        {"_id": "2", "createdAt": "2024-05-01T10:01:00.000Z", "userId": "u-1", "handle": "Kazuma", "msg": "Hi."},
        {
            "_id": "3",
            "createdAt": "2024-05-01T10:02:00.000Z",
            "userId": "u-1",
            "handle": "Kazuma",
            "msg": "afk",
            "ooc": True,
        },
        {
            "_id": "4",
            "createdAt": "2024-05-01T10:03:00.000Z",
            "characterId": "c-2",
            "name": "Darkness",
            "msg": "*bows*",
        },
    ],
}


def test_agnaistic_chat_export(kernel: Any, tmp_path: Path) -> None:
    (tmp_path / "chat-ab12.json").write_text(json.dumps(AGNAI, indent=2))
    out = tmp_path / "p"
    result = CliRunner().invoke(
        make_cli(kernel), ["import", "text", str(tmp_path / "chat-ab12.json"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "read as Agnaistic chat export" in result.output
    project, report = validate_project_dir(out)
    assert report.valid
    nodes = [n for s in project.scenes.values() for n in s["nodes"]]
    assert [(n["type"], n.get("speaker"), n["text"]) for n in nodes] == [
        ("dialogue", "aqua", "Hello!"),
        ("dialogue", "kazuma", "Hi."),
        ("narration", None, "bows"),
    ]
    meta = project.meta["metadata"]["roleplay"]
    assert meta["source_format"] == "agnai_json" and [o["text"] for o in meta["ooc"]] == ["afk"]
    assert meta["chat_metadata"]["agnai"]["scenario"] == "A quiet shrine."
    assert {"aqua", "kazuma", "darkness"} <= set(project.characters)


def test_world_lorebooks_keep_their_names_and_are_stored_once(kernel: Any, tmp_path: Path) -> None:
    book = {"entries": {"0": {"uid": 0, "key": ["Axel"], "content": "{{char}} lives in Axel with {{user}}."}}}
    (tmp_path / "Axel Town.json").write_text(json.dumps(book))
    card = {
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "data": {**CARD, "character_book": {"name": "Axel Town", "entries": [{"keys": ["Axel"], "content": "x"}]}},
    }
    (tmp_path / "aqua.png").write_bytes(embed_card_png(None, chara=card))
    chat = EXAMPLES / "Mira Vale - 2024-09-28@14h05m07s.jsonl"
    out = tmp_path / "p"
    args = ["import", "sillytavern", str(chat), "--card", str(tmp_path / "aqua.png")]
    args += ["--world", str(tmp_path / "Axel Town.json"), "--out", str(out), "--json"]
    result = CliRunner().invoke(make_cli(kernel), args)
    assert result.exit_code == 0, result.output
    project, _ = validate_project_dir(out)
    world = project.meta["metadata"]["roleplay"]["world"]
    assert [w["name"] for w in world] == ["Axel Town"]  # named after the file; the card's copy not repeated
    # Macros expanded with the chat's own names (its character, its persona).
    assert world[0]["entries"][0]["content"] == "Mira Vale lives in Axel with Jonah."
    assert any("given twice" in w for w in json.loads(result.stdout)["warnings"] if isinstance(w, str))
    assert project.characters["aqua"]["portrait"] == "assets/characters/aqua/portrait.png"
    assert (out / "assets/characters/aqua/portrait.png").read_bytes().startswith(b"\x89PNG")
