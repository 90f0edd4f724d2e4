"""The jobs plugin's request shapes, structured by the shared strict converter (`comfyvn.wire.parse_request`).

Ranges and names are checked by the `Jobs` service itself (the CLI and Python callers get the same
answers); a failure here is an `Invalid` naming the field.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["CancelRequest", "EnqueueRequest"]


@attrs.frozen
class EnqueueRequest:
    """``POST /api/schedule/enqueue``: a job of a registered ``kind``."""

    kind: str
    params: dict[str, Any] = attrs.field(factory=dict)
    resources: dict[str, float] | None = None
    priority: int = 0
    retries: int | None = None
    key: str | None = None


@attrs.frozen
class CancelRequest:
    """``POST /api/schedule/cancel``."""

    job_id: str
