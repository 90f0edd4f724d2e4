"""Hook implementations of the scenario plugin (wiring only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from comfyvn import hookimpl

from . import jobs, project_routes, routes
from .cli import scenario_group
from .projects_cli import projects_group
from .service import PLAYTEST_FLAG

if TYPE_CHECKING:
    import click
    from comfyvn import Kernel

_STR_OR_NULL = {"type": ["string", "null"]}
_ENTER = {
    "type": "object",
    "required": ["scene_id", "node", "pov", "variables", "history", "finished"],
    "properties": {
        "scene_id": {"type": "string"},
        "node": {"type": "string"},
        "pov": {"type": "string"},
        "variables": {"type": "object"},
        "finished": {"type": "boolean"},
        "history": {"type": "array", "items": {"type": "object", "required": ["node", "choice"]}},
    },
}
_RENDER = {
    "type": "object",
    "required": ["scene_id", "node", "pov", "choices", "finished"],
    "properties": {
        "scene_id": {"type": "string"},
        "node": {"type": "string"},
        "pov": {"type": "string"},
        "finished": {"type": "boolean"},
        "choices": {"type": "array", "items": {"type": "object", "required": ["target"]}},
    },
}
_START: dict[str, Any] = {
    "type": "object",
    "required": ["scenario_id", "seed", "policy", "pov"],
    "properties": {
        "scenario_id": {"type": "string"},
        "seed": {"type": "integer"},
        "policy": {"enum": ["first", "random", "scripted", "explore"]},
        "pov": _STR_OR_NULL,
    },
}
_STEP = {
    "type": "object",
    "required": ["index", "scene_id", "node", "choice", "to"],
    "properties": {
        "index": {"type": "integer", "minimum": 0},
        "scene_id": {"type": "string"},
        "node": {"type": "string"},
        "choice": {"type": "string"},
        "to": {"type": "object", "required": ["scene_id", "node"]},
    },
}
_FINISHED = {
    "type": "object",
    "required": [*_START["required"], "digest", "steps", "outcome"],
    "properties": {
        **_START["properties"],
        "digest": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "steps": {"type": "integer", "minimum": 0},
        "outcome": {"enum": ["finished", "max_steps", "script_exhausted", "explored", "truncated"]},
    },
}
_SCENE_VERSIONS = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["id", "version"],
        "properties": {"id": {"type": "string"}, "version": {"type": "integer", "minimum": 1}},
    },
}
_PROJECT_CREATED: dict[str, Any] = {
    "type": "object",
    "required": ["id", "version", "scenes"],
    "properties": {"id": {"type": "string"}, "version": {"type": "integer", "minimum": 1}, "scenes": _SCENE_VERSIONS},
}
_PROJECT_UPDATED = {
    "type": "object",
    "required": ["id", "version", "scenes", "removed"],
    "properties": {
        **_PROJECT_CREATED["properties"],
        "removed": {"type": "array", "items": {"type": "string"}},
    },
}
_PROJECT_DELETED = {
    "type": "object",
    "required": ["id", "version"],
    "properties": {"id": {"type": "string"}, "version": {"type": "integer", "minimum": 1}},
}


@hookimpl
def register_events(register: Any) -> None:
    register("on_scene_enter", "The runner entered a node (/api/scenario/run/step): state after its actions.", _ENTER)
    register("on_choice_render", "The choices available to the POV at the node just entered.", _RENDER)
    register("on_playtest_start", "A headless playtest (or explore-all) began.", _START)
    register("on_playtest_step", "One step of a playtest: the choice taken and where it led.", _STEP)
    register("on_playtest_finished", "A playtest ended: its trace digest, step count and outcome.", _FINISHED)
    register(
        "on_project_created", "A project was added to the store: its id, version and scene versions.", _PROJECT_CREATED
    )
    register(
        "on_project_updated",
        "A store project changed: its new version, the scenes written (with their versions) and removed.",
        _PROJECT_UPDATED,
    )
    register("on_project_deleted", "A project was deleted from the store (with the version it had).", _PROJECT_DELETED)


@hookimpl
def register_flags(register: Any) -> None:
    register(PLAYTEST_FLAG, False, "POST /api/playtest/run: headless playtests with canonical traces.")


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(scenario_group)
    cli.add_command(projects_group)


@hookimpl
def register_routes(kernel: Kernel) -> list[Any]:
    return [*routes.make_routes(kernel), *project_routes.make_project_routes(kernel)]


@hookimpl(optionalhook=True)
def register_job_kinds(register: Any) -> None:
    # Optional: without the jobs plugin there is no such hookspec, and pluggy must not reject this plugin.
    jobs.register_kinds(register)
