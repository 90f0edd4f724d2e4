"""End to end: roleplay imports become Ren'Py games that the real engine lints clean (issue 6 → issue 5)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import comfyvn_renpy.plugin
import comfyvn_roleplay.plugin
import comfyvn_scenario.plugin
import pytest
from click.testing import CliRunner
from comfyvn import Kernel
from comfyvn.cli import make_cli
from comfyvn_renpy import find_engine
from hypothesis import given, settings
from hypothesis import strategies as st

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "sillytavern"
CHAT = EXAMPLES / "Mira Vale - 2024-09-28@14h05m07s.jsonl"


@pytest.fixture(scope="module", autouse=True)
def real_engine() -> None:
    assert find_engine() is not None, "Ren'Py is not installed: `apt-get install -y renpy` (the noxfile does it)"


def run(kernel: Kernel, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(make_cli(kernel), [*args, "--json"])
    assert result.exit_code == 0, result.output
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def export_and_lint(kernel: Kernel, project: Path, game: Path, *extra: str) -> dict[str, Any]:
    result = run(kernel, "export", "renpy", str(project), "--out", str(game), "--check", *extra)
    check = result["check"]
    assert check["configured"] is True
    assert check["ok"] is True, json.dumps(check["builds"], indent=2)
    assert all(build["problems"] == [] for build in check["builds"].values()), check["builds"]
    return result


@pytest.fixture
def kernel(make_kernel: Callable[..., Kernel]) -> Kernel:
    return make_kernel(comfyvn_scenario.plugin, comfyvn_roleplay.plugin, comfyvn_renpy.plugin)


def test_the_example_chat_with_card_world_and_sprites_plays_in_renpy(kernel: Kernel, tmp_path: Path) -> None:
    project = tmp_path / "mira"
    imported = run(
        kernel,
        "import",
        "sillytavern",
        str(CHAT),
        "--card",
        str(EXAMPLES / "Mira Vale.png"),
        "--world",
        str(EXAMPLES / "Saltmere.json"),
        "--sprites",
        str(EXAMPLES / "sprites"),
        "--swipes-as-choices",
        "--out",
        str(project),
    )
    assert imported["stats"]["messages"] >= 10
    result = export_and_lint(kernel, project, tmp_path / "game")
    scripts = "\n".join(p.read_text() for p in (tmp_path / "game" / "game").rglob("*.rpy"))
    assert "Mira Vale" in scripts and "menu" in scripts  # the card's character and the swipe choice point
    assert result["missing_assets"] is not None


def test_a_plain_text_log_plays_in_renpy(kernel: Kernel, tmp_path: Path) -> None:
    log = tmp_path / "session.txt"
    log.write_text(
        '[21:04] Kai: "Quotes", back\\slashes, [brackets] and {braces} at 100%!\n'
        "continued on a second line\n---\nNarrator: The rain stops.\nRen - fine. 🌧️\n",
        encoding="utf-8",
    )
    run(kernel, "import", "text", str(log), "--out", str(tmp_path / "project"))
    export_and_lint(kernel, tmp_path / "project", tmp_path / "game")


speakers = st.sampled_from(["Aqua", "You", "Mira Vale", "if", "3rd-Person", "Ünïcode"])
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=60)


@settings(max_examples=3, deadline=None)
@given(messages=st.lists(st.tuples(speakers, texts), min_size=1, max_size=12))
def test_generated_sillytavern_chats_play_in_renpy(
    tmp_path_factory: pytest.TempPathFactory, make_kernel: Callable[..., Kernel], messages: list[tuple[str, str]]
) -> None:
    folder = tmp_path_factory.mktemp("chat")
    lines = [json.dumps({"user_name": "You", "character_name": "Aqua", "create_date": 1674559896839})]
    lines += [
        json.dumps(
            {"name": name, "is_user": name == "You", "is_system": False, "send_date": 1674559896839 + i, "mes": text}
        )
        for i, (name, text) in enumerate(messages)
    ]
    (folder / "chat.jsonl").write_text("\n".join(lines), encoding="utf-8")
    kernel = make_kernel(comfyvn_scenario.plugin, comfyvn_roleplay.plugin, comfyvn_renpy.plugin)
    imported = CliRunner().invoke(
        make_cli(kernel),
        ["import", "sillytavern", str(folder / "chat.jsonl"), "--out", str(folder / "project"), "--json"],
    )
    if imported.exit_code != 0:  # a chat with nothing importable is refused with one clear line
        assert imported.exit_code == 2 and imported.output.startswith("error: "), imported.output
        return
    export_and_lint(kernel, folder / "project", folder / "game")


def _card_png() -> bytes:
    from io import BytesIO

    from comfyvn_roleplay.cards import embed_card_png
    from PIL import Image

    out = BytesIO()
    Image.new("RGB", (64, 96), (120, 60, 160)).save(out, format="PNG")
    card = {
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "data": {
            "name": "Aqua",
            "description": "{{char}} is a goddess.\n[traits= vain]",
            "scenario": "{{user}} meets <BOT> after an untimely death.",
            "first_mes": '*She yawns.* "Welcome, {{user}}. You *were* expected."',
            "alternate_greetings": ['"Oh. Another one." *She sighs.* <b>Fine.</b> (OOC: be nice)'],
            "extensions": {},
        },
    }
    return embed_card_png(out.getvalue(), chara=card)


def _lines_of(game: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in (game / "game").rglob("*.rpy"))


def test_a_card_only_project_plays_in_renpy(kernel: Kernel, tmp_path: Path) -> None:
    (tmp_path / "Aqua.png").write_bytes(_card_png())
    run(kernel, "import", "card", str(tmp_path / "Aqua.png"), "--user", "Kazuma", "--out", str(tmp_path / "project"))
    export_and_lint(kernel, tmp_path / "project", tmp_path / "game")
    script = _lines_of(tmp_path / "game")
    assert "How does it begin?" in script and "Kazuma" in script
    assert "{{" not in script and "OOC" not in script and "be nice" not in script


def test_a_tavernai_legacy_chat_plays_in_renpy(kernel: Kernel, tmp_path: Path) -> None:
    chat = [
        "Aqua: *She smiles.* Hello, {{user}}! <div>Welcome</div>\n",
        'You: "Just like you *were* going to do to me?" ((lol))\n',
        "Of course not.\n",
    ]
    (tmp_path / "1674559896839.json").write_text(json.dumps(chat), encoding="utf-8")
    imported = run(kernel, "import", "sillytavern", str(tmp_path / "1674559896839.json"), "--out", str(tmp_path / "p"))
    assert imported["source_format"] == "tavernai_json"
    export_and_lint(kernel, tmp_path / "p", tmp_path / "game")
    assert "lol" not in _lines_of(tmp_path / "game") and "<div>" not in _lines_of(tmp_path / "game")


def test_an_agnaistic_chat_plays_in_renpy(kernel: Kernel, tmp_path: Path) -> None:
    export = {
        "name": "Exported",
        "greeting": "Hi",
        "scenario": "",
        "sampleChat": "",
        "messages": [
            {"characterId": "imported", "name": "Aqua", "msg": "*waves* Hi!", "createdAt": "2024-05-01T10:00:00Z"},
            {"userId": "u1", "handle": "Kazuma", "msg": "> quoted\n\n**Hey.**", "createdAt": "2024-05-01T10:01:00Z"},
            {"userId": "u1", "handle": "Kazuma", "msg": "brb", "ooc": True, "createdAt": "2024-05-01T10:02:00Z"},
        ],
    }
    (tmp_path / "chat-1a2b.json").write_text(json.dumps(export, indent=2), encoding="utf-8")
    imported = run(kernel, "import", "text", str(tmp_path / "chat-1a2b.json"), "--out", str(tmp_path / "p"))
    assert imported["source_format"] == "agnai_json"
    export_and_lint(kernel, tmp_path / "p", tmp_path / "game")
