"""``comfyvn layers matte IMAGE`` through the real CLI: the cut-out next to the picture (or at ``--out``), what a
``--threshold`` keeps, the device fallback warning, and one clear line with exit 2 for every bad input."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import comfyvn_layers.plugin as layers_plugin
import numpy as np
import pytest
from click.testing import CliRunner, Result
from comfyvn import Kernel
from comfyvn.cli import make_cli
from PIL import Image

from .scenery import FIGURE, HEIGHT, SCENERY, WIDTH, figure_on_scenery
from .surfaces import bad_models, band_centre, banded_png, good_model

KernelFactory = Callable[..., Kernel]


def _run(kernel: Kernel, *args: str) -> Result:
    return CliRunner().invoke(make_cli(kernel), ["layers", "matte", *args], catch_exceptions=False)


def _alpha(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.mode == "RGBA"
        return np.asarray(image)[:, :, 3]


def _one_error_line(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    path = tmp_path / "art" / "mira.png"
    path.parent.mkdir()
    path.write_bytes(figure_on_scenery())
    return path


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return good_model(tmp_path)  # depth = brightness: the dark figure is near


def test_the_cutout_goes_next_to_the_picture(make_kernel: KernelFactory, picture: Path, model: Path) -> None:
    result = _run(make_kernel(layers_plugin), str(picture), "--model", str(model))
    assert result.exit_code == 0, result.output
    out = picture.with_name("mira.cutout.png")
    alpha = _alpha(out)
    assert alpha.shape == (HEIGHT, WIDTH)
    assert all(alpha[y, x] == 255 for x, y in FIGURE) and all(alpha[y, x] == 0 for x, y in SCENERY)
    assert result.stdout.startswith(f"mira.png ({WIDTH}x{HEIGHT}) -> ")
    assert "mira.cutout.png" in result.stdout and "bright.onnx on CPUExecutionProvider" in result.stdout
    assert sorted(p.name for p in picture.parent.iterdir()) == ["mira.cutout.png", "mira.png"]


def test_a_threshold_keeps_what_is_nearer(make_kernel: KernelFactory, model: Path, tmp_path: Path) -> None:
    # Three bands of known depth under the brightness model: 30/255 (0.12), 128/255 (0.5), 230/255 (0.9).
    bands = tmp_path / "bands.png"
    bands.write_bytes(banded_png())
    kernel = make_kernel(layers_plugin)
    kept = {}
    for threshold in ("0.3", "0.7"):
        out = tmp_path / f"cut-{threshold}.png"
        result = _run(kernel, str(bands), "--model", str(model), "--threshold", threshold, "--out", str(out))
        assert result.exit_code == 0, result.output
        alpha = _alpha(out)
        kept[threshold] = [int(alpha[y, x]) for x, y in (band_centre(n) for n in range(3))]
    assert kept == {"0.3": [255, 0, 0], "0.7": [255, 255, 0]}
    assert not (tmp_path / "bands.cutout.png").exists()


def test_a_transparent_picture_stays_transparent_where_it_was(
    make_kernel: KernelFactory, model: Path, tmp_path: Path
) -> None:
    with Image.open(io.BytesIO(figure_on_scenery())) as image:
        rgba = np.asarray(image.convert("RGBA")).copy()
    x, y = FIGURE[1]
    rgba[y - 2 : y + 3, x - 2 : x + 3, 3] = 0  # a hole through the figure
    source = tmp_path / "holed.png"
    Image.fromarray(rgba, "RGBA").save(source)
    result = _run(make_kernel(layers_plugin), str(source), "--model", str(model))
    assert result.exit_code == 0, result.output
    alpha = _alpha(tmp_path / "holed.cutout.png")
    assert alpha[y, x] == 0 and alpha[FIGURE[2][1], FIGURE[2][0]] == 255


def test_cuda_on_a_machine_without_it_runs_on_cpu_and_warns(
    make_kernel: KernelFactory, picture: Path, model: Path
) -> None:
    result = _run(make_kernel(layers_plugin), str(picture), "--model", str(model), "--device", "cuda")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("warning: cuda requested but not available")
    assert "on CPUExecutionProvider" in result.stdout


def test_the_model_can_come_from_the_environment(make_kernel: KernelFactory, picture: Path, model: Path) -> None:
    result = _run(make_kernel(layers_plugin, env={"COMFYVN_DEPTH_MODEL": str(model)}), str(picture))
    assert result.exit_code == 0, result.output
    assert picture.with_name("mira.cutout.png").is_file()


def test_bad_input_is_one_line_and_exit_2(
    make_kernel: KernelFactory, picture: Path, model: Path, tmp_path: Path
) -> None:
    kernel = make_kernel(layers_plugin)
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    bad = bad_models(tmp_path)["two_inputs"]
    for args, says in (
        ((str(picture),), "no depth model configured"),
        ((str(tmp_path / "nope.png"), "--model", str(model)), "no picture 'nope.png'"),
        ((str(text), "--model", str(model)), "not a readable image"),
        ((str(picture), "--model", str(bad)), "two.onnx"),
        ((str(picture), "--model", str(model), "--out", str(picture)), "--out must not be the picture itself"),
    ):
        result = _run(kernel, *args)
        assert result.exit_code == 2, result.output
        line = _one_error_line(result)
        assert says in line and str(tmp_path) not in line
    for threshold in ("0", "1", "1.5", "-0.2", "near"):
        result = _run(kernel, str(picture), "--model", str(model), "--threshold", threshold)
        assert result.exit_code == 2 and "--threshold" in result.output
    assert sorted(p.name for p in picture.parent.iterdir()) == ["mira.png"]
    assert not text.with_name("notes.cutout.png").exists()


def test_the_flag_off_refuses_it(make_kernel: KernelFactory, picture: Path, model: Path) -> None:
    kernel = make_kernel(layers_plugin, env={"COMFYVN_FEATURE_ENABLE_FLAT2LAYERS": "0"})
    result = CliRunner().invoke(make_cli(kernel), ["layers", "matte", str(picture), "--model", str(model)])
    assert result.exit_code == 2 and "feature 'enable_flat2layers' is disabled" in result.stderr
    assert not picture.with_name("mira.cutout.png").exists()


def test_the_help_lists_the_options(make_kernel: KernelFactory) -> None:
    result = CliRunner().invoke(make_cli(make_kernel(layers_plugin)), ["layers", "matte", "--help"])
    assert result.exit_code == 0
    for option in ("--model", "--threshold", "--device", "--out", "<stem>.cutout.png"):
        assert option in result.stdout
