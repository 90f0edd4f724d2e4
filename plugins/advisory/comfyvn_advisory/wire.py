"""The advisory plugin's request shapes, structured by the shared strict converter (`comfyvn.wire.parse_request`)."""

from __future__ import annotations

from typing import Any

import attrs
from comfyvn.errors import Invalid

__all__ = ["AckRequest", "EnforceRequest"]

MAX_NAME = 200
MAX_NOTE = 2000


def _text(limit: int) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
        if value is not None and (not value.strip() or len(value) > limit):
            raise Invalid(
                f"{attribute.name}: must be 1 to {limit} characters", field=attribute.name, code="invalid_request"
            )

    return check


@attrs.frozen
class EnforceRequest:
    """``POST /api/policy/enforce``: ``bundle.project`` (or ``project_id``) names a store project to scan."""

    action: str = attrs.field(validator=_text(MAX_NAME))
    bundle: dict[str, Any] | None = None
    override: bool = False

    def project_id(self) -> str | None:
        """The store project the bundle names, if any (``Invalid`` naming the field when not a string)."""
        bundle = self.bundle or {}
        for key in ("project", "project_id"):
            value = bundle.get(key)
            if value is None:
                continue
            if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
                raise Invalid(f"bundle.{key} must be a project id", field=f"bundle.{key}", code="invalid_request")
            return value
        return None


@attrs.frozen
class AckRequest:
    """``POST /api/advisory/ack``: accept the terms (``accept: true``) as ``user``."""

    user: str = attrs.field(validator=_text(MAX_NAME))
    accept: bool
    notes: str | None = attrs.field(default=None, validator=_text(MAX_NOTE))
