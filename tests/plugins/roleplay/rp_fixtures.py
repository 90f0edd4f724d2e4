"""Shared builders for the roleplay tests: SillyTavern-shaped chats made in code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "sillytavern"

# One header per variant seen in the wild (sillytavern.md).
HEADERS: dict[str, dict[str, Any] | None] = {
    "2023_epoch": {"user_name": "You", "character_name": "Aqua", "create_date": 1674559896839},
    "1.12_humanized": {
        "user_name": "You",
        "character_name": "Aqua",
        "create_date": "2024-09-28@14h05m07s",
        "chat_metadata": {"custom_background": 'url("backgrounds/Beach (day).jpg")', "scenario": "x"},
    },
    "newer_unused": {
        "chat_metadata": {"integrity": "0b4e0f38-6e1f-4f9a-a0b4-2b7c1f0f4e11", "narrator_name": "Fate"},
        "user_name": "unused",
        "character_name": "unused",
    },
    "group_no_header": None,
}

# The five send_date formats, with the wall-clock they denote.
SEND_DATES: dict[str, Any] = {
    "epoch_ms_number": 1674559896839,
    "epoch_ms_string": "1674559896839",
    "human": "June 19, 2023 2:20pm",
    "at_compact": "2024-7-12@01h31m37s",
    "at_spaced_ms": "2024-6-5 @14h 56m 50s 682ms",
    "iso": "2025-11-23T10:00:00.000Z",
}


def jsonl(records: list[dict[str, Any] | None]) -> str:
    """SillyTavern's layout: one object per line, joined by \\n, no trailing newline."""
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in records if r is not None)
