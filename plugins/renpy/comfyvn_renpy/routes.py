"""HTTP surface: ``POST /api/export/renpy`` and ``GET /api/export/renpy/preview?project=``.

``project`` is the id of a project in the store (``<data>/projects/<id>``, see
`comfyvn_scenario.ProjectStore`). The game goes to the project's ``exports/renpy/`` and the publish zip
to ``exports/<id>.zip``, so ``GET /api/projects/{id}`` lists them; answers name them relative to the
project, never as server paths. Every request path goes through the store's id check or `safe_join`,
and no request can name an executable (lint uses the engine found on the machine).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from comfyvn.errors import ComfyVNError, NotFound
from comfyvn.paths import safe_join
from comfyvn.wire import read_json
from comfyvn_scenario import ProjectStore
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .export import POV_MODES, ExportOptions
from .fonts import configured_font
from .gui import DEFAULT_RESOLUTION
from .service import DEFAULT_PLATFORMS, ExportRequest, run_export

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["RENPY_EXPORT", "make_routes"]

_BOOLS = ("pov_switch", "per_scene", "testcases", "bake_weather", "dry_run", "publish", "check", "rating_acknowledged")
RENPY_EXPORT = "renpy"  # the game's folder below a store project's exports/


def _font(kernel: Kernel, name: Any) -> str | None:
    """``font``: a font file below ``<data>/fonts`` (400 for a bad name, 404 when missing); without it the
    ``renpy.font`` of comfyvn.json. A request can never point the exporter at another file of the server."""
    if name is None:
        return configured_font(kernel.config)
    if not isinstance(name, str) or not name.strip():
        raise ComfyVNError("font must be a file name below <data>/fonts", field="font", code="invalid_font")
    path = safe_join(kernel.paths.data / "fonts", name, field="font")
    if not path.is_file():
        raise NotFound(f"no font {name!r} in the fonts folder", field="font", code="font_not_found")
    return str(path)


def _request(kernel: Kernel, body: Any, *, dry_run: bool | None = None) -> ExportRequest:
    if not isinstance(body, dict):
        raise ComfyVNError("the body must be a JSON object", field="body", code="invalid_request")
    allowed = {"project", "pov_mode", "platforms", "font", "resolution", "rating_ack_token", *_BOOLS}
    if unknown := sorted(set(body) - allowed):
        raise ComfyVNError(f"unknown field {unknown[0]!r}", field=unknown[0], code="unknown_field")
    for name in _BOOLS:
        if name in body and not isinstance(body[name], bool):
            raise ComfyVNError(f"{name} must be true or false", field=name, code="invalid_type")
    pov_mode = body.get("pov_mode", "auto")
    if pov_mode not in POV_MODES:
        raise ComfyVNError(f"pov_mode must be one of {', '.join(POV_MODES)}", field="pov_mode", code="invalid_pov_mode")
    platforms = body.get("platforms", list(DEFAULT_PLATFORMS))
    if not (isinstance(platforms, list) and all(isinstance(p, str) and p.isidentifier() for p in platforms)):
        raise ComfyVNError('platforms must be a list of names like "linux"', field="platforms", code="invalid_type")
    token = body.get("rating_ack_token")
    if token is not None and (not isinstance(token, str) or not 0 < len(token) <= 200):
        raise ComfyVNError("rating_ack_token must be a token string", field="rating_ack_token", code="invalid_type")
    project_id = body.get("project")
    if not isinstance(project_id, str) or not project_id.strip():
        raise ComfyVNError("project must be the id of a project in the store", field="project", code="invalid_project")
    options = ExportOptions(
        pov_mode=pov_mode,
        pov_switch=body.get("pov_switch", True),
        per_scene=body.get("per_scene", True),
        testcases=body.get("testcases", False),
        bake_weather=body.get("bake_weather", False),
        font=_font(kernel, body.get("font")),
        # "1920x1080" or [1920, 1080]; anything else is a 400 naming the field (gui.parse_resolution).
        resolution=body.get("resolution", DEFAULT_RESOLUTION),
    )
    store = ProjectStore.for_kernel(kernel)
    # Loaded once, last (the request is checked first): the export builds from these very files, trusting
    # the store's validation stamp when it matches them. Errors name the project, never the server's folder.
    stored = store.load(project_id)
    return ExportRequest(
        project=stored.path,
        source=stored,
        relative_to=stored.path,
        out=store.exports_dir(project_id, RENPY_EXPORT),
        options=options,
        dry_run=body.get("dry_run", False) if dry_run is None else dry_run,
        publish_out=store.exports_dir(project_id, f"{project_id}.zip") if body.get("publish") else None,
        platforms=tuple(platforms),
        check=body.get("check", False),
        rating_ack_token=token,
        rating_acknowledged=body.get("rating_acknowledged", False),
    )


def make_routes(kernel: Kernel) -> list[Route]:
    """The exporter's routes bound to ``kernel``."""

    async def export(request: Request) -> JSONResponse:
        """Export a store project to a Ren'Py project in its exports/renpy (or preview it with dry_run).
        ---
        summary: Export to Ren'Py
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [project]
                additionalProperties: false
                properties:
                  project: {type: string, description: "the id of a project in the store"}
                  pov_mode: {enum: [auto, master, forks, both, disabled]}
                  pov_switch: {type: boolean, default: true}
                  per_scene: {type: boolean, default: true}
                  testcases: {type: boolean, default: false}
                  bake_weather: {type: boolean, default: false}
                  font: {type: string, description: "file below <data>/fonts for what the default font lacks"}
                  resolution: {type: string, default: 1920x1080, description: "window WxH, 1280x720 at least"}
                  dry_run: {type: boolean, default: false}
                  publish: {type: boolean, default: false, description: "also write exports/<project>.zip"}
                  platforms: {type: array, items: {type: string}}
                  check: {type: boolean, default: false, description: lint with the installed Ren'Py}
                  rating_ack_token: {type: string, description: "an acknowledged rating token (423 answers issue them)"}
                  rating_acknowledged: {type: boolean, default: false, description: "with the token: pass the gate"}
        responses:
          200: {description: "{ok, project, out (exports/renpy, relative to the project), files, warnings,
                missing_assets, pov, write|preview, publish? {path: exports/<project>.zip, ...}, check?}"}
          400: {description: invalid input; error.field names it}
          403: {description: bake_weather while enable_export_bake is off}
          404: {description: no such project}
          422: {description: the project is invalid (error.errors lists the problems)}
          423: {description: an export gate blocked the export (error.blocked_by)}
        """
        body = await read_json(request)
        return JSONResponse(await run_in_threadpool(lambda: run_export(kernel, _request(kernel, body))))

    async def preview(request: Request) -> JSONResponse:
        """Dry-run an export: per file new/modified/unchanged with short unified diffs; nothing is written.
        ---
        summary: Preview a Ren'Py export
        parameters:
          - {name: project, in: query, required: true, schema: {type: string}}
          - {name: pov_mode, in: query, required: false, schema: {enum: [auto, master, forks, both, disabled]}}
          - {name: resolution, in: query, required: false, schema: {type: string, default: 1920x1080}}
          - {name: rating_ack_token, in: query, required: false, schema: {type: string}}
          - {name: rating_acknowledged, in: query, required: false, schema: {enum: ["true", "false"]}}
        responses:
          200: {description: "{ok, preview: {files[{path, status, sha256, diff?}], manifests, removed, summary,
                label_manifest, missing_assets}, ...}"}
          400: {description: invalid input}
          404: {description: no such project}
          423: {description: an export gate blocked the export}
        """
        params: dict[str, Any] = dict(request.query_params)
        known = {"project", "pov_mode", "timeline", "resolution", "rating_ack_token", "rating_acknowledged"}
        if unknown := sorted(set(params) - known):
            raise ComfyVNError(f"unknown parameter {unknown[0]!r}", field=unknown[0], code="unknown_field")
        params.pop("timeline", None)  # accepted for compatibility; projects have no timelines here
        if "rating_acknowledged" in params:
            flag = {"true": True, "false": False}.get(params["rating_acknowledged"])
            if flag is None:
                raise ComfyVNError(
                    "rating_acknowledged must be true or false", field="rating_acknowledged", code="invalid_type"
                )
            params["rating_acknowledged"] = flag
        return JSONResponse(await run_in_threadpool(lambda: run_export(kernel, _request(kernel, params, dry_run=True))))

    # Canonical paths are namespaced by plugin (writes need renpy.write); the original product's
    # /api/export/renpy paths stay as aliases of the same handlers, listed after.
    return [
        Route("/api/renpy/export", export, methods=["POST"]),
        Route("/api/renpy/export/preview", preview, methods=["GET"]),
        Route("/api/export/renpy", export, methods=["POST"]),
        Route("/api/export/renpy/preview", preview, methods=["GET"]),
    ]
