"""ComfyVN themes: templates (Modern, Fantasy, Romantic, Dark, Action) and checksum-stable plan deltas.

`templates` holds the presets, `planner` turns one into mutations; `routes` and `cli` are thin edges.
"""

from __future__ import annotations

from .planner import PlanDelta, apply_theme, find_template
from .templates import TEMPLATES

__all__ = ["TEMPLATES", "PlanDelta", "apply_theme", "find_template"]
