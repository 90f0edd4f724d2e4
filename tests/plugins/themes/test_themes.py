"""Theme templates, plan deltas, routes and ``comfyvn themes``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner
from comfyvn import Kernel
from comfyvn.cli import make_cli
from comfyvn.errors import ComfyVNError
from comfyvn_server.errors import http_status
from comfyvn_themes.planner import CharacterRequest, apply_theme, find_template
from comfyvn_themes.templates import TEMPLATES
from comfyvn_themes.wire import parse_apply, parse_characters
from hypothesis import given, settings
from hypothesis import strategies as st

Http = Any
WEATHER_VALUES = {
    "time_of_day": {"dawn", "day", "dusk", "night"},
    "weather": {"clear", "overcast", "rain", "storm", "snow", "fog"},
    "mood": {"calm", "tense", "mystic", "energetic", "melancholic"},
}


def test_the_five_templates_are_complete() -> None:
    assert [t.label for t in TEMPLATES.values()] == ["Modern", "Fantasy", "Romantic", "Dark", "Action"]
    for template in TEMPLATES.values():
        assert len(template.luts) >= 2 and template.music.pack and template.prompt.style
        assert template.ambience.sfx and template.roles
        # The ambience speaks the weather planner's vocabulary, so a delta can feed /api/weather/state.
        for field, allowed in WEATHER_VALUES.items():
            assert getattr(template.ambience, field) in allowed


def test_find_template_is_case_insensitive_and_404s_naming_the_field() -> None:
    assert find_template("DARK").id == "dark" and find_template(" Romantic ").id == "romantic"
    with pytest.raises(ComfyVNError) as info:
        find_template("vaporwave")
    assert http_status(info.value) == 404 and info.value.field == "theme"


def test_delta_covers_every_area_and_character_roles() -> None:
    delta = apply_theme(TEMPLATES["fantasy"], [CharacterRequest("zoe", "mage"), CharacterRequest("al")]).as_dict()
    assert set(delta["counts"]) == {"theme", "lut", "ambience", "music", "prompt", "asset", "character"}
    by_path = {m["path"]: m["value"] for m in delta["mutations"]}
    assert by_path["luts"] == ["warm", "golden_hour", "storybook_bloom"]
    assert by_path["characters.zoe.wardrobe"] == "robes" and by_path["characters.al.wardrobe"] == "adventurer"
    assert all(m["op"] == "set" and "previous" not in m for m in delta["mutations"])


def test_delta_against_the_current_plan_drops_no_ops() -> None:
    fantasy = TEMPLATES["fantasy"]
    current = {"theme": "modern", "luts": list(fantasy.luts), "music": {"pack": fantasy.music.pack, "tempo": 10}}
    delta = apply_theme(fantasy, current=current).as_dict()
    paths = {m["path"]: m for m in delta["mutations"]}
    assert "luts" not in paths and "music.pack" not in paths and delta["unchanged"] == 2
    assert paths["music.tempo"]["previous"] == 10 and paths["theme"]["previous"] == "modern"
    assert paths["prompt.style"]["previous"] is None


def test_overrides_and_unknown_roles() -> None:
    people = parse_characters({"kim": {"role": "nobody", "overrides": {"palette": "mono"}}})
    delta = apply_theme(TEMPLATES["dark"], people).as_dict()
    assert {m["path"]: m["value"] for m in delta["mutations"]}["characters.kim.palette"] == "mono"
    assert delta["warnings"] and delta["warnings"][0].startswith("characters.kim.role")


ids = st.text(min_size=1, max_size=10).filter(str.strip).map(str.strip)
requests = st.fixed_dictionaries(
    {"theme": st.sampled_from(sorted(TEMPLATES))},
    optional={
        "characters": st.dictionaries(
            ids,
            st.fixed_dictionaries(
                {}, optional={"role": st.sampled_from(["protagonist", "rival", "mage", "villain", "x"])}
            ),
            max_size=4,
        ),
        "current": st.fixed_dictionaries(
            {},
            optional={"luts": st.lists(st.text(max_size=5), max_size=3), "theme": st.sampled_from(sorted(TEMPLATES))},
        ),
    },
)


def checksum(body: dict[str, Any]) -> str:
    req = parse_apply(body)
    return apply_theme(find_template(req.theme), parse_characters(req.characters), req.current).as_dict()["checksum"]


@given(requests)
def test_checksums_are_stable_and_follow_the_content(body: dict[str, Any]) -> None:
    assert checksum(body) == checksum(json.loads(json.dumps(body)))
    other = next(t for t in sorted(TEMPLATES) if t != body["theme"])
    assert checksum({**body, "theme": other}) != checksum(body)


CHILD = """
import json, sys
sys.path.insert(0, {here!r})
from test_themes import checksum
print(json.dumps([checksum(b) for b in json.load(sys.stdin)]))
"""


@settings(max_examples=3)
@given(st.lists(requests, min_size=1, max_size=10))
def test_checksums_are_identical_across_processes(batch: list[dict[str, Any]]) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    child = subprocess.run(
        [sys.executable, "-c", CHILD.format(here=here)],
        input=json.dumps(batch),
        text=True,
        capture_output=True,
        env=dict(os.environ, PYTHONHASHSEED="99"),
        timeout=120,
        check=True,
    )
    assert json.loads(child.stdout) == [checksum(b) for b in batch]


def test_routes(themes_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], Http]) -> None:
    kernel = themes_kernel()
    seen: list[Any] = []
    kernel.events.subscribe(seen.append, events=["on_theme_applied"])
    http = http_for(kernel)
    templates = http.get("/api/themes/templates").json()["templates"]
    assert [t["id"] for t in templates] == sorted(TEMPLATES)
    assert templates[0]["luts"] and "roles" in templates[0]
    body = http.post("/api/themes/apply", json={"theme": "Action", "characters": ["rin"], "scene_id": "s1"}).json()
    assert body["theme"] == "action" and body["renders_triggered"] is False and body["scene_id"] == "s1"
    assert (
        body == http.post("/api/themes/apply", json={"theme": "action", "characters": ["rin"], "scene_id": "s1"}).json()
    )
    assert seen[0].payload == {
        "theme": "action",
        "checksum": body["plan_delta"]["checksum"],
        "mutations": len(body["plan_delta"]["mutations"]),
        "scene_id": "s1",
    }


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 400, "theme"),
        ({"theme": 5}, 400, "theme"),
        ({"theme": "nope"}, 404, "theme"),
        ({"theme": "dark", "extra": 1}, 400, "extra"),
        ({"theme": "dark", "characters": "kim"}, 400, "characters"),
        ({"theme": "dark", "characters": [""]}, 400, "characters[0]"),
        ({"theme": "dark", "characters": {"kim": {"overrides": {"hat": "x"}}}}, 400, "characters.kim.overrides.hat"),
        ({"theme": "dark", "characters": {"kim": {"role": 3}}}, 400, "characters.kim.role"),
        ({"theme": "dark", "current": [1]}, 400, "current"),
    ],
)
def test_invalid_input_names_the_field(client: Http, body: Any, status: int, field: str) -> None:
    response = client.post("/api/themes/apply", json=body)
    assert response.status_code == status and response.json()["error"]["field"] == field


def test_cli(themes_kernel: Callable[..., Kernel]) -> None:
    cli = make_cli(themes_kernel())
    listed = CliRunner().invoke(cli, ["themes", "list"])
    assert listed.exit_code == 0 and listed.stdout.splitlines()[0].startswith("action")
    result = CliRunner().invoke(
        cli, ["themes", "apply", "romantic", "--character", "mai:love_interest", "--current", '{"theme": "romantic"}']
    )
    assert result.exit_code == 0
    delta = json.loads(result.stdout)["plan_delta"]
    assert delta["unchanged"] == 1 and any(
        m["path"] == "characters.mai.palette" and m["value"] == "rose" for m in delta["mutations"]
    )
    bad = CliRunner().invoke(cli, ["themes", "apply", "disco"])
    assert bad.exit_code == 2 and "(field: theme)" in bad.stderr
