"""How every benchmark checks its target: one line per figure (``nox -s bench`` shows them with ``-rP``),
then an assert, so a missed target fails the run.

``COMFYVN_BENCH_TARGET_SCALE`` scales every target (default 1; "at most" limits are multiplied by it,
"at least" ones divided): a tiny scale makes every target impossible, which is how
``tests/test_bench_targets.py`` proves that a missed target makes the run fail.
"""

from __future__ import annotations

import os

__all__ = ["SCALE", "at_least", "at_most"]

SCALE = float(os.environ.get("COMFYVN_BENCH_TARGET_SCALE", "1"))


def at_most(name: str, value: float, limit: float, unit: str = "") -> None:
    """Print ``name``'s figure and fail unless ``value <= limit`` (the limit scaled by `SCALE`)."""
    target = limit * SCALE
    verdict = "ok" if value <= target else "MISSED"
    print(f"\ntarget {name}: {value:.4g}{unit} (target <= {target:.4g}{unit}) {verdict}")
    assert value <= target, f"{name}: {value:.4g}{unit} misses the target <= {target:.4g}{unit}"


def at_least(name: str, value: float, limit: float, unit: str = "") -> None:
    """Print ``name``'s figure and fail unless ``value >= limit`` (the limit divided by `SCALE`)."""
    target = limit / SCALE
    verdict = "ok" if value >= target else "MISSED"
    print(f"\ntarget {name}: {value:.4g}{unit} (target >= {target:.4g}{unit}) {verdict}")
    assert value >= target, f"{name}: {value:.4g}{unit} misses the target >= {target:.4g}{unit}"
