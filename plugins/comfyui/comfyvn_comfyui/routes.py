"""HTTP surface of the ComfyUI bridge: parse → `service`/`batch` → JSON. Writes need ``comfyui.write``.

Renders are jobs: ``POST /api/render/project`` answers 202 with the job at once; the per-character
routes (the original's ``/api/pov/render/switch`` and ``/api/characters/render``) wait for their
pieces and answer the per-pose entries. With no server configured, ``GET /api/comfyui/health`` says
``configured: false`` and how to add one, and a render that needs a server fails with 404
``comfyui_not_configured`` carrying the same hint — never a made-up picture.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from comfyvn.errors import Invalid, NotFound
from comfyvn.wire import parse_request, read_json
from comfyvn_jobs import jobs_for
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from . import service
from .batch import WHAT
from .jobs import PROJECT_KIND
from .loras import LoraStore
from .servers import SETUP_HINT, ServerSettings
from .wire import AddServer, LoraList, RenderCharacter, RenderProject, RenderSwitch

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["make_routes"]


def _no_query(request: Request, *allowed: str) -> None:
    if unknown := sorted(set(request.query_params) - set(allowed)):
        raise Invalid(f"unknown parameter {unknown[0]!r}", field=unknown[0], code="unknown_field")


def make_routes(kernel: Kernel) -> list[Route]:
    """The bridge's routes bound to ``kernel``."""
    settings = ServerSettings(kernel)

    async def health(request: Request) -> JSONResponse:
        """Each configured ComfyUI server's /system_stats, or why it cannot be reached.
        ---
        summary: ComfyUI servers' health
        responses:
          200: {description: "{ok, configured, hint? (when none is configured), healthy?, servers[{name, url, source,
                token (whether one is stored), ok, system?, devices[]?, error?}]}"}
        """
        _no_query(request)
        return JSONResponse(await run_in_threadpool(service.health, kernel))

    async def list_servers(request: Request) -> JSONResponse:
        """The configured servers (environment first, then the config file); never their tokens.
        ---
        summary: List ComfyUI servers
        responses:
          200: {description: "{ok, configured, servers[{name, url, source, token}]}"}
        """
        _no_query(request)

        def rows() -> list[dict[str, Any]]:
            return [s.to_wire(has_token=settings.token(s) is not None) for s in settings.servers()]

        found = await run_in_threadpool(rows)
        return JSONResponse({"ok": True, "configured": bool(found), "servers": found})

    async def add_server(request: Request) -> JSONResponse:
        """Add a ComfyUI server; a token (for a server behind an auth proxy) goes to the vault.
        ---
        summary: Add a ComfyUI server
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [url]
                additionalProperties: false
                properties:
                  url: {type: string, description: "http(s)://host:port, no credentials"}
                  name: {type: string, description: "a-z0-9_- (default comfyui-N)"}
                  token: {type: string, description: "sent as a bearer token; stored in the vault, never shown"}
        responses:
          201: {description: "{ok, server{name, url, source, token}}"}
          400: {description: invalid URL or name}
          409: {description: URL or name already configured}
        """
        req = parse_request(await read_json(request), AddServer)
        server = await run_in_threadpool(lambda: settings.add(req.url, name=req.name, token=req.token))
        return JSONResponse({"ok": True, "server": server.to_wire(has_token=bool(req.token))}, status_code=201)

    async def remove_server(request: Request) -> JSONResponse:
        """Remove a configured server (and its token).
        ---
        summary: Remove a ComfyUI server
        responses:
          200: {description: "{ok, removed}"}
          404: {description: no configured server of that name}
        """
        name = request.path_params["name"]
        await run_in_threadpool(settings.remove, name)
        return JSONResponse({"ok": True, "removed": name})

    async def render_project(request: Request) -> JSONResponse:
        """Render every sprite and background a store project shows and lacks, as a job.
        ---
        summary: Render a project's missing art
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [project]
                additionalProperties: false
                properties:
                  project: {type: string}
                  what: {enum: [sprites, backgrounds, all], default: all}
                  style: {type: string, description: "anime, painterly, pixel, realistic (default: the project's)"}
                  force: {type: boolean, default: false, description: render again even when cached}
        responses:
          202: {description: "{job} (comfyui.render_project); its result: {project, style, rendered, cached, failed,
                partial, warnings?, retries, provided, version, entries[]}; the job fails (render_failed, the
                summary kept as its result) when no piece rendered and one failed"}
          400: {description: invalid input}
          404: {description: no such project, or no ComfyUI server configured (with how to add one)}
        """
        req = parse_request(await read_json(request), RenderProject)
        if req.what not in WHAT:
            raise Invalid(f"what is one of {', '.join(WHAT)}", field="what", code="invalid_request")

        def submit() -> dict[str, Any]:
            plan = service.render_plan(kernel, req.project, what=req.what, style=req.style)  # 404/400 now
            if plan["render"] and not plan["configured"]:
                raise NotFound(SETUP_HINT, field="servers", code="comfyui_not_configured")
            jobs = jobs_for(kernel)
            params = {"project": req.project, "what": req.what, "style": req.style, "force": req.force}
            return jobs.get(jobs.submit(PROJECT_KIND, params))

        return JSONResponse({"job": await run_in_threadpool(submit)}, status_code=202)

    async def render_plan(request: Request) -> JSONResponse:
        """What a project render would do: the pieces to render and those the author provided.
        ---
        summary: Plan a project render
        parameters:
          - {name: project, in: query, required: true, schema: {type: string}}
          - {name: what, in: query, required: false, schema: {enum: [sprites, backgrounds, all]}}
          - {name: style, in: query, required: false, schema: {type: string}}
        responses:
          200: {description: "{ok, project, style, configured, render[], provided[]}"}
          400: {description: invalid parameter}
          404: {description: no such project}
        """
        _no_query(request, "project", "what", "style")
        project = request.query_params.get("project")
        if not project:
            raise Invalid("project is required", field="project", code="invalid_request")
        what = request.query_params.get("what", "all")
        style = request.query_params.get("style")
        return JSONResponse(await run_in_threadpool(service.render_plan, kernel, project, what=what, style=style))

    async def _render(
        character_id: str, project: str | None, poses: tuple[str, ...] | None, style: str | None, force: bool
    ) -> JSONResponse:
        def run() -> dict[str, Any]:
            stored = service.find_character(kernel, character_id, project)
            return service.render_character(kernel, stored, character_id, poses=poses, style=style, force=force)

        return JSONResponse(await run_in_threadpool(run))

    async def render_switch(request: Request) -> JSONResponse:
        """Render (or reuse) a character's poses: the POV render pipeline of the original.
        ---
        summary: Render a character's poses
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [character_id]
                additionalProperties: false
                properties:
                  character_id: {type: string}
                  style: {type: string}
                  poses: {type: array, items: {type: string}, default: [neutral]}
                  force: {type: boolean, default: false}
                  project: {type: string, description: "the store project (needed when several have the character)"}
        responses:
          200: {description: "{ok, character_id, project, style, results[{pose, cached, asset_uid, asset_path,
                asset_sidecar, bridge_sidecar, loras[], server, job}]}"}
          400: {description: invalid input, or the character is in several projects}
          404: {description: no such character or project, or no ComfyUI server configured}
          502: {description: every server failed}
        """
        req = parse_request(await read_json(request), RenderSwitch)
        return await _render(req.character_id, req.project, req.poses, req.style, req.force)

    async def render_character(request: Request) -> JSONResponse:
        """Render (or reuse) every expression the story shows a character with (or the named ones).
        ---
        summary: Render a character's sprites
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [project, character_id]
                additionalProperties: false
                properties:
                  project: {type: string}
                  character_id: {type: string}
                  style: {type: string}
                  expressions: {type: array, items: {type: string}}
                  force: {type: boolean, default: false}
        responses:
          200: {description: "{ok, character_id, project, style, results[{pose, cached, asset_uid, asset_path, ...}]}"}
          400: {description: invalid input}
          404: {description: no such character or project, or no ComfyUI server configured}
        """
        req = parse_request(await read_json(request), RenderCharacter)
        return await _render(req.character_id, req.project, req.expressions, req.style, req.force)

    async def get_loras(request: Request) -> JSONResponse:
        """A character's LoRA stack (``<data>/characters/<id>/lora.json``).
        ---
        summary: A character's LoRAs
        responses:
          200: {description: "{ok, character_id, loras[{name, strength_model, strength_clip, sha256?}]}"}
          400: {description: invalid character id}
        """
        character = request.path_params["id"]
        loras = await run_in_threadpool(LoraStore(kernel.paths.data).get, character)
        return JSONResponse({"ok": True, "character_id": character, "loras": [e.to_wire() for e in loras]})

    async def put_loras(request: Request) -> JSONResponse:
        """Replace a character's LoRA stack; renders apply it and record the weights in their provenance.
        ---
        summary: Set a character's LoRAs
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [loras]
                additionalProperties: false
                properties:
                  loras:
                    type: array
                    items:
                      type: object
                      required: [name]
                      properties:
                        name: {type: string}
                        strength_model: {type: number, default: 1.0}
                        strength_clip: {type: number, default: 1.0}
                        sha256: {type: string}
        responses:
          200: {description: "{ok, character_id, loras[]}"}
          400: {description: invalid LoRA entries or character id}
        """
        character = request.path_params["id"]
        req = parse_request(await read_json(request), LoraList)

        loras = await run_in_threadpool(LoraStore(kernel.paths.data).set, character, req.loras)
        return JSONResponse({"ok": True, "character_id": character, "loras": [e.to_wire() for e in loras]})

    return [
        Route("/api/comfyui/health", health, methods=["GET"]),
        Route("/api/comfyui/servers", list_servers, methods=["GET"]),
        Route("/api/comfyui/servers", add_server, methods=["POST"]),
        Route("/api/comfyui/servers/{name}", remove_server, methods=["DELETE"]),
        Route("/api/render/project", render_project, methods=["POST"]),
        Route("/api/render/plan", render_plan, methods=["GET"]),
        Route("/api/pov/render/switch", render_switch, methods=["POST"]),
        Route("/api/characters/render", render_character, methods=["POST"]),
        Route("/api/characters/{id}/loras", get_loras, methods=["GET"]),
        Route("/api/characters/{id}/loras", put_loras, methods=["PUT"]),
    ]
