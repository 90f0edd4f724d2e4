"""Reading a depth model: shapes from the graph, settings from metadata and the sidecar, and clear refusals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from comfyvn.errors import NotFound, Unprocessable
from comfyvn_layers.model import (
    SETTING_KEYS,
    inspect_model,
    metadata_settings,
    parse_settings,
    read_sidecar,
    round_to_multiple,
    sidecar_path,
)
from comfyvn_layers.runtime import clear_sessions
from hypothesis import given
from hypothesis import strategies as st

from .onnx_models import (
    brightness_model,
    colour_output_model,
    row_model,
    two_input_model,
    write,
    wrong_rank_model,
)


@pytest.fixture(autouse=True)
def fresh_sessions() -> Iterator[None]:
    clear_sessions()
    yield
    clear_sessions()


def test_a_fixed_model_is_read_from_its_graph_and_metadata(tmp_path: Path) -> None:
    info = inspect_model(write(tmp_path, "row.onnx", row_model(32)))
    assert (info.input_name, info.input_shape, info.input_type) == ("image", (1, 3, 32, 32), "float32")
    assert (info.height, info.width, info.multiple) == (32, 32, 1)
    assert (info.mean, info.std) == ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # from metadata, not the defaults
    assert (info.output_name, info.output_kind, info.layout) == ("depth", "depth", "NCHW")
    assert len(info.sha256) == 64
    described = info.describe()
    assert described["file"] == "row.onnx" and str(tmp_path) not in json.dumps(described)
    assert described["input"] == [1, 3, 32, 32]


def test_a_dynamic_model_is_fed_the_default_size_rounded_to_its_multiple(tmp_path: Path) -> None:
    info = inspect_model(write(tmp_path, "dyn.onnx", brightness_model(None)))
    assert info.input_shape == (1, 3, None, None)
    assert (info.height, info.width, info.multiple) == (518, 518, 14)


def test_the_sidecar_next_to_the_model_overrides_its_metadata(tmp_path: Path) -> None:
    model = write(tmp_path, "dyn.onnx", brightness_model(None))
    sidecar_path(model).write_text(
        json.dumps({"input_size": [300, 200], "output": "inverse_depth", "mean": [0.5, 0.5, 0.5]})
    )
    assert sidecar_path(model).name == "dyn.json"
    info = inspect_model(model)
    # 300 / 14 = 21.4 -> 21 * 14; 200 / 14 = 14.3 -> 14 * 14
    assert (info.height, info.width) == (294, 196)
    assert info.output_kind == "inverse_depth"  # the metadata said "depth"
    assert info.mean == (0.5, 0.5, 0.5) and info.std == (1.0, 1.0, 1.0)


def test_a_sidecar_mapping_may_be_given_directly(tmp_path: Path) -> None:
    model = write(tmp_path, "dyn.onnx", brightness_model(None))
    info = inspect_model(model, {"input_size": 64, "multiple": 32})
    assert (info.height, info.width, info.multiple) == (64, 64, 32)


def test_a_sidecar_size_that_contradicts_a_fixed_input_is_refused(tmp_path: Path) -> None:
    model = write(tmp_path, "row.onnx", row_model(32))
    with pytest.raises(Unprocessable) as caught:
        inspect_model(model, {"input_size": 64})
    assert caught.value.code == "invalid_model" and "32x32" in caught.value.message


def test_without_settings_the_common_model_defaults_apply(tmp_path: Path) -> None:
    model = write(tmp_path, "plain.onnx", brightness_model(64, output=None, metadata={"mean": None, "std": None}))
    info = inspect_model(model)
    assert info.output_kind == "inverse_depth"  # MiDaS and Depth Anything give inverse depth
    assert info.mean == (0.485, 0.456, 0.406) and info.std == (0.229, 0.224, 0.225)


def _truncated() -> bytes:
    data = row_model(32)
    return data[: len(data) // 2]


BAD_MODELS = {
    "two inputs": (two_input_model, "2 inputs"),
    "wrong rank": (wrong_rank_model, "4-D"),
    "colour output": (colour_output_model, "(N, 1, H, W)"),
    "not onnx": (lambda: b"PNG? no: plain text, not a protobuf at all\n" * 20, "not an ONNX model"),
    "truncated": (_truncated, "truncated"),
    "empty": (lambda: b"", "unusable"),
}


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_a_bad_model_is_unprocessable_naming_the_file_by_base_name_only(tmp_path: Path, case: str) -> None:
    build, words = BAD_MODELS[case]
    model = write(tmp_path, "bad model.onnx", build())
    with pytest.raises(Unprocessable) as caught:
        inspect_model(model)
    body = json.dumps(caught.value.to_dict())
    assert caught.value.code == "invalid_model" and caught.value.field == "model"
    assert "'bad model.onnx'" in caught.value.message and words in caught.value.message
    assert str(tmp_path) not in body and "/tmp" not in body


def test_a_missing_model_is_not_found_without_its_folder(tmp_path: Path) -> None:
    with pytest.raises(NotFound) as caught:
        inspect_model(tmp_path / "nowhere.onnx")
    assert caught.value.code == "model_not_found" and str(tmp_path) not in caught.value.message


BAD_SIDECARS = {
    "not json": (b"{input_size: 518", "not valid JSON"),
    "not an object": (b"[518, 518]", "JSON object"),
    "unknown key": (b'{"inputsize": 518}', "unknown key 'inputsize'"),
    "size zero": (b'{"input_size": [0, 518]}', "input_size"),
    "size text": (b'{"input_size": "518"}', "input_size"),
    "three sides": (b'{"input_size": [1, 2, 3]}', "input_size"),
    "mean of two": (b'{"mean": [0.5, 0.5]}', "mean"),
    "std zero": (b'{"std": [0.2, 0, 0.2]}', "std"),
    "mean in 0..255": (b'{"mean": [123.7, 116.3, 103.5]}', "0..1 scale"),
    "bool multiple": (b'{"multiple": true}', "multiple"),
    "output word": (b'{"output": "disparity"}', "output"),
    "not utf-8": (b'{"output": "\xff"}', "not valid JSON"),
    "huge": (b'{"mean": [' + b"0, " * 40000 + b"0]}", "KB"),
}


@pytest.mark.parametrize("case", sorted(BAD_SIDECARS))
def test_a_malformed_sidecar_is_unprocessable_naming_it(tmp_path: Path, case: str) -> None:
    data, words = BAD_SIDECARS[case]
    model = write(tmp_path, "dyn.onnx", brightness_model(None))
    sidecar_path(model).write_bytes(data)
    with pytest.raises(Unprocessable) as caught:
        inspect_model(model)
    assert caught.value.code == "invalid_model" and caught.value.field == "sidecar"
    assert "'dyn.json'" in caught.value.message and words in caught.value.message
    assert str(tmp_path) not in json.dumps(caught.value.to_dict())


def test_bad_metadata_is_refused_like_a_bad_sidecar(tmp_path: Path) -> None:
    model = write(tmp_path, "meta.onnx", brightness_model(64, metadata={"std": "[0, 1, 1]"}))
    with pytest.raises(Unprocessable) as caught:
        inspect_model(model)
    assert caught.value.code == "invalid_model" and "'meta.onnx' metadata" in caught.value.message


@pytest.mark.parametrize(("value", "multiple", "expected"), [(518, 14, 518), (520, 14, 518), (5, 14, 14), (33, 32, 32)])
def test_round_to_multiple(value: int, multiple: int, expected: int) -> None:
    assert round_to_multiple(value, multiple) == expected


# -- property tests of the settings parsers --------------------------------------------------------------

unit = st.floats(min_value=-10, max_value=10, allow_nan=False)
sides = st.integers(min_value=1, max_value=4096)
valid_settings = st.fixed_dictionaries(
    {},
    optional={
        "input_size": st.one_of(sides, st.lists(sides, min_size=2, max_size=2)),
        "multiple": st.integers(min_value=1, max_value=256),
        "mean": st.lists(unit, min_size=3, max_size=3),
        "std": st.lists(st.floats(min_value=1e-3, max_value=10), min_size=3, max_size=3),
        "output": st.sampled_from(["depth", "inverse_depth"]),
    },
)


def _expected(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    if "input_size" in out:
        size = out["input_size"]
        out["input_size"] = (size, size) if isinstance(size, int) else tuple(size)
    for key in ("mean", "std"):
        if key in out:
            out[key] = tuple(float(v) for v in out[key])
    return out


@given(valid_settings)
def test_valid_settings_parse_to_their_normal_form_from_a_sidecar_and_from_metadata(data: dict[str, Any]) -> None:
    assert parse_settings(data, where="sidecar") == _expected(data)
    as_metadata = {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
    assert metadata_settings({**as_metadata, "author": "someone"}, where="metadata") == _expected(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(st.sampled_from([*SETTING_KEYS, "extra"]), json_values, max_size=6))
def test_any_sidecar_object_either_parses_or_is_refused_as_invalid_model(data: dict[str, Any]) -> None:
    try:
        parsed = parse_settings(data, where="sidecar")
    except Unprocessable as exc:
        assert exc.code == "invalid_model" and exc.message.startswith("sidecar: ")
    else:
        assert set(parsed) == set(data) - {"extra"} and "extra" not in data


@given(st.dictionaries(st.sampled_from(SETTING_KEYS), st.text(max_size=30), max_size=5))
def test_any_metadata_text_either_parses_or_is_refused_as_invalid_model(metadata: dict[str, str]) -> None:
    try:
        parsed = metadata_settings(metadata, where="metadata")
    except Unprocessable as exc:
        assert exc.code == "invalid_model"
    else:
        assert set(parsed) == set(metadata)


@given(st.binary(max_size=200))
def test_any_sidecar_bytes_either_parse_or_are_refused_as_invalid_model(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.json"
        path.write_bytes(data)
        try:
            read_sidecar(path)
        except Unprocessable as exc:
            assert exc.code == "invalid_model" and exc.field == "sidecar" and folder not in exc.message
