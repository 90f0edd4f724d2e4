"""Render the art a project shows and lacks: plan, one ``comfyui.render`` job per piece, apply, summarise.

The plan (`plan.plan_art`) lists every sprite and background the story shows. A slot whose art the
author provided (a file of the project, or a registry asset that is not one of our renders) is left
alone; every other slot becomes a render job (resource ``COMFYUI=1``), keyed by what it renders, so a
re-run after Ctrl-C picks up where it stopped: finished renders are cached, the rest run again. When
the jobs end, the renders are written into the project through the store (a new version; the old one
stays in the history) and the summary counts rendered, cached, failed and retried pieces.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath
from typing import Any

from comfyvn.errors import ComfyVNError, Invalid, NotFound, PreconditionFailed
from comfyvn.paths import safe_join
from comfyvn_assets import AssetRegistry
from comfyvn_jobs import jobs_for
from comfyvn_scenario.store import ProjectStore, StoredProject

from .apply import ASSET_PREFIX, apply_renders, rendered_index
from .plan import BackgroundSlot, SpriteSlot, plan_art
from .prompts import STYLES
from .render import SlotRequest, current_digest, dest_path, project_path
from .servers import SETUP_HINT, ServerSettings

__all__ = [
    "RENDER_KIND",
    "WHAT",
    "default_style",
    "failure_line",
    "job_key",
    "plan_requests",
    "render_project",
    "request_from_params",
    "sprite_params",
    "submit_renders",
]

RENDER_KIND = "comfyui.render"
WHAT = ("sprites", "backgrounds", "all")
DEFAULT_STYLE = "anime"
_POLL = 0.2
_WAIT_LIMIT = 6 * 3600.0


def default_style(kernel: Any, meta: Mapping[str, Any] | None = None) -> str:
    """The project's ``metadata.comfyui.style``, else ``comfyui.style`` in comfyvn.json, else anime."""
    for source in (
        (meta or {}).get("metadata", {}).get("comfyui") if isinstance((meta or {}).get("metadata"), dict) else None,
        kernel.config.get("comfyui"),
    ):
        if isinstance(source, dict) and isinstance(source.get("style"), str) and source["style"] in STYLES:
            return str(source["style"])
    return DEFAULT_STYLE


def _appearance(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a character a prompt is made of (bounded: job params travel and are stored)."""
    card = spec.get("metadata", {}).get("card") if isinstance(spec.get("metadata"), dict) else None
    found = card.get("tags") if isinstance(card, dict) else None
    tags: list[Any] = found if isinstance(found, list) else []
    out: dict[str, Any] = {
        "name": str(spec.get("name") or "")[:200],
        "description": str(spec.get("description") or "")[:4000],
    }
    if isinstance(spec.get("appearance"), str):
        out["appearance"] = spec["appearance"][:2000]
    out["metadata"] = {"card": {"tags": [str(t)[:60] for t in tags[:40]]}}
    return out


def _provided(stored: StoredProject, registry: AssetRegistry, ref: str | None, ours: set[str]) -> bool:
    """Whether ``ref`` is art the author provided: a file of the project, or a registry asset not rendered by us."""
    if not ref:
        return False
    if ref.startswith(ASSET_PREFIX):
        uid = ref.removeprefix(ASSET_PREFIX)
        if uid in ours:
            return False
        try:
            return registry.get(uid).source != "comfyui"
        except ComfyVNError:
            return False
    try:
        return safe_join(stored.path, ref).is_file()
    except ComfyVNError:
        return False


def plan_requests(
    kernel: Any, stored: StoredProject, *, what: str, style: str, force: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(jobs, provided)``: the render job params of every slot to render, and the slots left to the author's art."""
    if what not in WHAT:
        raise Invalid(f"what is one of {', '.join(WHAT)}", field="what")
    if style not in STYLES:
        raise Invalid(f"unknown style {style!r}; one of {', '.join(sorted(STYLES))}", field="style")
    registry = AssetRegistry.for_kernel(kernel)
    plan = plan_art(stored.project)
    index = rendered_index(stored.project.meta)
    ours = {uid for by_expr in index["sprites"].values() for uid in by_expr.values()} | set(index["backgrounds"])
    jobs: list[dict[str, Any]] = []
    provided: list[dict[str, Any]] = []
    characters = stored.project.characters
    if what in ("sprites", "all"):
        for slot in plan.sprites:
            jobs_or_provided = provided if _provided(stored, registry, slot.ref, ours) else jobs
            jobs_or_provided.append(sprite_params(stored, slot, characters.get(slot.character) or {}, style, force))
    if what in ("backgrounds", "all"):
        for bg in plan.backgrounds:
            target = provided if _provided(stored, registry, bg.ref, ours) else jobs
            target.append(_background_params(stored, bg, index, style, force))
    return jobs, provided


def sprite_params(
    stored: StoredProject, slot: SpriteSlot, spec: Mapping[str, Any], style: str, force: bool
) -> dict[str, Any]:
    portrait = spec.get("portrait") if isinstance(spec.get("portrait"), str) else None
    return {
        "kind": "sprite",
        "project": stored.id,
        "character": slot.character,
        "appearance": _appearance(spec),
        "expression": slot.expression,
        "portrait": portrait,
        "style": style,
        "force": force,
        "ref": slot.ref,
    }


def _background_params(
    stored: StoredProject, slot: BackgroundSlot, index: Mapping[str, Any], style: str, force: bool
) -> dict[str, Any]:
    place = {
        "key": slot.key,
        "location": slot.location,
        "time_of_day": slot.time_of_day,
        "weather": slot.weather,
        "ref": slot.ref,
    }
    if slot.ref and slot.ref.startswith(ASSET_PREFIX):
        # One of our renders: its place is what it was rendered for (the reference says nothing).
        known = index["backgrounds"].get(slot.ref.removeprefix(ASSET_PREFIX))
        if isinstance(known, dict):
            place = {k: known.get(k) for k in ("key", "location", "time_of_day", "weather")} | {"ref": known.get("was")}
    return {
        "kind": "background",
        "project": stored.id,
        "place": place,
        "scenes": list(slot.scenes),
        "style": style,
        "force": force,
        "ref": slot.ref,
    }


def job_key(kernel: Any, params: Mapping[str, Any], run: str) -> str:
    """One job per piece of art, run and cache state. A re-run (after Ctrl-C) submits the same keys, so a
    piece still rendering is waited for rather than queued twice; the sha256 of what the cache holds now
    is part of the key, so a piece that has been rendered since (or removed from the registry) is a new
    job that finds the cache as it is, and so is the render's digest with the settings as they are now, so
    a changed LoRA stack, checkpoint or custom workflow is a new job rather than the last run's answer.
    ``run`` changes with ``force``: a forced run is always new."""
    request = request_from_params(kernel, params)
    registry = AssetRegistry.for_kernel(kernel)
    paths = [dest_path(request), project_path(request)]
    cache = [asset.sha256 if asset else None for asset in (registry.by_path(p) if p else None for p in paths)]
    try:
        digest = current_digest(kernel, request)
    except ComfyVNError as exc:  # a broken custom workflow: the job runs and fails naming it
        digest = f"error:{exc.code}:{exc.message}"
    body = json.dumps(
        {"params": {k: params[k] for k in sorted(params) if k != "force"}, "cache": cache, "digest": digest},
        sort_keys=True,
    )
    return f"render:{hashlib.sha256(body.encode()).hexdigest()[:24]}:{run}"


def submit_renders(kernel: Any, params_list: list[dict[str, Any]], *, force: bool) -> list[str]:
    """Submit one ``comfyui.render`` job per piece, keyed by `job_key` (a forced run is a new one); their ids."""
    if not params_list:
        return []
    jobs = jobs_for(kernel)
    jobs.refresh_resources()  # servers added since the embedded cluster started are render slots now
    run = f"force-{time.time_ns()}" if force else "cache"
    return [jobs.submit(RENDER_KIND, params, key=job_key(kernel, params, run)) for params in params_list]


def render_project(
    kernel: Any,
    project_id: str,
    *,
    what: str = "all",
    style: str | None = None,
    force: bool = False,
    on_update: Callable[[list[dict[str, Any]]], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Render what ``project_id`` lacks on the configured servers and write it into the project."""
    store = ProjectStore.for_kernel(kernel)
    stored = store.load(project_id)
    chosen = style or default_style(kernel, stored.project.meta)
    params_list, provided = plan_requests(kernel, stored, what=what, style=chosen, force=force)
    if params_list and not ServerSettings(kernel).servers():
        raise NotFound(SETUP_HINT, field="servers", code="comfyui_not_configured")
    jobs = jobs_for(kernel)
    submitted = list(zip(params_list, submit_renders(kernel, params_list, force=force), strict=True))
    try:
        records = _wait(jobs, [job_id for _, job_id in submitted], on_update, cancelled)
    except KeyboardInterrupt:
        # Ctrl-C: what finished is written into the project now (a re-run only renders the rest).
        finished = [(params, jobs.get(job_id)) for params, job_id in submitted]
        _apply(kernel, store, project_id, [_outcome(params, record) for params, record in finished if _done(record)])
        raise
    outcomes: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    for (params, job_id), record in zip(submitted, records, strict=True):
        entry = {"job": job_id, "kind": params["kind"], "status": record["status"], **_slot_name(params)}
        if _done(record):
            result = record["result"]
            entry.update(
                {k: result.get(k) for k in ("cached", "asset_uid", "asset_path", "server", "retries", "failures")}
            )
            outcomes.append(_outcome(params, record))
        else:
            entry["error"] = record.get("error")
        entries.append(entry)
    applied = _apply(kernel, store, project_id, outcomes)
    done = [e for e in entries if e["status"] == "done"]
    failed = len(entries) - len(done)
    return {
        "project": project_id,
        "style": chosen,
        "what": what,
        "force": force,
        "rendered": sum(1 for e in done if not e.get("cached")),
        "cached": sum(1 for e in done if e.get("cached")),
        "failed": failed,
        # Some pieces landed and some did not: the project has part of its art (see `failure_line`).
        "partial": bool(done) and failed > 0,
        "retries": sum(int(e.get("retries") or 0) for e in done),
        "provided": len(provided),
        "version": applied,
        "entries": entries,
    }


def failure_line(summary: Mapping[str, Any]) -> str | None:
    """``"<n> of <m> pieces rendered: <first failed piece>: <its reason>"`` for a summary with a failed
    piece, else None: what a render job reports as its error (nothing landed) or its warning (a part did)."""
    failed = [e for e in summary["entries"] if e["status"] != "done"]
    if not failed:
        return None
    first = failed[0]
    name = (
        f"sprite {first['character']}/{first['expression']}"
        if first["kind"] == "sprite"
        else (f"background {first['place']}")
    )
    reason = (first.get("error") or {}).get("message") or first["status"]
    total, landed = len(summary["entries"]), len(summary["entries"]) - len(failed)
    return f"{landed} of {total} {'piece' if total == 1 else 'pieces'} rendered: {name}: {reason}"


def _done(record: Mapping[str, Any]) -> bool:
    return record["status"] == "done" and isinstance(record.get("result"), dict)


def _outcome(params: Mapping[str, Any], record: Mapping[str, Any]) -> dict[str, Any]:
    return {**params, "asset_uid": record["result"]["asset_uid"]}


def _slot_name(params: Mapping[str, Any]) -> dict[str, Any]:
    if params["kind"] == "sprite":
        return {"character": params["character"], "expression": params["expression"]}
    return {"place": params["place"]["key"], "scenes": params["scenes"]}


def _wait(
    jobs: Any,
    job_ids: list[str],
    on_update: Callable[[list[dict[str, Any]]], None] | None,
    cancelled: Callable[[], bool] | None,
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + _WAIT_LIMIT
    while True:
        records = [jobs.get(job_id) for job_id in job_ids]
        if on_update is not None:
            on_update(records)
        if all(r["status"] in ("done", "failed", "cancelled") for r in records):
            return records
        if cancelled is not None and cancelled():
            for record in records:
                if record["status"] in ("queued", "running"):
                    jobs.cancel(record["id"])
        if time.monotonic() > deadline:
            raise ComfyVNError("render jobs did not finish in time", field="jobs", code="render_timeout")
        time.sleep(_POLL)


def _apply(kernel: Any, store: ProjectStore, project_id: str, outcomes: list[dict[str, Any]]) -> int | None:
    """Write the renders into the project (one new version; None when nothing changed) and hold each
    asset for the project, so `gc` keeps what a project names."""
    registry = AssetRegistry.for_kernel(kernel)
    for outcome in outcomes:
        registry.add_ref(outcome["asset_uid"], f"project:{project_id}")
    for _attempt in range(3):
        stored = store.load(project_id)
        meta, scenes, changed = apply_renders(stored.project.meta, stored.project.scenes, outcomes)
        if not changed:
            return None
        try:
            return store.update_project(project_id, meta, scenes, if_match=stored.version).version
        except PreconditionFailed:
            continue  # edited meanwhile: apply to the new version
    raise PreconditionFailed("the project kept changing while renders were applied; run again", field="project")


def request_from_params(kernel: Any, params: Mapping[str, Any]) -> SlotRequest:
    """The `render.SlotRequest` of a job's params (the card portrait read from the stored project)."""
    portrait: bytes | None = None
    if params["kind"] == "sprite" and params.get("portrait"):
        store = ProjectStore.for_kernel(kernel)
        try:
            path = safe_join(store.path(params["project"]), params["portrait"])
            if path.is_file() and PurePosixPath(params["portrait"]).suffix.lower() in (
                ".png",
                ".jpg",
                ".jpeg",
                ".webp",
            ):
                portrait = path.read_bytes()
        except ComfyVNError:
            portrait = None
    return SlotRequest(
        kind=params["kind"],
        style=params["style"],
        character_id=params.get("character"),
        character=params.get("appearance") or {},
        expression=params.get("expression"),
        place=params.get("place") or {},
        project=params.get("project"),
        portrait=portrait,
        force=bool(params.get("force")),
    )
