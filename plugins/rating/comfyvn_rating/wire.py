"""The rating plugin's request shapes, structured by the shared strict converter (`comfyvn.wire.parse_request`).

A failure is an `Invalid` naming the offending field, so HTTP answers 400 and the CLI exits 2.
"""

from __future__ import annotations

from typing import Any

import attrs
from comfyvn.errors import Invalid

from .matrix import LEVELS, normalise_rating
from .store import MODES

__all__ = ["AckRequest", "ClassifyRequest", "ModeRequest", "OverrideRequest", "check_mode", "check_rating"]

MAX_ID = 300
MAX_NAME = 200
MAX_NOTE = 2000


def _bad(attribute: attrs.Attribute[Any], message: str) -> Invalid:
    return Invalid(f"{attribute.name}: {message}", field=attribute.name, code="invalid_request")


def _text(limit: int, *, required: bool = True) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
        if value is None:
            return
        if required and not value.strip():
            raise _bad(attribute, "must not be blank")
        if len(value) > limit:
            raise _bad(attribute, f"must be at most {limit} characters")

    return check


def check_mode(value: str, field: str = "mode") -> str:
    """``value`` when it is a mode (sfw, warn, unrestricted); `Invalid` naming ``field`` otherwise."""
    if value not in MODES:
        raise Invalid(f"{field} must be one of {', '.join(MODES)}", field=field, code="invalid_mode")
    return value


def check_rating(value: str, field: str = "rating") -> str:
    """``value`` as a canonical level (any case); `Invalid` naming ``field`` otherwise."""
    level = normalise_rating(value)
    if level is None:
        raise Invalid(f"{field} must be one of {', '.join(LEVELS)}", field=field, code="invalid_rating")
    return level


def _mode(instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None:
        check_mode(value, attribute.name)


@attrs.frozen
class ClassifyRequest:
    """``POST /api/rating/classify`` (wire doc), plus ``project``: rate a store project as a whole."""

    item_id: str = attrs.field(validator=_text(MAX_ID))
    payload: dict[str, Any] | None = None
    mode: str | None = attrs.field(default=None, validator=_mode)
    acknowledged: bool = False
    action: str = attrs.field(default="generic", validator=_text(MAX_NAME))
    ack_token: str | None = attrs.field(default=None, validator=_text(MAX_NAME))
    project: str | None = attrs.field(default=None, validator=_text(MAX_NAME))


@attrs.frozen
class OverrideRequest:
    """``POST /api/rating/overrides``: pin a rating for an item."""

    item_id: str = attrs.field(validator=_text(MAX_ID))
    rating: str = attrs.field(converter=check_rating)
    reviewer: str = attrs.field(validator=_text(MAX_NAME))
    reason: str = attrs.field(validator=_text(MAX_NOTE))
    scope: str = attrs.field(default="asset", validator=_text(MAX_NAME))


@attrs.frozen
class AckRequest:
    """``POST /api/rating/ack``: record who acknowledged a token."""

    token: str = attrs.field(validator=_text(MAX_NAME))
    user: str = attrs.field(validator=_text(MAX_NAME))
    notes: str | None = attrs.field(default=None, validator=_text(MAX_NOTE, required=False))


@attrs.frozen
class ModeRequest:
    """``POST /api/rating/mode``: the installation's mode."""

    mode: str = attrs.field(validator=_mode)
