"""Issue 11 #4 (nothing deleted or written outside --out) and #15 (--check / --invoke-sdk fail loudly; the
engine runs with a throwaway HOME, so no ``~/.renpy`` is left behind)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from comfyvn import Kernel
from comfyvn.cli import make_cli
from comfyvn.errors import ComfyVNError
from comfyvn_renpy import ExportRequest, run_export
from comfyvn_renpy.engine import Engine, find_engine


def _export(kernel: Kernel, project: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(make_cli(kernel), ["export", "renpy", str(project), *args])
    return result.exit_code, result.output


def _tampered_manifest(out: Path, victims: list[str]) -> None:
    manifest = json.loads((out / "export_manifest.json").read_text(encoding="utf-8"))
    for victim in victims:
        manifest["files"][victim] = "0" * 64
    (out / "export_manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_a_tampered_manifest_never_deletes_outside_out(
    renpy_kernel: Callable[..., Kernel], demo_project: Path, tmp_path: Path
) -> None:
    kernel, out = renpy_kernel(), tmp_path / "out"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me", encoding="utf-8")
    run_export(kernel, ExportRequest(project=demo_project, out=out))
    # An absolute path, a climb out, and a path through a symlink that leads out.
    (out / "escape").symlink_to(tmp_path)
    _tampered_manifest(out, [str(victim), "../victim.txt", "escape/victim.txt"])
    preview = run_export(kernel, ExportRequest(project=demo_project, out=out, dry_run=True))
    assert preview["preview"]["removed"] == []
    code, output = _export(kernel, demo_project, "--out", str(out))
    assert code == 0, output
    assert victim.read_text(encoding="utf-8") == "keep me"


def test_a_game_symlink_leading_out_is_refused(
    renpy_kernel: Callable[..., Kernel], demo_project: Path, tmp_path: Path
) -> None:
    kernel, out, elsewhere = renpy_kernel(), tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "game").symlink_to(elsewhere)
    with pytest.raises(ComfyVNError) as info:
        run_export(kernel, ExportRequest(project=demo_project, out=out))
    assert info.value.field == "out" and str(tmp_path) not in info.value.message
    assert list(elsewhere.iterdir()) == []
    code, output = _export(kernel, demo_project, "--out", str(out))
    lines = output.strip().splitlines()
    assert code == 2 and lines[-1].startswith("error: refusing to write game/") and "Traceback" not in output
    assert list(elsewhere.iterdir()) == []
    # The dry run does not read through it either.
    with pytest.raises(ComfyVNError):
        run_export(kernel, ExportRequest(project=demo_project, out=out, dry_run=True))


def test_check_without_an_engine_fails_loudly(
    renpy_kernel: Callable[..., Kernel], demo_project: Path, tmp_path: Path
) -> None:
    code, output = _export(
        renpy_kernel(), demo_project, "--out", str(tmp_path / "o"), "--check", "--renpy", str(tmp_path / "none")
    )
    assert code == 1, output
    assert output.strip().splitlines()[-1].startswith("error: no Ren'Py engine found")


def _fake_sdk(folder: Path, script: str) -> Path:
    (folder / "launcher").mkdir(parents=True)
    (folder / "renpy.sh").write_text("#!/bin/sh\n" + script)
    (folder / "renpy.sh").chmod(0o755)
    return folder


def test_invoke_sdk_fails_loudly_when_distribute_fails(
    renpy_kernel: Callable[..., Kernel], demo_project: Path, tmp_path: Path
) -> None:
    sdk = _fake_sdk(tmp_path / "sdk", "echo 'building failed' >&2\nexit 3\n")
    code, output = _export(
        renpy_kernel(), demo_project, "--out", str(tmp_path / "o"), "--invoke-sdk", "--renpy-sdk", str(sdk)
    )
    assert code == 1, output
    assert output.strip().splitlines()[-1].startswith("error: the Ren'Py SDK's distribute step failed (exit 3)")
    missing = _export(
        renpy_kernel(), demo_project, "--out", str(tmp_path / "p"), "--invoke-sdk", "--renpy-sdk", str(tmp_path / "x")
    )
    assert missing[0] == 1 and "no Ren'Py SDK found" in missing[1]


def test_engine_runs_with_a_throwaway_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    sdk = _fake_sdk(tmp_path / "sdk", 'mkdir -p "$HOME/.renpy/x" && echo "home=$HOME"\n')
    engine = find_engine(sdk)
    assert engine is not None
    run = engine.run(["lint"], timeout=30)
    assert run.returncode == 0 and "home=" in run.stdout
    used = Path(run.stdout.split("home=")[1].strip())
    assert used != home and not used.exists()  # a fresh folder per run, removed afterwards
    assert list(home.iterdir()) == []


def test_real_engine_leaves_no_renpy_folder_in_home(
    engine: Engine,
    renpy_kernel: Callable[..., Kernel],
    demo_project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    out = tmp_path / "out"
    run_export(renpy_kernel(), ExportRequest(project=demo_project, out=out))
    assert engine.lint(out).ok
    assert not (home / ".renpy").exists() and list(home.iterdir()) == []
    assert os.environ["HOME"] == str(home)


@pytest.mark.parametrize("where", ["under-a-file", "proc"])
def test_an_unwritable_out_is_one_line(
    renpy_kernel: Callable[..., Kernel], demo_project: Path, tmp_path: Path, where: str
) -> None:
    (tmp_path / "file").write_text("x", encoding="utf-8")
    out = tmp_path / "file" / "game" if where == "under-a-file" else Path("/proc/comfyvn-nowhere")
    code, output = _export(renpy_kernel(), demo_project, "--out", str(out), "--json")
    assert code == 1 and "Traceback" not in output, output
    assert output.strip().splitlines()[-1].startswith("error: cannot create the output folder")
    with pytest.raises(ComfyVNError) as info:  # over HTTP the same error names no server path
        run_export(renpy_kernel(), ExportRequest(project=demo_project, out=out))
    assert str(tmp_path) not in info.value.message


def test_an_unwritable_publish_out_is_one_line(
    renpy_kernel: Callable[..., Kernel], demo_project: Path, tmp_path: Path
) -> None:
    code, output = _export(
        renpy_kernel(),
        demo_project,
        *("--out", str(tmp_path / "o"), "--publish", "--publish-out", "/proc/comfyvn-game.zip", "--json"),
    )
    assert code == 1 and "Traceback" not in output, output
    assert output.strip().splitlines()[-1].startswith("error: cannot write")


def test_export_lines_name_the_game_folder(
    renpy_kernel: Callable[..., Kernel], demo_project: Path, tmp_path: Path
) -> None:
    """The progress label (all a non-terminal stderr shows of the bar) and the lint lines say what they are
    about: no lone "export" line, no "lint .:"."""
    sdk = _fake_sdk(tmp_path / "sdk", "exit 0\n")
    out = tmp_path / "mygame"
    result = CliRunner().invoke(
        make_cli(renpy_kernel()),
        ["export", "renpy", str(demo_project), "--out", str(out), "--check", "--renpy", str(sdk)],
    )
    assert result.exit_code == 0, result.output
    errors = result.stderr.splitlines()
    assert "export" not in errors and f"exporting {demo_project.name} to mygame/" in errors
    lines = result.stdout.splitlines()
    lints = sorted(line.split(":")[0] for line in lines if line.startswith("lint "))
    assert lints == ["lint mygame", "lint mygame/forks/alice", "lint mygame/forks/bob"]
