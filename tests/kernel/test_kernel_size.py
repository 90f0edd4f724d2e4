from __future__ import annotations

from pathlib import Path

KERNEL = Path(__file__).resolve().parents[2] / "kernel" / "comfyvn"
# The kernel stays small by design: hook bus, events, flags, secrets, paths, logs and the CLI root, nothing
# a plugin could own. 2,000 lines until `safe_join` learnt the OS's name and path limits (2026-11-30).
LIMIT = 2_025


def test_kernel_source_stays_within_its_line_budget() -> None:
    lines = sum(len(path.read_text().splitlines()) for path in KERNEL.rglob("*.py"))
    assert 0 < lines <= LIMIT, f"the kernel has grown to {lines} formatted lines (budget {LIMIT})"
