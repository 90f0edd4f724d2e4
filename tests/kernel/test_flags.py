from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from comfyvn import Kernel, hookimpl
from comfyvn.errors import ComfyVNError, FeatureDisabled, NotFound
from comfyvn.flags import FeatureFlags
from hypothesis import given
from hypothesis import strategies as st


class Flagged:
    name = "flagged"

    @hookimpl
    def register_flags(self, register: Any) -> None:
        register("enable_observability", False, "Telemetry.", aliases=["enable_privacy_telemetry"])
        register("enable_weather_planner", True, "Weather planning.")


def config_file(kernel: Kernel) -> Path:
    return kernel.paths.config / "comfyvn.json"


def test_defaults_file_and_env_in_order(make_kernel: Callable[..., Kernel]) -> None:
    kernel = make_kernel(Flagged())
    assert kernel.flags.snapshot() == {"enable_observability": False, "enable_weather_planner": True}
    config_file(kernel).parent.mkdir(parents=True)
    config_file(kernel).write_text(json.dumps({"features": {"enable_weather_planner": False}}))
    kernel.flags.refresh()
    assert kernel.flags.get("enable_weather_planner").source == "file"
    assert not kernel.flags.is_enabled("enable_weather_planner")
    env_kernel = make_kernel(Flagged(), env={"COMFYVN_FEATURE_ENABLE_WEATHER_PLANNER": "1"})
    state = env_kernel.flags.get("enable_weather_planner")
    assert (state.value, state.source) == (True, "env")


def test_the_config_document_follows_the_file(make_kernel: Callable[..., Kernel]) -> None:
    """`Kernel.config` (plugin settings such as ``comfyui.style``) sees an edit another process made, at once."""
    kernel = make_kernel(Flagged())
    assert kernel.config == {}
    config_file(kernel).parent.mkdir(parents=True)
    config_file(kernel).write_text(json.dumps({"comfyui": {"style": "pixel"}}))
    assert kernel.config == {"comfyui": {"style": "pixel"}}
    kernel.config["comfyui"]["style"] = "changed"  # a copy: callers cannot change what others read
    config_file(kernel).write_text(json.dumps({"comfyui": {"style": "painterly", "checkpoint": "a.safetensors"}}))
    assert kernel.config["comfyui"] == {"style": "painterly", "checkpoint": "a.safetensors"}


def test_legacy_alias_in_file_and_env(make_kernel: Callable[..., Kernel]) -> None:
    kernel = make_kernel(Flagged())
    config_file(kernel).parent.mkdir(parents=True)
    config_file(kernel).write_text(json.dumps({"features": {"enable_privacy_telemetry": True}}))
    kernel.flags.refresh()
    assert kernel.flags.is_enabled("enable_observability")
    assert kernel.flags.is_enabled("enable_privacy_telemetry")
    env_kernel = make_kernel(Flagged(), env={"COMFYVN_FEATURE_ENABLE_PRIVACY_TELEMETRY": "off"})
    assert env_kernel.flags.get("enable_observability").source == "env"


def test_set_persists_keeps_unknown_names_and_syncs_aliases(make_kernel: Callable[..., Kernel]) -> None:
    kernel = make_kernel(Flagged())
    path = config_file(kernel)
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps(
            {"server": {"port": 9}, "features": {"enable_retired_thing": True, "enable_privacy_telemetry": False}}
        )
    )
    kernel.flags.refresh()
    assert kernel.flags.unknown() == {"enable_retired_thing": True}
    kernel.flags.set("enable_observability", "on")
    saved = json.loads(path.read_text())
    assert saved == {
        "server": {"port": 9},
        "features": {"enable_retired_thing": True, "enable_privacy_telemetry": True, "enable_observability": True},
    }
    assert [e.payload for e in kernel.events.history(event="on_feature_flag_changed")] == [
        {"name": "enable_observability", "value": True, "previous": False, "source": "set"}
    ]


def test_refresh_emits_for_external_edits(make_kernel: Callable[..., Kernel]) -> None:
    kernel = make_kernel(Flagged())
    config_file(kernel).parent.mkdir(parents=True)
    config_file(kernel).write_text(json.dumps({"features": {"enable_weather_planner": False}}))
    kernel.flags.refresh()
    changes = kernel.events.history(event="on_feature_flag_changed")
    assert [c.payload["source"] for c in changes] == ["refresh"]
    assert changes[0].payload["name"] == "enable_weather_planner"


def test_unknown_flag_and_bad_value(make_kernel: Callable[..., Kernel]) -> None:
    kernel = make_kernel(Flagged())
    with pytest.raises(NotFound) as missing:
        kernel.flags.get("enable_nothing")
    assert missing.value.field == "name"
    with pytest.raises(ComfyVNError) as bad:
        kernel.flags.set("enable_observability", "maybe")
    assert bad.value.code == "invalid_boolean"


def test_require_raises_feature_disabled_naming_the_flag(make_kernel: Callable[..., Kernel]) -> None:
    kernel = make_kernel(Flagged())
    kernel.flags.require("enable_weather_planner")
    with pytest.raises(FeatureDisabled) as info:
        kernel.flags.require("enable_privacy_telemetry")
    assert info.value.to_dict()["error"]["code"] == "feature_disabled"
    assert info.value.to_dict()["error"]["flag"] == "enable_observability"


def test_registrar_checks_types_and_duplicates(make_kernel: Callable[..., Kernel]) -> None:
    flags = make_kernel(Flagged()).flags
    register = flags.registrar("other")
    with pytest.raises(ValueError, match="already declared by 'flagged'"):
        register("enable_privacy_telemetry", True, "reuse of an alias")
    with pytest.raises(TypeError):
        register("enable_new", "yes", "not a bool")
    with pytest.raises(ValueError):
        register("Enable-New", True, "bad name")


def test_corrupt_file_is_reported_and_never_overwritten(make_kernel: Callable[..., Kernel]) -> None:
    kernel = make_kernel(Flagged())
    path = config_file(kernel)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    kernel.flags.refresh()
    assert kernel.flags.file_error and kernel.flags.is_enabled("enable_weather_planner")
    with pytest.raises(ComfyVNError, match="refusing to overwrite"):
        kernel.flags.set("enable_weather_planner", False)
    assert path.read_text() == "{not json"


def test_interrupted_set_leaves_the_old_file(
    make_kernel: Callable[..., Kernel], monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel = make_kernel(Flagged())
    kernel.flags.set("enable_weather_planner", False)
    before = config_file(kernel).read_bytes()

    def crash(src: str, dst: str) -> None:
        raise OSError("killed before rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        kernel.flags.set("enable_weather_planner", True)
    assert config_file(kernel).read_bytes() == before
    assert [p.name for p in config_file(kernel).parent.iterdir()] == ["comfyvn.json"]


names = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)


@given(
    values=st.dictionaries(names, st.booleans(), min_size=1, max_size=8),
    extra=st.dictionaries(names.map(lambda n: "x_" + n), st.integers() | st.text(max_size=5), max_size=3),
)
def test_flags_round_trip_through_the_file(
    tmp_path_factory: pytest.TempPathFactory, values: dict[str, bool], extra: dict[str, Any]
) -> None:
    path = tmp_path_factory.mktemp("flags") / "comfyvn.json"
    path.write_text(json.dumps({"features": extra}))
    flags = FeatureFlags(path, env={})
    register = flags.registrar("t")
    for name, value in values.items():
        register(name, not value, "generated")
    flags.refresh()
    for name, value in values.items():
        flags.set(name, value)
    reread = FeatureFlags(path, env={})
    register = reread.registrar("t")
    for name, value in values.items():
        register(name, not value, "generated")
    reread.refresh()
    assert reread.snapshot() == values
    assert reread.unknown() == {k: v for k, v in extra.items() if k not in values}
