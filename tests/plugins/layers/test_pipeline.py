"""The whole split: image + model -> plane PNGs, depth map and layers.json, checked against known depth."""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from comfyvn.errors import Invalid, NotFound, TooLarge, Unprocessable
from comfyvn_layers.depth import normalise_depth
from comfyvn_layers.pipeline import MAX_PIXELS, split_image
from comfyvn_layers.runtime import CPU, available_providers, clear_sessions
from PIL import Image

from .onnx_models import brightness_model, row_model, two_input_model, write

BRIGHT, GREY, DARK = (240, 230, 220), (130, 128, 126), (30, 20, 10)


@pytest.fixture(autouse=True)
def fresh_sessions() -> Iterator[None]:
    clear_sessions()
    yield
    clear_sessions()


def save(folder: Path, pixels: np.ndarray, name: str = "scene.png") -> Path:
    path = folder / name
    Image.fromarray(pixels).save(path)
    return path


def zones() -> np.ndarray:
    """A bright sky (top), a grey ground (bottom), a dark square standing on both."""
    rgb = np.zeros((60, 80, 3), np.uint8)
    rgb[:30] = BRIGHT
    rgb[30:] = GREY
    rgb[20:50, 30:50] = DARK
    return rgb


def planes_of(out: Path, layers: dict[str, Any]) -> list[np.ndarray]:
    return [np.asarray(Image.open(out / plane["file"])) for plane in layers["planes"]]


def hard_masks(planes: list[np.ndarray]) -> list[np.ndarray]:
    """With feather 0, plane i is opaque exactly where plane i or a nearer one is: its own mask is that,
    less the next plane's opaque area."""
    solid = [p[:, :, 3] == 255 for p in planes]
    return [s & ~nearer for s, nearer in zip(solid, [*solid[1:], np.zeros_like(solid[0])], strict=True)]


def test_a_split_by_brightness_depth_gives_the_known_planes_far_to_near(tmp_path: Path) -> None:
    rgb = zones()
    model = write(tmp_path, "bright.onnx", brightness_model(64))
    out = tmp_path / "scene.layers"
    layers = split_image(save(tmp_path, rgb), model, out, planes=3, method="kmeans", feather=0)

    assert json.loads((out / "layers.json").read_text()) == layers
    assert (layers["format"], layers["version"], layers["depth_map"]) == ("comfyvn-layers", 1, "depth.png")
    assert layers["source"]["file"] == "scene.png" and (layers["source"]["width"], layers["source"]["height"]) == (
        80,
        60,
    )
    assert layers["model"] == {
        "file": "bright.onnx",
        "sha256": layers["model"]["sha256"],
        "input": [1, 3, 64, 64],
        "output": "depth",
    }
    assert (layers["device"], layers["provider"], layers["warnings"]) == ("auto", CPU, [])
    assert [p["file"] for p in layers["planes"]] == ["plane0.png", "plane1.png", "plane2.png"]
    assert [p["depth"][1] for p in layers["planes"]] == sorted((p["depth"][1] for p in layers["planes"]), reverse=True)
    assert layers["planes"][-1]["parallax"] == 1.0 and layers["planes"][0]["parallax"] < layers["planes"][1]["parallax"]
    assert set(layers["timings_ms"]) == {"load", "preprocess", "inference", "postprocess", "inpaint", "write"}
    assert str(tmp_path) not in json.dumps(layers)

    planes = planes_of(out, layers)
    assert all(p.shape == (60, 80, 4) for p in planes)
    far, ground, near = hard_masks(planes)
    is_dark = (rgb == DARK).all(axis=2)
    is_bright = (rgb == BRIGHT).all(axis=2)
    # Far -> near as brightness says: the bright sky, the grey ground, the dark square.
    assert (
        np.array_equal(far, is_bright)
        and np.array_equal(near, is_dark)
        and np.array_equal(ground, ~is_dark & ~is_bright)
    )
    assert [p["coverage"] for p in layers["planes"]] == [
        pytest.approx(m.mean(), abs=1e-6) for m in (is_bright, ~is_dark & ~is_bright, is_dark)
    ]
    # Each plane holds the source pixels of its own mask ...
    for plane, mask in zip(planes, (far, ground, near), strict=True):
        assert np.array_equal(plane[mask][:, :3], rgb[mask])
    # ... and the holes nearer planes leave are filled from around them: sky behind the square's top,
    # ground behind its bottom, never the dark square.
    assert planes[0][:, :, 3].min() == 255
    assert np.abs(planes[0][22:28, 35:45, :3].astype(int) - BRIGHT).max() <= 2
    # (The ground's fill also borders the sky above the horizon, so it blends toward it going up.)
    assert np.abs(planes[1][44:50, 30:50, :3].astype(int) - GREY).max() <= 5
    assert (np.abs(planes[1][30:50, 30:50, :3].astype(int) - DARK).min(axis=2) > 90).all()

    depth = np.asarray(Image.open(out / "depth.png"))
    assert depth.dtype == np.uint16 and depth.shape == (60, 80)
    # White = far, the full 16-bit range used. (The cubic resize the models are trained with overshoots a
    # little at sharp edges, so the extremes sit there, not inside the zones.)
    assert depth.min() == 0 and depth.max() == 65535
    assert depth[5, 5] > 0.85 * 65535 > depth[55, 5] > 0.2 * 65535 > depth[35, 40]


def test_an_inverse_depth_model_flips_the_order(tmp_path: Path) -> None:
    rgb = zones()
    model = write(tmp_path, "inverse.onnx", brightness_model(64, output="inverse_depth"))
    layers = split_image(save(tmp_path, rgb), model, tmp_path / "out", planes=3, method="kmeans", feather=0)
    far, _, near = hard_masks(planes_of(tmp_path / "out", layers))
    assert np.array_equal(far, (rgb == DARK).all(axis=2)) and np.array_equal(near, (rgb == BRIGHT).all(axis=2))
    assert layers["model"]["output"] == "inverse_depth"


def test_a_row_depth_model_puts_the_top_of_the_picture_at_the_back(tmp_path: Path) -> None:
    rgb = np.random.default_rng(3).integers(0, 256, (90, 50, 3), dtype=np.uint8)  # depth ignores colour
    model = write(tmp_path, "rows.onnx", row_model(64))
    layers = split_image(save(tmp_path, rgb), model, tmp_path / "out", planes=4, feather=0)
    masks = hard_masks(planes_of(tmp_path / "out", layers))
    assert np.array_equal(np.sum(masks, axis=0), np.ones((90, 50)))
    rows = [np.nonzero(mask.any(axis=1))[0] for mask in masks]
    # Quantile planes of a row ramp: four bands of whole rows, top first, about a quarter each.
    assert rows[0][0] == 0 and rows[-1][-1] == 89
    for band, next_band, mask in zip(rows, [*rows[1:], None], masks, strict=True):
        assert np.array_equal(band, np.arange(band[0], band[-1] + 1)) and mask[band].all()
        assert next_band is None or next_band[0] == band[-1] + 1
        assert abs(len(band) - 90 / 4) <= 2


def test_a_dynamic_model_takes_its_size_from_the_sidecar_and_a_3d_output_works(tmp_path: Path) -> None:
    model = write(tmp_path, "dyn.onnx", brightness_model(None, four_d=False))
    (tmp_path / "dyn.json").write_text(json.dumps({"input_size": [30, 40], "multiple": 8}))
    rgb = zones()
    layers = split_image(save(tmp_path, rgb), model, tmp_path / "out", planes=3, method="kmeans", feather=0)
    assert layers["model"]["input"] == [1, 3, 32, 40]
    far, _, near = hard_masks(planes_of(tmp_path / "out", layers))
    # Fed at a lower size and scaled back, the depth stays right away from the edges between zones.
    assert far[:15].all() and near[25:45, 35:45].all() and not far[30:].any()


def test_cuda_asked_for_here_is_reported_as_the_cpu_that_ran_with_a_warning(tmp_path: Path) -> None:
    if "CUDAExecutionProvider" in available_providers():
        pytest.skip("this machine has CUDA")
    layers = split_image(
        save(tmp_path, zones()), write(tmp_path, "m.onnx", brightness_model(64)), tmp_path / "out", device="cuda"
    )
    assert (layers["device"], layers["provider"]) == ("cuda", CPU)
    (warning,) = layers["warnings"]
    assert warning.startswith("cuda requested but not available here (providers: ") and warning.endswith(
        "running on CPU"
    )


def test_events_report_each_mask_each_plane_and_the_timings(tmp_path: Path) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    layers = split_image(
        save(tmp_path, zones()),
        write(tmp_path, "m.onnx", brightness_model(64)),
        tmp_path / "out",
        emit=lambda name, payload: events.append((name, payload)),
    )
    assert [name for name, _ in events] == ["on_mask_ready", "on_plane_exported"] * 3 + ["on_debug"]
    masks = [p for n, p in events if n == "on_mask_ready"]
    exported = [p for n, p in events if n == "on_plane_exported"]
    assert [(m["index"], m["depth"], m["coverage"]) for m in masks] == [
        (p["index"], p["depth"], p["coverage"]) for p in layers["planes"]
    ]
    assert all(m["planes"] == 3 and m["source"] == "scene.png" for m in masks)
    assert [(e["file"], e["parallax"], e["width"], e["height"]) for e in exported] == [
        (p["file"], p["parallax"], 80, 60) for p in layers["planes"]
    ]
    debug = events[-1][1]
    assert debug["provider"] == CPU and debug["model"] == "m.onnx" and debug["timings_ms"] == layers["timings_ms"]


def test_a_second_split_with_fewer_planes_removes_the_old_extra_planes(tmp_path: Path) -> None:
    model = write(tmp_path, "m.onnx", brightness_model(64))
    data = io.BytesIO()
    Image.fromarray(zones()).save(data, format="PNG")
    split_image(data.getvalue(), model, tmp_path / "out", planes=5)
    assert (tmp_path / "out" / "plane4.png").exists()
    layers = split_image(data.getvalue(), model, tmp_path / "out", planes=2)
    assert layers["source"]["file"] == "upload"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "depth.png",
        "layers.json",
        "plane0.png",
        "plane1.png",
    ]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"planes": 1}, "planes"),
        ({"planes": 9}, "planes"),
        ({"method": "otsu"}, "method"),
        ({"feather": -1}, "feather"),
    ],
)
def test_bad_options_are_invalid_before_anything_runs(tmp_path: Path, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(Invalid) as caught:
        split_image(tmp_path / "missing.png", tmp_path / "missing.onnx", tmp_path / "out", **kwargs)
    assert caught.value.field == field and not (tmp_path / "out").exists()


def test_a_bad_model_is_unprocessable_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(Unprocessable) as caught:
        split_image(save(tmp_path, zones()), write(tmp_path, "two.onnx", two_input_model()), tmp_path / "out")
    assert caught.value.code == "invalid_model" and str(tmp_path) not in caught.value.message
    assert not (tmp_path / "out").exists()


def huge_png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (its pixel data is never reached)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    idat = zlib.compress(b"\x00" * 16)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk
        + struct.pack(">I", len(idat))
        + b"IDAT"
        + idat
        + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    )


@pytest.mark.parametrize("side", [6400, 20_000])  # 41 MP: ours; 400 MP: past PIL's own bomb limit too
def test_an_image_over_the_pixel_limit_is_too_large_before_decoding(tmp_path: Path, side: int) -> None:
    assert side * side > MAX_PIXELS
    with pytest.raises(TooLarge) as caught:
        split_image(huge_png_header(side, side), write(tmp_path, "m.onnx", brightness_model(8)), tmp_path / "out")
    assert caught.value.field == "image"


def test_not_an_image_and_a_missing_image_are_named_without_their_folder(tmp_path: Path) -> None:
    model = write(tmp_path, "m.onnx", brightness_model(8))
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(Unprocessable) as caught:
        split_image(tmp_path / "notes.png", model, tmp_path / "out")
    assert caught.value.code == "invalid_image" and "'notes.png'" in caught.value.message
    with pytest.raises(NotFound) as missing:
        split_image(tmp_path / "gone.png", model, tmp_path / "out")
    assert missing.value.code == "image_not_found" and str(tmp_path) not in missing.value.message


def test_depth_is_normalised_at_full_size_inverse_flipped_and_odd_outputs_handled() -> None:
    raw = np.array([[[1.0, 2.0], [3.0, 5.0]]], np.float32)
    assert normalise_depth(raw, (2, 2), "depth").tolist() == [[0.0, 0.25], [0.5, 1.0]]
    assert normalise_depth(raw, (2, 2), "inverse_depth").tolist() == [[1.0, 0.75], [0.5, 0.0]]
    assert normalise_depth(raw, (6, 4), "depth").shape == (6, 4)
    assert not normalise_depth(np.full((1, 1, 3, 3), 7.0, np.float32), (3, 3), "depth").any()  # flat: all near
    holes = np.array([[[np.nan, 1.0], [2.0, np.inf]]], np.float32)
    assert normalise_depth(holes, (2, 2), "depth").tolist() == [[1.0, 0.0], [1.0, 1.0]]  # unknown = far
    assert normalise_depth(holes, (2, 2), "inverse_depth").tolist() == [[1.0, 1.0], [0.0, 1.0]]
    with pytest.raises(Unprocessable) as caught:
        normalise_depth(np.full((1, 2, 2), np.nan, np.float32), (2, 2), "depth")
    assert caught.value.code == "invalid_model"
