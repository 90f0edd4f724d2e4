"""ComfyVN content ratings: the E/T/M/Adult matrix, project classification with the items that drove it,
reviewer overrides, acknowledgement tokens, modes, and the export and LLM gates.

The domain lives in `matrix` (the classifier), `project` (whole projects), `store` (overrides, tokens,
mode) and `service`; `gates` answers the exporter's and the llm plugin's gates; `routes` and `cli` are
thin edges.
"""

from __future__ import annotations

from .gates import export_gate, llm_call_gate, require_llm_call
from .matrix import LEVELS, MATRIX, RatingResult, classify, tokens
from .project import ProjectRating, project_item_id, rate_project
from .service import RatingService

__all__ = [
    "LEVELS",
    "MATRIX",
    "ProjectRating",
    "RatingResult",
    "RatingService",
    "classify",
    "export_gate",
    "llm_call_gate",
    "project_item_id",
    "rate_project",
    "require_llm_call",
    "tokens",
]
