"""HTTP surface: ``/api/roleplay/{import, import/card, preview/{scene_uid}, apply_corrections, sample_llm}``.

Handlers parse the request, hand the work to :mod:`service` in a worker thread (imports are CPU
and disk bound) and return JSON. Client mistakes raise ComfyVNError, rendered by the server plugin.
Imports go to the project store: the answer's ``project.id`` works with every plugin (validate,
playtest, export, ``/api/projects``), and answers never carry server paths.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import PurePath
from typing import Any

from comfyvn.errors import ComfyVNError, Invalid
from comfyvn.wire import read_json
from comfyvn_scenario.store import parse_if_match
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .card_routes import card_import_endpoint
from .lorebook import parse_lorebook, read_lorebook
from .serialize import OPTION_FIELDS, options_from_payload
from .service import apply_corrections, public_report, read_scene, run_import, sample_llm

__all__ = ["make_routes"]


async def _json(request: Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ComfyVNError("request body must be a JSON object", field="body")
    return body


def _card_item(item: Any, i: int) -> tuple[bytes, str]:
    field = f"cards/{i}"
    if isinstance(item, dict) and isinstance(item.get("data_base64"), str):
        try:
            return base64.b64decode(item["data_base64"], validate=True), str(item.get("filename") or "")
        except (binascii.Error, ValueError):
            raise ComfyVNError("data_base64 is not base64", field=f"{field}/data_base64") from None
    if isinstance(item, dict):
        return json.dumps(item).encode("utf-8"), ""
    raise ComfyVNError("a card is a card object or {data_base64, filename}", field=field)


def _from_json(body: dict[str, Any]) -> dict[str, Any]:
    text = body.get("text", body.get("transcript"))
    filename = body.get("filename") if isinstance(body.get("filename"), str) else ""
    fmt = body.get("format") or ""
    if isinstance(body.get("messages"), list):
        data = json.dumps(body["messages"]).encode("utf-8")
        fmt = fmt or "json"
        filename = filename or "messages.json"
    elif isinstance(text, str) and text.strip():
        data = text.encode("utf-8")  # comfyvn.wire already refused lone surrogates
    elif isinstance(body.get("lines"), list) and all(isinstance(x, str) for x in body["lines"]):
        data = "\n".join(body["lines"]).encode("utf-8")
    else:
        raise ComfyVNError("give `text` (or `transcript`), `lines` or `messages`", field="text")
    world = body.get("world")
    cards = body.get("cards") or []
    if not isinstance(cards, list):
        raise ComfyVNError("cards must be a list", field="cards")
    if not isinstance(fmt, str):
        raise ComfyVNError("format must be a string", field="format")
    return {
        "upload": data,
        "filename": filename or "chat.txt",
        "fmt": fmt,
        "hint": "sillytavern" if body.get("source") == "sillytavern" else "",
        "cards": [_card_item(c, i) for i, c in enumerate(cards)],
        "world": parse_lorebook(world, name="world") if isinstance(world, dict) else None,
        "options": options_from_payload(body),
    }


def _expected_version(request: Request, body: dict[str, Any]) -> int | None:
    """The scene version a correction expects: the ``If-Match`` header or the body's ``version``."""
    header = parse_if_match(request.headers.get("if-match"))
    version = body.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
        raise Invalid("version must be a scene version (a whole number from 1)", field="version", code="invalid_type")
    if header is not None and version is not None and header != version:
        raise Invalid("If-Match and version name different versions", field="version", code="invalid_request")
    return header if header is not None else version


def _etag(version: int | None) -> dict[str, str]:
    return {} if version is None else {"ETag": f'"{version}"'}


async def _from_form(form: Any) -> dict[str, Any]:
    upload = form.get("file")
    fields = {k: v for k, v in form.items() if isinstance(v, str) and k in OPTION_FIELDS}
    if isinstance(upload, UploadFile):
        data: Any = upload.file
        filename = upload.filename or "upload"
    elif isinstance(form.get("text"), str) and str(form.get("text")).strip():
        data, filename = str(form["text"]).encode("utf-8"), "chat.txt"
    else:
        raise ComfyVNError("multipart import needs a `file` or a `text` field", field="file")
    cards = []
    for item in form.getlist("card"):
        if isinstance(item, UploadFile):
            cards.append((await item.read(), item.filename or ""))
    world = form.get("world")
    # A lorebook keeps its own name: its `name` field, else the uploaded file's name.
    book = (
        read_lorebook(await world.read(), name=PurePath(world.filename or "world").stem, filename=world.filename or "")
        if isinstance(world, UploadFile)
        else None
    )
    fmt = form.get("format")
    source = form.get("source")
    return {
        "upload": data,
        "filename": filename,
        "fmt": fmt if isinstance(fmt, str) else "",
        "hint": "sillytavern" if source == "sillytavern" else "",
        "cards": cards,
        "world": book,
        "options": options_from_payload(fields),
    }


def make_routes(kernel: Any) -> list[Route]:
    """The plugin's routes, closing over ``kernel``."""

    async def _run(parsed: dict[str, Any]) -> Any:
        return await run_in_threadpool(
            run_import,
            kernel,
            parsed["upload"],
            parsed["filename"],
            parsed["options"],
            fmt=parsed["fmt"],
            hint=parsed["hint"],
            cards=parsed["cards"],
            world=parsed["world"],
        )

    async def import_chat(request: Request) -> JSONResponse:
        """Import a roleplay chat or log (SillyTavern JSONL/.txt, generic log, JSON messages) as a project.
        ---
        summary: Import a roleplay chat
        requestBody:
          content:
            application/json:
              schema:
                type: object
                properties:
                  text: {type: string, description: the chat file's content}
                  transcript: {type: string, description: alias of text}
                  lines: {type: array, items: {type: string}}
                  messages: {type: array, items: {type: object}, description: "JSON message array"}
                  filename: {type: string}
                  format: {enum: [st_jsonl, st_txt, json, text]}
                  source: {type: string, description: "sillytavern prefers SillyTavern's .txt reading"}
                  cards: {type: array, items: {type: object}, description: "card objects or {data_base64, filename}"}
                  world: {type: object, description: lorebook (world info, lorebook_v3 or character_book)}
                  blocking:
                    type: boolean
                    description: accepted for compatibility; imports always finish before the response
            multipart/form-data:
              schema:
                type: object
                properties:
                  file: {type: string, format: binary}
                  text: {type: string}
                  card: {type: array, items: {type: string, format: binary}}
                  world: {type: string, format: binary}
        responses:
          200: {description: "import report: import_id, project {id (the store id), title, version}, scenes[{id,
                scene_uid, version}], raw {sha256, size, filename}, stats, skipped, warnings. A re-import of
                the same chat and title is a new version of the same project."}
          400: {description: bad request}
          413: {description: "too_many_nodes: the chat makes more story nodes than a project may hold (100,000)"}
          422: {description: "unusable input (no messages, --strict failure, card without character data)"}
        """
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            # The form owns spooled upload files; import inside it so they are closed afterwards.
            async with request.form() as form:
                result = await _run(await _from_form(form))
        else:
            result = await _run(_from_json(await _json(request)))
        return JSONResponse({**public_report(result), "blocking": True})

    async def preview(request: Request) -> JSONResponse:
        """The scene JSON of an imported scene.
        ---
        summary: Preview an imported scene
        parameters:
          - {name: scene_uid, in: path, required: true, schema: {type: string}, description: "<import_id>:<scene_id>"}
        responses:
          200: {description: "{scene_uid, scene, version} (version and the ETag header: store projects only)"}
          404: {description: unknown scene}
        """
        uid = request.path_params["scene_uid"]
        ref = await run_in_threadpool(read_scene, kernel, uid)
        body: dict[str, Any] = {"scene_uid": uid, "scene": ref.scene}
        if ref.version is not None:
            body["version"] = ref.version
        return JSONResponse(body, headers=_etag(ref.version))

    async def corrections(request: Request) -> JSONResponse:
        """Persist editor corrections to an imported scene (validated before saving; a store project's scene
        becomes a new version, kept in its history).
        ---
        summary: Apply corrections
        parameters:
          - name: If-Match
            in: header
            required: false
            schema: {type: string}
            description: the scene version the editor saw (as the preview's ETag); a stale one is a 412
        requestBody:
          content:
            application/json:
              schema:
                type: object
                required: [scene_uid]
                properties:
                  scene_uid: {type: string}
                  scene: {type: object, description: the whole corrected scene}
                  nodes:
                    type: array
                    items: {type: object, required: [id]}
                    description: "patches {id, text?, speaker?, type?, characters?, background?, end?, data?}"
                  version: {type: integer, minimum: 1, description: "as If-Match: the scene version the editor saw"}
        responses:
          200: {description: "{scene_uid, nodes_changed, scene, version} (version, ETag: store projects only)"}
          400: {description: bad request (a version for a project imported into a folder, which has none)}
          404: {description: unknown scene}
          412: {description: "the scene changed since that version; error.current_version says which it is"}
          422: {description: the corrected scene does not validate; errors listed}
        """
        body = await _json(request)
        uid = body.get("scene_uid")
        if not isinstance(uid, str):
            raise ComfyVNError("scene_uid is required", field="scene_uid")
        expected = _expected_version(request, body)
        result = await run_in_threadpool(
            lambda: apply_corrections(kernel, uid, body.get("scene"), body.get("nodes"), if_match=expected)
        )
        return JSONResponse(result, headers=_etag(result.get("version")))

    async def llm(request: Request) -> JSONResponse:
        """Run the detail-aware LLM clean-up on an imported scene and store the final variant.
        ---
        summary: LLM clean-up of a scene
        requestBody:
          content:
            application/json:
              schema:
                type: object
                required: [scene_uid]
                properties:
                  scene_uid: {type: string}
                  detail_level: {enum: [low, medium, high]}
        responses:
          200: {description: "{scene_uid, llm: configured|not configured|no result, stored, scene}"}
          404: {description: unknown scene}
        """
        body = await _json(request)
        uid = body.get("scene_uid")
        if not isinstance(uid, str):
            raise ComfyVNError("scene_uid is required", field="scene_uid")
        level = body.get("detail_level", "medium")
        result = await run_in_threadpool(sample_llm, kernel, uid, level if isinstance(level, str) else "")
        return JSONResponse(result)

    # The original product served these under /roleplay/…; scripts still call those paths, so both
    # prefixes answer (the /api one is canonical). Off loopback, writes through either need roleplay.write.
    return [
        Route(f"{prefix}/roleplay/{path}", endpoint, methods=[method])
        for prefix in ("/api", "")
        for path, endpoint, method in (
            ("import", import_chat, "POST"),
            ("import/card", card_import_endpoint(kernel), "POST"),
            ("preview/{scene_uid}", preview, "GET"),
            ("apply_corrections", corrections, "POST"),
            ("sample_llm", llm, "POST"),
        )
    ]
