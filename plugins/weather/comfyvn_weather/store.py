"""`WeatherPlanStore`: the shared, versioned current plan behind ``/api/weather/state``.

Each update merges a partial state over the current one, recompiles the plan and stamps it with
``version`` (+1 per update, 0 at start), ``updated_at`` (ISO-8601 UTC) and the state hash. A bounded
history of ``{version, updated_at, hash, state}`` lets exporters diff cheaply.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from .planner import WeatherPlan, WorldState, compile_plan, merge_state

__all__ = ["WeatherPlanStore", "utc_now"]


def utc_now() -> str:
    """The current time as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class WeatherPlanStore:
    """Thread-safe holder of the latest compiled plan and its recent versions."""

    def __init__(self, *, clock: Callable[[], str] = utc_now, history_size: int = 50) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._plan = compile_plan(WorldState(), version=0, updated_at=clock())
        self._history: deque[dict[str, Any]] = deque(maxlen=history_size)
        self._record(self._plan)

    def _record(self, plan: WeatherPlan) -> None:
        self._history.append(
            {
                "version": plan.meta.version,
                "updated_at": plan.meta.updated_at,
                "hash": plan.meta.hash,
                "state": plan.state.as_dict(),
            }
        )

    def snapshot(self) -> WeatherPlan:
        """The current plan (immutable, safe to share)."""
        with self._lock:
            return self._plan

    def update(self, partial: Mapping[str, Any]) -> WeatherPlan:
        """Merge ``partial`` over the current state and store the new plan (version + 1)."""
        with self._lock:
            state, warnings = merge_state(self._plan.state, partial)
            self._plan = compile_plan(state, warnings, version=self._plan.meta.version + 1, updated_at=self._clock())
            self._record(self._plan)
            return self._plan

    def history(self) -> list[dict[str, Any]]:
        """Recent versions, oldest first."""
        with self._lock:
            return [dict(entry, state=dict(entry["state"])) for entry in self._history]
