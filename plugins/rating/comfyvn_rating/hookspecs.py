"""Extension points the rating plugin publishes (added to the kernel's manager via ``add_hookspecs``)."""

from __future__ import annotations

from typing import Any

from comfyvn.hookspecs import hookspec


@hookspec
def classify_rating(item_id: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """Rate one item beside the built-in matrix (a model-based classifier, a house word list…).

    Called for every item rated — a ``/api/rating/classify`` payload, each scene, node, character card and
    lorebook entry of a project, an LLM prompt — unless a reviewer's override decides it. ``payload`` is
    ``{text?, title?, description?, summary?, prompt?, tags?, meta?}``. Return None to pass, or
    ``{"rating": "E"|"T"|"M"|"Adult", "confidence"?: 0..1, "reasons"?: [str]}``.

    The matrix stays the deterministic floor: the highest answer wins, so a classifier can raise an item's
    rating but never lower it (reviewers lower ratings with overrides). An answer that breaks the contract,
    or a classifier that raises, is logged and ignored.
    """
