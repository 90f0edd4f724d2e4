"""The chat's background (``chat_metadata.custom_background``): copied with ``--backgrounds DIR``, never
from outside DIR, and otherwise named in a warning saying where the file goes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from comfyvn.cli import make_cli
from comfyvn.errors import ComfyVNError
from comfyvn.paths import safe_join
from comfyvn_roleplay.jobs import check_import_params
from rp_fixtures import EXAMPLES, jsonl

CHAT = EXAMPLES / "Mira Vale - 2024-09-28@14h05m07s.jsonl"
BG = "Harbour at dusk (rain).jpg"  # what the example chat's custom_background names


def _import(kernel: Any, chat: Path, out: Path, *extra: str) -> Any:
    args = ["import", "sillytavern", str(chat), "--no-job", "--no-progress", "--out", str(out), *extra]
    return CliRunner().invoke(make_cli(kernel), args)


def _backgrounds(out: Path) -> set[str]:
    return {
        scene["background"]
        for path in (out / "scenes").glob("*.json")
        if (scene := json.loads(path.read_text(encoding="utf-8"))).get("background")
    }


def test_without_the_file_the_import_warns_naming_it_and_where_it_goes(kernel: Any, tmp_path: Path) -> None:
    out = tmp_path / "p"
    result = _import(kernel, CHAT, out)
    assert result.exit_code == 0, result.output
    assert _backgrounds(out) == {f"backgrounds/{BG}"}
    warning = next(line for line in result.output.splitlines() if BG in line)
    assert warning.startswith("warning:") and "project's backgrounds/ folder" in warning and "--backgrounds" in warning
    body = json.loads(_import(kernel, CHAT, tmp_path / "q", "--json").stdout)
    assert any(isinstance(w, str) and BG in w for w in body["warnings"])


def test_backgrounds_dir_copies_the_referenced_background(kernel: Any, tmp_path: Path) -> None:
    folder = tmp_path / "st-backgrounds"
    folder.mkdir()
    (folder / BG).write_bytes(b"\xff\xd8\xff harbour picture")
    (folder / "unrelated.jpg").write_bytes(b"\xff\xd8\xff other")
    out = tmp_path / "p"
    result = _import(kernel, CHAT, out, "--backgrounds", str(folder))
    assert result.exit_code == 0, result.output
    assert BG not in result.output  # no warning: it is there
    (ref,) = _backgrounds(out)
    assert safe_join(out, ref).read_bytes() == b"\xff\xd8\xff harbour picture"
    assert not (out / "backgrounds" / "unrelated.jpg").exists()


def test_a_backgrounds_dir_without_the_file_names_the_folder(kernel: Any, tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    result = _import(kernel, CHAT, tmp_path / "p", "--backgrounds", str(folder))
    assert result.exit_code == 0, result.output
    assert f"is not in {folder}" in result.output and "backgrounds/ folder" in result.output
    assert not (tmp_path / "p" / "backgrounds").exists()


@pytest.mark.parametrize("kind", ["dotdot", "symlink"])
def test_nothing_outside_the_backgrounds_dir_is_copied(kernel: Any, tmp_path: Path, kind: str) -> None:
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"not yours")
    folder = tmp_path / "bgs"
    folder.mkdir()
    if kind == "dotdot":
        background = 'url("backgrounds/../secret.jpg")'
    else:
        (folder / "link.jpg").symlink_to(secret)
        background = 'url("backgrounds/link.jpg")'
    header = {"user_name": "You", "character_name": "Aqua", "chat_metadata": {"custom_background": background}}
    chat = tmp_path / "chat.jsonl"
    chat.write_text(jsonl([header, {"name": "Aqua", "is_user": False, "mes": "Hello."}]), encoding="utf-8")
    out = tmp_path / "p"
    result = _import(kernel, chat, out, "--backgrounds", str(folder))
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "plain colour" in result.output
    copied = [p for p in out.rglob("*") if p.is_file() and p.read_bytes() == b"not yours"]
    assert copied == []


def test_the_job_params_take_an_absolute_backgrounds_folder(tmp_path: Path) -> None:
    params = check_import_params({"chat": str(CHAT), "backgrounds": str(tmp_path)})
    assert params["backgrounds"] == str(tmp_path)
    with pytest.raises(ComfyVNError) as caught:
        check_import_params({"chat": str(CHAT), "backgrounds": "relative/bgs"})
    assert caught.value.field == "backgrounds"
