"""HTTP surface of the project store: ``/api/projects`` and below. Parse -> `ProjectStore` -> JSON.

Reads answer with ``ETag: "<version>"`` (the project's version on project URLs, the scene's on scene
URLs); writes take ``If-Match`` with that version and answer 412 ``version_mismatch`` (with
``current_version``) when someone else wrote first. The routes belong to the scenario plugin, so off
loopback a write needs the ``scenario.write`` scope, like every other scenario route.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from comfyvn.errors import Invalid, NotFound, TooLarge
from comfyvn.paths import atomic_write_bytes
from comfyvn.wire import read_json
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .archive import MAX_ZIP_BYTES
from .project import project_from_payload
from .service import check_size
from .store import ProjectStore, StoredProject, parse_if_match

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["keep_upload", "make_project_routes"]

PLUGIN = "scenario"
UPLOADS_DIR = "uploads"
_FORM_FIELDS = frozenset({"file", "id"})


def keep_upload(uploads: Path, stream: IO[bytes], *, limit: int | None = None) -> bytes:
    """Read an uploaded zip (at most ``limit`` bytes, `MAX_ZIP_BYTES` by default, else 413) and keep it as
    ``uploads/<sha256>.zip`` (written atomically, once per content) before anything parses it; returns its
    bytes."""
    limit = MAX_ZIP_BYTES if limit is None else limit
    digest, size, chunks = hashlib.sha256(), 0, []
    while chunk := stream.read(2**20):
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the zip is larger than {limit // 2**20} MiB", field="file", code="zip_too_large")
        digest.update(chunk)
        chunks.append(chunk)
    if not size:
        raise Invalid("the uploaded file is empty", field="file", code="empty_upload")
    data = b"".join(chunks)
    kept = uploads / f"{digest.hexdigest()}.zip"
    if not kept.is_file():
        atomic_write_bytes(kept, data)
    return data


def _etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


def _if_match(request: Request) -> int | None:
    return parse_if_match(request.headers.get("if-match"))


def _object(body: Any, field: str = "body") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Invalid(f"{field} must be a JSON object", field=field, code="invalid_request")
    return body


def _version_param(text: str) -> int:
    if not text.isdigit() or len(text) > 12:
        raise Invalid("version must be a whole number", field="version", code="invalid_version")
    return int(text)


def _described(stored: StoredProject) -> dict[str, Any]:
    """What a project read or write answers: its summary and whether the files are the ones validated."""
    return {**stored.summary(), "validated": stored.validated}


def _scene_body(body: Any) -> dict[str, Any]:
    """A PUT scene body: the scene object itself, or ``{"scene": {...}}`` (what GET answers has it there)."""
    given = _object(body)
    if set(given) <= {"scene", "version", "id", "project", "project_version"} and isinstance(given.get("scene"), dict):
        scene: dict[str, Any] = given["scene"]
        return scene
    return given


def make_project_routes(kernel: Kernel) -> list[Route]:
    """The ``/api/projects`` routes bound to ``kernel``'s store (``<data>/projects``)."""

    def store() -> ProjectStore:
        # Per request: cheap, and a corrected `projects.history` in comfyvn.json applies without a restart.
        return ProjectStore.for_kernel(kernel)

    async def off_loop(work: Callable[[], Response]) -> Response:
        """Zipping, validating and encoding a big project is CPU and disk work: keep it off the event loop."""
        return await run_in_threadpool(work)

    async def list_projects(request: Request) -> Response:
        """Every project in the store, by id.
        ---
        summary: List projects
        responses:
          200:
            description: "{projects: [{id, title, version, scenes: [{id, version, nodes}], nodes, created_at,
              updated_at}]}"
        """
        return await off_loop(lambda: JSONResponse({"projects": store().list_projects()}))

    async def create_project(request: Request) -> Response:
        """Add a project: a JSON body, or a multipart zip upload (kept under the plugin's uploads/ first).
        ---
        summary: Create a project
        requestBody:
          required: true
          content:
            application/json:
              schema:
                oneOf:
                  - type: object
                    required: [project]
                    additionalProperties: false
                    properties:
                      id: {type: string, description: "the id to create (409 when taken); default: from the project"}
                      project: {type: object, description: project.json content}
                      scenes: {description: "a list of scenes or {id: scene}; default: scene objects in project.scenes"}
                  - {type: object, description: "a bare project.json whose `scenes` are scene objects"}
            multipart/form-data:
              schema:
                type: object
                required: [file]
                properties:
                  file: {type: string, format: binary, description: "a project zip (GET .../export.zip writes one)"}
                  id: {type: string}
        responses:
          201:
            description: "the project's summary: {id, title, version, scenes, nodes, created_at, updated_at,
              validated}"
            headers:
              ETag: {description: 'the project version, "1"', schema: {type: string}}
              Location: {description: "/api/projects/{id}", schema: {type: string}}
          400: {description: "malformed body, unknown field or invalid id"}
          409: {description: "the id chosen is taken (project_exists)"}
          413: {description: "the zip, what it unpacks to, or the node count is too large"}
          422:
            description: "the project is invalid (invalid_project: error.errors lists {path, message, code,
              document}) or the zip is unusable (invalid_zip, unsafe_zip_entry)"
        """
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            uploads = kernel.paths.plugin_dir(PLUGIN) / UPLOADS_DIR
            async with request.form(max_files=1, max_fields=len(_FORM_FIELDS)) as form:
                unknown = sorted(set(form.keys()) - _FORM_FIELDS)
                if unknown:
                    raise Invalid(
                        f"unknown form field {unknown[0][:40]!r}", field=unknown[0][:40], code="unknown_field"
                    )
                upload, wanted = form.get("file"), form.get("id")
                if not isinstance(upload, UploadFile):
                    raise Invalid("a multipart upload needs a zip in the `file` field", field="file", code="no_file")
                if wanted is not None and not isinstance(wanted, str):
                    raise Invalid("id must be a text field", field="id", code="invalid_project_id")
                stream = upload.file

                def from_zip() -> StoredProject:
                    data = keep_upload(uploads, stream)
                    return store().create_from_zip(data, project_id=wanted or None)

                created = await run_in_threadpool(from_zip)
        else:
            body = _object(await read_json(request))

            def from_json() -> StoredProject:
                inner = body.get("project")
                check_size(project_from_payload(inner if isinstance(inner, dict) else body, body.get("scenes")))
                return store().create_from_payload(body)

            created = await run_in_threadpool(from_json)
        return await off_loop(
            lambda: JSONResponse(
                _described(created),
                status_code=201,
                headers={**_etag(created.version), "Location": f"/api/projects/{created.id}"},
            )
        )

    async def get_project(request: Request) -> Response:
        """One project: its summary, its project.json and what was exported for it.
        ---
        summary: Get a project
        parameters: [{name: id, in: path, required: true, schema: {type: string}}]
        responses:
          200:
            description: "{id, title, version, scenes: [{id, version, nodes}], nodes, created_at, updated_at,
              validated, project: <project.json>, exports: [{name, kind, bytes, files, modified}]}"
            headers:
              ETag: {description: 'the project version, e.g. "3"', schema: {type: string}}
          400: {description: invalid project id}
          404: {description: "no such project (project_not_found)"}
        """
        project_id = request.path_params["id"]

        def work() -> Response:
            projects = store()
            stored = projects.load(project_id)
            body = {
                **_described(stored),
                "project": stored.project.document(),
                "exports": projects.exports(project_id),
            }
            return JSONResponse(body, headers=_etag(stored.version))

        return await off_loop(work)

    async def put_project(request: Request) -> Response:
        """Replace project.json (and, with `scenes`, the scenes): validated, versioned, conditional.
        ---
        summary: Update a project
        parameters:
          - {name: id, in: path, required: true, schema: {type: string}}
          - {name: If-Match, in: header, schema: {type: string}, description: 'the project version read, e.g. "3"'}
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [project]
                additionalProperties: false
                properties:
                  project:
                    type: object
                    description: "project.json content; `scenes` as a list of ids reorders (an id left out is
                      removed), as scene objects replaces the scenes"
                  scenes: {description: "a list of scenes or {id: scene}: the project gets exactly these"}
        responses:
          200:
            description: "the project's summary (a write that changes nothing keeps the version)"
            headers:
              ETag: {description: the new project version, schema: {type: string}}
          400: {description: "malformed body or If-Match"}
          404: {description: no such project}
          412: {description: "If-Match names a stale version (version_mismatch; error.current_version)"}
          413: {description: more nodes than one request may hold}
          422: {description: "the project would be invalid (invalid_project, error.errors); nothing was written"}
        """
        project_id = request.path_params["id"]
        expect = _if_match(request)
        body = _object(await read_json(request))
        unknown = sorted(set(body) - {"project", "scenes"})
        if unknown:
            raise Invalid(f"unknown field {unknown[0][:40]!r}", field=unknown[0][:40], code="unknown_field")
        meta = _object(body.get("project"), "project")

        def work() -> Response:
            listed = meta.get("scenes")
            if "scenes" in body or (isinstance(listed, list) and any(isinstance(s, dict) for s in listed)):
                project = project_from_payload(meta, body.get("scenes"))
                check_size(project)
                stored = store().update_project(project_id, project.meta, project.scenes, if_match=expect)
            else:
                stored = store().update_project(project_id, meta, if_match=expect)
            return JSONResponse(_described(stored), headers=_etag(stored.version))

        return await off_loop(work)

    async def delete_project(request: Request) -> Response:
        """Delete a project with its history and exports.
        ---
        summary: Delete a project
        parameters:
          - {name: id, in: path, required: true, schema: {type: string}}
          - {name: If-Match, in: header, schema: {type: string}, description: the project version read}
        responses:
          200: {description: "{id, deleted: true, version}: the version it had"}
          404: {description: no such project}
          412: {description: "If-Match names a stale version (version_mismatch; error.current_version)"}
        """
        project_id = request.path_params["id"]
        expect = _if_match(request)
        version = await run_in_threadpool(lambda: store().delete(project_id, if_match=expect))
        return JSONResponse({"id": project_id, "deleted": True, "version": version})

    def scene_answer(stored: StoredProject, scene_id: str) -> Response:
        body = {
            "project": stored.id,
            "project_version": stored.version,
            "id": scene_id,
            "version": stored.scene_versions[scene_id],
            "scene": stored.project.scenes[scene_id],
        }
        return JSONResponse(body, headers=_etag(stored.scene_versions[scene_id]))

    async def get_scene(request: Request) -> Response:
        """One scene of a project, with its version.
        ---
        summary: Get a scene
        parameters:
          - {name: id, in: path, required: true, schema: {type: string}}
          - {name: scene, in: path, required: true, schema: {type: string}}
        responses:
          200:
            description: "{project, project_version, id, version, scene}"
            headers:
              ETag: {description: 'the scene version, e.g. "2"', schema: {type: string}}
          404: {description: "no such project or scene (scene_not_found)"}
        """
        project_id, scene_id = request.path_params["id"], request.path_params["scene"]

        def work() -> Response:
            stored = store().load(project_id)
            ProjectStore.check_scene_id(scene_id)
            if scene_id not in stored.project.scenes:
                raise NotFound(
                    f"project {project_id!r} has no scene {scene_id!r}", field="scene", code="scene_not_found"
                )
            return scene_answer(stored, scene_id)

        return await off_loop(work)

    async def put_scene(request: Request) -> Response:
        """Write a scene (a new id is added at the end of the story): validated with the whole project.
        ---
        summary: Write a scene
        parameters:
          - {name: id, in: path, required: true, schema: {type: string}}
          - {name: scene, in: path, required: true, schema: {type: string}}
          - {name: If-Match, in: header, schema: {type: string}, description: 'the scene version read, e.g. "2"'}
        requestBody:
          required: true
          content:
            application/json:
              schema:
                oneOf:
                  - {$ref: "urn:comfyvn:schema:scene"}
                  - {type: object, required: [scene], properties: {scene: {$ref: "urn:comfyvn:schema:scene"}}}
        responses:
          200:
            description: "{project, project_version, id, version, scene}"
            headers:
              ETag: {description: the new scene version, schema: {type: string}}
          400: {description: "malformed body, If-Match, or a scene id that differs from the path"}
          404: {description: no such project}
          412: {description: "If-Match names a stale scene version (version_mismatch; error.current_version)"}
          413: {description: more nodes than one request may hold}
          422:
            description: "the project would be invalid (invalid_project; error.errors lists JSON pointers such as
              /nodes/3/choices/0/target); nothing was written"
        """
        project_id, scene_id = request.path_params["id"], request.path_params["scene"]
        expect = _if_match(request)
        scene = _scene_body(await read_json(request))

        def work() -> Response:
            check_size(scene)
            return scene_answer(store().put_scene(project_id, scene_id, scene, if_match=expect), scene_id)

        return await off_loop(work)

    async def delete_scene(request: Request) -> Response:
        """Remove a scene from a project; its history stays, so `restore` can bring it back.
        ---
        summary: Delete a scene
        parameters:
          - {name: id, in: path, required: true, schema: {type: string}}
          - {name: scene, in: path, required: true, schema: {type: string}}
          - {name: If-Match, in: header, schema: {type: string}, description: the scene version read}
        responses:
          200: {description: "{project, project_version, id, deleted: true}"}
          404: {description: no such project or scene}
          412: {description: "If-Match names a stale scene version (version_mismatch; error.current_version)"}
          422: {description: "the project would be invalid without it (a choice still points into it)"}
        """
        project_id, scene_id = request.path_params["id"], request.path_params["scene"]
        expect = _if_match(request)

        def work() -> Response:
            stored = store().delete_scene(project_id, scene_id, if_match=expect)
            body = {"project": project_id, "project_version": stored.version, "id": scene_id, "deleted": True}
            return JSONResponse(body)

        return await off_loop(work)

    async def scene_history(request: Request) -> Response:
        """The kept versions of a scene, newest first (a deleted scene keeps its history).
        ---
        summary: Scene history
        parameters:
          - {name: id, in: path, required: true, schema: {type: string}}
          - {name: scene, in: path, required: true, schema: {type: string}}
        responses:
          200:
            description: "{project, id, current_version (null when deleted), versions: [{version, saved_at, sha256,
              bytes, nodes, current}]}"
            headers:
              ETag: {description: the current scene version (absent for a deleted scene), schema: {type: string}}
          404: {description: no such project or scene}
        """
        project_id, scene_id = request.path_params["id"], request.path_params["scene"]

        def work() -> Response:
            versions = store().history(project_id, scene_id)
            current = next((entry["version"] for entry in versions if entry["current"]), None)
            body = {"project": project_id, "id": scene_id, "current_version": current, "versions": versions}
            return JSONResponse(body, headers=_etag(current) if current is not None else None)

        return await off_loop(work)

    async def scene_version(request: Request) -> Response:
        """One kept version of a scene.
        ---
        summary: A kept scene version
        parameters:
          - {name: id, in: path, required: true, schema: {type: string}}
          - {name: scene, in: path, required: true, schema: {type: string}}
          - {name: version, in: path, required: true, schema: {type: integer, minimum: 0}}
        responses:
          200:
            description: "{project, id, version, scene}"
            headers:
              ETag: {description: that version, schema: {type: string}}
          400: {description: version is not a whole number}
          404: {description: "no such project, or that version is not kept (version_not_found)"}
        """
        project_id, scene_id = request.path_params["id"], request.path_params["scene"]
        version = _version_param(request.path_params["version"])

        def work() -> Response:
            scene = store().scene_version(project_id, scene_id, version)
            body = {"project": project_id, "id": scene_id, "version": version, "scene": scene}
            return JSONResponse(body, headers=_etag(version))

        return await off_loop(work)

    async def restore_scene(request: Request) -> Response:
        """Make a kept version of a scene the current one again, as a new version (validated like any write).
        ---
        summary: Restore a scene version
        parameters:
          - {name: id, in: path, required: true, schema: {type: string}}
          - {name: scene, in: path, required: true, schema: {type: string}}
          - {name: If-Match, in: header, schema: {type: string}, description: the current scene version read}
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [version]
                additionalProperties: false
                properties: {version: {type: integer, minimum: 0}}
        responses:
          200:
            description: "{project, project_version, id, version, scene}: the new current version"
            headers:
              ETag: {description: the new scene version, schema: {type: string}}
          400: {description: version missing or not a whole number}
          404: {description: "no such project, or that version is not kept (version_not_found)"}
          412: {description: "If-Match names a stale scene version (version_mismatch; error.current_version)"}
          422: {description: "the project would be invalid with that version (invalid_project)"}
        """
        project_id, scene_id = request.path_params["id"], request.path_params["scene"]
        expect = _if_match(request)
        body = _object(await read_json(request))
        unknown = sorted(set(body) - {"version"})
        if unknown:
            raise Invalid(f"unknown field {unknown[0][:40]!r}", field=unknown[0][:40], code="unknown_field")
        version = body.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version < 10**12:
            raise Invalid("version must be a whole number", field="version", code="invalid_version")

        def work() -> Response:
            return scene_answer(store().restore(project_id, scene_id, version, if_match=expect), scene_id)

        return await off_loop(work)

    async def export_zip(request: Request) -> Response:
        """The project as a zip (project.json, scenes/, assets/...): byte-identical for the same project.
        ---
        summary: Download a project zip
        parameters: [{name: id, in: path, required: true, schema: {type: string}}]
        responses:
          200:
            description: the zip (POST /api/projects takes it back)
            content: {application/zip: {schema: {type: string, format: binary}}}
            headers:
              ETag: {description: the project version zipped, schema: {type: string}}
              Content-Disposition: {description: 'attachment; filename="<id>.zip"', schema: {type: string}}
          404: {description: no such project}
        """
        project_id = request.path_params["id"]
        data, version = await run_in_threadpool(lambda: store().export_zip_versioned(project_id))
        headers = {**_etag(version), "Content-Disposition": f'attachment; filename="{project_id}.zip"'}
        return Response(data, media_type="application/zip", headers=headers)

    scene_path = "/api/projects/{id}/scenes/{scene}"
    return [
        Route("/api/projects", list_projects, methods=["GET"]),
        Route("/api/projects", create_project, methods=["POST"]),
        Route("/api/projects/{id}", get_project, methods=["GET"]),
        Route("/api/projects/{id}", put_project, methods=["PUT"]),
        Route("/api/projects/{id}", delete_project, methods=["DELETE"]),
        Route("/api/projects/{id}/export.zip", export_zip, methods=["GET"]),
        Route(scene_path, get_scene, methods=["GET"]),
        Route(scene_path, put_scene, methods=["PUT"]),
        Route(scene_path, delete_scene, methods=["DELETE"]),
        Route(f"{scene_path}/history", scene_history, methods=["GET"]),
        Route(f"{scene_path}/history/{{version}}", scene_version, methods=["GET"]),
        Route(f"{scene_path}/restore", restore_scene, methods=["POST"]),
    ]
