"""``/api/weather/*`` over HTTP and ``comfyvn weather``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner
from comfyvn import Kernel
from comfyvn.cli import make_cli

Http = Any


def test_get_then_partial_posts_merge_and_count_versions(client: Http) -> None:
    start = client.get("/api/weather/state").json()
    assert start["state"] == {"time_of_day": "day", "weather": "clear", "ambience": "calm"}
    assert start["meta"]["version"] == 0 and start["meta"]["updated_at"]
    first = client.post("/api/weather/state", json={"weather": "rain", "time_of_day": "dusk"}).json()
    assert first["scene"]["summary"]["description"] == "dusk, rain, calm" and first["meta"]["version"] == 1
    second = client.post("/api/weather/state", json={"state": {"ambience": "mysterious"}}).json()
    assert second["state"] == {"time_of_day": "dusk", "weather": "rain", "ambience": "mystic"}
    assert second["meta"]["version"] == 2 and second["meta"]["hash"] != first["meta"]["hash"]
    same = client.post("/api/weather/state", json={"weather": "rainy"}).json()
    assert same["meta"]["version"] == 3 and same["meta"]["hash"] == second["meta"]["hash"]
    assert client.get("/api/weather/state").json() == same
    history = client.get("/api/weather/history").json()["history"]
    assert [h["version"] for h in history] == [0, 1, 2, 3]


def test_unknown_values_fall_back_with_a_warning(client: Http) -> None:
    body = client.post("/api/weather/state", json={"weather": "acid rain", "time_of_day": "sunset"}).json()
    assert body["state"]["weather"] == "clear" and body["state"]["time_of_day"] == "dusk"
    assert body["meta"]["warnings"] == ["weather: unknown value 'acid rain', fell back to 'clear'"]


def test_each_post_emits_on_weather_plan(
    weather_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], Http]
) -> None:
    kernel = weather_kernel()
    seen: list[Any] = []
    kernel.events.subscribe(seen.append, events=["on_weather_plan"])
    http = http_for(kernel)
    body = http.post("/api/weather/state", json={"weather": "storm"}).json()
    http.get("/api/weather/state")
    assert len(seen) == 1
    assert dict(seen[0].payload) == {
        "state": body["state"],
        "summary": body["scene"]["summary"],
        "transition": body["transition"],
        "particles": body["particles"],
        "meta": body["meta"],
    }


def test_the_flag_turns_the_surface_off(
    weather_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], Http]
) -> None:
    http = http_for(weather_kernel(env={"COMFYVN_FEATURE_ENABLE_WEATHER_PLANNER": "0"}))
    for method in ("GET", "POST"):
        response = http.request(method, "/api/weather/state", json={})
        assert response.status_code == 403
        assert response.json()["error"]["field"] == "enable_weather_planner"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"weather": 1}, "weather"),
        ({"fog": "thick"}, "fog"),
        ({"state": {"weather": True}}, "state.weather"),
        ({"state": "rain"}, "state"),
        ({"state": {}, "weather": "rain"}, "weather"),
        (["rain"], "body"),
        ({"state": {"tod": "day"}}, "state.tod"),
    ],
)
def test_invalid_input_is_a_400_naming_the_field(client: Http, body: Any, field: str) -> None:
    response = client.post("/api/weather/state", json=body)
    assert response.status_code == 400 and response.json()["error"]["field"] == field
    assert client.get("/api/weather/state").json()["meta"]["version"] == 0


def test_presets_route_lists_values_and_aliases(client: Http) -> None:
    body = client.get("/api/weather/presets").json()
    assert body["values"]["weather"] == ["clear", "overcast", "rain", "storm", "snow", "fog"]
    assert body["aliases"]["time_of_day"]["sunrise"] == "dawn"


def test_cli_plan(weather_kernel: Callable[..., Kernel]) -> None:
    cli = make_cli(weather_kernel())
    result = CliRunner().invoke(cli, ["weather", "plan", "--weather", "stormy", "--time-of-day", "night", "--json"])
    assert result.exit_code == 0
    plan = json.loads(result.stdout)
    assert plan["state"]["weather"] == "storm" and plan["transition"]["type"] == "flash"
    human = CliRunner().invoke(cli, ["weather", "plan", "--ambience", "eerie"])
    assert human.exit_code == 0 and "ambience: unknown value 'eerie'" in human.stderr
    assert human.stdout.startswith("state: day, clear, calm")
