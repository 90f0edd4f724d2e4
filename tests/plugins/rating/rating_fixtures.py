"""Shared by the rating and advisory tests: the adult SillyTavern test chat and how to import it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from comfyvn import Kernel
from comfyvn_roleplay.convert import ImportOptions
from comfyvn_roleplay.service import run_import

FIXTURES = Path(__file__).parent / "fixtures"
ADULT_CHAT = FIXTURES / "Selene Adair - 2025-02-14@22h10m03s.jsonl"
ADULT_CARD = FIXTURES / "Selene Adair.json"


def import_adult_chat(kernel: Kernel) -> str:
    """Import the adult test chat with its card through the roleplay importer; the store project's id."""
    result: Any = run_import(
        kernel,
        ADULT_CHAT.read_bytes(),
        ADULT_CHAT.name,
        ImportOptions(),
        cards=[(ADULT_CARD.read_bytes(), ADULT_CARD.name)],
    )
    return str(result.project_id)
