"""HTTP: ``POST /api/roleplay/import/card`` — a project opening the story of a card alone.

Multipart (``card`` file, optional ``world`` file, ``sprite`` files named ``<expression>.png``,
``user_name``, ``title``) or JSON (``card``: a card object or ``{data_base64, filename}``,
``world``: a lorebook object, ``user_name``, ``title``). The work runs in a worker thread.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path, PurePath
from typing import Any

from comfyvn.errors import Invalid
from comfyvn.wire import read_json
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse

from .cast import IMAGE_EXTS
from .lorebook import parse_lorebook, read_lorebook
from .models import Lorebook
from .serialize import options_from_payload
from .service import public_report, run_card_import

__all__ = ["card_import_endpoint"]

_MAX_SPRITES = 256
_CARD_OPTIONS = ("user_name", "title", "detail_level", "ooc")


def _options(fields: dict[str, Any]) -> Any:
    fields = {k: v for k, v in fields.items() if k in _CARD_OPTIONS and v is not None}
    fields.setdefault("user_name", "You")
    return options_from_payload(fields)


def _card_json(item: Any) -> tuple[bytes, str]:
    if isinstance(item, dict) and isinstance(item.get("data_base64"), str):
        try:
            data = base64.b64decode(item["data_base64"], validate=True)
        except (binascii.Error, ValueError):
            raise Invalid("data_base64 is not base64", field="card/data_base64") from None
        return data, str(item.get("filename") or "card.png")
    if isinstance(item, dict):
        return json.dumps(item).encode("utf-8"), "card.json"
    raise Invalid("`card` is a card object or {data_base64, filename}", field="card")


def _sprite_name(filename: str) -> str | None:
    path = PurePath(filename.replace("\\", "/"))
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem).strip("._")[:64]
    ext = path.suffix.lower().lstrip(".")
    return f"{stem}.{ext}" if stem and ext in IMAGE_EXTS else None


def card_import_endpoint(kernel: Any) -> Callable[[Request], Awaitable[JSONResponse]]:
    """The endpoint, closing over ``kernel``."""

    def work(card: bytes, filename: str, options: Any, world: Lorebook | None, sprites: list[tuple[str, bytes]]) -> Any:
        if not sprites:
            return run_card_import(kernel, card, filename, options, world=world)
        with tempfile.TemporaryDirectory(prefix="comfyvn-sprites-") as folder:
            for name, data in sprites:
                (Path(folder) / name).write_bytes(data)
            return run_card_import(kernel, card, filename, options, world=world, sprites_dir=Path(folder))

    async def import_card(request: Request) -> JSONResponse:
        """Start a project from a character card alone: scenario, description, greetings as openings.
        ---
        summary: Import a character card as a playable opening
        requestBody:
          content:
            multipart/form-data:
              schema:
                type: object
                required: [card]
                properties:
                  card: {type: string, format: binary, description: "PNG, JSON or CHARX card"}
                  world: {type: string, format: binary, description: lorebook JSON}
                  sprite: {type: array, items: {type: string, format: binary}, description: "<expression>.png"}
                  user_name: {type: string, default: You}
                  title: {type: string}
            application/json:
              schema:
                type: object
                required: [card]
                properties:
                  card: {type: object, description: "a card object or {data_base64, filename}"}
                  world: {type: object, description: lorebook object}
                  user_name: {type: string, default: You}
                  title: {type: string}
        responses:
          200: {description: "import report: import_id, project {id (the store id), title, version}, scenes[{id,
                scene_uid, version}], stats, warnings"}
          400: {description: bad request}
          422: {description: "not a card, or a card with nothing to open the story with"}
        """
        sprites: list[tuple[str, bytes]] = []
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            async with request.form() as form:
                upload = form.get("card")
                if not isinstance(upload, UploadFile):
                    raise Invalid("multipart card import needs a `card` file", field="card")
                card, filename = await upload.read(), upload.filename or "card.png"
                world_file = form.get("world")
                world = (
                    read_lorebook(
                        await world_file.read(),
                        name=PurePath(world_file.filename or "world").stem,
                        filename=world_file.filename or "",
                    )
                    if isinstance(world_file, UploadFile)
                    else None
                )
                items = [i for i in form.getlist("sprite") if isinstance(i, UploadFile)]
                if len(items) > _MAX_SPRITES:
                    raise Invalid(f"at most {_MAX_SPRITES} sprite files", field="sprite")
                for item in items:
                    name = _sprite_name(item.filename or "")
                    if name is None:
                        raise Invalid("a sprite is an image file named <expression>.<png|webp|…>", field="sprite")
                    sprites.append((name, await item.read()))
                options = _options({k: v for k, v in form.items() if isinstance(v, str)})
        else:
            body = await read_json(request)
            if not isinstance(body, dict):
                raise Invalid("request body must be a JSON object", field="body")
            card, filename = _card_json(body.get("card"))
            raw_world = body.get("world")
            world = parse_lorebook(raw_world, name="world") if isinstance(raw_world, dict) else None
            options = _options(body)
        result = await run_in_threadpool(work, card, filename, options, world, sprites)
        return JSONResponse(public_report(result))

    return import_card
