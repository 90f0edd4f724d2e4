"""ComfyVN weather planner: world state (time of day, weather, ambience) → a deterministic plan.

`planner` compiles plans, `presets` holds the tables, `store` keeps the shared versioned plan;
`routes` and `cli` are thin edges.
"""

from __future__ import annotations

from .planner import WeatherPlan, WorldState, compile_plan, merge_state
from .store import WeatherPlanStore

__all__ = ["WeatherPlan", "WeatherPlanStore", "WorldState", "compile_plan", "merge_state"]
