"""`comfyvn import card` and POST /api/roleplay/import/card: a playable opening from a card alone."""

from __future__ import annotations

import base64
import json
from io import BytesIO
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from comfyvn.cli import make_cli
from comfyvn_roleplay.card_project import MENU_PROMPT, readable_description
from comfyvn_roleplay.cards import embed_card_png
from comfyvn_scenario import compile_scenario, step, validate_project_dir
from PIL import Image

CARD = {
    "spec": "chara_card_v2",
    "spec_version": "2.0",
    "data": {
        "name": "Aqua",
        "description": "{{char}} is a goddess.\n[Aqua's traits= vain, loud]\n<START>\n{{user}}: hi\n{{char}}: hi",
        "scenario": "{{user}} has just died and meets <BOT>.",
        "first_mes": '*She yawns.* "Welcome, {{user}}. You *are* dead."',
        "alternate_greetings": ['"Oh. Another one." *She sighs.* "Hello, <USER>."', "  "],
        "character_book": {"name": "Axel", "entries": [{"keys": ["Axel"], "content": "{{user}}'s town."}]},
        "extensions": {},
    },
}


def portrait_png() -> bytes:
    out = BytesIO()
    Image.new("RGB", (40, 60), (30, 90, 200)).save(out, format="PNG")
    return out.getvalue()


def sprite_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "sprites"
    folder.mkdir()
    for label in ("neutral", "joy"):
        Image.new("RGBA", (8, 16), (255, 0, 0, 255)).save(folder / f"{label}.png")
    return folder


def scene_texts(project: Any, scene_id: str) -> list[tuple[str, str | None, str]]:
    return [(n["type"], n.get("speaker"), n.get("text", "")) for n in project.scenes[scene_id]["nodes"]]


def test_cli_card_makes_a_playable_opening_with_a_choice_of_greetings(kernel: Any, tmp_path: Path) -> None:
    (tmp_path / "Aqua.png").write_bytes(embed_card_png(portrait_png(), chara=CARD))
    out = tmp_path / "aqua"
    args = ["import", "card", str(tmp_path / "Aqua.png"), "--sprites", str(sprite_dir(tmp_path))]
    result = CliRunner().invoke(make_cli(kernel), [*args, "--user", "Kazuma", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["source_format"] == "card" and report["stats"]["openings"] == 2
    project, validation = validate_project_dir(out)
    assert validation.valid, validation.to_wire()
    assert project.meta["start"] == "opening"
    opening = project.scenes["opening"]["nodes"]
    assert [(n["type"], n.get("text")) for n in opening] == [
        ("narration", "Kazuma has just died and meets Aqua."),
        ("narration", "Aqua is a goddess."),  # the model-facing list and examples left out
        ("choice", MENU_PROMPT),
    ]
    menu = opening[-1]
    assert [c["target"] for c in menu["choices"]] == ["greeting_1:n0001", "greeting_2:n0001"]
    assert menu["choices"][0]["label"] == 'She yawns. "Welcome, Kazuma. You are dead."'  # plain text, no markers
    assert scene_texts(project, "greeting_1") == [
        ("narration", None, "She yawns."),
        ("dialogue", "aqua", '"Welcome, Kazuma. You *are* dead."'),
    ]
    assert scene_texts(project, "greeting_2") == [
        ("dialogue", "aqua", '"Oh. Another one."'),
        ("narration", None, "She sighs."),
        ("dialogue", "aqua", '"Hello, Kazuma."'),
    ]
    aqua = project.characters["aqua"]
    assert aqua["portrait"] == "assets/characters/aqua/portrait.png" and set(aqua["sprites"]) == {"neutral", "joy"}
    with Image.open(out / aqua["portrait"]) as img:
        assert img.size == (40, 60)
    assert [w["entries"][0]["content"] for w in project.meta["metadata"]["roleplay"]["world"]] == ["Kazuma's town."]
    assert any("<START>" in w for w in report["warnings"] if isinstance(w, str))
    # Either opening plays to an end.
    scenario = compile_scenario(project)
    for pick in ("greeting0", "greeting1"):
        played = step(scenario, None, seed=1)
        for _ in range(20):
            if played.finished:
                break
            choice = pick if any(c.raw.get("id") == pick for c in played.choices) else None
            played = step(scenario, played.state, choice_id=choice)
        assert played.finished


def test_card_with_one_greeting_is_one_linear_scene_and_default_user_is_you(kernel: Any, tmp_path: Path) -> None:
    card = {"name": "Mira", "first_mes": "Evening, {{user}}.", "description": ""}
    (tmp_path / "mira.json").write_text(json.dumps(card))
    out = tmp_path / "mira"
    result = CliRunner().invoke(make_cli(kernel), ["import", "card", str(tmp_path / "mira.json"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "read as character card" in result.output
    project, validation = validate_project_dir(out)
    assert validation.valid
    assert list(project.scenes) == ["opening"]
    assert scene_texts(project, "opening") == [("dialogue", "mira", "Evening, You.")]
    assert project.scenes["opening"]["nodes"][-1]["end"] is True


def test_card_with_nothing_to_tell_is_refused(kernel: Any, tmp_path: Path) -> None:
    (tmp_path / "empty.json").write_text(json.dumps({"name": "Nobody", "first_mes": "", "description": "[a=b]"}))
    out = tmp_path / "out"
    result = CliRunner().invoke(make_cli(kernel), ["import", "card", str(tmp_path / "empty.json"), "--out", str(out)])
    assert result.exit_code == 2 and "no greeting, scenario or description" in result.output
    assert not out.exists()


def test_http_card_import_multipart_and_json(kernel: Any, http_for: Any) -> None:
    client = http_for(kernel)
    png = embed_card_png(portrait_png(), chara=CARD)
    response = client.post(
        "/api/roleplay/import/card",
        files=[("card", ("Aqua.png", png, "image/png")), ("sprite", ("joy.png", portrait_png(), "image/png"))],
        data={"user_name": "Kazuma"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source_format"] == "card" and [s["id"] for s in body["scenes"]][:1] == ["opening"]
    preview = client.get(f"/api/roleplay/preview/{body['scenes'][1]['scene_uid']}").json()["scene"]
    assert preview["nodes"][1]["text"] == '"Welcome, Kazuma. You *are* dead."'
    encoded = {"data_base64": base64.b64encode(png).decode(), "filename": "Aqua.png"}
    assert client.post("/api/roleplay/import/card", json={"card": encoded}).status_code == 200
    refused = client.post("/api/roleplay/import/card", json={"card": {"name": "X", "first_mes": ""}})
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "card"
    bad = client.post("/api/roleplay/import/card", json={"card": "nope"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "card"


def test_readable_description_leaves_out_model_facing_parts() -> None:
    text, notes = readable_description('Intro line.\n[character("A")\n{\nMind(kind)\n}]\nMore.\n<START>\nX: y')
    assert text == "Intro line.\n\nMore." and len(notes) == 2
