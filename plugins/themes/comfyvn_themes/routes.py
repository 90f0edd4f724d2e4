"""``/api/themes/*``: parse → planner → JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING

from comfyvn.wire import read_json
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from . import service
from .wire import parse_apply

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["make_routes"]


def make_routes(kernel: Kernel) -> list[Route]:
    """The theme routes bound to ``kernel``."""

    async def templates(request: Request) -> JSONResponse:
        """Every theme template (LUT stack, ambience, music pack, prompt style, character looks).
        ---
        summary: Theme templates
        responses:
          200:
            description: "{templates: [{id, label, summary, luts, ambience, music, prompt, assets, character, roles}]}"
        """
        return JSONResponse({"templates": service.list_templates()})

    async def apply(request: Request) -> JSONResponse:
        """Preview a tone swap: a checksum-stable plan_delta of mutations; no render is triggered.
        ---
        summary: Apply a theme
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [theme]
                additionalProperties: false
                properties:
                  theme: {type: string, examples: [modern, fantasy, romantic, dark, action]}
                  characters:
                    oneOf:
                      - {type: array, items: {type: string}}
                      - type: object
                        additionalProperties:
                          type: object
                          properties: {role: {type: string}, overrides: {type: object}}
                  current: {type: object, description: the plan to diff against; no-op mutations are dropped}
                  scene_id: {type: string}
        responses:
          200:
            description: >-
              {theme, label, plan_delta{theme, checksum, mutations[{target, path, op, value, previous?}], counts,
              unchanged, warnings}, renders_triggered: false}
          400: {description: invalid input; error.field names the field}
          404: {description: unknown theme (field theme)}
        """
        return JSONResponse(service.apply(kernel, parse_apply(await read_json(request))))

    return [
        Route("/api/themes/templates", templates, methods=["GET"], name="themes_templates"),
        Route("/api/themes/apply", apply, methods=["POST"], name="themes_apply"),
    ]
