"""Weather plans per second (compile + JSON shape), against a baseline of hashing the state alone.

Run: ``python3 -m pytest tests/bench/test_bench_weather.py --benchmark-enable -q``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import timeit
from typing import Any

from comfyvn_weather.planner import WorldState, compile_plan
from comfyvn_weather.presets import CANONICAL
from comfyvn_weather.store import WeatherPlanStore
from comfyvn_weather.wire import plan_to_dict

STATES = [WorldState(*combo) for combo in itertools.product(*CANONICAL.values())]  # all 120


def plans() -> int:
    return sum(len(plan_to_dict(compile_plan(state))["scene"]["background_layers"]) for state in STATES)


def baseline() -> int:
    return sum(len(hashlib.sha256(json.dumps(s.as_dict(), sort_keys=True).encode()).hexdigest()) for s in STATES)


def store_updates() -> int:
    store = WeatherPlanStore(clock=lambda: "t")
    for state in STATES:
        store.update(state.as_dict())
    return store.snapshot().meta.version


def test_bench_weather_baseline(benchmark: Any) -> None:
    benchmark.group = "weather"
    assert benchmark(baseline) == 64 * len(STATES)


def test_bench_weather_plans(benchmark: Any) -> None:
    benchmark.group = "weather"
    assert benchmark(plans) >= 2 * len(STATES)
    real = min(timeit.repeat(plans, number=1, repeat=5))
    base = min(timeit.repeat(baseline, number=1, repeat=5))
    benchmark.extra_info["plans_per_second"] = round(len(STATES) / real)
    benchmark.extra_info["ratio_to_baseline"] = round(real / base, 2)
    print(f"\nweather: {len(STATES) / real:,.0f} plans/s, {real / base:.2f}x hashing the state alone")


def test_bench_weather_store_updates(benchmark: Any) -> None:
    benchmark.group = "weather"
    assert benchmark(store_updates) == len(STATES)
