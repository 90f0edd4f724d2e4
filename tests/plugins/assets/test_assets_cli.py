"""``comfyvn assets list|show|import|remove|pin|unpin|rebuild|gc`` (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from assets_support import png, sha
from click.testing import CliRunner
from comfyvn import Kernel
from comfyvn.cli import make_cli
from comfyvn_assets import AssetRegistry
from comfyvn_assets.cli import parse_size


def _run(kernel: Kernel, *args: str) -> Any:
    return CliRunner().invoke(make_cli(kernel), list(args), catch_exceptions=False)


def _error_line(result: Any) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return str(lines[0])


def test_import_list_show_pin_gc(kernel: Kernel, tmp_path: Path) -> None:
    art = tmp_path / "mine" / "hero.png"  # not under any import root: the CLI user owns their files
    art.parent.mkdir()
    art.write_bytes(png())
    result = _run(kernel, "assets", "list")
    assert result.exit_code == 0 and result.output.startswith("no assets match")

    result = _run(
        kernel,
        "assets",
        "import",
        str(art),
        "--type",
        "portrait",
        "--dest",
        "characters/hero/portrait.png",
        "--tag",
        "hero",
        "--license",
        "CC0-1.0",
        "--provenance",
        '{"seed": 5}',
        "--json",
    )
    assert result.exit_code == 0, result.output
    asset = json.loads(result.output)
    assert (asset["path"], asset["tags"], asset["provenance"]) == (
        "characters/hero/portrait.png",
        ["hero"],
        {"seed": 5},
    )
    assert art.read_bytes() == png()  # the original is untouched; the registry holds a copy
    registry = AssetRegistry.for_kernel(kernel)
    assert registry.file_path(asset["uid"]).read_bytes() != art.read_bytes()  # provenance was embedded

    second = _run(kernel, "assets", "import", str(art), "--type", "bg")
    assert second.exit_code == 0 and second.output.startswith("registered ")
    listed = _run(kernel, "assets", "list")
    assert listed.output.splitlines()[0].split()[:3] == [
        registry.find(type="background")[0].uid,
        "background",
        "32x24",
    ]
    as_json = json.loads(_run(kernel, "assets", "list", "--type", "PORTRAIT", "--json").output)
    assert [a["uid"] for a in as_json["assets"]] == [asset["uid"]]

    shown = _run(kernel, "assets", "show", asset["uid"])
    assert f"uid         {asset['uid']}" in shown.output and "license     CC0-1.0" in shown.output
    assert json.loads(_run(kernel, "assets", "show", asset["uid"], "--json").output)["sidecar"]["provenance"] == {
        "seed": 5
    }

    assert _run(kernel, "assets", "pin", asset["uid"]).output.startswith("pinned ")
    dry = json.loads(_run(kernel, "assets", "gc", "--max-bytes", "0", "--dry-run", "--json").output)
    assert dry["evicted"] == [registry.find(type="background")[0].uid] and len(registry.find()) == 2
    gc = _run(kernel, "assets", "gc", "--max-bytes", "0")
    assert gc.exit_code == 0 and "evicted          1" in gc.output
    assert [a.uid for a in registry.find()] == [asset["uid"]]
    assert json.loads(_run(kernel, "assets", "unpin", asset["uid"], "--json").output)["pinned"] is False

    (registry.root / "characters/hero/portrait.png").unlink()
    rebuilt = json.loads(_run(kernel, "assets", "rebuild", "--json").output)
    assert rebuilt["repaired"] == [asset["uid"]]
    assert _run(kernel, "assets", "remove", asset["uid"]).output.startswith(f"removed {asset['uid']}")
    assert registry.find() == []


def test_bad_input_is_one_line_and_exit_2(kernel: Kernel, tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    assert "no asset" in _error_line(_run(kernel, "assets", "show", "0123456789abcdef"))
    assert "unknown asset type" in _error_line(_run(kernel, "assets", "import", str(text), "--type", "hologram"))
    assert "not a readable image" in _error_line(_run(kernel, "assets", "import", str(text), "--type", "sprite"))
    assert "does not exist" in _error_line(_run(kernel, "assets", "import", str(tmp_path / "no.png"), "--type", "bg"))
    bad_dest = _run(kernel, "assets", "import", str(text), "--type", "bg", "--dest", "../x.png")
    assert "(field: dest_path)" in _error_line(bad_dest)
    bad_json = _run(kernel, "assets", "import", str(text), "--type", "bg", "--metadata", "{oops")
    assert "(field: metadata)" in _error_line(bad_json)
    assert "not a size" in _error_line(_run(kernel, "assets", "gc", "--max-bytes", "lots"))
    assert "limit" in _error_line(_run(kernel, "assets", "list", "--limit", "many"))
    assert "limit" in _error_line(_run(kernel, "assets", "list", "--limit", "0"))
    assert AssetRegistry.for_kernel(kernel).find() == []
    assert sha(text.read_bytes())  # the file is still there, untouched


@pytest.mark.parametrize(
    ("text", "expected"), [("1024", 1024), ("500M", 500 * 2**20), ("2g", 2 * 2**30), ("3KiB", 3072), ("0", 0)]
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected
