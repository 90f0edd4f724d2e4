"""Error and summary lines name the file and say what is wrong with it, in singular when there is one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner
from comfyvn.cli import make_cli
from comfyvn_roleplay.cards import embed_card_png
from comfyvn_server import create_app
from rp_fixtures import EXAMPLES
from starlette.testclient import TestClient

CHAT = EXAMPLES / "Mira Vale - 2024-09-28@14h05m07s.jsonl"


def _cli(kernel: Any, *args: str) -> Any:
    return CliRunner().invoke(make_cli(kernel), ["import", *args])


def _one_error_line(result: Any) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    return str(lines[0])


def test_a_png_without_card_data_is_named(kernel: Any, tmp_path: Path) -> None:
    png = tmp_path / "user-default.png"
    png.write_bytes(embed_card_png(None))
    line = _one_error_line(_cli(kernel, "card", str(png), "--out", str(tmp_path / "p")))
    assert "user-default.png has no character card data (no chara/ccv3 chunk)" in line
    line = _one_error_line(_cli(kernel, "sillytavern", str(CHAT), "--no-job", "--card", str(png), "--no-progress"))
    assert "user-default.png has no character card data" in line


def test_a_png_given_as_the_lorebook_is_called_an_image(kernel: Any, tmp_path: Path) -> None:
    png = tmp_path / "some.png"
    png.write_bytes(embed_card_png(None))
    for args in (
        ["sillytavern", str(CHAT), "--no-job", "--no-progress", "--world", str(png)],
        ["card", str(EXAMPLES / "Mira Vale.png"), "--world", str(png)],
    ):
        line = _one_error_line(_cli(kernel, *args, "--out", str(tmp_path / "p")))
        assert "some.png is a PNG image, not a lorebook JSON" in line and "utf-8" not in line
    bad = tmp_path / "broken.json"
    bad.write_text('{"entries": ', encoding="utf-8")
    line = _one_error_line(_cli(kernel, "card", str(EXAMPLES / "Mira Vale.png"), "--world", str(bad)))
    assert "lorebook broken.json is not valid JSON" in line
    reply = TestClient(create_app(kernel)).post(
        "/api/roleplay/import",
        files={"file": ("chat.jsonl", CHAT.read_bytes()), "world": ("pic.png", png.read_bytes())},
    )
    assert reply.status_code == 422 and "pic.png is a PNG image" in reply.json()["error"]["message"]


def test_a_chat_whose_only_message_line_is_cut_says_which_line_was_skipped(kernel: Any, tmp_path: Path) -> None:
    header, first, *_ = CHAT.read_text(encoding="utf-8").splitlines()
    chat = tmp_path / "cut.jsonl"
    chat.write_text(header + "\n" + first[: len(first) // 2], encoding="utf-8")
    line = _one_error_line(_cli(kernel, "sillytavern", str(chat), "--no-job", "--no-progress"))
    assert "no messages found: nothing to import (skipped 1 invalid line — line 2: not valid JSON" in line


def test_counts_of_one_are_singular(kernel: Any, tmp_path: Path) -> None:
    log = tmp_path / "one.txt"
    log.write_text("Alice: hi\n", encoding="utf-8")
    result = _cli(kernel, "text", str(log), "--out", str(tmp_path / "p"), "--no-progress")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("imported 1 message into 1 scene (1 node) -> ")
    two = tmp_path / "two.txt"
    two.write_text("Alice: hi\nBob: yo\n", encoding="utf-8")
    result = _cli(kernel, "text", str(two), "--out", str(tmp_path / "q"), "--no-progress")
    assert result.output.startswith("imported 2 messages into 1 scene (2 nodes) -> ")
