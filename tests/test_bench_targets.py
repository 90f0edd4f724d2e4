"""The benchmark run is separate from the tests, and a missed target fails it (issue 12)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pytest(*args: str, scale: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COMFYVN_BENCH_TARGET_SCALE"}
    if scale is not None:
        env["COMFYVN_BENCH_TARGET_SCALE"] = scale
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_default_run_collects_no_benchmark() -> None:
    collected = _pytest("--collect-only", "tests/test_bench_targets.py", "tests/bench")
    assert "tests/bench" not in collected.stdout, collected.stdout[-2000:]
    enabled = _pytest("--collect-only", "--benchmark-enable", "tests/bench/test_bench_battle.py")
    assert enabled.returncode == 0 and "test_bench_battle_simulations" in enabled.stdout, enabled.stdout[-2000:]


def test_a_missed_target_fails_the_benchmark_run_and_says_which() -> None:
    bench = "tests/bench/test_bench_battle.py::test_bench_battle_simulations"
    met = _pytest("--benchmark-enable", "-rP", bench, scale="1000")  # 50 simulations/s: any machine does
    assert met.returncode == 0 and "target battle simulations per second" in met.stdout, met.stdout[-3000:]
    missed = _pytest("--benchmark-enable", "-rP", bench, scale="1e-9")  # 5e13 simulations/s: none does
    assert missed.returncode == 1, missed.stdout[-3000:]
    assert "MISSED" in missed.stdout and "misses the target" in missed.stdout, missed.stdout[-3000:]
