"""HTTP surface of Mini-VN and the native viewer: parse -> domain -> JSON. Writes need ``viewer.write`` off
loopback (the server's area rule). Mini-VN routes answer 403 ``feature_disabled`` while ``enable_mini_vn``
is off."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from comfyvn.errors import Invalid
from comfyvn.wire import parse_request, read_json
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from . import native, thumbnails
from .features import FLAG_MINI
from .mini import Moment, parse_size
from .wire import RefreshRequest, SnapshotRequest, StartRequest

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["make_routes"]


def _no_query(request: Request) -> None:
    if unknown := sorted(request.query_params):
        raise Invalid(f"unknown parameter {unknown[0][:40]!r}", field=unknown[0][:40], code="unknown_field")


def _seed(value: int) -> int:
    if isinstance(value, bool) or not 0 <= value < 2**32:
        raise Invalid("seed is a whole number from 0 to 4294967295", field="seed", code="invalid_seed")
    return value


def make_routes(kernel: Kernel) -> list[Route]:
    """The Mini-VN (and native viewer) routes bound to ``kernel``."""

    async def snapshot(request: Request) -> JSONResponse:
        """A Mini-VN still of one moment of a store project (cached: the same inputs give the same digest).
        ---
        summary: Draw a Mini-VN still
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                additionalProperties: false
                required: [project]
                properties:
                  project: {type: string, description: a store project id}
                  scene: {type: string, description: "default: the start scene (or the node's scene)"}
                  node: {type: string, description: "default: the scene's start; with no scene and no node, where
                    the runner starts for this seed and POV"}
                  pov: {type: string}
                  seed: {type: integer, minimum: 0, maximum: 4294967295, default: 0}
                  size: {type: string, default: 640x360, description: "WxH, at most 1920x1080 pixels, 1:1 to 3:1"}
        responses:
          200: {description: "{mini_digest, thumbnail_url, project, scene, node, pov, seed, width, height, cached}"}
          400: {description: a malformed field}
          403: {description: enable_mini_vn is off}
          404: {description: no such project, scene, node or POV}
          413: {description: size over 1920x1080 pixels}
          422: {description: the project does not validate}
        """
        kernel.flags.require(FLAG_MINI)
        _no_query(request)
        body = parse_request(await read_json(request), SnapshotRequest)
        size = parse_size(body.size)
        moment = Moment(scene=body.scene, node=body.node, pov=body.pov, seed=_seed(body.seed))

        def run() -> dict[str, Any]:
            return thumbnails.snapshot(kernel, thumbnails.load(kernel, body.project), moment, size)

        return JSONResponse(await run_in_threadpool(run))

    async def refresh(request: Request) -> JSONResponse:
        """Rebuild the Mini-VN stills of every node of a store project, as a ``viewer.mini_refresh`` job.
        ---
        summary: Refresh a project's Mini-VN stills
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                additionalProperties: false
                required: [project]
                properties:
                  project: {type: string}
                  size: {type: string, default: 640x360}
                  pov: {type: string}
                  seed: {type: integer, minimum: 0, maximum: 4294967295, default: 0}
        responses:
          202: {description: "the job record; its result: {project, count, drawn, thumbnails: [{scene, node,
                mini_digest, thumbnail_url, cached}]}"}
          400: {description: a malformed field}
          403: {description: enable_mini_vn is off}
          404: {description: no such project}
        """
        kernel.flags.require(FLAG_MINI)
        _no_query(request)
        body = parse_request(await read_json(request), RefreshRequest)
        params: dict[str, Any] = {"project": body.project, "seed": _seed(body.seed), "pov": body.pov}
        if body.size is not None:
            params["size"] = body.size
        job = await run_in_threadpool(thumbnails.submit_refresh, kernel, params)
        return JSONResponse(job, status_code=202)

    async def thumbnail(request: Request) -> Response:
        """A cached Mini-VN still (PNG) by its digest.
        ---
        summary: Get a Mini-VN still
        responses:
          200: {description: the PNG}
          400: {description: not a digest}
          403: {description: enable_mini_vn is off}
          404: {description: no still with that digest}
        """
        _no_query(request)
        path = await run_in_threadpool(thumbnails.thumbnail_file, kernel, request.path_params["digest"])
        # Named by the digest of its inputs, a still never changes: cache it for good.
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "public, max-age=31536000"})

    async def start(request: Request) -> JSONResponse:
        """Export a store project when needed and run the real Ren'Py on it; without an engine, the fallback.
        ---
        summary: Start the native viewer
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                additionalProperties: false
                properties:
                  project_id: {type: string, description: a store project id}
                  project_path: {type: string, description: "a project folder of the store (relative to it)"}
                  renpy_executable: {type: string, description: "only a path listed in viewer.allowed_executables"}
                  renpy_sdk: {type: string, description: "only a path listed in viewer.allowed_executables"}
        responses:
          200: {description: "{mode: native, engine, running, pid, project, started_at, log}, or without an engine
                {mode: web, reason, url} or {mode: mini, reason, mini_digest, thumbnail_url, ...}"}
          400: {description: "a malformed field; an executable not in viewer.allowed_executables"}
          404: {description: no such project}
          409: {description: a viewer is already running}
          423: {description: an export gate blocked the export}
        """
        _no_query(request)
        body = parse_request(await read_json(request), StartRequest)
        answer = await run_in_threadpool(
            lambda: native.start(
                kernel,
                project_id=body.project_id,
                project_path=body.project_path,
                renpy_executable=body.renpy_executable,
                renpy_sdk=body.renpy_sdk,
            )
        )
        return JSONResponse(answer)

    async def stop(request: Request) -> JSONResponse:
        """Stop the native viewer (its whole process group).
        ---
        summary: Stop the native viewer
        responses:
          200: {description: "the final status: {running: false, returncode, ...}"}
          404: {description: no viewer was started}
        """
        _no_query(request)
        return JSONResponse(await run_in_threadpool(native.stop, kernel))

    async def state(request: Request) -> JSONResponse:
        """Whether the native viewer runs, on which project, with which engine, and where its log is.
        ---
        summary: Native viewer status
        responses:
          200: {description: "{running, pid, project, engine, started_at, returncode, log}"}
        """
        _no_query(request)
        return JSONResponse(await run_in_threadpool(native.status, kernel))

    return [
        Route("/api/viewer/start", start, methods=["POST"]),
        Route("/api/viewer/stop", stop, methods=["POST"]),
        Route("/api/viewer/status", state, methods=["GET"]),
        Route("/api/viewer/mini/snapshot", snapshot, methods=["POST"]),
        Route("/api/viewer/mini/refresh", refresh, methods=["POST"]),
        Route("/api/viewer/mini/thumbnail/{digest}", thumbnail, methods=["GET"]),
    ]
