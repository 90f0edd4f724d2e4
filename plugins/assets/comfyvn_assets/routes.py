"""HTTP surface of the asset registry: ``/assets`` and below. Parse -> `AssetRegistry` -> JSON.

The routes belong to the assets plugin, so off loopback every write (upload, register, PATCH, pin,
DELETE) needs the ``assets.write`` scope. Answers never carry an absolute server path.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from comfyvn.errors import Invalid, NotFound, TooLarge
from comfyvn.flags import parse_bool
from comfyvn.paths import atomic_write_bytes
from comfyvn.wire import loads, parse_request, read_json
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from .events import EVENTS, HOOK_EVENTS, MODDER_EVENTS
from .model import Asset
from .registry import MAX_LIMIT, AssetRegistry
from .wire import PatchRequest, PinRequest, RegisterRequest, split_metadata

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["keep_upload", "make_routes"]

PLUGIN = "assets"
UPLOADS_DIR = "uploads"
_FORM_FIELDS = frozenset({"file", "asset_type", "dest_path", "metadata"})


def keep_upload(uploads: Path, stream: IO[bytes], *, limit: int) -> bytes:
    """Read an uploaded file (at most ``limit`` bytes, else `TooLarge`) and keep it as ``uploads/<sha256>``
    (atomically, once per content) before anything parses it; returns its bytes."""
    digest, size, chunks = hashlib.sha256(), 0, []
    while chunk := stream.read(2**20):
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the file is larger than the {limit} bytes allowed", field="file", code="asset_too_large")
        digest.update(chunk)
        chunks.append(chunk)
    if not size:
        raise Invalid("the uploaded file is empty", field="file", code="empty_upload")
    data = b"".join(chunks)
    kept = uploads / digest.hexdigest()
    if not kept.is_file():
        atomic_write_bytes(kept, data)
    return data


def _limit(raw: str | None, default: int = 100) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise Invalid(f"limit must be 1 to {MAX_LIMIT}", field="limit", code="invalid_limit")
    return int(raw)


def _text_field(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(f"{field} must be a text field", field=field, code="invalid_request")
    return value


def _described(registry: AssetRegistry, asset: Asset) -> dict[str, Any]:
    return {**asset.to_wire(), "sidecar": registry.sidecar(asset.uid)}


def make_routes(kernel: Kernel) -> list[Route]:
    """The ``/assets`` routes bound to ``kernel``'s registry."""

    def registry() -> AssetRegistry:
        return AssetRegistry.for_kernel(kernel)

    async def off_loop(work: Callable[[], Response]) -> Response:
        """SQLite, hashing and image checks are blocking work: keep them off the event loop."""
        return await run_in_threadpool(work)

    async def list_assets(request: Request) -> Response:
        """Registered assets matching every filter given (case-insensitive), by path.
        ---
        summary: List and filter assets
        parameters:
          - {name: type, in: query, schema: {type: string}, description: "character.sprite, character.portrait,
              background, image, audio.bgm, audio.sfx, audio.voice, or a legacy name (portrait, sprite, bgm…)"}
          - {name: hash, in: query, schema: {type: string}, description: a sha256 or a prefix of one}
          - {name: tags, in: query, schema: {type: array, items: {type: string}}, style: form, explode: true,
              description: "repeatable; every tag must match"}
          - {name: tag, in: query, schema: {type: array, items: {type: string}}, style: form, explode: true,
              description: same as tags}
          - {name: q, in: query, schema: {type: string}, description: "substring of path, tags, licence, source
              or metadata"}
          - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 1000, default: 100}}
        responses:
          200: {description: "{assets: [asset], count}"}
          400: {description: "an unknown type, a hash that is not hexadecimal, a bad limit"}
        """
        params = request.query_params
        tags = [*params.getlist("tags"), *params.getlist("tag")]
        limit = _limit(params.get("limit"))

        def work() -> Response:
            found = registry().find(
                type=params.get("type") or None,
                hash=params.get("hash") or None,
                tags=tags,
                q=params.get("q"),
                limit=limit,
            )
            return JSONResponse({"assets": [a.to_wire() for a in found], "count": len(found)})

        return await off_loop(work)

    async def get_asset(request: Request) -> Response:
        """One asset with its parsed sidecar.
        ---
        summary: Describe an asset
        responses:
          200: {description: "{uid, type, path, sha256, size, width, height, tags, license, source, metadata,
                provenance, created, updated, last_access, pinned, refs, sidecar}"}
          404: {description: no such asset (asset_not_found)}
        """
        uid = request.path_params["uid"]
        return await off_loop(lambda: JSONResponse(_described(registry(), registry().get(uid))))

    async def download(request: Request) -> Response:
        """The asset's file.
        ---
        summary: Download an asset's file
        responses:
          200:
            description: the bytes (PNG files carry their provenance in an iTXt chunk, comfyvn:provenance)
            content: {application/octet-stream: {schema: {type: string, format: binary}}}
            headers:
              ETag: {description: the file's sha256, schema: {type: string}}
          404: {description: no such asset}
        """
        uid = request.path_params["uid"]

        def work() -> Response:
            reg = registry()
            asset, path = reg.get(uid), reg.file_path(uid)
            name = PurePosixPath(asset.path).name
            media = mimetypes.guess_type(name)[0] or "application/octet-stream"
            return FileResponse(path, media_type=media, filename=name, headers={"ETag": f'"{asset.sha256}"'})

        return await off_loop(work)

    async def sidecar(request: Request) -> Response:
        """The asset's parsed sidecar (``<file>.asset.json``): its description and provenance.
        ---
        summary: Read an asset's sidecar
        responses:
          200: {description: "{uid, type, path, sha256, size, width, height, tags, license, source, metadata,
                provenance, created}"}
          404: {description: no such asset}
        """
        uid = request.path_params["uid"]
        return await off_loop(lambda: JSONResponse(registry().sidecar(uid)))

    async def thumbnail(request: Request) -> Response:
        """A PNG at most 256 px on a side (made now when the background thread has not made it yet).
        ---
        summary: An image asset's thumbnail
        responses:
          200:
            description: the thumbnail
            content: {image/png: {schema: {type: string, format: binary}}}
          404: {description: "no such asset, or not an image (no_thumbnail)"}
        """
        uid = request.path_params["uid"]

        def work() -> Response:
            reg = registry()
            asset = reg.get(uid)
            if asset.width is None:
                raise NotFound("only image assets have thumbnails", field="uid", code="no_thumbnail")
            reg.file_path(uid)  # the blob must be there (and the access counts for LRU)
            path = reg.thumbs.make(asset.sha256, reg.blobs.path(asset.sha256))
            return FileResponse(path, media_type="image/png", headers={"ETag": f'"{asset.sha256}"'})

        return await off_loop(work)

    async def upload(request: Request) -> Response:
        """Upload a file as a new asset (kept under the plugin's uploads/ before it is checked).
        ---
        summary: Upload an asset
        requestBody:
          required: true
          content:
            multipart/form-data:
              schema:
                type: object
                required: [file, asset_type]
                properties:
                  file: {type: string, format: binary, description: "PNG, JPEG or WebP for image types; Ogg, FLAC,
                    MP3 or WAV for audio types"}
                  asset_type: {type: string, description: "character.sprite, background, portrait, bgm, …"}
                  dest_path: {type: string, description: "relative path under the assets root; default
                    <type folder>/<sha[:12]><ext>"}
                  metadata: {type: string, description: 'a JSON object; its license, source, tags and provenance
                    become the asset''s own fields, e.g. {"license": "CC-BY-4.0", "source": "modpack-01"}'}
        responses:
          201: {description: the registered asset}
          400: {description: "a missing field, an unknown type, a bad dest_path (invalid_dest_path), bad metadata"}
          409: {description: a folder or file is in the way of dest_path}
          413: {description: "the file is larger than assets.max_upload_bytes, or the image has too many pixels"}
          422: {description: "the file is not what its type needs (not_an_image, not_audio, unsupported_image_format)"}
        """
        uploads = kernel.paths.plugin_dir(PLUGIN) / UPLOADS_DIR
        async with request.form(max_files=1, max_fields=len(_FORM_FIELDS)) as form:
            unknown = sorted(set(form.keys()) - _FORM_FIELDS)
            if unknown:
                raise Invalid(f"unknown form field {unknown[0][:40]!r}", field=unknown[0][:40], code="unknown_field")
            given = form.get("file")
            if not isinstance(given, UploadFile):
                raise Invalid("a multipart upload needs the file in the `file` field", field="file", code="no_file")
            asset_type = _text_field(form.get("asset_type"), "asset_type")
            if not asset_type:
                raise Invalid("asset_type is required", field="asset_type", code="invalid_asset_type")
            dest_path = _text_field(form.get("dest_path"), "dest_path") or None
            raw_metadata = _text_field(form.get("metadata"), "metadata")
            metadata = loads(raw_metadata, field="metadata") if raw_metadata else None
            described = split_metadata(metadata)
            stream, filename = given.file, given.filename

            def work() -> Asset:
                reg = registry()
                data = keep_upload(uploads, stream, limit=reg.settings.max_bytes)
                return reg.register_bytes(
                    data,
                    asset_type=asset_type,
                    dest_path=dest_path,
                    filename=filename,
                    metadata=described.metadata,
                    provenance=described.provenance,
                    tags=described.tags,
                    license=described.license,
                    source=described.source,
                )

            asset = await run_in_threadpool(work)
        return JSONResponse(asset.to_wire(), status_code=201, headers={"Location": f"/assets/{asset.uid}"})

    async def register(request: Request) -> Response:
        """Register a file already on the server; only files under a configured import root
        (``assets.import_roots``, ``COMFYVN_ASSETS_IMPORT_ROOTS``) once symlinks are resolved.
        ---
        summary: Register a server-side file
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [path, asset_type]
                additionalProperties: false
                properties:
                  path: {type: string, description: "absolute, or relative to an import root"}
                  asset_type: {type: string}
                  dest_path: {type: string}
                  metadata: {type: object}
                  copy: {type: boolean, default: true, description: "false: hard-link when possible (shares bytes
                    with the original)"}
                  tags: {type: array, items: {type: string}}
                  license: {type: string}
                  source: {type: string}
                  provenance: {type: object}
        responses:
          201: {description: the registered asset}
          400: {description: "outside the import roots (outside_import_roots), not a file, bad fields"}
          404: {description: the file does not exist (file_not_found)}
          413: {description: the file is too large}
          422: {description: the file is not what its type needs}
        """
        body = parse_request(await read_json(request), RegisterRequest)
        described = split_metadata(
            body.metadata, license=body.license, source=body.source, tags=body.tags, provenance=body.provenance
        )

        def work() -> Response:
            asset = registry().register_file(
                body.path,
                asset_type=body.asset_type,
                dest_path=body.dest_path,
                copy=body.copy,
                metadata=described.metadata,
                provenance=described.provenance,
                tags=described.tags,
                license=described.license,
                source=described.source,
            )
            return JSONResponse(asset.to_wire(), status_code=201, headers={"Location": f"/assets/{asset.uid}"})

        return await off_loop(work)

    async def patch(request: Request) -> Response:
        """Change an asset's tags, licence, source or metadata (each given replaces the stored one).
        ---
        summary: Edit an asset's description
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                additionalProperties: false
                properties:
                  tags: {type: array, items: {type: string}}
                  license: {type: string, description: '"" clears it'}
                  source: {type: string, description: '"" clears it'}
                  metadata: {type: object}
        responses:
          200: {description: the asset}
          400: {description: a bad field}
          404: {description: no such asset}
        """
        uid = request.path_params["uid"]
        body = parse_request(await read_json(request), PatchRequest)
        return await off_loop(
            lambda: JSONResponse(
                registry()
                .update_meta(uid, tags=body.tags, license=body.license, source=body.source, metadata=body.metadata)
                .to_wire()
            )
        )

    async def pin(request: Request) -> Response:
        """Pin an asset (gc never evicts it) or unpin it.
        ---
        summary: Pin or unpin an asset
        requestBody:
          content:
            application/json:
              schema: {type: object, additionalProperties: false, properties: {pinned: {type: boolean, default: true}}}
        responses:
          200: {description: the asset}
          404: {description: no such asset}
        """
        uid = request.path_params["uid"]
        body = parse_request(await read_json(request, default={}), PinRequest)
        return await off_loop(lambda: JSONResponse(registry().pin(uid, body.pinned).to_wire()))

    async def delete(request: Request) -> Response:
        """Remove an asset: its file, sidecar and row, and its blob when no other asset shares it.
        ---
        summary: Remove an asset
        parameters:
          - {name: force, in: query, schema: {type: boolean, default: false}, description: "remove it even when
              pinned or referenced"}
        responses:
          200: {description: "{uid, removed: true, path}"}
          404: {description: no such asset}
          409: {description: "the asset is pinned or referenced (asset_in_use)"}
        """
        uid = request.path_params["uid"]
        force = parse_bool(request.query_params.get("force", "false"), field="force")

        def work() -> Response:
            asset = registry().remove(uid, force=force)
            return JSONResponse({"uid": asset.uid, "removed": True, "path": asset.path})

        return await off_loop(work)

    async def debug_hooks(request: Request) -> Response:
        """The registry's events, the modder events each emits, and how many registry listeners each has.
        ---
        summary: Asset registry hooks
        responses:
          200: {description: "{hooks: [{event, modder_events, listeners}]}"}
        """
        counts = registry().hooks.counts()
        hooks = [
            {"event": name, "modder_events": list(HOOK_EVENTS[name]), "listeners": counts[name]} for name in counts
        ]
        return JSONResponse({"hooks": hooks})

    async def debug_modder_hooks(request: Request) -> Response:
        """The asset events declared on the modder bus, with their payload schemas.
        ---
        summary: Asset modder hook specs
        responses:
          200: {description: "{hooks: [{name, description, schema, owner}]}"}
        """
        specs = [spec for spec in kernel.events.specs() if spec.name in EVENTS]
        return JSONResponse(
            {
                "hooks": [
                    {"name": s.name, "description": s.description, "schema": s.schema, "owner": s.owner} for s in specs
                ]
            }
        )

    async def debug_history(request: Request) -> Response:
        """Recent asset events from the bus history, oldest first.
        ---
        summary: Recent asset events
        parameters:
          - {name: since, in: query, schema: {type: integer, minimum: 0, default: 0}, description: only seq > since}
          - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 1000, default: 100}}
        responses:
          200: {description: "{events: [{event, payload, ts, seq}]}"}
        """
        raw = request.query_params.get("since", "0")
        if not raw.isdigit() or len(raw) > 18:
            raise Invalid("since must be a whole number", field="since", code="invalid_request")
        limit = _limit(request.query_params.get("limit"))
        envelopes = kernel.events.history(int(raw), event=MODDER_EVENTS, limit=limit)
        events = [{"event": e.event, "payload": json.loads(e.data), "ts": e.ts, "seq": e.seq} for e in envelopes]
        return JSONResponse({"events": events})

    one = "/assets/{uid}"
    return [
        Route("/assets/debug/hooks", debug_hooks, methods=["GET"]),
        Route("/assets/debug/modder-hooks", debug_modder_hooks, methods=["GET"]),
        Route("/assets/debug/history", debug_history, methods=["GET"]),
        Route("/assets", list_assets, methods=["GET"]),
        Route("/assets/", list_assets, methods=["GET"]),
        Route("/assets/upload", upload, methods=["POST"]),
        Route("/assets/register", register, methods=["POST"]),
        Route(one, get_asset, methods=["GET"]),
        Route(one, patch, methods=["PATCH"]),
        Route(one, delete, methods=["DELETE"]),
        Route(f"{one}/download", download, methods=["GET"]),
        Route(f"{one}/sidecar", sidecar, methods=["GET"]),
        Route(f"{one}/thumbnail", thumbnail, methods=["GET"]),
        Route(f"{one}/pin", pin, methods=["POST"]),
    ]
