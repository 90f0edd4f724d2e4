"""Weather, battle and themes are separate distributions: any one can be blocked without the others noticing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import comfyvn_battle.plugin as battle
import comfyvn_themes.plugin as themes
import comfyvn_weather.plugin as weather
import pytest
from comfyvn import Kernel
from comfyvn.cli import make_cli

PROBES = {
    battle: ("POST", "/api/battle/sim", {"stats": {"a": 1}, "seed": 1}, "battle"),
    weather: ("POST", "/api/weather/state", {"weather": "rain"}, "weather"),
    themes: ("POST", "/api/themes/apply", {"theme": "dark"}, "themes"),
}


@pytest.mark.parametrize("blocked", list(PROBES), ids=lambda m: m.__name__.split(".")[0])
def test_blocking_one_plugin_leaves_the_others_working(
    make_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], Any], blocked: Any
) -> None:
    kept = [plugin for plugin in PROBES if plugin is not blocked]
    kernel = make_kernel(*kept)
    assert all(record.status == "loaded" for record in kernel.plugins.records.values())
    http = http_for(kernel)
    cli = make_cli(kernel)
    for plugin, (method, path, body, group) in PROBES.items():
        response = http.request(method, path, json=body)
        if plugin is blocked:
            assert response.status_code in (404, 405)
            assert group not in cli.commands
        else:
            assert response.status_code == 200, response.text
            assert group in cli.commands
    assert http.get("/health").status_code == 200
