"""``comfyvn projects list|show|add|remove|export-zip`` (issue 12)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from comfyvn import Kernel
from comfyvn.cli import make_cli
from comfyvn_scenario.store import ProjectStore
from project_factory import two_scenes, write_folder
from scenario_support import DEMO


def _run(kernel: Kernel, *args: str) -> Any:
    return CliRunner().invoke(make_cli(kernel), list(args), catch_exceptions=False)


def _error_line(result: Any) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return str(lines[0])


def test_add_list_show_remove(kernel: Kernel, tmp_path: Path) -> None:
    result = _run(kernel, "projects", "list")
    assert result.exit_code == 0 and "no projects in the store" in result.output

    result = _run(kernel, "projects", "add", str(DEMO))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "added demo (version 1, 2 scene(s), 18 node(s))"
    assert (ProjectStore.for_kernel(kernel).root / "demo" / "assets").is_dir()  # the folder's assets came along

    result = _run(kernel, "projects", "add", str(write_folder(two_scenes(), {}, tmp_path / "tiny")), "--id", "mine")
    assert result.exit_code == 0 and result.output.startswith("added mine ")

    result = _run(kernel, "projects", "list")
    lines = result.output.splitlines()
    assert lines[0].split() == ["ID", "VERSION", "SCENES", "NODES", "TITLE"]
    assert lines[1].split() == ["demo", "1", "2", "18", "The", "Last", "Train"]
    assert lines[2].split() == ["mine", "1", "2", "3", "Tiny"]
    listed = json.loads(_run(kernel, "projects", "list", "--json").output)
    assert [p["id"] for p in listed["projects"]] == ["demo", "mine"]

    result = _run(kernel, "projects", "show", "mine")
    assert result.exit_code == 0
    assert "version   1" in result.output and "validated yes" in result.output
    assert "intro" in result.output and "outro" in result.output and "exports   0" in result.output
    shown = json.loads(_run(kernel, "projects", "show", "mine", "--json").output)
    assert shown["project"]["scenes"] == ["intro", "outro"] and shown["exports"] == [] and shown["validated"] is True

    assert "at version 1, not 2" in _error_line(_run(kernel, "projects", "remove", "mine", "--if-match", "2"))
    result = _run(kernel, "projects", "remove", "mine", "--if-match", "1")
    assert result.exit_code == 0 and result.output.strip() == "removed mine (it was at version 1)"
    removed = json.loads(_run(kernel, "projects", "remove", "demo", "--json").output)
    assert removed == {"deleted": True, "id": "demo", "version": 1}
    assert ProjectStore.for_kernel(kernel).list_projects() == []


def test_export_zip_and_add_it_back(kernel: Kernel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _run(kernel, "projects", "add", str(DEMO))
    target = tmp_path / "out.zip"
    result = _run(kernel, "projects", "export-zip", "demo", "-o", str(target))
    assert result.exit_code == 0 and result.output.startswith(f"wrote {target} (")
    data = target.read_bytes()
    assert data == ProjectStore.for_kernel(kernel).export_zip("demo")
    assert "assets/backgrounds/platform_night.png" in zipfile.ZipFile(io.BytesIO(data)).namelist()
    info = json.loads(_run(kernel, "projects", "export-zip", "demo", "-o", str(tmp_path), "--json").output)
    assert info == {"bytes": len(data), "id": "demo", "path": str(tmp_path / "demo.zip"), "version": 1}
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo.zip").unlink()
    assert _run(kernel, "projects", "export-zip", "demo").exit_code == 0
    assert (tmp_path / "demo.zip").read_bytes() == data
    streamed = CliRunner().invoke(make_cli(kernel), ["projects", "export-zip", "demo", "-o", "-"])
    assert streamed.exit_code == 0 and streamed.stdout_bytes == data
    # A path ending in a slash names a folder even before it exists: the zip goes inside it as ID.zip.
    result = _run(kernel, "projects", "export-zip", "demo", "-o", str(tmp_path / "new-folder") + "/")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "new-folder" / "demo.zip").read_bytes() == data

    result = _run(kernel, "projects", "add", str(target), "--id", "from-zip")
    assert result.exit_code == 0 and result.output.startswith("added from-zip ")
    store = ProjectStore.for_kernel(kernel)
    assert store.load("from-zip").project.document() == store.load("demo").project.document()
    assert store.export_zip("from-zip") == data


def test_bad_input_is_one_line_and_exit_2(kernel: Kernel, tmp_path: Path) -> None:
    assert "no project 'nope'" in _error_line(_run(kernel, "projects", "show", "nope"))
    assert "no project folder or zip" in _error_line(_run(kernel, "projects", "add", str(tmp_path / "missing")))
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    assert "not a zip" in _error_line(_run(kernel, "projects", "add", str(tmp_path / "junk.zip")))
    assert "a project id is" in _error_line(_run(kernel, "projects", "show", "../etc"))
    _run(kernel, "projects", "add", str(DEMO))
    assert "already exists" in _error_line(_run(kernel, "projects", "add", str(DEMO), "--id", "demo"))
    assert "version number" in _error_line(_run(kernel, "projects", "remove", "demo", "--if-match", "latest"))
    assert "at version 1, not 4" in _error_line(_run(kernel, "projects", "remove", "demo", "--if-match", "4"))
    assert "cannot go with" in _error_line(_run(kernel, "projects", "export-zip", "demo", "-o", "-", "--json"))
    broken = two_scenes()
    broken.scenes["intro"]["nodes"][0]["choices"][0]["target"] = "nowhere"
    line = _error_line(_run(kernel, "projects", "add", str(write_folder(broken, {}, tmp_path / "broken"))))
    assert "unknown target node 'nowhere'" in line and "scenes/intro.json" in line
    assert [p["id"] for p in ProjectStore.for_kernel(kernel).list_projects()] == ["demo"]


def test_export_zip_takes_out_like_import_and_export(kernel: Kernel, tmp_path: Path) -> None:
    _run(kernel, "projects", "add", str(DEMO))
    target = tmp_path / "x.zip"
    result = _run(kernel, "projects", "export-zip", "demo", "--out", str(target))
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == ProjectStore.for_kernel(kernel).export_zip("demo")


def test_export_zip_refuses_to_replace_a_file_without_force(kernel: Kernel, tmp_path: Path) -> None:
    _run(kernel, "projects", "add", str(DEMO))
    keep = tmp_path / "keep.zip"
    keep.write_bytes(b"someone else's archive")
    line = _error_line(_run(kernel, "projects", "export-zip", "demo", "-o", str(keep)))
    assert "already exists" in line and "--force" in line
    assert keep.read_bytes() == b"someone else's archive"
    # The same for the ID.zip a folder destination names.
    (tmp_path / "demo.zip").write_bytes(b"older")
    assert "already exists" in _error_line(_run(kernel, "projects", "export-zip", "demo", "-o", str(tmp_path)))
    assert (tmp_path / "demo.zip").read_bytes() == b"older"
    result = _run(kernel, "projects", "export-zip", "demo", "-o", str(keep), "--force")
    assert result.exit_code == 0, result.output
    assert keep.read_bytes() == ProjectStore.for_kernel(kernel).export_zip("demo")


def test_export_zip_refuses_a_missing_folder(kernel: Kernel, tmp_path: Path) -> None:
    _run(kernel, "projects", "add", str(DEMO))
    missing = tmp_path / "nonexistent" / "dir"
    assert "no folder" in _error_line(_run(kernel, "projects", "export-zip", "demo", "-o", str(missing / "x.zip")))
    assert "no folder" in _error_line(_run(kernel, "projects", "export-zip", "demo", "-o", str(missing) + "/"))
    assert not (tmp_path / "nonexistent").exists()
