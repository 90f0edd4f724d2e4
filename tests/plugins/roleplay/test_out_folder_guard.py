"""A re-import into an ``--out`` folder never silently deletes the user's edits: the folder is replaced only
when it holds the same import, unchanged since (the report records the files it wrote), or with --force."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from comfyvn.cli import make_cli
from comfyvn.errors import Conflict
from comfyvn_roleplay.convert import ImportOptions
from comfyvn_roleplay.jobs import check_import_params
from comfyvn_roleplay.service import run_import
from rp_fixtures import EXAMPLES

CHAT = EXAMPLES / "Mira Vale - 2024-09-28@14h05m07s.jsonl"


def _cli(kernel: Any, *args: str) -> Any:
    return CliRunner().invoke(make_cli(kernel), ["import", *args, "--no-progress"])


def _st(kernel: Any, chat: Path, out: Path, *extra: str) -> Any:
    return _cli(kernel, "sillytavern", str(chat), "--no-job", "--out", str(out), *extra)


@pytest.fixture
def other_chat(tmp_path: Path) -> Path:
    path = tmp_path / "other.txt"
    path.write_text("Alice: hi\nBob: yo\nAlice: bye\n", encoding="utf-8")
    return path


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_edited_scene_and_an_added_asset_are_not_replaced_by_another_import(
    kernel: Any, tmp_path: Path, other_chat: Path
) -> None:
    out = tmp_path / "sm2"
    assert _st(kernel, CHAT, out).exit_code == 0
    scene = out / "scenes" / "scene_0001.json"
    edited = json.loads(scene.read_text(encoding="utf-8"))
    edited["nodes"][0]["text"] = "My own better line."
    scene.write_text(json.dumps(edited), encoding="utf-8")
    (out / "assets" / "backgrounds").mkdir(parents=True, exist_ok=True)
    (out / "assets" / "backgrounds" / "my_bg.png").write_bytes(b"\x89PNG my picture")
    before = _tree(out)

    result = _cli(kernel, "text", str(other_chat), "--out", str(out))
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert "scenes/scene_0001.json" in lines[0] and "assets/backgrounds/my_bg.png" in lines[0]
    assert "--force" in lines[0]
    assert _tree(out) == before
    # Re-importing the same chat would lose the edits just the same: refused too.
    same = _st(kernel, CHAT, out)
    assert same.exit_code == 2 and "--force" in same.output
    assert _tree(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind

    forced = _cli(kernel, "text", str(other_chat), "--out", str(out), "--force")
    assert forced.exit_code == 0, forced.output
    assert not (out / "assets" / "backgrounds" / "my_bg.png").exists()
    assert json.loads((out / "roleplay_import.json").read_text(encoding="utf-8"))["raw"]["filename"] == "other.txt"


def test_an_unchanged_folder_of_another_import_is_refused_without_force(
    kernel: Any, tmp_path: Path, other_chat: Path
) -> None:
    out = tmp_path / "p"
    assert _st(kernel, CHAT, out).exit_code == 0
    before = _tree(out)
    result = _cli(kernel, "text", str(other_chat), "--out", str(out))
    assert result.exit_code == 2 and "another import" in result.output, result.output
    assert _tree(out) == before
    card = CliRunner().invoke(make_cli(kernel), ["import", "card", str(EXAMPLES / "Mira Vale.png"), "--out", str(out)])
    assert card.exit_code == 2 and "another import" in card.output
    assert _tree(out) == before


def test_the_same_unchanged_import_is_replaced_and_says_so(kernel: Any, tmp_path: Path) -> None:
    out = tmp_path / "p"
    first = _st(kernel, CHAT, out)
    assert first.exit_code == 0 and "replaced" not in first.output
    again = _st(kernel, CHAT, out)
    assert again.exit_code == 0, again.output
    assert f"replaced the earlier import of this chat in {out}" in again.output
    as_json = json.loads(_st(kernel, CHAT, out, "--json").stdout)
    assert as_json["project"]["replaced"] is True
    # A deleted file is no edit to lose: the folder is still the same import.
    (out / "scenes" / "scene_0002.json").unlink()
    assert _st(kernel, CHAT, out).exit_code == 0
    assert (out / "scenes" / "scene_0002.json").is_file()


def test_the_report_records_every_file_the_import_wrote(kernel: Any, tmp_path: Path) -> None:
    out = tmp_path / "p"
    assert _st(kernel, CHAT, out, "--card", str(EXAMPLES / "Mira Vale.png")).exit_code == 0
    files = json.loads((out / "roleplay_import.json").read_text(encoding="utf-8"))["files"]
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {"roleplay_import.json"}
    assert set(files) == written and "project.json" in files
    assert all(entry["size"] == (out / name).stat().st_size for name, entry in files.items())


def test_a_same_size_edit_is_seen(kernel: Any, tmp_path: Path) -> None:
    out = tmp_path / "p"
    assert _st(kernel, CHAT, out).exit_code == 0
    project = out / "project.json"
    data = project.read_bytes()
    project.write_bytes(data.replace(b"Mira", b"Mina", 1))  # same size, other content
    result = _st(kernel, CHAT, out)
    assert result.exit_code == 2 and "project.json" in result.output


def test_a_folder_from_before_the_file_record_is_refused_without_force(kernel: Any, tmp_path: Path) -> None:
    out = tmp_path / "p"
    assert _st(kernel, CHAT, out).exit_code == 0
    report = out / "roleplay_import.json"
    body = json.loads(report.read_text(encoding="utf-8"))
    del body["files"]
    report.write_text(json.dumps(body), encoding="utf-8")
    assert _st(kernel, CHAT, out).exit_code == 2
    assert _st(kernel, CHAT, out, "--force").exit_code == 0


def test_the_service_raises_a_conflict_and_the_job_params_carry_force(
    kernel: Any, tmp_path: Path, other_chat: Path
) -> None:
    out = tmp_path / "p"
    run_import(kernel, CHAT.read_bytes(), CHAT.name, ImportOptions(), out_dir=out)
    with pytest.raises(Conflict) as caught:
        run_import(kernel, other_chat.read_bytes(), other_chat.name, ImportOptions(), out_dir=out)
    assert caught.value.code == "out_other_import" and caught.value.field == "out"
    done = run_import(kernel, other_chat.read_bytes(), other_chat.name, ImportOptions(), out_dir=out, force=True)
    assert done.replaced and done.project_dir == out.absolute()
    assert check_import_params({"chat": str(CHAT), "out": str(out), "force": True})["force"] is True
    assert check_import_params({"chat": str(CHAT)})["force"] is False
