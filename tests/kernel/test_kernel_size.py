from __future__ import annotations

from pathlib import Path

KERNEL = Path(__file__).resolve().parents[2] / "kernel" / "comfyvn"


def test_kernel_source_stays_within_2000_formatted_lines() -> None:
    lines = sum(len(path.read_text().splitlines()) for path in KERNEL.rglob("*.py"))
    assert 0 < lines <= 2000, f"the kernel has grown to {lines} formatted lines"
