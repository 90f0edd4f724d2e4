"""The battle beat planner: a deterministic setup → engagement → resolution timeline.

No dice are rolled here; the plan tells a Studio panel or an exporter how long each phase runs and
what happens in it, and which endpoint decides the outcome. Same input, same plan, same hash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from comfyvn.digest import digest
from comfyvn.errors import ComfyVNError

from .engine import VARIABLE_KEY, parse_stats
from .narration import DEFAULT_POV, MAX_BEATS, MIN_BEATS

__all__ = ["RESOLUTION_SECONDS", "ROUND_SECONDS", "SETUP_SECONDS", "BattlePlan", "build_plan", "contender_names"]

SETUP_SECONDS = 2.0
ROUND_SECONDS = 2.5
RESOLUTION_SECONDS = 2.0


@attrs.frozen
class BattlePlan:
    contenders: tuple[str, ...]
    pov: str
    rounds: int
    world: tuple[tuple[str, str], ...]
    scene_id: str | None
    node_id: str | None

    def phases(self) -> list[dict[str, Any]]:
        """The three phases with their start times, durations and steps."""
        engage_start = SETUP_SECONDS
        resolve_start = engage_start + self.rounds * ROUND_SECONDS
        world = dict(self.world)
        return [
            {
                "id": "setup",
                "start": 0.0,
                "duration": SETUP_SECONDS,
                "steps": [
                    {"action": "establish", "world": world},
                    {"action": "introduce", "contenders": list(self.contenders)},
                ],
            },
            {
                "id": "engagement",
                "start": engage_start,
                "duration": self.rounds * ROUND_SECONDS,
                "steps": [
                    {
                        "action": "exchange",
                        "round": r,
                        "start": engage_start + (r - 1) * ROUND_SECONDS,
                        "duration": ROUND_SECONDS,
                        "pov": self.pov,
                    }
                    for r in range(1, self.rounds + 1)
                ],
            },
            {
                "id": "resolution",
                "start": resolve_start,
                "duration": RESOLUTION_SECONDS,
                "steps": [
                    {"action": "decide", "choice": "/api/battle/resolve", "sim": "/api/battle/sim"},
                    {"action": "set_variable", "key": f"variables.{VARIABLE_KEY}"},
                    {"action": "narrate", "beats": {"min": MIN_BEATS, "max": MAX_BEATS}},
                ],
            },
        ]

    def as_dict(self) -> dict[str, Any]:
        """The plan with its total duration and a content hash (sha256, 16 hex)."""
        body: dict[str, Any] = {
            "contenders": list(self.contenders),
            "pov": self.pov,
            "rounds": self.rounds,
            "world": dict(self.world),
            "scene_id": self.scene_id,
            "node_id": self.node_id,
            "phases": self.phases(),
            "duration": SETUP_SECONDS + self.rounds * ROUND_SECONDS + RESOLUTION_SECONDS,
        }
        body["hash"] = digest(body)[:16]
        return body


def contender_names(stats: Any, contenders: Sequence[str] | None) -> tuple[str, ...]:
    """Names from ``stats`` (validated as for a roll) or from a plain ``contenders`` list."""
    if stats is not None and contenders is not None:
        raise ComfyVNError("give either stats or contenders, not both", field="contenders", code="invalid_request")
    if stats is not None:
        return tuple(c.name for c in parse_stats(stats))
    if not contenders:
        raise ComfyVNError("a battle plan needs at least one contender", field="contenders", code="empty_contenders")
    names: list[str] = []
    for index, raw in enumerate(contenders):
        name = raw.strip()
        if not name or name.lower() in {n.lower() for n in names}:
            raise ComfyVNError(
                "contender names must be non-empty and unique", field=f"contenders[{index}]", code="invalid_request"
            )
        names.append(name)
    return tuple(names)


def build_plan(
    names: Sequence[str],
    *,
    pov: str | None,
    rounds: int,
    world: Mapping[str, str] | None = None,
    scene_id: str | None = None,
    node_id: str | None = None,
) -> BattlePlan:
    """A `BattlePlan`; ``world`` (location, weather, time_of_day, …) is echoed sorted by key."""
    return BattlePlan(tuple(names), pov or DEFAULT_POV, rounds, tuple(sorted((world or {}).items())), scene_id, node_id)
