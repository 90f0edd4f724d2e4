"""Layered backgrounds in the Ren'Py export: planes from a ``<stem>.layers`` folder, shown with parallax.

The layers folders here are made by hand after the layers plugin's contract (the exporter must not
import that plugin). One test plays the exported game in the real engine and reads its screenshots.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from comfyvn.errors import ComfyVNError
from comfyvn_renpy import Bundle, ExportOptions, build_bundle, write_bundle
from comfyvn_renpy.engine import Engine
from comfyvn_renpy.parallax import DRIFT, LOOK, PARALLAX_FILE, read_layers
from comfyvn_renpy.playcheck import run_play_check
from comfyvn_scenario import load_project
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from layered_project import BUSH, HILLS, HOUSE, PARALLAX, SIZE, SUN, layers_doc, make_layered_project, write_layers
from PIL import Image

RESOLUTION = (1280, 720)
PLANE_FILES = [f"game/images/bg/bg_meadow_plane{i}.png" for i in range(3)]
# The cover crop of a 1440x900 picture for a 16:9 screen: the full width, 45 px off the top and bottom.
CROP = (0, 45, 1440, 810)


def _export(project: Path) -> Bundle:
    return build_bundle(load_project(project), ExportOptions(resolution=RESOLUTION, pov_mode="disabled"))


def _bg_line(bundle: Bundle) -> str:
    images = bundle.files["game/images.rpy"].decode()
    return next(line for line in images.splitlines() if line.startswith("image bg meadow = "))


def _background(bundle: Bundle) -> dict[str, Any]:
    return next(b for b in bundle.export_manifest["assets"]["backgrounds"] if b["name"] == "bg meadow")


def test_a_layered_background_is_its_planes_far_to_near_each_with_the_parallax_transform(tmp_path: Path) -> None:
    project = make_layered_project(tmp_path)
    folder = project / "assets/backgrounds/meadow.layers"
    bundle = _export(project)
    assert bundle.warnings == ()
    for index, path in enumerate(PLANE_FILES):
        assert bundle.files[path] == (folder / f"plane{index}.png").read_bytes()
    line = _bg_line(bundle)
    planes = re.findall(
        r"At\(Transform\('([^']+)', crop=(\([^)]*\)), xysize=\(1280, 720\)\), cvn_parallax\(([^,]+), ([^)]+)\)\)", line
    )
    assert [p[0] for p in planes] == [p.removeprefix("game/") for p in PLANE_FILES]  # far first: drawn first
    assert {p[1] for p in planes} == {repr(CROP)}  # cropped and scaled exactly like the flat picture
    assert [float(p[2]) for p in planes] == list(PARALLAX)
    width, height = RESOLUTION
    for factor, zoom in ((float(p[2]), float(p[3])) for p in planes):
        # Centred and zoomed: the edges stay off screen at the camera's largest offset (drift + full turn).
        assert (zoom - 1) * width / 2 >= factor * (DRIFT[0] + LOOK) * width
        assert (zoom - 1) * height / 2 >= factor * DRIFT[1] * height
        assert zoom < 1.2  # and no more than that needs
    assert line.endswith("xysize=(1280, 720))")  # one screen-sized image: `scene bg meadow` is unchanged
    assert "    scene bg meadow\n" in bundle.files["game/scenes/scene_meadow.rpy"].decode()
    runtime = bundle.files[PARALLAX_FILE].decode()
    assert "transform cvn_parallax(factor=1.0, scale=1.0):" in runtime
    assert "config.all_character_callbacks.append(cvn_look_toward_speaker)" in runtime
    assert "renpy.get_say_image_tag()" in runtime


def test_the_manifest_records_planes_and_what_made_them(tmp_path: Path) -> None:
    project = make_layered_project(tmp_path)
    folder = project / "assets/backgrounds/meadow.layers"
    bundle = _export(project)
    layers = _background(bundle)["layers"]
    assert layers["folder"] == "assets/backgrounds/meadow.layers"
    assert layers["layers_json_sha256"] == hashlib.sha256((folder / "layers.json").read_bytes()).hexdigest()
    assert [p["path"] for p in layers["planes"]] == PLANE_FILES
    assert [p["file"] for p in layers["planes"]] == ["plane0.png", "plane1.png", "plane2.png"]
    assert [p["parallax"] for p in layers["planes"]] == list(PARALLAX)
    assert [p["depth"] for p in layers["planes"]] == [[0.66, 1.0], [0.33, 0.66], [0.0, 0.33]]
    for plane in layers["planes"]:
        assert plane["sha256"] == hashlib.sha256((folder / plane["file"]).read_bytes()).hexdigest()
        assert bundle.export_manifest["files"][plane["path"]] == plane["sha256"]
    assert layers["model"] == {"file": "depth_anything_v2_small.onnx", "sha256": "ab" * 32, "output": "inverse_depth"}
    assert (layers["provider"], layers["device"], layers["method"]) == ("CPUExecutionProvider", "auto", "quantile")
    again = _export(project)
    assert again.all_files() == bundle.all_files()  # deterministic, planes included


def test_the_model_is_named_by_its_base_name_never_a_path_of_the_machine(tmp_path: Path) -> None:
    project = make_layered_project(tmp_path)
    source = project / "assets/backgrounds/meadow.png"
    doc = layers_doc(source)
    doc["model"]["file"] = "/home/someone/models/depth.onnx"
    write_layers(source, doc)
    assert _background(_export(project))["layers"]["model"]["file"] == "depth.onnx"


def test_without_a_layers_folder_the_export_is_flat_and_has_no_parallax(tmp_path: Path) -> None:
    bundle = _export(make_layered_project(tmp_path, layers=False))
    assert (
        _bg_line(bundle) == f"image bg meadow = Transform('images/bg/bg_meadow.png', crop={CROP!r}, xysize=(1280, 720))"
    )
    assert PARALLAX_FILE not in bundle.files
    assert not any("_plane" in path for path in bundle.files)
    assert _background(bundle)["layers"] is None
    assert bundle.warnings == ()


def _doc_with_planes(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``doc`` with plane 1's fields changed."""
    doc = json.loads(json.dumps(doc))
    doc["planes"][1].update(changes)
    return doc


def _outside_png(folder: Path) -> None:
    outside = folder.parent.parent / "elsewhere.png"
    Image.new("RGBA", SIZE).save(outside)
    (folder / "plane1.png").unlink()
    (folder / "plane1.png").symlink_to(outside)


BROKEN: dict[str, tuple[Callable[[Path, dict[str, Any]], Any], str]] = {
    "bad json": (lambda f, d: (f / "layers.json").write_text("{not json", encoding="utf-8"), "not valid JSON"),
    "not an object": (lambda f, d: (f / "layers.json").write_text("[1, 2]", encoding="utf-8"), "not a JSON object"),
    "no layers.json": (lambda f, d: (f / "layers.json").unlink(), "'layers.json' is missing"),
    "other format": (lambda f, d: _write(f, {**d, "format": "other"}), "format is not 'comfyvn-layers'"),
    "version 2": (lambda f, d: _write(f, {**d, "version": 2}), "version 2"),
    "version true": (lambda f, d: _write(f, {**d, "version": True}), "version True"),
    "missing plane": (lambda f, d: (f / "plane1.png").unlink(), "'plane1.png' is missing"),
    "wrong size": (
        lambda f, d: Image.open(f / "plane1.png").resize((720, 450)).save(f / "plane1.png"),
        "'plane1.png' is 720x450, the background is 1440x900",
    ),
    "path escaping": (lambda f, d: _write(f, _doc_with_planes(d, file="../meadow.png")), "not a file name inside"),
    "absolute path": (lambda f, d: _write(f, _doc_with_planes(d, file="/etc/x.png")), "not a file name inside"),
    "link escaping": (lambda f, d: _outside_png(f), "'plane1.png' leads outside the layers folder"),
    "not a png": (lambda f, d: (f / "plane1.png").write_bytes(b"GIF89a" + bytes(64)), "'plane1.png' is not a PNG"),
    "truncated png": (
        lambda f, d: (f / "plane1.png").write_bytes((f / "plane1.png").read_bytes()[:300]),
        "'plane1.png' is not a readable PNG",
    ),
    "not .png": (lambda f, d: _write(f, _doc_with_planes(d, file="depth.tif")), "is not a .png"),
    "parallax 0": (
        lambda f, d: _write(f, _doc_with_planes(d, parallax=0)),
        "parallax 0; it must be a number in (0, 1]",
    ),
    "parallax 1.5": (lambda f, d: _write(f, _doc_with_planes(d, parallax=1.5)), "parallax 1.5"),
    "parallax text": (lambda f, d: _write(f, _doc_with_planes(d, parallax="0.5")), "parallax '0.5'"),
    "parallax NaN": (lambda f, d: _write(f, _doc_with_planes(d, parallax=math.nan)), "parallax nan"),
    "no depth": (lambda f, d: _write(f, _doc_with_planes(d, depth=None)), "no depth range"),
    "near to far": (
        lambda f, d: _write(f, {**d, "planes": [{**p, "index": i} for i, p in enumerate(reversed(d["planes"]))]}),
        "not listed far to near",
    ),
    "index gap": (lambda f, d: _write(f, _doc_with_planes(d, index=5)), "plane 1 has index 5"),
    "same file twice": (lambda f, d: _write(f, _doc_with_planes(d, file="plane0.png")), "listed twice"),
    "one plane": (lambda f, d: _write(f, {**d, "planes": d["planes"][:1]}), "must list 2 to 8 planes"),
    "other source size": (
        lambda f, d: _write(f, {**d, "source": {**d["source"], "width": 1920, "height": 1080}}),
        "cut from a 1920x1080 image, the background is 1440x900",
    ),
    "stale source": (
        lambda f, d: _write(f, {**d, "source": {**d["source"], "sha256": "0" * 64}}),
        "another version of the background",
    ),
    "folder is a link": (lambda f, d: _link_folder(f), "a link to a folder is not followed"),
}


def _write(folder: Path, doc: dict[str, Any]) -> None:
    (folder / "layers.json").write_text(json.dumps(doc), encoding="utf-8")


def _link_folder(folder: Path) -> None:
    real = folder.parent.parent.parent / "kept.layers"
    folder.rename(real)
    folder.symlink_to(real, target_is_directory=True)


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_an_unusable_layers_folder_falls_back_to_the_flat_image_with_a_warning(tmp_path: Path, case: str) -> None:
    project = make_layered_project(tmp_path)
    folder = project / "assets/backgrounds/meadow.layers"
    damage, problem = BROKEN[case]
    damage(folder, layers_doc(project / "assets/backgrounds/meadow.png"))
    bundle = _export(project)
    assert len(bundle.warnings) == 1, bundle.warnings
    warning = bundle.warnings[0]
    assert warning.startswith("layered background 'assets/backgrounds/meadow.layers' not used: ")
    assert problem in warning and warning.endswith("the flat image is shown")
    assert str(tmp_path) not in warning  # never a path of the machine
    assert _bg_line(bundle).startswith("image bg meadow = Transform('images/bg/bg_meadow.png', crop=")
    assert PARALLAX_FILE not in bundle.files and not any("_plane" in path for path in bundle.files)
    assert _background(bundle)["layers"] is None


def test_a_flat_fallback_export_lints_clean(engine: Engine, tmp_path: Path) -> None:
    project = make_layered_project(tmp_path)
    (project / "assets/backgrounds/meadow.layers/plane2.png").unlink()
    bundle = _export(project)
    assert "'plane2.png' is missing" in bundle.warnings[0]
    write_bundle(bundle, tmp_path / "out")
    lint = engine.lint(tmp_path / "out", timeout=240)
    assert lint.ok, (lint.problems, lint.run.stdout[-2000:])


# -- the parser as a property: whatever a layers.json says, an answer (never a crash) ------------------

_SMALL = (16, 10)
_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 9),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["plane0.png", "plane1.png", "plane2.png", "../x.png", "a/b.png", "", ".", "depth.png"]),
    st.lists(st.floats(-1, 2), max_size=3),
)
_plane = st.fixed_dictionaries(
    {},
    optional={"index": _values, "file": _values, "parallax": _values, "depth": _values, "extra": _values},
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(planes=st.one_of(_values, st.lists(st.one_of(_plane, _values), max_size=9)), top=_values)
def test_any_layers_json_gives_layers_or_one_warning_and_accepted_planes_keep_the_contract(
    planes: Any, top: Any
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "bg.png"
        Image.new("RGB", _SMALL, "#336699").save(image)
        folder = Path(tmp) / "bg.layers"
        folder.mkdir()
        for name in ("plane0.png", "plane1.png", "plane2.png", "depth.png"):
            Image.new("RGBA", _SMALL).save(folder / name)
        doc = {"format": "comfyvn-layers", "version": 1, "source": {"width": 16, "height": 10}, "planes": planes}
        doc["model"] = top
        (folder / "layers.json").write_text(json.dumps(doc), encoding="utf-8")
        layers, warning = read_layers(image, _SMALL, "images/bg/bg_x", "bg.layers")
        assert (layers is None) != (warning is None)
        if layers is not None:
            assert 2 <= len(layers.planes) <= 8
            assert all(0 < p.parallax <= 1 for p in layers.planes)
            assert [p.parallax for p in layers.planes] == sorted(p.parallax for p in layers.planes)
            assert all(p.source.parent == folder.resolve() for p in layers.planes)
            assert len({p.name for p in layers.planes}) == len(layers.planes)
        else:
            assert warning is not None and tmp not in warning


# -- the real engine -------------------------------------------------------------------------------


def _colour_centre(shot: np.ndarray, colour: tuple[int, int, int]) -> tuple[int, float]:
    """How many pixels of ``shot`` have ``colour`` (within a small tolerance) and their mean x."""
    mask = np.abs(shot - np.array(colour)).sum(axis=2) < 30
    xs = np.nonzero(mask)[1]
    return int(mask.sum()), float(xs.mean()) if len(xs) else math.nan


def test_an_exported_parallax_game_lints_clean_and_plays_with_every_plane_on_screen_and_moving(
    engine: Engine, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    write_bundle(_export(make_layered_project(tmp_path)), out)
    lint = engine.lint(out, timeout=240)
    assert lint.ok, (lint.problems, lint.run.stdout[-2000:])
    # The game redraws its planes at 60 frames a second; the play-check lowers that (software OpenGL
    # offscreen has no vsync), else the checker starves and the story does not end in time.
    assert "define cvn_parallax_fps = 60" in (out / "game/comfyvn_parallax.rpy").read_text()
    shots = tmp_path / "shots"
    # Each line stays 2 s (the turn toward a speaker eases in 1.2 s) before it is photographed.
    report = run_play_check(out, engine=engine, screenshots=shots, line_shots=4, settle=2.0, timeout=240)
    assert report.failed() == [], json.dumps(report.to_wire(), indent=2)
    assert report.lines == 4 and report.finish == "title"
    frames = [np.asarray(Image.open(shots / f"line_00{i}.png").convert("RGB")).astype(int) for i in range(1, 5)]
    width = frames[0].shape[1]
    centres: list[list[float]] = []
    for frame in frames:
        # Every plane is on screen: the far sky (to the very corners: no edge of a plane shows), the sun
        # on it, the hills and the house of the middle plane, the bushes of the near plane.
        for y, x in ((0, 0), (0, width - 1)):
            red, green, blue = frame[y, x]
            assert blue > 180 and blue > red + 100 and blue > green + 60, (y, x, frame[y, x])
        for name, colour in (("sun", SUN), ("house", HOUSE), ("hills", HILLS), ("bush", BUSH)):
            count, _x = _colour_centre(frame, colour)
            assert count > 0.004 * frame.shape[0] * width, (name, count)
        centres.append([_colour_centre(frame, colour)[1] for colour in (SUN, HOUSE, BUSH)])
    moves = np.diff(np.array(centres), axis=0)  # per line change: how far sun, house and bushes moved
    # Narration -> Ana at the far left: the camera turns left, everything slides right; -> Ben at the far
    # right: left; -> narration: back toward the centre (right). The nearer the plane, the more it moves.
    for move, sign in zip(moves, (1, -1, 1), strict=True):
        sun, house, bush = move * sign
        assert 0 < sun < house < bush, moves
        assert house / bush == pytest.approx(PARALLAX[1] / PARALLAX[2], abs=0.08), moves
        assert sun / bush == pytest.approx(PARALLAX[0] / PARALLAX[2], abs=0.08), moves


@pytest.mark.parametrize("settle", [-1.0, 61.0])
def test_play_check_refuses_a_settle_time_out_of_range(tmp_path: Path, settle: float) -> None:
    (tmp_path / "game").mkdir()
    with pytest.raises(ComfyVNError) as caught:
        run_play_check(tmp_path, settle=settle)
    assert caught.value.field == "settle"


def _brightness_model(path: Path) -> Path:
    """A tiny ONNX "depth" model (depth = mean of the channels, 64x64 input), as the layers plugin's
    users supply a real one: normalisation and output kind in its metadata."""
    from onnx import TensorProto, helper, numpy_helper

    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["image", "axes"], ["depth"], keepdims=1)],
        "depth",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, 1, 64, 64])],
        initializer=[axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    for key, value in {"mean": "[0, 0, 0]", "std": "[1, 1, 1]", "output": "depth"}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    path.write_bytes(model.SerializeToString())
    return path


def test_a_folder_the_layers_plugin_wrote_is_used_as_it_is(tmp_path: Path) -> None:
    # The contract seen from the other side: the layers plugin's own split (not imported by the exporter).
    from comfyvn_layers.pipeline import split_image

    project = make_layered_project(tmp_path, layers=False)
    background = project / "assets/backgrounds/meadow.png"
    doc = split_image(background, _brightness_model(tmp_path / "bright.onnx"), background.parent / "meadow.layers")
    bundle = _export(project)
    assert bundle.warnings == ()
    layers = _background(bundle)["layers"]
    assert [p["file"] for p in layers["planes"]] == [p["file"] for p in doc["planes"]]
    assert [p["parallax"] for p in layers["planes"]] == [p["parallax"] for p in doc["planes"]]
    assert layers["model"]["file"] == "bright.onnx" and layers["provider"] == doc["provider"]
    assert _bg_line(bundle).count("cvn_parallax(") == len(doc["planes"])
