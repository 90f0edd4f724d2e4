"""10,000 simulations against the formula's analytic win probability.

With jitter ``(2u - 1) * v`` per contender, contender i's total is uniform on
``[f_i - v_i, f_i + v_i]`` (``f_i`` = the fixed part of the formula). Seeds come from an independent
PRNG, so the 10,000 rolls are independent draws and the win count is binomial: the observed rate
must lie within 4 standard deviations of the exact probability.
"""

from __future__ import annotations

import math
import random

import pytest
from comfyvn_battle.engine import parse_stats, simulate

N = 10_000


def _h(z: float) -> float:
    """Antiderivative of clamp(z, 0, 1)."""
    if z <= 0:
        return 0.0
    if z <= 1:
        return z * z / 2
    return z - 0.5


def p_first_wins_exact(d: float, va: float, vb: float) -> float:
    """P(d + X - Y > 0) for X ~ U[-va, va], Y ~ U[-vb, vb], in closed form.

    P = 1/(2 vb) ∫_{-vb}^{vb} clamp((va + d + y) / (2 va), 0, 1) dy; substituting
    z = (va + d + y) / (2 va) gives (va / vb) [H(z1) - H(z0)] with H the antiderivative of the clamp.
    """
    z0 = (va + d - vb) / (2 * va)
    z1 = (va + d + vb) / (2 * va)
    return va / vb * (_h(z1) - _h(z0))


def p_wins_numeric(fixed: list[float], variance: list[float], index: int, steps: int = 20_000) -> float:
    """P(contender ``index`` has the highest total) = ∫ f_i(x) Π_{j≠i} F_j(x) dx, midpoint rule."""
    lo, hi = fixed[index] - variance[index], fixed[index] + variance[index]
    width = (hi - lo) / steps
    total = 0.0
    for k in range(steps):
        x = lo + (k + 0.5) * width
        product = 1.0
        for j, (f, v) in enumerate(zip(fixed, variance, strict=True)):
            if j != index:
                product *= min(1.0, max(0.0, (x - (f - v)) / (2 * v)))
        total += product
    return total * width / (hi - lo)


def observed_rate(stats: dict[str, object], name: str) -> float:
    contenders = parse_stats(stats)
    seeds = random.Random(20_251_121)
    wins = sum(simulate(contenders, seeds.getrandbits(32)).outcome == name for _ in range(N))
    return wins / N


def test_the_closed_form_agrees_with_integration() -> None:
    for d, va, vb in [(0.0, 1.0, 1.0), (0.5, 1.0, 1.0), (0.7, 2.0, 0.5), (-1.2, 1.5, 3.0), (5.0, 1.0, 1.0)]:
        assert p_first_wins_exact(d, va, vb) == pytest.approx(p_wins_numeric([d, 0.0], [va, vb], 0), abs=1e-6)
    assert p_first_wins_exact(0.5, 1.0, 1.0) == pytest.approx(0.71875)


# The fixed parts are worked out by hand from the formula, not taken from the code under test.
@pytest.mark.parametrize(
    ("stats", "d", "va", "vb"),
    [
        # Equal sides: a coin flip.
        ({"a": {"base": 10}, "b": {"base": 10}}, 0.0, 1.0, 1.0),
        # 12 + 4*1.0 + 3*0.5 + 2*0.75 = 19 vs 10 + 5*1.0 + 2*0.5 + 1*0.75 = 16.75, wide jitter.
        (
            {
                "a": {"base": 12, "str": 4, "agi": 3, "weapon_tier": 2, "rng": 2.5},
                "b": {"base": 10, "str": 5, "agi": 2, "weapon_tier": 1, "rng": 2.0},
            },
            2.25,
            2.5,
            2.0,
        ),
        # A status debuff and unequal variances: 10 - 0.6 = 9.4 vs 9 + 1*0.5 = 9.5.
        ({"a": {"base": 10, "status_mod": -0.6, "rng": 1.0}, "b": {"base": 9, "agi": 1, "rng": 0.4}}, -0.1, 1.0, 0.4),
    ],
)
def test_two_contender_win_rate_matches_the_analytic_probability(
    stats: dict[str, object], d: float, va: float, vb: float
) -> None:
    p = p_first_wins_exact(d, va, vb)
    assert 0.05 < p < 0.95  # cases where the bound is informative
    sigma = math.sqrt(p * (1 - p) / N)
    assert abs(observed_rate(stats, "a") - p) <= 4 * sigma


def test_three_contender_win_rate_matches_numeric_integration() -> None:
    stats = {"a": {"base": 10, "rng": 2.0}, "b": {"base": 9.5, "rng": 1.0}, "c": {"base": 9, "str": 1.5, "rng": 1.5}}
    fixed = [10.0, 9.5, 9 + 1.5 * 1.0]
    variance = [2.0, 1.0, 1.5]
    for index, name in enumerate(["a", "b", "c"]):
        p = p_wins_numeric(fixed, variance, index)
        sigma = math.sqrt(p * (1 - p) / N)
        assert abs(observed_rate(stats, name) - p) <= 4 * sigma, name
