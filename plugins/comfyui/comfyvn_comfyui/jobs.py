"""The job kinds of the bridge: ``comfyui.render`` (one piece of art) and ``comfyui.render_project``.

``comfyui.render`` asks for the worker resource ``COMFYUI=1``: the embedded worker offers one per
configured server (`jobs_embedded_resources`), a ``comfyvn worker --resources COMFYUI=1 --comfyui-url
…`` next to a GPU box offers its own. On a worker with ``--comfyui-url`` the render goes to that
server; elsewhere it goes to the configured servers, least busy first. Bodies are idempotent: a render
lands at its cache path, so a job that runs twice registers one asset.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from comfyvn.errors import Invalid
from comfyvn_jobs import JobFailed

from .batch import RENDER_KIND, WHAT, failure_line, render_project, request_from_params
from .prompts import STYLES
from .render import render_slot
from .servers import Server, ServerSettings, check_url

if TYPE_CHECKING:
    from comfyvn_jobs import JobContext, KindRegistrar

__all__ = ["PROJECT_KIND", "check_project_params", "check_render_params", "register_kinds"]

PROJECT_KIND = "comfyui.render_project"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_TEXT_LIMIT = 200


def _text(params: Mapping[str, Any], name: str, *, optional: bool = False, limit: int = _TEXT_LIMIT) -> str | None:
    value = params.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise Invalid(f"{name} must be text of 1 to {limit} characters", field=f"params.{name}", code="invalid_params")
    return value


def _flag(params: Mapping[str, Any], name: str) -> bool:
    value = params.get(name, False)
    if not isinstance(value, bool):
        raise Invalid(f"{name} must be true or false", field=f"params.{name}", code="invalid_params")
    return value


def _style(params: Mapping[str, Any]) -> str:
    style = _text(params, "style")
    if style not in STYLES:
        raise Invalid(f"unknown style; one of {', '.join(sorted(STYLES))}", field="params.style", code="invalid_params")
    return str(style)


def _project(params: Mapping[str, Any]) -> str:
    project = _text(params, "project")
    if not _ID.match(str(project)):
        raise Invalid("project is a project id", field="params.project", code="invalid_params")
    return str(project)


def check_render_params(params: dict[str, Any]) -> dict[str, Any]:
    """One piece of art, as `batch.plan_requests` builds it (the stored params are exactly these)."""
    kind = params.get("kind")
    common = {
        "kind": kind,
        "project": _project(params),
        "style": _style(params),
        "force": _flag(params, "force"),
        "ref": _text(params, "ref", optional=True, limit=1024),
    }
    if kind == "sprite":
        appearance = params.get("appearance")
        if not isinstance(appearance, dict):
            raise Invalid("appearance must be an object", field="params.appearance", code="invalid_params")
        return {
            **common,
            "character": _text(params, "character", limit=128),
            "appearance": appearance,
            "expression": _text(params, "expression", limit=64),
            "portrait": _text(params, "portrait", optional=True, limit=1024),
        }
    if kind == "background":
        place, scenes = params.get("place"), params.get("scenes")
        if not isinstance(place, dict) or not isinstance(place.get("key"), str) or not place["key"]:
            raise Invalid("place must be an object with a key", field="params.place", code="invalid_params")
        if not isinstance(scenes, list) or not all(isinstance(s, str) for s in scenes):
            raise Invalid("scenes must be a list of scene ids", field="params.scenes", code="invalid_params")
        return {**common, "place": place, "scenes": scenes}
    raise Invalid("kind is sprite or background", field="params.kind", code="invalid_params")


def check_project_params(params: dict[str, Any]) -> dict[str, Any]:
    """``{project, what, style?, force?}`` of a whole-project render."""
    unknown = sorted(set(params) - {"project", "what", "style", "force"})
    if unknown:
        raise Invalid(f"unknown parameter {unknown[0]!r}", field=f"params.{unknown[0]}", code="invalid_params")
    what = params.get("what", "all")
    if what not in WHAT:
        raise Invalid(f"what is one of {', '.join(WHAT)}", field="params.what", code="invalid_params")
    return {
        "project": _project(params),
        "what": what,
        "style": _style(params) if params.get("style") is not None else None,
        "force": _flag(params, "force"),
    }


def run_render(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    request = request_from_params(ctx.kernel, params)
    servers = None
    if ctx.comfyui_url:
        servers = [Server(ctx.worker or "worker", check_url(ctx.comfyui_url, "comfyui_url"), "worker")]
    ctx.report(0.0, f"rendering {request.label()}")
    outcome = render_slot(
        ctx.kernel,
        request,
        servers=servers if servers is not None else ServerSettings(ctx.kernel).servers(),
        progress=lambda fraction, message: ctx.report(min(max(fraction, 0.0), 1.0), message),
        cancelled=ctx.cancelled,
    )
    ctx.report(1.0, "cached" if outcome["cached"] else f"rendered on {outcome['server']}")
    return outcome


def run_project(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    def update(records: list[dict[str, Any]]) -> None:
        ended = sum(1 for r in records if r["status"] in ("done", "failed", "cancelled"))
        ctx.report(ended / len(records) if records else 1.0, f"{ended}/{len(records)} pieces")

    summary = render_project(
        ctx.kernel,
        params["project"],
        what=params["what"],
        style=params["style"],
        force=params["force"],
        on_update=update,
        cancelled=ctx.cancelled,
    )
    line = failure_line(summary)
    if line is not None and not summary["partial"]:
        # Nothing landed: the job fails (as `comfyvn render project` exits 1), keeping each piece's outcome.
        first = next(e for e in summary["entries"] if e["status"] != "done")
        error = first.get("error") or {}
        field = error.get("field") if isinstance(error.get("field"), str) else None
        raise JobFailed("render_failed", line, field, _error_type(error), result=summary)
    if line is not None:
        summary["warnings"] = [line]
    return summary


def _error_type(error: Mapping[str, Any]) -> str:
    """The kernel error class of a failed piece (an unreachable server stays an upstream failure)."""
    named = error.get("type")
    return named if isinstance(named, str) and named else "OperationFailed"


def register_kinds(register: KindRegistrar) -> None:
    register(
        RENDER_KIND,
        run_render,
        "Render one sprite or background on a ComfyUI server and register it with provenance.",
        resources={"COMFYUI": 1},
        retries=0,
        check=check_render_params,
    )
    register(
        PROJECT_KIND,
        run_project,
        "Render every sprite and background a project shows and lacks, then write them into the project.",
        retries=0,
        check=check_project_params,
    )
