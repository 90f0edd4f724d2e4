"""HTTP surface of the POV rewrite: ``POST /api/narrator/pov_rewrite {project, pov, scene?, gate?, force?}``.

Like the session routes it needs ``enable_narrator`` unless a local drill sends ``"force": true`` (the same
rule: a caller on this machine, anonymous or holding ``narrator.write``). The work runs in a thread: it waits on
the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from comfyvn.errors import Invalid
from comfyvn.wire import read_json
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .pov import pov_rewrite
from .routes import require_flag

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["make_pov_routes", "parse_pov_body"]

_FIELDS = {"project", "pov", "scene", "gate", "force"}


def _text(body: dict[str, Any], key: str, *, required: bool) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= 200:
        raise Invalid(f"{key}: must be a string of 1-200 characters", field=key)
    return value


def parse_pov_body(data: Any) -> tuple[str, str, str | None, dict[str, Any], bool]:
    """``(project, pov, scene, gate, force)`` from a request body; `Invalid` naming the field otherwise."""
    if not isinstance(data, dict):
        raise Invalid("body: must be a JSON object", field="body")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise Invalid(f"{unknown[0][:40]}: unknown field", field=unknown[0][:40])
    force = data.get("force", False)
    if not isinstance(force, bool):
        raise Invalid("force: must be true or false", field="force")
    gate = data.get("gate")
    gate = {} if gate is None else gate
    if not isinstance(gate, dict):
        raise Invalid("gate: must be an object", field="gate")
    project = _text(data, "project", required=True)
    pov = _text(data, "pov", required=True)
    assert project is not None and pov is not None
    return project, pov, _text(data, "scene", required=False), gate, force


def make_pov_routes(kernel: Kernel) -> list[Route]:
    """``POST /api/narrator/pov_rewrite`` bound to ``kernel``."""

    async def rewrite(request: Request) -> JSONResponse:
        """Restyle a scene's (or every scene's) narration from one character's point of view.
        ---
        summary: Narrator POV rewrite
        requestBody:
          content:
            application/json:
              schema:
                type: object
                required: [project, pov]
                properties:
                  project: {type: string, description: a store project id}
                  pov: {type: string, description: a character or POV id of the project}
                  scene: {type: string, description: one scene (default every scene)}
                  gate: {type: object, description: the llm call gate's options (a rating acknowledgement)}
                  force: {type: boolean}
        responses:
          200: {description: "{ok, project, version, pov, scenes[{id, rewritten, nodes, monologue, observations}],
                rewritten, adapter}"}
          400: {description: invalid input (names the field)}
          403: {description: enable_narrator is off}
          404: {description: no such project, scene or POV}
          409: {description: the project changed while the model was answering}
          423: {description: the llm call gate blocked the prompt}
          502: {description: the model failed, or its answer stayed invalid after one repair}
        """
        data = await read_json(request)
        force = data.get("force", False) if isinstance(data, dict) else False
        if not isinstance(force, bool):
            raise Invalid("force: must be true or false", field="force")
        # The flag before the rest of the body, as the session routes do: a disabled feature says so first.
        require_flag(kernel, request, force)
        project, pov, scene, gate, _ = parse_pov_body(data)
        result = await run_in_threadpool(
            lambda: pov_rewrite(kernel, project, pov=pov, scene_id=scene, gate=gate or None)
        )
        return JSONResponse({"ok": True, **result})

    return [Route("/api/narrator/pov_rewrite", rewrite, methods=["POST"], name="narrator_pov_rewrite")]
