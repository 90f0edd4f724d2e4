"""Conversion to scenario projects: every import validates; segmentation, options, cast, sprites."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from comfyvn.errors import ComfyVNError
from comfyvn_roleplay.cards import read_card
from comfyvn_roleplay.convert import ImportOptions, choice_label
from comfyvn_roleplay.importer import import_chat, store_raw
from comfyvn_roleplay.lorebook import read_lorebook
from comfyvn_roleplay.markup import plain_text
from comfyvn_scenario import validate_project_dir
from comfyvn_server.errors import http_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rp_fixtures import EXAMPLES, HEADERS, jsonl

EXAMPLE_CHAT = EXAMPLES / "Mira Vale - 2024-09-28@14h05m07s.jsonl"


def run(tmp_path: Path, text: str | bytes, name: str = "chat.jsonl", **kw):
    data = text.encode("utf-8") if isinstance(text, str) else text
    raw = store_raw(tmp_path / "raw", data, name)
    options = kw.pop("options", ImportOptions())
    out = tmp_path / "project"
    result = import_chat(raw, out, options=options, **kw)
    project, report = validate_project_dir(out)
    assert report.valid, report.to_wire()
    return result, project


def nodes(project) -> list[dict]:
    return [n for s in project.scenes.values() for n in s["nodes"]]


def test_example_imports_valid_with_everything(tmp_path: Path) -> None:
    card = read_card((EXAMPLES / "Mira Vale.png").read_bytes(), filename="Mira Vale.png")
    world = read_lorebook((EXAMPLES / "Saltmere.json").read_bytes(), name="Saltmere")
    result, project = run(
        tmp_path,
        EXAMPLE_CHAT.read_bytes(),
        EXAMPLE_CHAT.name,
        cards=[card],
        world=world,
        sprites_dir=EXAMPLES / "sprites",
        options=ImportOptions(swipes_as_choices=True),
    )
    assert project.meta["title"] == "Mira Vale — 2024-09-28 14:05"
    assert set(project.characters) == {"jonah", "mira_vale"}
    mira = project.characters["mira_vale"]
    assert set(mira["sprites"]) == {"neutral", "joy", "surprise", "fear"} and mira["default_expression"] == "neutral"
    assert all((result.project_dir / p).is_file() for p in mira["sprites"].values())
    assert mira["metadata"]["card"]["example_dialogue"][0][0]["speaker"] == "Jonah"
    meta = project.meta["metadata"]["roleplay"]
    assert [w["name"] for w in meta["world"]] == ["Saltmere", "Mira's notes"]
    assert meta["chat_metadata"]["integrity"] == "3f1c9a2e-5b7d-4c1e-9a0b-2d6f8e4c7b11"
    first = project.scenes["scene_0001"]
    assert first["background"] == "backgrounds/Harbour at dusk (rain).jpg"
    assert first["nodes"][0]["type"] == "choice" and len(first["nodes"][0]["choices"]) == 2  # greeting swipes
    texts = [n.get("text", "") for n in nodes(project)]
    assert "You picked a fine night to visit Saltmere, Jonah." in texts  # {{user}} resolved
    assert not any("OOC" in t for t in texts)  # dropped by default, kept in data
    assert any(n.get("data", {}).get("ooc") for n in nodes(project))
    hidden = [n for n in nodes(project) if n.get("data", {}).get("hidden")]
    assert hidden and all(n["data"]["line"] == 6 for n in hidden)
    assert any(n["type"] == "narration" and n["text"].startswith("Behind them") for n in nodes(project))
    exprs = {c["expression"] for n in nodes(project) for c in n.get("characters", [])}
    assert {"surprise", "joy"} <= exprs  # "gasps" and "smiles" name emotions
    assert [s["metadata"]["roleplay"]["reason"] for s in project.scenes.values()] == ["start", "time_gap"]
    assert result.raw.path.read_bytes() == EXAMPLE_CHAT.read_bytes()  # raw kept byte for byte


def test_project_plays_to_the_end(tmp_path: Path) -> None:
    from comfyvn_scenario import compile_scenario, step

    _, project = run(tmp_path, EXAMPLE_CHAT.read_bytes(), options=ImportOptions(swipes_as_choices=True))
    scenario = compile_scenario(project)
    result = step(scenario, None, seed=1)
    for _ in range(500):
        if result.state.finished:
            break
        result = step(scenario, result.state, seed=1)
    assert result.state.finished


def test_options_change_output(tmp_path: Path) -> None:
    text = jsonl(
        [
            HEADERS["2023_epoch"],
            {"name": "Aqua", "mes": '*smiles* Hi {{user}}! ((brb))\n\n"Second paragraph."', "is_user": False},
            {"name": "You", "is_user": True, "is_system": True, "mes": "hidden"},
        ]
    )
    _, low = run(tmp_path / "a", text, options=ImportOptions(detail_level="low", ooc="keep", hidden="drop"))
    assert [n["text"] for n in nodes(low)] == ['*smiles* Hi You! ((brb))\n\n"Second paragraph."']
    _, high = run(tmp_path / "b", text, options=ImportOptions(detail_level="high"))
    assert [(n["type"], n["text"]) for n in nodes(high)] == [
        ("narration", "smiles"),
        ("dialogue", "Hi You!"),
        ("dialogue", "Second paragraph."),
        ("dialogue", "hidden"),
    ]


def test_segmentation_breaks_gaps_backgrounds_and_max_length(tmp_path: Path) -> None:
    msgs = [{"name": "A", "mes": f"m{i}", "send_date": f"2024-1-1@0{i}h00m00s"} for i in range(4)]
    msgs.insert(2, {"name": "A", "mes": "---"})
    msgs.append(
        {
            "name": "A",
            "mes": "beach",
            "send_date": "2024-1-1@03h00m01s",
            "extra": {"background": "backgrounds/beach.png"},
        }
    )
    msgs += [{"name": "A", "mes": f"t{i}"} for i in range(5)]
    _, project = run(tmp_path, jsonl(msgs), options=ImportOptions(time_gap_hours=1.5, max_scene_nodes=3))
    reasons = [s["metadata"]["roleplay"]["reason"] for s in project.scenes.values()]
    assert reasons[:3] == ["start", "break", "time_gap"] and "background" in reasons and "max_length" in reasons
    assert all(len(s["nodes"]) <= 3 for s in project.scenes.values())
    bg = next(s for s in project.scenes.values() if s["metadata"]["roleplay"]["reason"] == "background")
    assert bg["background"] == "backgrounds/beach.png"


def test_group_chat_cards_matched_by_avatar_then_name(tmp_path: Path) -> None:
    cards = [
        read_card(json.dumps({"name": "Seraphina", "description": "s"}).encode(), filename="Seraphina.png"),
        read_card(json.dumps({"name": "Kael", "description": "k"}).encode(), filename="kael_v2.png"),
    ]
    text = jsonl(
        [
            {"name": "SillyTavern System", "is_system": True, "mes": "group", "extra": {"type": "group"}},
            {"name": "Sera", "mes": "hi", "original_avatar": "Seraphina.png"},
            {"name": "Kael", "mes": "yo", "original_avatar": "unknown.png"},
            {"name": "You", "is_user": True, "mes": "hey"},
        ]
    )
    result, project = run(tmp_path, text, cards=cards)
    assert [n.get("speaker") for n in nodes(project)] == ["seraphina", "kael", "you"]
    assert result.stats["system"] == 1


def test_bad_lines_listed_and_strict_fails(tmp_path: Path) -> None:
    text = jsonl([{"name": "A", "mes": "ok"}]) + "\n{oops\n" + jsonl([{"name": "A", "mes": "ok2"}])
    result, _ = run(tmp_path / "a", text)
    assert [(i["line"], i["severity"]) for i in result.to_dict()["skipped"]] == [(2, "skipped")]
    with pytest.raises(ComfyVNError) as err:
        run(tmp_path / "b", text, options=ImportOptions(strict=True))
    assert "line 2" in err.value.message
    with pytest.raises(ComfyVNError) as empty:
        run(tmp_path / "c", "{oops")
    assert empty.value.code == "empty_chat"


def test_text_and_json_formats_import(tmp_path: Path) -> None:
    _, log = run(tmp_path / "a", "Alice: hi\nBob: yo\n---\nAlice: bye\nBob: ok", "log.txt")
    assert len(log.scenes) == 2
    _, arr = run(
        tmp_path / "b", json.dumps([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]), "m.json"
    )
    assert [n["speaker"] for n in nodes(arr)] == ["user", "assistant"]
    _, txt = run(tmp_path / "c", "Aqua: one\n\nYou: two\n\nAqua: three\n\nYou: four", "chat.txt", hint="sillytavern")
    assert [n["text"] for n in nodes(txt)] == ["one", "two", "three", "four"]


names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=10).filter(
    lambda s: s.strip() == s and s != "SillyTavern System" and s.lower() not in ("narrator", "system")
)
texts = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=40).filter(
    lambda s: (
        s.strip() == s
        # Markdown, OOC, macro and tag syntax is converted (test_markup.py); here the text is literal.
        and not any(c in s for c in "*_~`\\#>+-=<&([{|")
        and "ooc" not in s.lower()
    )
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], max_examples=25)
@given(st.lists(st.tuples(names, texts, st.booleans()), min_size=1, max_size=30))
def test_generated_chat_imports_with_same_speakers_texts_order(tmp_path_factory, turns) -> None:
    tmp = tmp_path_factory.mktemp("gen")
    text = jsonl([HEADERS["newer_unused"]] + [{"name": n, "is_user": u, "mes": t} for n, t, u in turns])
    _, project = run(tmp, text, options=ImportOptions(detail_level="low", user_name="Player"))
    got = [(project.characters[n["speaker"]]["name"], plain_text(n["text"])) for n in nodes(project)]
    assert [t for _, t in got] == [t for _, t, _ in turns]
    for (name, _), (orig, _, _user) in zip(got, turns, strict=True):
        assert name == orig


scene_text = st.text(max_size=30)


@given(st.lists(st.tuples(scene_text, scene_text), min_size=1, max_size=8))
def test_scene_bytes_identical_to_scenario_dump_json(pairs: list[tuple[str, str]]) -> None:
    from comfyvn_roleplay.importer import scene_bytes
    from comfyvn_scenario.project import dump_json

    scene = {
        "id": "s",
        "start": "n1",
        "nodes": [
            {"id": f"n{i}", "text": a, "data": {"k": b, "n": i, "f": 0.1 * i, "e": []}}
            for i, (a, b) in enumerate(pairs)
        ],
        "metadata": {},
    }
    assert scene_bytes(scene) == dump_json(scene).encode("utf-8", "replace")


json_lines = st.lists(
    st.dictionaries(
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
            ]
        ),
        st.none()
        | st.booleans()
        | st.integers()
        | st.text(max_size=15)
        | st.lists(st.text(max_size=8), max_size=3)
        | st.dictionaries(
            st.sampled_from(["type", "background", "display_text", "image", "narrator_name"]),
            st.text(max_size=10),
            max_size=3,
        ),
        max_size=7,
    ),
    max_size=12,
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], max_examples=30)
@given(json_lines, st.booleans())
def test_random_chats_import_valid_or_fail_cleanly(tmp_path_factory, lines: list[dict], choices: bool) -> None:
    tmp = tmp_path_factory.mktemp("fuzz")
    text = "\n".join(json.dumps(line) for line in lines) + '\n{"name": "A", "mes": "lone \\ud800 surrogate"}'
    try:
        run(tmp, text, options=ImportOptions(swipes_as_choices=choices, detail_level="high"))
    except ComfyVNError as exc:
        assert http_status(exc) in (400, 422)


def test_swipe_choices_keep_the_image_on_the_menu(tmp_path: Path) -> None:
    # Regression: an image on a message shown as swipe choices crashed the import (IndexError).
    text = jsonl(
        [
            HEADERS["2023_epoch"],
            {"name": "Aqua", "mes": "One.", "swipes": ["One.", "Two."], "swipe_id": 0, "extra": {"image": "p.png"}},
        ]
    )
    _, project = run(tmp_path, text, options=ImportOptions(swipes_as_choices=True))
    menu, first, second = nodes(project)
    assert menu["type"] == "choice" and menu["data"] == {"line": 2, "message": 0, "swipes": True, "image": "p.png"}
    assert [first["text"], second["text"]] == ["One.", "Two."]
    assert "image" not in first["data"] and "image" not in second["data"]


def test_swipe_menus_carry_a_caption_for_the_player(tmp_path: Path) -> None:
    # Without one the player met two bare choices over an empty screen (Ren'Py shows the caption in the
    # text box while the menu is up).
    text = jsonl(
        [
            HEADERS["2023_epoch"],
            {"name": "Aqua", "mes": "Hi.", "swipes": ["Hi.", "Hello."], "swipe_id": 0},
            {"name": "You", "is_user": True, "mes": "Where to?"},
            {"name": "Aqua", "mes": "North.", "swipes": ["North.", "South."], "swipe_id": 1},
        ]
    )
    _, project = run(tmp_path, text, options=ImportOptions(swipes_as_choices=True))
    menus = [n for n in nodes(project) if n["type"] == "choice"]
    assert [m["text"] for m in menus] == ["How does the story begin?", "What happens next?"]
    assert [c["label"] for c in menus[1]["choices"]] == ["South.", "North."]  # the kept swipe first


# -- swipe labels --------------------------------------------------------------------------------------


def test_a_long_swipe_label_is_cut_at_a_word_boundary() -> None:
    text = "Mira pulls on an oilskin coat and tells Jonah about the night the harbour light failed"
    label = choice_label(text)
    # A user saw "…in an oilskin c…": the label ends on a whole word now.
    assert label == "Mira pulls on an oilskin coat and tells Jonah about the…"
    assert choice_label("short and sweet") == "short and sweet"
    assert choice_label("x" * 80) == "x" * 60 + "…"  # one long word: cut inside it
    assert choice_label("Wait, " + "y" * 70) == "Wait, " + "y" * 54 + "…"  # no stub "Wait…"


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=200))
def test_a_swipe_label_is_a_prefix_of_the_text_and_never_longer_than_61(text: str) -> None:
    label = choice_label(text)
    assert len(label) <= 61
    if len(text) <= 60:
        assert label == text
    else:
        assert label.endswith("…") and text.startswith(label[:-1])
