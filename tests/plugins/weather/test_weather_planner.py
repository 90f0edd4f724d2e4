"""The weather planner and store: merge, aliases, fallback, version, hash, determinism."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from typing import Any

import pytest
from comfyvn.errors import ComfyVNError
from comfyvn_server.errors import http_status
from comfyvn_weather.planner import WorldState, canonical_value, compile_plan, merge_state
from comfyvn_weather.presets import ALIASES, CANONICAL, DEFAULTS, FIELDS
from comfyvn_weather.store import WeatherPlanStore
from comfyvn_weather.wire import plan_to_dict
from hypothesis import given, settings
from hypothesis import strategies as st

states = st.builds(WorldState, *(st.sampled_from(CANONICAL[f]) for f in FIELDS))
raw_values = st.one_of(
    st.none(), st.text(max_size=12), st.sampled_from([v for f in FIELDS for v in (*CANONICAL[f], *ALIASES[f])])
)
partials = st.fixed_dictionaries({}, optional={f: raw_values for f in FIELDS})


def test_the_wire_example() -> None:
    state, warnings = merge_state(WorldState(), {"weather": "rain", "time_of_day": "dusk"})
    plan = plan_to_dict(compile_plan(state, warnings))
    assert plan["state"] == {"time_of_day": "dusk", "weather": "rain", "ambience": "calm"}
    scene = plan["scene"]
    assert scene["lut"]["id"] == "lut_dusk_rain" and scene["lut"]["path"] == "luts/dusk_rain.cube"
    assert [layer["role"] for layer in scene["background_layers"]] == ["base", "weather"]
    assert set(scene["light_rig"]) == {"key", "fill", "rim", "temperature", "exposure", "contrast", "saturation"}
    assert scene["bake_ready"] is True and scene["summary"]["lut"] == "luts/dusk_rain.cube"
    assert set(plan["transition"]) == {"type", "duration", "ease", "exposure_shift", "sfx_fade", "particle_fade"}
    assert plan["particles"]["type"] == "rain" and plan["particles"]["emitter"] == "rain_dusk"
    assert {"loop", "gain_db", "tags", "fade_in", "fade_out"} <= set(plan["sfx"])
    assert plan["meta"] == {"hash": state.hash, "warnings": [], "version": 0, "updated_at": None}


def test_clear_weather_has_no_particles_and_fog_has_a_depth_mask() -> None:
    assert compile_plan(WorldState(weather="clear")).particles is None
    roles = [layer.role for layer in compile_plan(WorldState(weather="fog")).scene.background_layers]
    assert roles == ["base", "weather", "depth_mask"]


@pytest.mark.parametrize("field", FIELDS)
def test_every_alias_resolves_to_a_canonical_value(field: str) -> None:
    for alias, target in ALIASES[field].items():
        assert target in CANONICAL[field]
        assert canonical_value(field, alias.upper().replace("_", " ")) == (target, None)


def test_unknown_values_fall_back_to_the_default_with_a_warning() -> None:
    state, warnings = merge_state(WorldState("night", "snow", "tense"), {"weather": "meteor shower"})
    assert state == WorldState("night", "clear", "tense")
    assert warnings == ("weather: unknown value 'meteor shower', fell back to 'clear'",)


@pytest.mark.parametrize(
    ("partial", "field"),
    [({"weather": 3}, "weather"), ({"mood": "calm"}, "mood"), ({"ambience": ["calm"]}, "ambience")],
)
def test_wrong_types_and_unknown_fields_name_the_field(partial: dict[str, Any], field: str) -> None:
    with pytest.raises(ComfyVNError) as info:
        merge_state(WorldState(), partial)
    assert info.value.field == field and http_status(info.value) == 400


@given(states, partials)
def test_partial_updates_merge(current: WorldState, partial: dict[str, Any]) -> None:
    merged, warnings = merge_state(current, partial)
    for field in FIELDS:
        raw = partial.get(field)
        if raw is None:
            assert getattr(merged, field) == getattr(current, field)
        else:
            value, warning = canonical_value(field, raw)
            assert getattr(merged, field) == value
            assert (warning in warnings) if warning else True
            if warning:
                assert value == DEFAULTS[field]


@given(states, states)
def test_the_hash_changes_exactly_when_the_state_changes(a: WorldState, b: WorldState) -> None:
    assert (a.hash == b.hash) == (a == b)
    assert (compile_plan(a) == compile_plan(b)) == (a == b)


@given(st.lists(partials, min_size=1, max_size=8))
def test_the_store_versions_each_update(updates: list[dict[str, Any]]) -> None:
    ticks = iter(range(1000))
    store = WeatherPlanStore(clock=lambda: f"t{next(ticks)}")
    assert store.snapshot().meta.version == 0
    for number, partial in enumerate(updates, start=1):
        before = store.snapshot()
        plan = store.update(partial)
        expected, warnings = merge_state(before.state, partial)
        assert plan.meta.version == number and plan.meta.updated_at == f"t{number}"
        assert plan.state == expected and plan.meta.warnings == warnings
        assert (plan.meta.hash != before.meta.hash) == (plan.state != before.state)
        assert store.snapshot() is plan
    history = store.history()
    assert [h["version"] for h in history] == list(range(len(updates) + 1))
    assert history[-1]["hash"] == store.snapshot().meta.hash


def test_a_failed_update_changes_nothing() -> None:
    store = WeatherPlanStore()
    with pytest.raises(ComfyVNError):
        store.update({"weather": 5})
    assert store.snapshot().meta.version == 0 and len(store.history()) == 1


def digest(partials_batch: list[dict[str, Any]]) -> list[str]:
    out = []
    for partial in partials_batch:
        state, warnings = merge_state(WorldState(), partial)
        plan = plan_to_dict(compile_plan(state, warnings))
        out.append(hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest())
    return out


CHILD = """
import json, sys
sys.path.insert(0, {here!r})
from test_weather_planner import digest
print(json.dumps(digest(json.load(sys.stdin))))
"""


@settings(max_examples=3)
@given(st.lists(partials, min_size=1, max_size=20))
def test_plans_are_identical_across_processes(batch: list[dict[str, Any]]) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PYTHONHASHSEED="4242")
    child = subprocess.run(
        [sys.executable, "-c", CHILD.format(here=here)],
        input=json.dumps(batch),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    assert json.loads(child.stdout) == digest(batch)


def test_docs_list_every_preset_and_alias() -> None:
    from pathlib import Path

    from comfyvn_weather.presets import AMBIENCE, TIME_OF_DAY, WEATHER

    doc = (Path(__file__).parents[3] / "docs" / "weather.md").read_text(encoding="utf-8")
    for field in FIELDS:
        for name in (*CANONICAL[field], *ALIASES[field]):
            assert f"`{name}`" in doc, name
    for preset in TIME_OF_DAY.values():
        assert f"| {preset.temperature} |" in doc and f"`{preset.background}`" in doc
    for weather_preset in WEATHER.values():
        assert f"`{weather_preset.loop}` ({weather_preset.gain_db})" in doc
    for ambience in AMBIENCE.values():
        assert f"| {ambience.duration} | {ambience.ease} |" in doc
