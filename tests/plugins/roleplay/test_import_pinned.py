"""A small chat imported end to end, its scene files pinned byte for byte.

The chat holds what the importer's shortcuts must not get wrong: actions around speech, quotes
(straight and curly) that keep an asterisk from opening an action, bold left to markdown-it, swipes
shown as a choice, an OOC aside, macros, a hidden message, a third speaker, a narrator, a scene-break
rule and a time gap. Every expected value below was worked out by hand from the rules in
docs/roleplay.md and convert.py (not copied from a run); the comments say why each one is what it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from comfyvn_roleplay.convert import ImportOptions
from comfyvn_roleplay.importer import RawUpload, import_chat

HEADER = {
    "user_name": "Jonah",
    "character_name": "Mira",
    "create_date": "2024-09-28@14h05m07s",
    "chat_metadata": {"custom_background": 'url("backgrounds/Harbour.jpg")'},
}
GREETING = '*waves from the pier* Evening, {{user}}!\n\n"You made it," she says. *She grins.*'
MESSAGES: list[dict[str, Any]] = [
    # line 2, message 0: two swipes, so a choice menu; {{user}} becomes Jonah.
    {
        "name": "Mira",
        "is_user": False,
        "send_date": "2024-09-28@14h05m07s",
        "mes": GREETING,
        "swipes": [GREETING, "Oh. It's you."],
        "swipe_id": 0,
    },
    # line 3, message 1: the ((OOC)) aside is cut out and kept in the node data.
    {
        "name": "Jonah",
        "is_user": True,
        "send_date": "2024-09-28@14h06m00s",
        "mes": "((OOC: brb)) *sits on a crate* Any news about the lighthouse?",
    },
    # line 4, message 2: a third speaker; speech, an action, then quoted speech.
    {
        "name": "Kai",
        "is_user": False,
        "send_date": "2024-09-28@14h07m00s",
        "mes": 'Kai leans in. *whispers* "The light\'s been out for a week."',
    },
    # line 5, message 3: is_system on a real speaker means hidden from the prompt: kept, marked.
    {
        "name": "Mira",
        "is_user": False,
        "is_system": True,
        "send_date": "2024-09-28@14h08m00s",
        "mes": "*She looks away.* Not tonight.",
    },
    # line 6, message 4: a rule alone is a scene break (no node).
    {"name": "Mira", "is_user": False, "send_date": "2024-09-28@14h09m00s", "mes": "---"},
    # line 7, message 5: "Narrator" tells the story: narration only; bold goes through markdown-it.
    {
        "name": "Narrator",
        "is_user": False,
        "send_date": "2024-09-28@21h00m00s",
        "mes": "Rain hammers the roof. **Hours** pass.",
    },
    # line 8, message 6: nearly seven hours after the last dated message placed (14:08): a time gap.
    {"name": "Mira", "is_user": False, "send_date": "2024-09-28@21h01m00s", "mes": "“Still here?” *She yawns.*"},
]

TITLE = "Mira — 2024-09-28 14:05"  # the header's character and create_date
BACKGROUND = "backgrounds/Harbour.jpg"  # custom_background, for every scene (no message changes it)


def _to(target: str) -> list[dict[str, str]]:
    return [{"target": target}]


# Scene 1: the greeting menu (n0001), swipe 0's three nodes (n0002-n0004), swipe 1 (n0005), then
# Jonah (n0006-n0007), Kai (n0008-n0010) and the hidden message (n0011-n0012).
SCENE_1: dict[str, Any] = {
    "id": "scene_0001",
    "title": f"{TITLE} — 1",
    "start": "n0001",
    "nodes": [
        {
            "id": "n0001",
            "type": "choice",
            # The caption the player reads over the swipes: the chat opens with them.
            "text": "How does the story begin?",
            "data": {"line": 2, "message": 0, "swipes": True},
            "choices": [
                {
                    "id": "swipe0",
                    "target": "n0002",
                    # The swipe's node texts joined with spaces, cut at 60 characters.
                    "label": 'waves from the pier Evening, Jonah! "You made it," she says.…',
                    "metadata": {"swipe_id": 0, "selected": True},
                },
                {
                    "id": "swipe1",
                    "target": "n0005",
                    "label": "Oh. It's you.",
                    "metadata": {"swipe_id": 1, "selected": False},
                },
            ],
        },
        # The first pair of asterisks opens the paragraph: an action.
        {
            "id": "n0002",
            "type": "narration",
            "text": "waves from the pier",
            "data": {"line": 2, "message": 0},
            "choices": _to("n0003"),
        },
        # The speech of both paragraphs joins (medium detail does not split paragraphs); the quote
        # closes before "*She grins.*", so that pair is an action again.
        {
            "id": "n0003",
            "type": "dialogue",
            "speaker": "mira",
            "text": 'Evening, Jonah!\n\n"You made it," she says.',
            "data": {"line": 2, "message": 0},
            "choices": _to("n0004"),
        },
        {
            "id": "n0004",
            "type": "narration",
            "text": "She grins.",
            "data": {"line": 2, "message": 0},
            "choices": _to("n0006"),
        },
        # Both swipes lead on to the next message.
        {
            "id": "n0005",
            "type": "dialogue",
            "speaker": "mira",
            "text": "Oh. It's you.",
            "data": {"line": 2, "message": 0},
            "choices": _to("n0006"),
        },
        {
            "id": "n0006",
            "type": "narration",
            "text": "sits on a crate",
            "data": {"line": 3, "message": 1, "ooc": ["OOC: brb"]},
            "choices": _to("n0007"),
        },
        {
            "id": "n0007",
            "type": "dialogue",
            "speaker": "jonah",
            "text": "Any news about the lighthouse?",
            "data": {"line": 3, "message": 1, "ooc": ["OOC: brb"]},
            "choices": _to("n0008"),
        },
        {
            "id": "n0008",
            "type": "dialogue",
            "speaker": "kai",
            "text": "Kai leans in.",
            "data": {"line": 4, "message": 2},
            "choices": _to("n0009"),
        },
        {
            "id": "n0009",
            "type": "narration",
            "text": "whispers",
            "data": {"line": 4, "message": 2},
            "choices": _to("n0010"),
        },
        {
            "id": "n0010",
            "type": "dialogue",
            "speaker": "kai",
            "text": '"The light\'s been out for a week."',
            "data": {"line": 4, "message": 2},
            "choices": _to("n0011"),
        },
        {
            "id": "n0011",
            "type": "narration",
            "text": "She looks away.",
            "data": {"line": 5, "message": 3, "hidden": True},
            "choices": _to("n0012"),
        },
        # The next message starts scene 2: the link names that scene.
        {
            "id": "n0012",
            "type": "dialogue",
            "speaker": "mira",
            "text": "Not tonight.",
            "data": {"line": 5, "message": 3, "hidden": True},
            "choices": _to("scene_0002:n0001"),
        },
    ],
    "metadata": {"roleplay": {"reason": "start", "first_line": 2, "last_line": 5}},
    "background": BACKGROUND,
}
SCENE_2: dict[str, Any] = {
    "id": "scene_0002",
    "title": f"{TITLE} — 2",
    "start": "n0001",
    "nodes": [
        {
            "id": "n0001",
            "type": "narration",
            "text": "Rain hammers the roof. **Hours** pass.",
            "data": {"line": 7, "message": 5},
            "choices": _to("scene_0003:n0001"),
        }
    ],
    "metadata": {"roleplay": {"reason": "break", "first_line": 7, "last_line": 7}},
    "background": BACKGROUND,
}
SCENE_3: dict[str, Any] = {
    "id": "scene_0003",
    "title": f"{TITLE} — 3",
    "start": "n0001",
    "nodes": [
        # Curly quotes close before the asterisk: an action follows the speech.
        {
            "id": "n0001",
            "type": "dialogue",
            "speaker": "mira",
            "text": "“Still here?”",
            "data": {"line": 8, "message": 6},
            "choices": _to("n0002"),
        },
        {"id": "n0002", "type": "narration", "text": "She yawns.", "data": {"line": 8, "message": 6}, "end": True},
    ],
    "metadata": {"roleplay": {"reason": "time_gap", "first_line": 8, "last_line": 8}},
    "background": BACKGROUND,
}


def test_a_varied_chat_imports_to_the_pinned_scene_files(tmp_path: Path) -> None:
    chat = tmp_path / "chat.jsonl"
    chat.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [HEADER, *MESSAGES]), encoding="utf-8")
    raw = RawUpload(path=chat, sha256="ab" * 32, size=chat.stat().st_size, filename="chat.jsonl")
    result = import_chat(raw, tmp_path / "project", options=ImportOptions(swipes_as_choices=True))

    scenes = tmp_path / "project" / "scenes"
    assert sorted(p.name for p in scenes.iterdir()) == ["scene_0001.json", "scene_0002.json", "scene_0003.json"]
    for scene in (SCENE_1, SCENE_2, SCENE_3):
        # The exact bytes: 2-space indent, UTF-8 kept, keys in the order written above.
        expected = json.dumps(scene, indent=2, ensure_ascii=False) + "\n"
        assert (scenes / f"{scene['id']}.json").read_text(encoding="utf-8") == expected, scene["id"]

    assert result.stats == {
        "messages": 7,  # the rule counts as a message, though it makes no node
        "nodes": 15,
        "scenes": 3,
        "hidden": 1,
        "hidden_dropped": 0,
        "system": 0,
        "empty": 0,
        "ooc_dropped": 1,
        "ooc_messages": 0,
        "swipe_choices": 1,
        "narrator_messages": 1,
        "issues": 0,
    }
    project = json.loads((tmp_path / "project" / "project.json").read_text(encoding="utf-8"))
    assert project["title"] == TITLE and project["start"] == "scene_0001"
    assert {cid: c["name"] for cid, c in project["characters"].items()} == {
        "jonah": "Jonah",
        "mira": "Mira",
        "kai": "Kai",
    }
    roleplay = project["metadata"]["roleplay"]
    assert roleplay["ooc"] == [{"line": 3, "message": 1, "speaker": "Jonah", "text": "OOC: brb"}]
    assert [p["role"] for p in roleplay["participants"]] == ["user", "character", "character", "narrator"]
