"""Weather baked into Ren'Py exports: the pure contribution, then the real exporter and the real engine."""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import comfyvn_weather.plugin as weather_plugin
import pytest
from comfyvn import Kernel
from comfyvn.errors import ComfyVNError
from comfyvn_server.errors import http_status
from comfyvn_weather.bake import (
    OUTPUT,
    AssetIndex,
    bake_contribution,
    overlay_colour,
    render_contribution,
    scene_states,
)
from comfyvn_weather.planner import WorldState, compile_plan
from comfyvn_weather.presets import CANONICAL
from hypothesis import given
from hypothesis import strategies as st

WAV = (
    b"RIFF$\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00@\x1f\x00\x00@\x1f\x00\x00"
    b"\x01\x00\x08\x00data\x00\x00\x00\x00"
)
IMAGE_NAME = re.compile(r"^[a-z_][0-9a-z_]*$")
BAKE = {"bake_weather": True}


def project(
    scenes: dict[str, dict[str, Any]], metadata: dict[str, Any] | None = None, root: Path | None = None
) -> SimpleNamespace:
    """A duck-typed project: what the exporter passes (``meta``, ``scenes``, ``root``)."""
    meta: dict[str, Any] = {"id": "wx", "title": "Weather"}
    if metadata is not None:
        meta["metadata"] = metadata
    return SimpleNamespace(
        meta=meta,
        root=root,
        scenes={sid: {"id": sid, "start": "a", "nodes": [{"id": "a"}], **extra} for sid, extra in scenes.items()},
    )


def with_weather(state: Any) -> dict[str, Any]:
    return {"metadata": {"weather": state}}


# -- where a scene's state comes from ---------------------------------------------------------------


def test_scene_state_wins_then_project_fallback_then_nothing() -> None:
    p = project(
        {
            "a": with_weather({"time_of_day": "sunset", "weather": "rainy"}),
            "b": {},
            "c": with_weather(None),
            "d": {"metadata": {"rating": "E"}},
        },
        metadata={"weather": {"weather": "fog"}},
    )
    found = {s.scene_id: s for s in scene_states(p)}
    assert set(found) == {"a", "b", "d"}  # c opted out with an explicit null
    assert (found["a"].source, found["a"].state) == ("scene", WorldState("dusk", "rain", "calm"))
    assert (found["b"].source, found["b"].state) == ("project", WorldState("day", "fog", "calm"))
    assert found["b"].attribute == "day_fog_calm"
    assert scene_states(project({"a": {}, "b": {"metadata": {"weather": None}}})) == []


def test_unknown_values_fall_back_with_a_warning_that_reaches_the_file() -> None:
    result = bake_contribution(project({"s1": with_weather({"weather": "acid rain"})}), BAKE)
    assert result is not None
    warning = "scene 's1': weather: unknown value 'acid rain', fell back to 'clear'"
    assert warning in result["warnings"]
    assert f"## warning: {warning}" in result["files"][OUTPUT]
    assert result["scene_lines"]["s1"][0].startswith("show cvn_weather day_clear_calm zorder 10 with ")


@pytest.mark.parametrize(
    ("state", "field"),
    [
        ("rain", "scenes.s1.metadata.weather"),
        ({"weather": 3}, "scenes.s1.metadata.weather.weather"),
        ({"wind": "strong"}, "scenes.s1.metadata.weather.wind"),
    ],
)
def test_a_malformed_scene_state_is_an_error_naming_the_field(state: Any, field: str) -> None:
    with pytest.raises(ComfyVNError) as caught:
        bake_contribution(project({"s1": with_weather(state)}), BAKE)
    assert (caught.value.field, caught.value.code, http_status(caught.value)) == (field, "invalid_weather_state", 400)


def test_a_malformed_project_state_names_the_project_field() -> None:
    with pytest.raises(ComfyVNError) as caught:
        scene_states(project({"s1": {}}, metadata={"weather": ["fog"]}))
    assert caught.value.field == "project.metadata.weather"


def test_nothing_is_contributed_without_bake_weather_or_without_any_state() -> None:
    rainy = project({"s1": with_weather({"weather": "rain"})})
    assert bake_contribution(rainy, {}) is None
    assert bake_contribution(rainy, {"bake_weather": False, "dry_run": True}) is None
    assert bake_contribution(project({"s1": {}}), BAKE) is None
    assert bake_contribution(SimpleNamespace(), BAKE) is None  # not a project at all: nothing to read


# -- the lines and the file -------------------------------------------------------------------------


def test_rain_scene_lines_and_definitions(tmp_path: Path) -> None:
    (tmp_path / "assets/ambience").mkdir(parents=True)
    (tmp_path / "assets/ambience/rain_loop.wav").write_bytes(WAV)
    p = project({"s1": with_weather({"time_of_day": "dusk", "weather": "rain", "ambience": "tense"})}, root=tmp_path)
    result = bake_contribution(p, BAKE)
    assert result is not None
    assert result["scene_lines"] == {
        "s1": [
            "show cvn_weather_fx dusk_rain_tense zorder 11",
            "show cvn_weather dusk_rain_tense zorder 10 with cvn_weather_crossfade_800",
            'play sound "audio/weather/rain_loop.wav" loop fadein 1.0 volume 0.608',
        ]
    }
    assert result["files"]["game/audio/weather/rain_loop.wav"] == WAV
    text = result["files"][OUTPUT]
    assert "define cvn_weather_crossfade_800 = Dissolve(0.8)\n" in text
    assert re.search(r'^image cvn_weather dusk_rain_tense = Solid\("#[0-9a-f]{8}"\)$', text, re.M)
    assert re.search(
        r'^image cvn_weather_fx dusk_rain_tense = SnowBlossom\(Solid\("#98adc4aa", xysize=\(2, 22\)\), '
        r"count=42, .*yspeed=\(700, 950\)",
        text,
        re.M,
    )
    assert result["warnings"] == [] and "## warning" not in text


def test_missing_ambience_is_not_invented_but_reported(tmp_path: Path) -> None:
    (tmp_path / "assets/music").mkdir(parents=True)
    (tmp_path / "assets/music/snow_wind.txt").write_text("not audio")
    p = project(
        {"s1": with_weather({"time_of_day": "night", "weather": "snow"}), "s2": with_weather({"weather": "clear"})},
        root=tmp_path,
    )
    result = bake_contribution(p, BAKE)
    assert result is not None
    s1 = result["scene_lines"]["s1"]
    assert not any(line.startswith("play sound") for line in s1) and s1[-1] == "stop sound fadeout 1.8"
    assert result["scene_lines"]["s2"][0] == "hide cvn_weather_fx"  # clear sky: the previous snow stops
    assert list(result["files"]) == [OUTPUT]
    assert any("'ambience/snow_wind.ogg'" in w and w.startswith("scene 's1'") for w in result["warnings"])
    header = [line for line in result["files"][OUTPUT].splitlines() if line.startswith("## warning: ")]
    assert len(header) == len(result["warnings"]) == 2
    assert 'SnowBlossom(Solid("#ffffffdd", xysize=(8, 8))' in result["files"][OUTPUT]


def test_storm_uses_a_flash_and_its_thunder_when_present(tmp_path: Path) -> None:
    (tmp_path / "assets/sfx/weather").mkdir(parents=True)
    (tmp_path / "assets/sfx/weather/thunder_roll.ogg").write_bytes(b"OggS thunder")
    (tmp_path / "assets/sfx/Storm_Loop.WAV").write_bytes(WAV)
    result = bake_contribution(
        project({"s1": with_weather({"weather": "stormy", "time_of_day": "night"})}, root=tmp_path), BAKE
    )
    assert result is not None
    assert result["scene_lines"]["s1"][1:] == [
        "show cvn_weather night_storm_calm zorder 10 with cvn_weather_flash_1200",
        'play sound "audio/weather/storm_loop.wav" loop fadein 1.5 volume 0.75',
        'play audio "audio/weather/thunder_roll.ogg"',
    ]
    assert 'define cvn_weather_flash_1200 = Fade(0.1, 0.0, 1.1, color="#ffffff")' in result["files"][OUTPUT]
    assert set(result["files"]) == {OUTPUT, "game/audio/weather/storm_loop.wav", "game/audio/weather/thunder_roll.ogg"}


def test_asset_lookup_prefers_the_exact_path_then_the_same_extension(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    for rel in ("ambience/rain_loop.ogg", "a/rain_loop.wav", "b/rain_loop.ogg", "z/fog_drone.mp3"):
        (assets / rel).parent.mkdir(parents=True, exist_ok=True)
        (assets / rel).write_bytes(rel.encode())
    index = AssetIndex(tmp_path)
    found = index.find("ambience/rain_loop.ogg")
    assert found is not None and found.source == assets / "ambience/rain_loop.ogg"
    (assets / "ambience/rain_loop.ogg").unlink()
    found = AssetIndex(tmp_path).find("ambience/rain_loop.ogg")
    assert found is not None and found.source == assets / "b/rain_loop.ogg"
    assert found.dest == "audio/weather/rain_loop.ogg"
    found = AssetIndex(tmp_path).find("ambience/fog_drone.ogg")
    assert found is not None and found.dest == "audio/weather/fog_drone.mp3"
    assert AssetIndex(tmp_path).find("ambience/snow_wind.ogg") is None
    assert AssetIndex(None).find("ambience/rain_loop.ogg") is None
    assert AssetIndex(tmp_path / "nowhere").find("ambience/rain_loop.ogg") is None


def test_a_symlink_out_of_the_project_is_not_used(tmp_path: Path) -> None:
    outside = tmp_path / "outside.wav"
    outside.write_bytes(WAV)
    (tmp_path / "p/assets/ambience").mkdir(parents=True)
    (tmp_path / "p/assets/ambience/rain_loop.wav").symlink_to(outside)
    assert AssetIndex(tmp_path / "p").find("ambience/rain_loop.ogg") is None


def test_overlay_colour_composites_darkness_sky_and_weather() -> None:
    # A clear day: only the white weather overlay at 0.35 * 0.3.
    assert overlay_colour(compile_plan(WorldState("day", "clear", "calm"))) == "#ffffff1b"
    for weather in CANONICAL["weather"]:
        day = int(overlay_colour(compile_plan(WorldState("day", weather, "calm")))[7:], 16)
        night = int(overlay_colour(compile_plan(WorldState("night", weather, "calm")))[7:], 16)
        assert night > day  # night adds darkness under the same weather


STATES = st.builds(
    lambda tod, wx, amb: {"time_of_day": tod, "weather": wx, "ambience": amb},
    *(st.sampled_from([*CANONICAL[f], None]) for f in ("time_of_day", "weather", "ambience")),
)
SCENES = st.dictionaries(
    st.text(min_size=1, max_size=12), st.one_of(STATES, st.none(), st.just("absent")), min_size=1, max_size=6
)


@given(scenes=SCENES, default=st.one_of(st.none(), STATES))
def test_contribution_is_deterministic_and_every_name_it_uses_is_defined(
    scenes: dict[str, Any], default: dict[str, Any] | None
) -> None:
    p = project(
        {sid: ({} if state == "absent" else with_weather(state)) for sid, state in scenes.items()},
        metadata={"weather": default} if default is not None else {},
    )
    first = bake_contribution(p, BAKE)
    again = bake_contribution(copy.deepcopy(p), BAKE)
    assert first == again  # same input, same bytes
    expected = {
        sid
        for sid, state in scenes.items()
        if state not in (None, "absent") or (state == "absent" and default is not None)
    }
    if first is None:
        assert not expected
        return
    assert set(first["scene_lines"]) == expected
    text = first["files"][OUTPUT]
    images = set(re.findall(r"^image (cvn_weather(?:_fx)? \S+) = ", text, re.M))
    defines = set(re.findall(r"^define (\S+) = ", text, re.M))
    for lines in first["scene_lines"].values():
        for line in lines:
            assert "\n" not in line
            if line.startswith("show "):
                name = re.match(r"show (\S+ \S+) zorder \d+(?: with (\S+))?$", line)
                assert name is not None and name[1] in images, line
                assert name[2] is None or name[2] in defines
                assert all(IMAGE_NAME.match(part) for part in name[1].split())
    for line in text.splitlines():
        assert line == "" or line.startswith(("## ", "##", "define ", "image ")), line


def test_render_of_no_scenes_is_none() -> None:
    assert render_contribution("p", [], {}) is None


# -- with the kernel: the optional hook ---------------------------------------------------------------


def test_the_plugin_loads_without_the_exporter(make_kernel: Callable[..., Kernel]) -> None:
    kernel = make_kernel(weather_plugin)
    assert [r.status for r in kernel.plugins.records.values()] == ["loaded"]
    assert kernel.pm.hook.renpy_export_contributions.spec is None  # no exporter: an unvalidated optional hook


# -- the real exporter and the real engine -------------------------------------------------------------

# The exporter is another plugin of the workspace (always installed for the suite); these tests need it and
# the real engine, the ones above do not.


@pytest.fixture
def baked_demo(tmp_path: Path) -> Path:
    """examples/demo with weather: the platform at dusk in the rain (tense), the train in the night snow, an
    epilogue in the project's default fog; only the rain loop exists as a file."""
    from comfyvn_renpy import find_demo_project

    root = tmp_path / "demo"
    shutil.copytree(find_demo_project(), root)
    (root / "assets/ambience").mkdir()
    shutil.copyfile(root / "assets/music/rails.wav", root / "assets/ambience/rain_loop.wav")
    for scene_id, state in (
        ("platform", {"time_of_day": "dusk", "weather": "rain", "ambience": "tense"}),
        ("night_train", {"time_of_day": "night", "weather": "snow"}),
    ):
        path = root / "scenes" / f"{scene_id}.json"
        scene = json.loads(path.read_text(encoding="utf-8"))
        scene.setdefault("metadata", {})["weather"] = state
        path.write_text(json.dumps(scene, indent=2), encoding="utf-8")
    (root / "scenes/epilogue.json").write_text(
        json.dumps(
            {
                "id": "epilogue",
                "title": "Epilogue",
                "start": "mist",
                "nodes": [{"id": "mist", "type": "narration", "text": "The station fades into the mist.", "end": True}],
            }
        )
    )
    meta = json.loads((root / "project.json").read_text(encoding="utf-8"))
    meta["scenes"].append("epilogue")
    meta.setdefault("metadata", {})["weather"] = {"weather": "fog", "time_of_day": "dawn", "ambience": "mystic"}
    (root / "project.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return root


def _kernel(make_kernel: Callable[..., Kernel]) -> Kernel:
    import comfyvn_renpy.plugin as renpy_plugin
    import comfyvn_scenario.plugin as scenario_plugin

    return make_kernel(scenario_plugin, renpy_plugin, weather_plugin)


def _export(kernel: Kernel, project_dir: Path, out: Path, *, bake: bool, check: bool = False) -> dict[str, Any]:
    from comfyvn_renpy import ExportOptions, ExportRequest, run_export

    return run_export(
        kernel, ExportRequest(project=project_dir, out=out, check=check, options=ExportOptions(bake_weather=bake))
    )


def _read(out: Path, rel: str) -> str:
    return (out / rel).read_text(encoding="utf-8")


def test_baked_export_lints_clean_with_the_real_engine(
    make_kernel: Callable[..., Kernel], baked_demo: Path, tmp_path: Path
) -> None:
    from comfyvn_renpy import find_engine

    assert find_engine() is not None, "Ren'Py is not installed: `apt-get install -y renpy` (see docs/renpy.md)"
    out = tmp_path / "out"
    result = _export(_kernel(make_kernel), baked_demo, out, bake=True, check=True)
    check = result["check"]
    assert check["configured"] and check["ok"], check
    assert set(check["builds"]) == {".", "forks/alice", "forks/bob"}
    assert all(build["problems"] == [] for build in check["builds"].values())

    for root in ("", "forks/alice/", "forks/bob/"):
        platform = _read(out, f"{root}game/scenes/scene_platform.rpy")
        assert (
            "    play music 'audio/station_hum.wav' fadein 1.5 loop volume 0.6\n"
            "    show cvn_weather_fx dusk_rain_tense zorder 11\n"
            "    show cvn_weather dusk_rain_tense zorder 10 with cvn_weather_crossfade_800\n"
            '    play sound "audio/weather/rain_loop.wav" loop fadein 1.0 volume 0.608\n'
            "    jump platform_arrival\n"
        ) in platform
        train = _read(out, f"{root}game/scenes/scene_night_train.rpy")
        assert (
            "    show cvn_weather_fx night_snow_calm zorder 11\n"
            "    show cvn_weather night_snow_calm zorder 10 with cvn_weather_crossfade_1200\n"
            "    stop sound fadeout 1.8\n"
        ) in train
        assert "play sound" not in train
        epilogue = _read(out, f"{root}game/scenes/scene_epilogue.rpy")
        assert "    show cvn_weather dawn_fog_mystic zorder 10 with cvn_weather_crossfade_1600\n" in epilogue
        assert (out / f"{root}game/audio/weather/rain_loop.wav").read_bytes() == (
            baked_demo / "assets/music/rails.wav"
        ).read_bytes()
    rpy = _read(out, "game/comfyvn_weather.rpy")
    assert "## scene epilogue: dawn, fog, mystic (project metadata) -> cvn_weather dawn_fog_mystic" in rpy
    assert "## warning: scene 'night_train': no ambience file for 'ambience/snow_wind.ogg'" in rpy
    assert "## warning: scene 'epilogue': no ambience file for 'ambience/fog_drone.ogg'" in rpy
    labels = json.loads(_read(out, "label_manifest.json"))
    assert labels["weather_bake"]["requested"] is True
    assert [c.removeprefix("comfyvn_") for c in labels["weather_bake"]["contributors"]] == ["weather"]
    files = json.loads(_read(out, "export_manifest.json"))["files"]
    assert {"game/comfyvn_weather.rpy", "game/audio/weather/rain_loop.wav"} <= set(files)

    again = _export(_kernel(make_kernel), baked_demo, tmp_path / "again", bake=True)
    assert again["ok"] and json.loads(_read(tmp_path / "again", "export_manifest.json"))["files"] == files


def test_baked_weather_plays_headless_with_the_real_engine(
    make_kernel: Callable[..., Kernel], baked_demo: Path, tmp_path: Path
) -> None:
    """Lint does not run scenes: play a derived testcase through both baked scenes (tint, particles, sound)."""
    from comfyvn_renpy import ExportOptions, ExportRequest, find_engine, run_export
    from comfyvn_renpy.testcases import MARKER

    engine = find_engine()
    assert engine is not None, "Ren'Py is not installed: `apt-get install -y renpy` (see docs/renpy.md)"
    out = tmp_path / "play"
    result = run_export(
        _kernel(make_kernel),
        ExportRequest(
            project=baked_demo, out=out, options=ExportOptions(bake_weather=True, testcases=True, pov_mode="disabled")
        ),
    )
    tests = _read(out, "game/tests.rpy")
    case = next(
        name
        for name in result["testcases"]
        if "night_train" in tests.split(f"testcase {name}:", 1)[1].split("testcase ", 1)[0]
    )
    run = engine.test(out, case, timeout=120)
    assert run.returncode == 0 and not run.timed_out and f"{MARKER} {case}" in run.stdout + run.stderr, run


def test_without_bake_weather_nothing_is_added(
    make_kernel: Callable[..., Kernel], baked_demo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "plain"
    _export(_kernel(make_kernel), baked_demo, out, bake=False)
    assert not (out / "game/comfyvn_weather.rpy").exists() and not (out / "game/audio/weather").exists()
    assert not any("cvn_weather" in p.read_text(encoding="utf-8") for p in out.rglob("*.rpy"))
    assert json.loads(_read(out, "label_manifest.json"))["weather_bake"] == {"requested": False, "contributors": []}


def test_cli_bake_weather_flag(make_kernel: Callable[..., Kernel], baked_demo: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner
    from comfyvn.cli import make_cli

    out = tmp_path / "cli"
    result = CliRunner().invoke(
        make_cli(_kernel(make_kernel)), ["export", "renpy", str(baked_demo), "--out", str(out), "--bake-weather"]
    )
    assert result.exit_code == 0, result.output
    assert "show cvn_weather dusk_rain_tense" in _read(out, "game/scenes/scene_platform.rpy")


def test_a_malformed_state_fails_the_export_naming_the_field(
    make_kernel: Callable[..., Kernel], baked_demo: Path, tmp_path: Path
) -> None:
    path = baked_demo / "scenes/platform.json"
    scene = json.loads(path.read_text(encoding="utf-8"))
    scene["metadata"]["weather"] = {"weather": 7}
    path.write_text(json.dumps(scene), encoding="utf-8")
    with pytest.raises(ComfyVNError) as caught:
        _export(_kernel(make_kernel), baked_demo, tmp_path / "bad", bake=True)
    assert caught.value.field == "scenes.platform.metadata.weather.weather"
    assert not (tmp_path / "bad").exists()
