"""``comfyvn layers split`` and ``comfyvn layers info`` through the real CLI: where the planes go, what is
printed, where the model comes from, and one clear line with exit 2 for every bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import comfyvn_layers.plugin as layers_plugin
import pytest
from click.testing import CliRunner, Result
from comfyvn import Kernel
from comfyvn.cli import make_cli

from .surfaces import alpha_at, bad_models, band_centre, banded_png, good_model

KernelFactory = Callable[..., Kernel]


def _run(kernel: Kernel, *args: str) -> Result:
    return CliRunner().invoke(make_cli(kernel), ["layers", *args], catch_exceptions=False)


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    path = tmp_path / "art" / "park.png"
    path.parent.mkdir()
    path.write_bytes(banded_png())
    return path


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return good_model(tmp_path)


def _one_error_line(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_without_a_model_split_says_how_to_get_one_and_exits_2(make_kernel: KernelFactory, picture: Path) -> None:
    result = _run(make_kernel(layers_plugin), "split", str(picture))
    assert result.exit_code == 2
    line = _one_error_line(result)
    for way in ("--model", "COMFYVN_DEPTH_MODEL", "layers.model", "Depth Anything V2", "nothing is downloaded"):
        assert way in line
    assert not (picture.parent / "park.layers").exists()


def test_info_without_a_model_lists_the_providers_and_exits_2(make_kernel: KernelFactory) -> None:
    result = _run(make_kernel(layers_plugin), "info")
    assert result.exit_code == 2
    assert "CPUExecutionProvider" in result.stdout
    line = _one_error_line(result)
    # info takes the model as its argument: the hint names that, not split's --model option.
    assert "COMFYVN_DEPTH_MODEL" in line and "comfyvn layers info MODEL" in line and "--model" not in line


def test_split_writes_planes_next_to_the_picture_far_to_near(
    make_kernel: KernelFactory, picture: Path, model: Path
) -> None:
    result = _run(make_kernel(layers_plugin), "split", str(picture), "--model", str(model))
    assert result.exit_code == 0, result.output
    out = picture.parent / "park.layers"
    doc = json.loads((out / "layers.json").read_text())
    assert doc["format"] == "comfyvn-layers" and doc["version"] == 1
    assert [p["file"] for p in doc["planes"]] == ["plane0.png", "plane1.png", "plane2.png"]
    assert doc["provider"] == "CPUExecutionProvider" and doc["source"]["file"] == "park.png"
    # Depth = brightness here: the bright right band is the farthest plane, the dark left band the nearest.
    far, near = out / "plane0.png", out / "plane2.png"
    assert alpha_at(near, band_centre(0)) == 255 and alpha_at(near, band_centre(2)) == 0
    assert alpha_at(far, band_centre(2)) == 255
    assert alpha_at(far, band_centre(0)) == 255  # the backdrop is opaque behind nearer planes (hole filled)
    printed = result.stdout.splitlines()
    assert printed[0].startswith("park.png (96x64) -> 3 planes on CPUExecutionProvider")
    assert [line.split()[0] for line in printed[1:4]] == ["plane0.png", "plane1.png", "plane2.png"]
    assert "inference" in printed[4]


def test_out_and_json_print_the_layers_json_written(
    make_kernel: KernelFactory, picture: Path, model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "elsewhere"
    result = _run(
        make_kernel(layers_plugin),
        "split",
        str(picture),
        "--model",
        str(model),
        "--planes",
        "2",
        "--method",
        "kmeans",
        "--feather",
        "0",
        "--out",
        str(out),
        "--json",
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed == json.loads((out / "layers.json").read_text())
    assert (printed["method"], printed["feather"], len(printed["planes"])) == ("kmeans", 0, 2)
    assert not (picture.parent / "park.layers").exists()


def test_cuda_on_a_machine_without_it_runs_on_cpu_and_warns(
    make_kernel: KernelFactory, picture: Path, model: Path
) -> None:
    result = _run(
        make_kernel(layers_plugin), "split", str(picture), "--model", str(model), "--device", "cuda", "--json"
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["device"], doc["provider"]) == ("cuda", "CPUExecutionProvider")
    assert doc["warnings"] and "cuda requested but not available" in doc["warnings"][0]
    assert result.stderr.startswith("warning: cuda requested but not available")


@pytest.mark.parametrize("kind", ["not_onnx", "truncated", "two_inputs", "wrong_rank"])
def test_a_bad_model_is_one_line_and_exit_2(
    make_kernel: KernelFactory, picture: Path, tmp_path: Path, kind: str
) -> None:
    bad = bad_models(tmp_path)[kind]
    kernel = make_kernel(layers_plugin)
    for args in (("split", str(picture), "--model", str(bad)), ("info", str(bad))):
        result = _run(kernel, *args)
        assert result.exit_code == 2, result.output
        line = _one_error_line(result)
        assert bad.name in line and str(tmp_path) not in line
    assert not (picture.parent / "park.layers").exists()


def test_bad_pictures_and_missing_files_exit_2(make_kernel: KernelFactory, model: Path, tmp_path: Path) -> None:
    kernel = make_kernel(layers_plugin)
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    for args, says in (
        (("split", str(tmp_path / "nope.png"), "--model", str(model)), "no picture 'nope.png'"),
        (("split", str(text), "--model", str(model)), "not a readable image"),
        (("split", str(text), "--model", str(tmp_path / "gone.onnx")), "'gone.onnx' (from --model) is not a file"),
        (("info", str(tmp_path / "gone.onnx")), "no model file 'gone.onnx'"),
    ):
        result = _run(kernel, *args)
        assert result.exit_code == 2, result.output
        assert says in _one_error_line(result)
    bad_option = _run(kernel, "split", str(text), "--model", str(model), "--planes", "9")
    assert bad_option.exit_code == 2 and "--planes" in bad_option.output


@pytest.mark.parametrize("command", ["split", "matte"])
@pytest.mark.parametrize("model_args", [(), ("--model", "gone.onnx")], ids=["no-model", "missing-model"])
def test_a_missing_picture_is_named_before_the_model(
    make_kernel: KernelFactory, tmp_path: Path, command: str, model_args: tuple[str, ...]
) -> None:
    args = [str(tmp_path / "nosuch.png"), *(a if a != "gone.onnx" else str(tmp_path / a) for a in model_args)]
    result = _run(make_kernel(layers_plugin), command, *args)
    assert result.exit_code == 2, result.output
    line = _one_error_line(result)
    assert "no picture 'nosuch.png'" in line and "model" not in line, line
    assert str(tmp_path) not in line


def test_info_shows_inputs_outputs_and_providers(make_kernel: KernelFactory, model: Path) -> None:
    kernel = make_kernel(layers_plugin)
    result = _run(kernel, "info", str(model))
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "providers: " in text and "CPUExecutionProvider" in text
    assert "model:     bright.onnx" in text
    # A dynamic input is fed at the default 518, a multiple of 14 (Depth Anything V2's patch size).
    assert "image float32 [1, 3, '?', '?'] NCHW, fed 518x518 (multiple of 14)" in text
    assert "output:    depth (depth)" in text
    shown: dict[str, Any] = json.loads(_run(kernel, "info", str(model), "--json").stdout)
    assert shown["configured"] is True and shown["source"] == "--model"
    assert shown["model"]["input_shape"] == [1, 3, None, None] and shown["model"]["output"] == "depth"
    assert str(model.parent) not in json.dumps(shown)


def test_the_model_comes_from_the_option_then_the_environment_then_the_file(
    make_kernel: KernelFactory, model: Path, tmp_path: Path
) -> None:
    (tmp_path / "second").mkdir()
    other = good_model(tmp_path / "second")
    from_env = make_kernel(layers_plugin, env={"COMFYVN_DEPTH_MODEL": str(model)})
    assert json.loads(_run(from_env, "info", "--json").stdout)["source"] == "COMFYVN_DEPTH_MODEL"
    assert json.loads(_run(from_env, "info", str(other), "--json").stdout)["source"] == "--model"
    # layers.model in comfyvn.json, relative to the config folder.
    kernel = make_kernel(layers_plugin)
    config = kernel.paths.config
    config.mkdir(parents=True, exist_ok=True)
    (config / "models").mkdir()
    (config / "models" / "depth.onnx").write_bytes(model.read_bytes())
    (config / "comfyvn.json").write_text(json.dumps({"layers": {"model": "models/depth.onnx"}}))
    from_file = make_kernel(layers_plugin)
    shown = json.loads(_run(from_file, "info", "--json").stdout)
    assert (shown["source"], shown["model"]["file"]) == ("layers.model in comfyvn.json", "depth.onnx")


def test_a_bad_layers_section_is_a_clear_error(make_kernel: KernelFactory, picture: Path) -> None:
    kernel = make_kernel(layers_plugin)
    kernel.paths.config.mkdir(parents=True, exist_ok=True)
    (kernel.paths.config / "comfyvn.json").write_text(json.dumps({"layers": {"modle": "x.onnx"}}))
    result = _run(make_kernel(layers_plugin), "split", str(picture))
    assert result.exit_code == 2
    assert "unknown setting 'modle'" in _one_error_line(result)
