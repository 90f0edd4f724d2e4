"""ComfyVN battle layer: the v0 formula (resolve by choice, simulate, plan) and battle narration.

The domain lives in `engine` (formula), `narration` (logs and template narration) and `planner`
(timelines); `service` ties them to the kernel; `routes` and `cli` are thin edges.
"""

from __future__ import annotations

from .engine import EDITOR_PROMPT, FORMULA, Contender, Simulation, parse_stats, simulate

__all__ = ["EDITOR_PROMPT", "FORMULA", "Contender", "Simulation", "parse_stats", "simulate"]
