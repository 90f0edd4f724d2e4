"""`scenario validate` on a folder warns about the files its documents name that the folder lacks (the
export would be the first to notice, with a placeholder in the game)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner
from comfyvn import Kernel
from comfyvn.cli import make_cli
from comfyvn_scenario import validate_project_dir

DEMO = Path(__file__).resolve().parents[3] / "examples" / "demo"


def _copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DEMO, tmp_path / "demo"))


def _missing(folder: Path) -> list[tuple[str | None, str, str]]:
    _, report = validate_project_dir(folder)
    assert report.valid
    return [(w.document, w.path, w.message) for w in report.warnings if w.code == "missing_file"]


def test_a_complete_folder_has_no_missing_file_warning(tmp_path: Path) -> None:
    assert _missing(_copy(tmp_path)) == []


def test_each_missing_file_is_named_with_its_document_and_pointer(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "assets/backgrounds/carriage.png").unlink()
    (folder / "assets/characters/bob/grin.png").unlink()
    found = _missing(folder)
    assert [(doc, path) for doc, path, _ in found] == [
        ("project.json", "/characters/bob/sprites/grin"),
        ("scenes/night_train.json", "/background"),
    ]
    assert "sprite of 'bob' 'assets/characters/bob/grin.png' is not in the project folder" in found[0][2]


def test_node_audio_outside_paths_and_registry_references(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    scene_file = folder / "scenes/night_train.json"
    scene = json.loads(scene_file.read_text(encoding="utf-8"))
    node = scene["nodes"][0]
    node["voice"] = "audio/voice/line1.ogg"
    node["sfx"] = [{"sound": "../outside.ogg"}]
    node["music"] = {"track": "x" * 300 + ".ogg"}  # longer than a file name may be: missing, not a crash
    node["background"] = "asset:0123456789abcdef"  # the asset registry's, checked by the export
    scene_file.write_text(json.dumps(scene), encoding="utf-8")
    (folder / "outside.ogg").parent.mkdir(exist_ok=True)
    (tmp_path / "outside.ogg").write_bytes(b"OggS")  # exists, but outside the folder
    found = [(doc, path) for doc, path, _ in _missing(folder)]
    assert found == [
        ("scenes/night_train.json", "/nodes/0/music/track"),
        ("scenes/night_train.json", "/nodes/0/voice"),
        ("scenes/night_train.json", "/nodes/0/sfx/0/sound"),
    ]


def test_a_folder_that_lost_its_assets_lists_200_and_counts_the_rest(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    scene_file = folder / "scenes/night_train.json"
    scene = json.loads(scene_file.read_text(encoding="utf-8"))
    for i in range(250):
        scene["nodes"].append({"id": f"extra{i}", "text": "x", "voice": f"voice/{i}.ogg", "end": True})
    scene_file.write_text(json.dumps(scene), encoding="utf-8")
    found = _missing(folder)
    assert len(found) == 201
    assert found[-1] == ("project.json", "/", "50 more references to missing files")


def test_the_cli_prints_the_warnings_and_still_exits_0(kernel: Kernel, tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "assets/backgrounds/carriage.png").unlink()
    result = CliRunner().invoke(make_cli(kernel), ["scenario", "validate", str(folder)])
    assert result.exit_code == 0, result.output
    assert (
        "warning: scenes/night_train.json /background: background 'assets/backgrounds/carriage.png' is not in the "
        "project folder (the export shows a placeholder) [missing_file]"
    ) in result.output
    assert result.output.rstrip().endswith("valid: 0 error(s), 1 warning(s)")
