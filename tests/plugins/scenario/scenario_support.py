"""Helpers shared by the scenario tests: the demo path and a tiny scene."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "examples" / "demo"


def tiny_scene() -> dict[str, Any]:
    """A three-node scene with a weighted pick, a condition and an action."""
    return copy.deepcopy(
        {
            "id": "tiny",
            "start": "a",
            "variables": {"gold": 1},
            "nodes": [
                {
                    "id": "a",
                    "text": "start",
                    "choices": [
                        {"id": "left", "target": "b", "weight": 1, "actions": [{"type": "increment", "key": "gold"}]},
                        {"id": "right", "target": "c", "weight": 3},
                        {"id": "rich", "target": "c", "conditions": [{"key": "gold", "operator": "gte", "value": 5}]},
                    ],
                },
                {"id": "b", "text": "left", "choices": [{"target": "c"}]},
                {"id": "c", "text": "end", "end": True},
            ],
        }
    )
