"""Per-character LoRA stacks: validated in and out, stored atomically below the data root."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from comfyvn.errors import ComfyVNError, Invalid, TooLarge, Unprocessable
from comfyvn_comfyui.loras import MAX_ENTRIES, LoraEntry, LoraStore, check_character_id, parse_entries
from hypothesis import given
from hypothesis import strategies as st


def test_round_trip_and_file_shape(tmp_path: Path) -> None:
    store = LoraStore(tmp_path)
    assert store.get("mira_vale") == []
    stored = store.set(
        "mira_vale",
        [
            {"name": "mira_v2.safetensors", "strength_model": 0.8, "strength_clip": 0.6, "sha256": "a" * 64},
            LoraEntry("film-grain.safetensors"),
        ],
    )
    assert stored == [
        LoraEntry("mira_v2.safetensors", 0.8, 0.6, "a" * 64),
        LoraEntry("film-grain.safetensors", 1.0, 1.0, None),
    ]
    path = tmp_path / "characters" / "mira_vale" / "lora.json"
    assert store.path("mira_vale") == path.resolve()
    assert json.loads(path.read_text("utf-8")) == {
        "loras": [
            {"name": "mira_v2.safetensors", "strength_model": 0.8, "strength_clip": 0.6, "sha256": "a" * 64},
            {"name": "film-grain.safetensors", "strength_model": 1.0, "strength_clip": 1.0},
        ]
    }
    assert store.get("mira_vale") == stored
    assert store.set("mira_vale", []) == [] and store.get("mira_vale") == []
    assert not [p for p in path.parent.iterdir() if p.name != "lora.json"]  # no temp files left behind


@pytest.mark.parametrize("bad", ["", "Mira", "../x", "a/b", ".hidden", "x" * 65, "a b", "é", 5, None])
def test_character_id_must_be_a_slug(tmp_path: Path, bad: object) -> None:
    store = LoraStore(tmp_path)
    with pytest.raises(Invalid) as caught:
        store.get(bad)  # type: ignore[arg-type]
    assert caught.value.field == "character_id"
    with pytest.raises(Invalid):
        store.set(bad, [])  # type: ignore[arg-type]
    assert not (tmp_path / "characters").exists()


@pytest.mark.parametrize(
    ("entries", "field"),
    [
        ([{"name": "a/b.safetensors"}], "loras.0.name"),
        ([{"name": "a\\b.safetensors"}], "loras.0.name"),
        ([{"name": ".."}], "loras.0.name"),
        ([{"name": ""}], "loras.0.name"),
        ([{"name": "x" * 256}], "loras.0.name"),
        ([{"name": "ok"}, {"name": "ok", "strength_model": 4.5}], "loras.1.strength_model"),
        ([{"name": "ok", "strength_clip": math.nan}], "loras.0.strength_clip"),
        ([{"name": "ok", "strength_clip": True}], "loras.0.strength_clip"),
        ([{"name": "ok", "strength_clip": "1"}], "loras.0.strength_clip"),
        ([{"name": "ok", "sha256": "ABC"}], "loras.0.sha256"),
        ([{"name": "ok", "weight": 1}], "loras.0.weight"),
        (["ok"], "loras.0"),
        ({"name": "ok"}, "loras"),
    ],
)
def test_bad_entries_name_the_field(tmp_path: Path, entries: object, field: str) -> None:
    with pytest.raises(Invalid) as caught:
        LoraStore(tmp_path).set("mira", entries)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert not (tmp_path / "characters" / "mira" / "lora.json").exists()


def test_too_many_entries(tmp_path: Path) -> None:
    with pytest.raises(TooLarge):
        LoraStore(tmp_path).set("mira", [{"name": f"l{i}"} for i in range(MAX_ENTRIES + 1)])


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'{"loras": [{"name": "../../etc/passwd"}]}',
        b'{"loras": "x"}',
        b"[]",
        b"\xff\xfe",
        b'{"loras": []}' + b" " * 70_000,
    ],
)
def test_unusable_file_is_unprocessable_naming_the_character(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "characters" / "mira" / "lora.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(Unprocessable) as caught:
        LoraStore(tmp_path).get("mira")
    assert "'mira'" in caught.value.message and caught.value.field == "character_id"
    assert str(tmp_path) not in caught.value.message


def test_unreadable_file_is_unprocessable(tmp_path: Path) -> None:
    # A folder where the file should be: reading it fails with an OSError, not FileNotFoundError.
    (tmp_path / "characters" / "mira" / "lora.json").mkdir(parents=True)
    with pytest.raises(Unprocessable):
        LoraStore(tmp_path).get("mira")


def test_to_wire_omits_unknown_hash() -> None:
    assert LoraEntry("a").to_wire() == {"name": "a", "strength_model": 1.0, "strength_clip": 1.0}


names = st.text(min_size=0, max_size=300)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10), st.booleans(), st.none(), st.text(max_size=3)
)


@given(name=names, model=numbers, clip=numbers)
def test_validation_accepts_exactly_the_documented_entries(name: str, model: object, clip: object) -> None:
    def ok_strength(value: object) -> bool:
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and -4 <= value <= 4
        )

    ok_name = (
        bool(name.strip())
        and len(name) <= 255
        and name not in (".", "..")
        and not any(c in "/\\" or ord(c) < 32 or ord(c) == 127 for c in name)
    )
    entry = {"name": name, "strength_model": model, "strength_clip": clip}
    try:
        parsed = parse_entries([entry])
    except ComfyVNError as exc:
        assert isinstance(exc, Invalid)
        assert not (ok_name and ok_strength(model) and ok_strength(clip))
        return
    assert ok_name and ok_strength(model) and ok_strength(clip)
    assert parsed == [LoraEntry(name, float(model), float(clip))]  # type: ignore[arg-type]


@given(st.text(max_size=70))
def test_character_id_check_matches_the_slug_rule(text: str) -> None:
    expected = re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,63}", text) is not None
    try:
        check_character_id(text)
    except Invalid:
        assert not expected
    else:
        assert expected
