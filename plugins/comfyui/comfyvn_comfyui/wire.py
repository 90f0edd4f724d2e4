"""Request shapes of the bridge's routes, structured by the shared strict converter (`comfyvn.wire.parse_request`)."""

from __future__ import annotations

from typing import Any

import attrs
from comfyvn.errors import Invalid

__all__ = ["AddServer", "LoraList", "RenderCharacter", "RenderProject", "RenderSwitch"]

MAX_ID = 128
MAX_POSES = 32


def _text(limit: int) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
        if value is not None and (not value.strip() or len(value) > limit):
            raise Invalid(
                f"{attribute.name}: must be 1 to {limit} characters", field=attribute.name, code="invalid_request"
            )

    return check


def _poses(instance: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...] | None) -> None:
    if value is None:
        return
    if not value or len(value) > MAX_POSES:
        raise Invalid(f"{attribute.name}: 1 to {MAX_POSES} names", field=attribute.name, code="invalid_request")
    for n, pose in enumerate(value):
        if not pose.strip() or len(pose) > 64 or "/" in pose or "\\" in pose or pose.startswith("."):
            raise Invalid("a pose is a name of 1-64 characters", field=f"{attribute.name}[{n}]", code="invalid_request")


@attrs.frozen
class RenderProject:
    """``POST /api/render/project``."""

    project: str = attrs.field(validator=_text(MAX_ID))
    what: str = "all"
    style: str | None = attrs.field(default=None, validator=_text(64))
    force: bool = False


@attrs.frozen
class RenderSwitch:
    """``POST /api/pov/render/switch`` (the original's shape; ``project`` names the store project when
    several hold a character of that id)."""

    character_id: str = attrs.field(validator=_text(MAX_ID))
    style: str | None = attrs.field(default=None, validator=_text(64))
    poses: tuple[str, ...] = attrs.field(default=("neutral",), validator=_poses)
    force: bool = False
    project: str | None = attrs.field(default=None, validator=_text(MAX_ID))


@attrs.frozen
class RenderCharacter:
    """``POST /api/characters/render``: every expression the story shows the character with, unless
    ``expressions`` names them."""

    project: str = attrs.field(validator=_text(MAX_ID))
    character_id: str = attrs.field(validator=_text(MAX_ID))
    style: str | None = attrs.field(default=None, validator=_text(64))
    expressions: tuple[str, ...] | None = attrs.field(default=None, validator=_poses)
    force: bool = False


@attrs.frozen
class AddServer:
    """``POST /api/comfyui/servers``: ``token`` goes to the vault and is never shown again."""

    url: str = attrs.field(validator=_text(2048))
    name: str | None = attrs.field(default=None, validator=_text(32))
    token: str | None = attrs.field(default=None, validator=_text(4096))


@attrs.frozen
class LoraList:
    """``PUT /api/characters/{id}/loras``."""

    loras: list[dict[str, Any]]
