"""Extension points of the roleplay importer (published through ``add_hookspecs``).

Both hooks are ``firstresult``: the first implementation that answers wins; returning None passes
the question on. With no implementation installed the importer uses its deterministic rules and
says so (``llm: "not configured"``); it never fabricates a rewrite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from comfyvn import Kernel

hookspec = pluggy.HookspecMarker("comfyvn")


@hookspec(firstresult=True)
def roleplay_classify_expression(character: dict[str, Any], text: str, labels: Sequence[str]) -> str | None:
    """Pick the expression (one of ``labels``, the character's sprite names) for a line of dialogue.

    Called during import for each message of a character that has sprites, before the built-in
    keyword rules. ``character`` is the project character entry (``name``, ``description``, …).
    Return a label, or None to let the next implementation (finally the built-in rules) decide.
    """


@hookspec(firstresult=True)
def roleplay_cleanup_scene(
    scene: dict[str, Any], detail_level: str, characters: dict[str, Any], kernel: Kernel
) -> dict[str, Any] | None:
    """LLM clean-up of one imported scene (the spec's ``sample_llm``), at ``detail_level``.

    Called by ``POST /api/roleplay/sample_llm``; ``kernel`` is the calling kernel (its config, flags
    and services, for an implementation that asks a model). Return the rewritten scene (same schema; node ids
    may change but every target must resolve), or None when this implementation cannot serve. The
    result is validated before it is stored under ``final/``.
    """
