"""What the routes and commands of the bridge do: health, per-character renders, render plans."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
from comfyvn import errors
from comfyvn.errors import ComfyVNError, Invalid, NotFound, OperationFailed
from comfyvn_jobs import jobs_for
from comfyvn_scenario.store import ProjectStore, StoredProject

from .batch import default_style, plan_requests, request_from_params, sprite_params, submit_renders
from .client import ComfyClient
from .plan import SpriteSlot, plan_art
from .prompts import STYLES
from .render import is_cached
from .servers import SETUP_HINT, Server, ServerSettings

__all__ = ["find_character", "health", "render_character", "render_plan"]

_HEALTH_TIMEOUT = 5.0
_WAIT = 3600.0


def health(kernel: Any) -> dict[str, Any]:
    """Each configured server's ``/system_stats`` (or why it cannot be reached); ``configured: false`` and
    how to add one when there is none."""
    settings = ServerSettings(kernel)
    servers = settings.servers()
    if not servers:
        return {"ok": True, "configured": False, "hint": SETUP_HINT, "servers": []}
    rows = [_probe(settings, server) for server in servers]
    return {"ok": True, "configured": True, "healthy": sum(1 for r in rows if r["ok"]), "servers": rows}


def _probe(settings: ServerSettings, server: Server) -> dict[str, Any]:
    row: dict[str, Any] = server.to_wire(has_token=settings.token(server) is not None)
    try:
        with ComfyClient(server.url, token=settings.token(server), timeout=_HEALTH_TIMEOUT) as client:
            stats = client.system_stats()
    except (ComfyVNError, httpx.HTTPError) as exc:
        return {**row, "ok": False, "error": str(exc)[:300]}
    listed = stats.get("devices")
    devices: list[Any] = listed if isinstance(listed, list) else []
    return {
        **row,
        "ok": True,
        "system": stats.get("system", {}),
        "devices": [
            {k: d.get(k) for k in ("name", "type", "vram_total", "vram_free")} for d in devices if isinstance(d, dict)
        ],
    }


def find_character(kernel: Any, character_id: str, project: str | None) -> StoredProject:
    """The store project holding ``character_id``: the named one, else the only one that has it."""
    store = ProjectStore.for_kernel(kernel)
    if project is not None:
        stored = store.load(project)
        if character_id not in stored.project.characters:
            raise NotFound(
                f"project {project!r} has no character {character_id[:64]!r}",
                field="character_id",
                code="character_not_found",
            )
        return stored
    holders = [row["id"] for row in store.list_projects() if character_id in store.load(row["id"]).project.characters]
    if not holders:
        raise NotFound(
            f"no project has a character {character_id[:64]!r}", field="character_id", code="character_not_found"
        )
    if len(holders) > 1:
        raise Invalid(
            f"{len(holders)} projects have a character {character_id[:64]!r}; name one in `project`",
            field="project",
            code="ambiguous_character",
        )
    return store.load(holders[0])


def render_character(
    kernel: Any,
    stored: StoredProject,
    character_id: str,
    *,
    poses: Sequence[str] | None,
    style: str | None,
    force: bool,
) -> dict[str, Any]:
    """Render (or reuse) the named poses of one character, each as a ``comfyui.render`` job, and wait:
    the spec's per-pose entries ``{pose, cached, asset_path, asset_sidecar, bridge_sidecar, loras[]}``."""
    chosen = style or default_style(kernel, stored.project.meta)
    if chosen not in STYLES:
        raise Invalid(f"unknown style {chosen[:40]!r}; one of {', '.join(sorted(STYLES))}", field="style")
    if not ServerSettings(kernel).servers():
        # A render job asks for a COMFYUI slot no worker offers without a server: it would wait forever.
        raise NotFound(SETUP_HINT, field="servers", code="comfyui_not_configured")
    spec = stored.project.characters[character_id]
    if poses is None:
        poses = [s.expression for s in plan_art(stored.project).sprites if s.character == character_id] or ["neutral"]
    sprites = spec.get("sprites") if isinstance(spec.get("sprites"), dict) else {}
    params_list = [
        sprite_params(
            stored,
            SpriteSlot(character_id, str(spec.get("name") or character_id), pose, sprites.get(pose)),
            spec,
            chosen,
            force,
        )
        for pose in poses
    ]
    jobs = jobs_for(kernel)
    ids = submit_renders(kernel, params_list, force=force)
    results = []
    for pose, job_id in zip(poses, ids, strict=True):
        record = jobs.wait(job_id, timeout=_WAIT)
        if record["status"] != "done":
            error = record.get("error") or {}
            raise _job_error(error)(
                f"rendering {character_id} {pose} failed: {error.get('message', record['status'])}",
                field=str(error.get("field") or "poses"),
                code=str(error.get("code") or "render_failed"),
            )
        outcome = record["result"]
        results.append(
            {
                "pose": pose,
                "job": job_id,
                **{
                    k: outcome.get(k)
                    for k in ("cached", "asset_uid", "asset_path", "asset_sidecar", "bridge_sidecar", "loras", "server")
                },
            }
        )
    return {"ok": True, "character_id": character_id, "project": stored.id, "style": chosen, "results": results}


def _job_error(error: dict[str, Any]) -> type[ComfyVNError]:
    """The kernel error class a failed job's error names (``type``: an upstream failure stays a 502, a
    missing server a 404); an unexpected failure is ours (`OperationFailed`)."""
    found = getattr(errors, str(error.get("type") or ""), None)
    if isinstance(found, type) and issubclass(found, ComfyVNError) and found is not errors.FeatureDisabled:
        return found
    return OperationFailed


def render_plan(kernel: Any, project_id: str, *, what: str, style: str | None) -> dict[str, Any]:
    """What a project render would do, without doing it: the pieces to render and those the author provided."""
    stored = ProjectStore.for_kernel(kernel).load(project_id)
    chosen = style or default_style(kernel, stored.project.meta)
    jobs, provided = plan_requests(kernel, stored, what=what, style=chosen, force=False)
    return {
        "ok": True,
        "project": project_id,
        "style": chosen,
        "configured": bool(ServerSettings(kernel).servers()),
        "render": [{**_brief(p), "cached": is_cached(kernel, request_from_params(kernel, p))} for p in jobs],
        "provided": [_brief(p) for p in provided],
    }


def _brief(params: dict[str, Any]) -> dict[str, Any]:
    if params["kind"] == "sprite":
        return {
            "kind": "sprite",
            "character": params["character"],
            "expression": params["expression"],
            "ref": params["ref"],
        }
    return {"kind": "background", **params["place"], "scenes": params["scenes"]}
