"""Playtests of a story on disk, and ``scenario.explore``: ``comfyvn scenario playtest --policy explore`` as a
job of the jobs plugin.

`load_story` and `playtest_story` are what the CLI runs in-process; the job body runs the same. A *local*
kind: its params name a file or folder of this machine, so the jobs plugin runs it only on the embedded
cluster and refuses it over HTTP (``POST /api/playtest/run`` takes the story in its body). Its progress is
by stage — loading and validating, then exploring — since the walk itself does not report.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from comfyvn.errors import ComfyVNError, Invalid
from comfyvn.wire import loads, parse_request

from .project import PROJECT_FILE, Project
from .service import ScenarioService
from .validation import ValidationReport, validate_project_dir, validate_scene
from .wire import PlaytestRequest

if TYPE_CHECKING:
    from comfyvn import Kernel
    from comfyvn_jobs import JobContext, KindRegistrar

__all__ = ["KIND", "check_explore_params", "load_story", "playtest_story", "register_kinds"]

KIND = "scenario.explore"
_STORY = ("scene", "project", "scenes")
# The share of the job before the walk starts: loading and validating cost far less than exploring.
LOADED = 0.25


def _read_json(path: Path, field: str) -> Any:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ComfyVNError(f"cannot read {path}: {exc.strerror}", field=field, code="invalid_file") from None
    return loads(data, field=field)


def load_story(path: Path) -> tuple[dict[str, Any] | Project, ValidationReport]:
    """A project folder / project.json, or a single scene file, with its validation report."""
    if path.is_dir() or path.name == PROJECT_FILE:
        return validate_project_dir(path)
    scene = _read_json(path, "path")
    return scene, validate_scene(scene)


def playtest_story(
    kernel: Kernel, path: Path, options: Mapping[str, Any], progress: Callable[[float, str], None] | None = None
) -> dict[str, Any]:
    """Load and validate the story at ``path``, then play it with ``options`` (a ``PlaytestRequest`` without
    the story): ``{"valid": false, "validation": {...}}`` when it is invalid, else ``{"valid": true,
    "response": ...}`` (the playtest's answer)."""
    note = progress or (lambda _fraction, _message: None)
    note(0.0, "loading")
    story, report = load_story(path)
    if not report.valid:
        return {"valid": False, "validation": report.to_wire()}
    body = dict(options)
    if isinstance(story, Project):
        body["project"], body["scenes"] = story.document(), story.scenes
    else:
        body["scene"] = story
    note(LOADED, "exploring" if body.get("policy") == "explore" else "playing")
    return {"valid": True, "response": ScenarioService(kernel).playtest(parse_request(body, PlaytestRequest))}


@attrs.frozen
class ExploreJobParams:
    """The params of a ``scenario.explore`` job: the story's absolute path and the playtest options."""

    path: str
    playtest: dict[str, Any] = attrs.Factory(dict)


def check_explore_params(params: dict[str, Any]) -> dict[str, Any]:
    """The jobs plugin's ``check``: the params as they are stored and sent, or `Invalid` naming the field."""
    parsed = parse_request(dict(params), ExploreJobParams, code="invalid_params")
    if not os.path.isabs(parsed.path):
        raise Invalid("path must be an absolute path", field="path", code="invalid_params")
    if story := [key for key in _STORY if key in parsed.playtest]:
        raise Invalid("the story is read from path, not given inline", field=f"playtest.{story[0]}")
    request = parse_request(dict(parsed.playtest), PlaytestRequest)
    if request.policy != "explore":
        raise Invalid("a scenario.explore job explores: policy is explore", field="playtest.policy")
    return {"path": parsed.path, "playtest": dict(parsed.playtest)}


def _summary(outcome: dict[str, Any]) -> dict[str, Any]:
    """What the record keeps of an outcome too big for it (a large project's visited nodes and endings)."""
    if not outcome["valid"]:
        validation = outcome["validation"]
        return {"valid": False, "errors": len(validation["errors"]), "warnings": len(validation["warnings"])}
    response = outcome["response"]
    report = response["report"]
    return {
        "valid": True,
        "digest": response["digest"],
        "states": report["states"],
        "truncated": report["truncated"],
        "endings": len(report["endings"]),
        "visited": len(report["visited"]),
        "unvisited": len(report["unvisited"]),
    }


def run_explore_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """The body of a ``scenario.explore`` job (deterministic: a rerun explores the same)."""
    from comfyvn_jobs.results import bounded_result  # runs only where the jobs plugin is (it brings Dask)

    checked = check_explore_params(params)
    outcome = playtest_story(ctx.kernel, Path(checked["path"]), checked["playtest"], ctx.report)
    ctx.report(1.0, "done")
    return bounded_result(ctx, outcome, _summary)


def register_kinds(register: KindRegistrar) -> None:
    """The scenario plugin's job kinds."""
    register(
        KIND,
        run_explore_job,
        "Explore every branch of a story file or folder of this machine, as `comfyvn scenario playtest --policy "
        "explore`.",
        check=check_explore_params,
        local=True,
    )
