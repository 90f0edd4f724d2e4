"""HTTP surface of the layers plugin: parse -> `service` -> JSON. Writes need ``layers.write`` off loopback.

A split is a ``layers.split`` job: ``POST /api/layers/split`` answers 202 with the job at once and
``GET /api/layers/{id}`` follows it. Every route answers 403 ``feature_disabled`` while
``enable_flat2layers`` is off. Requests never name a model file: splits use the configured model, and
with none configured the answer says so and how to get one (404 ``model_not_configured``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from comfyvn.errors import Invalid
from comfyvn.wire import parse_request, read_json
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from . import service
from .wire import FORM_FIELDS, SplitRequest, form_options

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["make_routes"]

_MEDIA = {".png": "image/png", ".json": "application/json"}


def _no_query(request: Request) -> None:
    if unknown := sorted(request.query_params):
        raise Invalid(f"unknown parameter {unknown[0][:40]!r}", field=unknown[0][:40], code="unknown_field")


def _urls(job_id: str, status: dict[str, Any]) -> dict[str, Any]:
    """``status`` with a URL per file, and per plane in its layers.json."""
    if "files" not in status:
        return status
    base = f"/api/layers/{job_id}/files"
    layers = dict(status["layers"])
    layers["planes"] = [{**p, "url": f"{base}/{p.get('file')}"} for p in layers.get("planes", [])]
    return {**status, "layers": layers, "urls": {name: f"{base}/{name}" for name in status["files"]}}


def make_routes(kernel: Kernel) -> list[Route]:
    """The layers routes bound to ``kernel``."""

    async def split(request: Request) -> JSONResponse:
        """Split a flat picture into depth planes as a job: an asset, a store project's background, or an upload.
        ---
        summary: Split a picture into depth layers
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                additionalProperties: false
                description: "asset, or project and background"
                properties:
                  asset: {type: string, description: "an asset uid (16 hex digits)"}
                  project: {type: string, description: "a store project id"}
                  background: {type: string, description: "the picture's path inside the project, e.g.
                    assets/backgrounds/park.png; the planes go to assets/backgrounds/park.layers/ there"}
                  planes: {type: integer, minimum: 2, maximum: 8, default: 3}
                  method: {enum: [quantile, kmeans], default: quantile}
                  device: {enum: [auto, cpu, cuda, tensorrt, rocm, coreml, directml], default: "layers.device or auto"}
                  feather: {type: integer, minimum: 0, maximum: 64, default: 4, description: edge feather in pixels}
            multipart/form-data:
              schema:
                type: object
                required: [file]
                properties:
                  file: {type: string, format: binary, description: "PNG, JPEG or WebP (kept before it is read)"}
                  planes: {type: string}
                  method: {type: string}
                  device: {type: string}
                  feather: {type: string}
        responses:
          202: {description: "{id, job, status_url}; the job's result: {folder, planes, provider, warnings}"}
          400: {description: "a missing or unknown field, a bad option"}
          403: {description: enable_flat2layers is off}
          404: {description: "no such asset, project or background; no model configured (model_not_configured, with how
                to get one) or the configured file is missing"}
          413: {description: the upload is over 64 MiB}
          422: {description: "the configured model is not a usable depth model (invalid_model), no ONNX Runtime"}
        """
        kernel.flags.require(service.FLAG)
        _no_query(request)
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            async with request.form(max_files=1, max_fields=len(FORM_FIELDS)) as form:
                if unknown := sorted(set(form.keys()) - FORM_FIELDS):
                    raise Invalid(
                        f"unknown form field {unknown[0][:40]!r}", field=unknown[0][:40], code="unknown_field"
                    )
                given = form.get("file")
                if not isinstance(given, UploadFile):
                    raise Invalid(
                        "a multipart upload needs the picture in the `file` field", field="file", code="no_file"
                    )
                options = form_options(form)
                stream, filename = given.file, given.filename

                def from_upload() -> dict[str, Any]:
                    source = service.keep_upload(kernel, stream, filename)
                    return service.submit_split(kernel, {"source": source, **options})

                job = await run_in_threadpool(from_upload)
        else:
            params = parse_request(await read_json(request), SplitRequest).params()
            job = await run_in_threadpool(service.submit_split, kernel, params)
        return JSONResponse(
            {"id": job["id"], "job": job, "status_url": f"/api/layers/{job['id']}"},
            status_code=202,
            headers={"Location": f"/api/layers/{job['id']}"},
        )

    async def status(request: Request) -> JSONResponse:
        """A split: its job's status and progress; once done, its layers.json with a URL per plane.
        ---
        summary: A layers split
        responses:
          200: {description: "{id, status, progress, message, params, error?, folder?, layers? (layers.json, each plane
                with its url), files[]?, urls{name: url}?}"}
          403: {description: enable_flat2layers is off}
          404: {description: no such split}
        """
        _no_query(request)
        job_id = request.path_params["id"]
        found = await run_in_threadpool(service.split_status, kernel, job_id)
        return JSONResponse(_urls(job_id, found))

    async def file(request: Request) -> Response:
        """One file of a finished split: a plane PNG, the depth map or layers.json.
        ---
        summary: A file of a layers split
        responses:
          200: {description: the file}
          403: {description: enable_flat2layers is off}
          404: {description: "no such split or file, or the split is not done"}
        """
        _no_query(request)
        path = await run_in_threadpool(
            service.split_file, kernel, request.path_params["id"], request.path_params["name"]
        )
        return FileResponse(path, media_type=_MEDIA.get(path.suffix, "application/octet-stream"))

    async def model(request: Request) -> JSONResponse:
        """The configured depth model (inputs, outputs, normalisation) and the execution providers available here.
        ---
        summary: The depth model
        responses:
          200: {description: "{ok, configured, hint? (when none: how to get one), source?, model?{file, sha256,
                input_name, input_shape (null = dynamic), input_type, input (the shape fed), multiple, mean, std,
                output_name, output (depth | inverse_depth), layout}, device, runtime{version, providers[]},
                runtime_hint?}"}
          403: {description: enable_flat2layers is off}
          404: {description: the configured model file is missing}
          422: {description: the configured model is not a usable depth model (invalid_model)}
        """
        kernel.flags.require(service.FLAG)
        _no_query(request)
        return JSONResponse(await run_in_threadpool(service.model_status, kernel))

    return [
        Route("/api/layers/split", split, methods=["POST"]),
        # Before /api/layers/{id}, which would take "model" for an id.
        Route("/api/layers/model", model, methods=["GET"]),
        Route("/api/layers/{id}", status, methods=["GET"]),
        Route("/api/layers/{id}/files/{name}", file, methods=["GET"]),
    ]
