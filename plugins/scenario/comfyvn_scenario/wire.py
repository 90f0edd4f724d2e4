"""The scenario plugin's request shapes, structured by the shared strict converter (`comfyvn.wire.parse_request`).

A failure is an `Invalid` naming the offending field. A request names its story either as ``scene``
(one scene), as ``project`` (+ ``scenes``) given inline, or as ``project``: the id of a project in the
store (a string), see `story_of`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from comfyvn.errors import ComfyVNError, Invalid

from .project import Project, project_from_payload

__all__ = ["PlaytestRequest", "PovForkRequest", "PovSetRequest", "StepRequest", "story_of"]


def _bad(attribute: attrs.Attribute[Any], message: str) -> Invalid:
    return Invalid(f"{attribute.name}: {message}", field=attribute.name, code="invalid_request")


def _seed(instance: Any, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and value < 0:
        raise _bad(attribute, "must be a non-negative integer")


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if not 1 <= value <= 100_000:
        raise _bad(attribute, "must be between 1 and 100000")


def _name(instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and not value.strip():
        raise _bad(attribute, "must not be blank")


def _object(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, dict):
        raise _bad(attribute, "must be a JSON object")


def _project(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, (dict, str)):
        raise _bad(attribute, "must be a project object or the id of a stored project")


@attrs.frozen
class StepRequest:
    """``POST /api/scenario/run/step``: ``{scene | project(+scenes) | project id, state?, seed?, choice_id? (alias
    choice), pov?}``."""

    scene: Any = attrs.field(default=None, validator=_object)
    project: Any = attrs.field(default=None, validator=_project)
    scenes: Any = None
    state: Any = attrs.field(default=None, validator=_object)
    seed: int | None = attrs.field(default=None, validator=_seed)
    choice_id: str | None = attrs.field(default=None, validator=_name)
    choice: str | None = attrs.field(default=None, validator=_name)
    pov: str | None = attrs.field(default=None, validator=_name)


@attrs.frozen
class PlaytestRequest:
    """``POST /api/playtest/run``; ``prompt_packs`` and ``workflow`` are recorded in the provenance."""

    scene: Any = attrs.field(default=None, validator=_object)
    project: Any = attrs.field(default=None, validator=_project)
    scenes: Any = None
    seed: int = attrs.field(default=0, validator=_seed)
    pov: str | None = attrs.field(default=None, validator=_name)
    povs: list[str] | None = None
    variables: Any = attrs.field(default=None, validator=_object)
    policy: str = "random"
    choices: list[str] = attrs.Factory(list)
    max_steps: int = attrs.field(default=500, validator=_positive)
    max_depth: int = attrs.field(default=200, validator=_positive)
    max_states: int = attrs.field(default=20_000, validator=_positive)
    golden: Any = attrs.field(default=None, validator=_object)
    persist: bool = False
    dry_run: bool = False
    prompt_packs: Any = None
    workflow: Any = None


@attrs.frozen
class PovSetRequest:
    """``POST /api/pov/set``: ``{pov?}`` (absent or null: back to the default POV)."""

    pov: str | None = None


@attrs.frozen
class PovForkRequest:
    """``POST /api/pov/fork``: ``{slot, pov?}`` -> a deterministic slot name."""

    slot: str = attrs.field(validator=_name)
    pov: str | None = attrs.field(default=None, validator=_name)


def story_of(
    scene: Any, project: Any, scenes: Any, *, load: Callable[[str], Project] | None = None
) -> dict[str, Any] | Project:
    """The scene dict or `Project` a request names; exactly one of ``scene`` / ``project``. A string
    ``project`` is a store id, read with ``load`` (None: only inline stories are accepted)."""
    if scene is not None and project is not None:
        raise ComfyVNError("send either scene or project, not both", field="project", code="invalid_request")
    if isinstance(project, str):
        if scenes is not None:
            raise ComfyVNError(
                "scenes only go with a project given inline, not with a stored project's id",
                field="scenes",
                code="invalid_request",
            )
        if load is None:
            raise Invalid("project must be a JSON object here", field="project", code="invalid_project")
        return load(project)
    if project is not None:
        return project_from_payload(project, scenes)
    if scene is None:
        raise ComfyVNError("a scene (or a project with scenes) is required", field="scene", code="missing_field")
    if scenes is not None:
        raise ComfyVNError("scenes only go with project", field="scenes", code="invalid_request")
    story: dict[str, Any] = scene  # checked against the scene schema by whoever compiles it
    return story
