"""HTTP surface: ``POST /api/export/renpy`` and ``GET /api/export/renpy/preview?project=``.

Projects are folders below ``<data>/projects``; exports go to ``<data>/plugins/renpy/exports/<project>``
and publish zips to ``<data>/plugins/renpy/publish/<project>.zip``. Every request path goes through
`safe_join`, and no request can name an executable (lint uses the engine found on the machine).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from comfyvn.errors import ComfyVNError, NotFound
from comfyvn.paths import safe_join
from comfyvn.wire import read_json
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

__all__ = ["make_routes", "project_dir"]

_BOOLS = ("pov_switch", "per_scene", "testcases", "bake_weather", "dry_run", "publish", "check")


def project_dir(kernel: Kernel, name: Any, field: str = "project") -> Path:
    """The project folder ``name`` below ``<data>/projects`` (400 for bad names, 404 when missing)."""
    if not isinstance(name, str) or not name.strip():
        raise ComfyVNError(
            "project must be a non-empty string (a folder below <data>/projects)", field=field, code="invalid_project"
        )
    folder = safe_join(kernel.paths.data / "projects", name, field=field)
    if not (folder / "project.json").is_file():
        # The message names the project, never the server's folder.
        raise NotFound(f"no project {name!r} (no project.json in it)", field=field, code="project_not_found")
    return folder


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
    allowed = {"project", "pov_mode", "platforms", "font", "resolution", *_BOOLS}
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
    source = project_dir(kernel, body.get("project"))
    name = source.name
    root = kernel.paths.plugin_dir("renpy")
    return ExportRequest(
        project=source,
        out=safe_join(root, "exports", name, field="project"),
        options=ExportOptions(
            pov_mode=pov_mode,
            pov_switch=body.get("pov_switch", True),
            per_scene=body.get("per_scene", True),
            testcases=body.get("testcases", False),
            bake_weather=body.get("bake_weather", False),
            font=_font(kernel, body.get("font")),
            # "1920x1080" or [1920, 1080]; anything else is a 400 naming the field (gui.parse_resolution).
            resolution=body.get("resolution", DEFAULT_RESOLUTION),
        ),
        dry_run=body.get("dry_run", False) if dry_run is None else dry_run,
        publish_out=safe_join(root, "publish", f"{name}.zip", field="project") if body.get("publish") else None,
        platforms=tuple(platforms),
        check=body.get("check", False),
    )


def make_routes(kernel: Kernel) -> list[Route]:
    """The exporter's routes bound to ``kernel``."""

    async def export(request: Request) -> JSONResponse:
        """Export a project below <data>/projects to a Ren'Py project (or preview it with dry_run).
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
                  project: {type: string, description: folder name below <data>/projects}
                  pov_mode: {enum: [auto, master, forks, both, disabled]}
                  pov_switch: {type: boolean, default: true}
                  per_scene: {type: boolean, default: true}
                  testcases: {type: boolean, default: false}
                  bake_weather: {type: boolean, default: false}
                  font: {type: string, description: "file below <data>/fonts for what the default font lacks"}
                  resolution: {type: string, default: 1920x1080, description: "window WxH, 1280x720 at least"}
                  dry_run: {type: boolean, default: false}
                  publish: {type: boolean, default: false}
                  platforms: {type: array, items: {type: string}}
                  check: {type: boolean, default: false, description: lint with the installed Ren'Py}
        responses:
          200: {description: "{ok, project, out, files, warnings, missing_assets, pov, write|preview, publish?,
                check?}"}
          400: {description: invalid input; error.field names it}
          403: {description: bake_weather while enable_export_bake is off}
          404: {description: no such project}
          422: {description: the project is invalid (error.errors lists the problems)}
          423: {description: an export gate blocked the export (error.blocked_by)}
        """
        body = await read_json(request)
        req = _request(kernel, body)
        return JSONResponse(await run_in_threadpool(run_export, kernel, req))

    async def preview(request: Request) -> JSONResponse:
        """Dry-run an export: per file new/modified/unchanged with short unified diffs; nothing is written.
        ---
        summary: Preview a Ren'Py export
        parameters:
          - {name: project, in: query, required: true, schema: {type: string}}
          - {name: pov_mode, in: query, required: false, schema: {enum: [auto, master, forks, both, disabled]}}
          - {name: resolution, in: query, required: false, schema: {type: string, default: 1920x1080}}
        responses:
          200: {description: "{ok, preview: {files[{path, status, sha256, diff?}], manifests, removed, summary,
                label_manifest, missing_assets}, ...}"}
          400: {description: invalid input}
          404: {description: no such project}
          423: {description: an export gate blocked the export}
        """
        params = dict(request.query_params)
        if unknown := sorted(set(params) - {"project", "pov_mode", "timeline", "resolution"}):
            raise ComfyVNError(f"unknown parameter {unknown[0]!r}", field=unknown[0], code="unknown_field")
        params.pop("timeline", None)  # accepted for compatibility; projects have no timelines here
        req = _request(kernel, params, dry_run=True)
        return JSONResponse(await run_in_threadpool(run_export, kernel, req))

    # Canonical paths are namespaced by plugin (writes need renpy.write); the original product's
    # /api/export/renpy paths stay as aliases of the same handlers, listed after.
    return [
        Route("/api/renpy/export", export, methods=["POST"]),
        Route("/api/renpy/export/preview", preview, methods=["GET"]),
        Route("/api/export/renpy", export, methods=["POST"]),
        Route("/api/export/renpy/preview", preview, methods=["GET"]),
    ]
