"""Battle simulations per second (target: ≥ 50k/s in-process), against a bare-arithmetic baseline.

Run: ``python3 -m pytest tests/bench/test_bench_battle.py --benchmark-enable -q``. The baseline is the
formula as raw arithmetic on floats (no validation, no result objects); the ratio says what the
real `simulate` (breakdowns, weights, RNG state) costs on top, independent of the machine's speed.
"""

from __future__ import annotations

import timeit
from typing import Any

from bench_targets import at_least
from comfyvn_battle.engine import parse_stats, simulate

BATCH = 2_000
CONTENDERS = parse_stats(
    {
        "team_a": {"base": 12, "str": 4, "agi": 3, "weapon_tier": 2},
        "team_b": {"base": 10, "str": 5, "agi": 2, "weapon_tier": 1, "rng": 1.5},
    }
)


def real_batch() -> str:
    outcome = ""
    for seed in range(BATCH):
        outcome = simulate(CONTENDERS, seed).outcome
    return outcome


def baseline_batch() -> str:
    fixed = [(c.name, c.fixed, c.variance) for c in CONTENDERS]
    outcome = ""
    for seed in range(BATCH):
        value, best, outcome = seed, float("-inf"), ""
        for name, base, variance in fixed:
            value = (1664525 * value + 1013904223) % 2**32
            total = base + (value / 2**32 * 2 - 1) * variance
            if total > best:
                best, outcome = total, name
    return outcome


def test_bench_battle_baseline(benchmark: Any) -> None:
    benchmark.group = "battle"
    assert benchmark(baseline_batch) in {"team_a", "team_b"}


def test_bench_battle_simulations(benchmark: Any) -> None:
    benchmark.group = "battle"
    assert benchmark(real_batch) in {"team_a", "team_b"}
    real = min(timeit.repeat(real_batch, number=1, repeat=5))
    base = min(timeit.repeat(baseline_batch, number=1, repeat=5))
    benchmark.extra_info["simulations_per_second"] = round(BATCH / real)
    benchmark.extra_info["ratio_to_baseline"] = round(real / base, 2)
    print(f"\nbattle: {BATCH / real:,.0f} simulations/s, {real / base:.2f}x the bare arithmetic")
    at_least("battle simulations per second", BATCH / real, 50_000, "/s")
