"""HTTP surface of the narrator sessions: ``/api/narrator/{status,mode,propose,apply,stop,rollback,chat}``.

Parse → `session` → JSON ``{ok, state, ...}``. Every route needs ``enable_narrator`` (403 ``feature_disabled``
naming it) unless the request asks for a local drill with ``"force": true`` (``?force=true`` on status), as the
spec's curl drills do. Force is honoured only for a caller on this machine (a loopback peer address) that is
anonymous (possible only while the server listens on loopback) or whose token holds ``narrator.write`` or
``admin``; anyone else gets the same 403, with ``error.force`` saying why force did not count.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, TypeVar

from comfyvn.errors import FeatureDisabled, Invalid
from comfyvn.flags import parse_bool
from comfyvn.wire import parse_request, read_json
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from . import session
from .wire import ApplyRequest, ChatRequest, ModeRequest, ProposeRequest, RollbackRequest, SceneRequest, check_scene_id

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["WRITE_SCOPE", "force_allowed", "make_routes", "require_flag"]

T = TypeVar("T")
WRITE_SCOPE = "narrator.write"
_FORCE_REFUSED = (
    "force is honoured only for callers on this machine, anonymous or with the narrator.write or admin scope"
)


def force_allowed(request: Request) -> bool:
    """Whether ``force`` may stand in for the flag: a loopback peer, anonymous or holding the write scope."""
    client = request.client
    try:
        local = client is not None and ipaddress.ip_address(client.host).is_loopback
    except ValueError:  # a peer that is not an IP address (a Unix socket, a test transport)
        local = False
    if not local:
        return False
    # The server's guard puts the caller it verified here (an object with ``token_id`` and ``scopes``).
    principal = request.scope.get("state", {}).get("principal")
    if principal is None or getattr(principal, "token_id", None) is None:
        return True
    scopes: frozenset[str] = getattr(principal, "scopes", frozenset())
    return WRITE_SCOPE in scopes or "admin" in scopes


def require_flag(kernel: Kernel, request: Request, force: bool) -> None:
    """403 ``feature_disabled`` unless ``enable_narrator`` is on or ``force`` counts (`force_allowed`); a refused
    force says why in ``error.force``."""
    if kernel.flags.is_enabled(session.FLAG) or (force and force_allowed(request)):
        return
    refusal = FeatureDisabled(session.FLAG)
    if force:
        refusal.details["force"] = _FORCE_REFUSED
    raise refusal


def make_routes(kernel: Kernel) -> list[Route]:
    """The ``/api/narrator/*`` session routes bound to ``kernel``."""

    def require(request: Request, force: bool) -> None:
        require_flag(kernel, request, force)

    async def body(request: Request, cls: type[T]) -> T:
        data = await read_json(request)
        if not isinstance(data, dict):
            raise Invalid("body: must be a JSON object", field="body")
        force = data.get("force", False)
        if not isinstance(force, bool):
            raise Invalid("force: must be true or false", field="force")
        require(request, force)  # the flag before the rest of the body: a disabled feature says so first
        return parse_request(data, cls)

    async def status(request: Request) -> JSONResponse:
        """The session of a scene.
        ---
        summary: Narrator session status
        parameters:
          - {name: scene_id, in: query, required: true, schema: {type: string}}
          - {name: force, in: query, schema: {type: boolean, default: false}, description: local drill without the flag}
        responses:
          200: {description: "{ok, state{scene_id, node_id, mode, role, active, halted, turn_counts, queue[],
                history_size, last_choice, pov, variables, timestamp}}"}
          400: {description: scene_id missing or invalid}
          403: {description: enable_narrator is off}
          404: {description: the scene has no narrator session}
        """
        force = parse_bool(request.query_params.get("force", "false"), field="force")
        require(request, force)
        scene_id = request.query_params.get("scene_id")
        if scene_id is None:
            raise Invalid("scene_id: required (?scene_id=...)", field="scene_id")
        state = await run_in_threadpool(session.status, kernel, check_scene_id(scene_id))
        return JSONResponse({"ok": True, "state": state})

    async def mode(request: Request) -> JSONResponse:
        """Set the mode (observe, propose, apply); resumes a halted session; starts one (node_id needed).
        ---
        summary: Narrator mode
        requestBody:
          content:
            application/json:
              schema:
                type: object
                required: [scene_id, mode]
                properties:
                  scene_id: {type: string}
                  mode: {enum: [observe, propose, apply]}
                  node_id: {type: string}
                  variables: {type: object, description: the observed variables; starts a new rollback history}
                  pov: {type: string}
                  role: {enum: [narrator, mc, antagonist, extras, translator, worldbuilder]}
                  reset_queue: {type: boolean, description: drop pending proposals and free their turns}
                  force: {type: boolean}
        responses:
          200: {description: "{ok, state}"}
          400: {description: invalid input (names the field)}
          403: {description: enable_narrator is off}
        """
        req = await body(request, ModeRequest)
        return JSONResponse({"ok": True, "state": await run_in_threadpool(session.set_mode, kernel, req)})

    async def propose(request: Request) -> JSONResponse:
        """Ask the narrator role for one turn (the NARRATOR_TURN prompt pack) and queue it as pending.
        ---
        summary: Narrator proposal
        requestBody:
          content:
            application/json:
              schema:
                type: object
                required: [scene_id]
                properties:
                  scene_id: {type: string}
                  node_id: {type: string, description: required when the scene has no session yet}
                  message: {type: string}
                  node_text: {type: string}
                  speaker: {type: string}
                  scene_title: {type: string}
                  choices: {type: array, items: {type: object, properties: {id: {type: string}, text: {type: string}}}}
                  pov: {type: string}
                  gate: {type: object, description: llm call-gate options (a rating acknowledgement)}
                  force: {type: boolean}
        responses:
          200: {description: "{ok, state, proposal}"}
          400: {description: invalid input}
          403: {description: enable_narrator is off}
          409: {description: "turn_cap (3 turns per node), halted, observe_mode or queue_full"}
          423: {description: the llm call gate blocked the call}
          502: {description: the model failed or answered invalid JSON twice (invalid_model_answer); nothing queued}
        """
        req = await body(request, ProposeRequest)
        state, proposal = await run_in_threadpool(session.propose, kernel, req)
        return JSONResponse({"ok": True, "state": state, "proposal": proposal})

    async def apply(request: Request) -> JSONResponse:
        """Apply a pending proposal: deep-merge its vars_patch ($replace, $delete) into the variables.
        ---
        summary: Apply a narrator proposal
        requestBody:
          content:
            application/json:
              schema:
                type: object
                required: [scene_id, proposal_id]
                properties: {scene_id: {type: string}, proposal_id: {type: string}, force: {type: boolean}}
        responses:
          200: {description: "{ok, state, proposal}"}
          403: {description: enable_narrator is off}
          404: {description: no such session or proposal}
          409: {description: "duplicate_apply, proposal_rolled_back, halted or observe_mode"}
        """
        req = await body(request, ApplyRequest)
        state, proposal = await run_in_threadpool(session.apply, kernel, req)
        return JSONResponse({"ok": True, "state": state, "proposal": proposal})

    async def stop(request: Request) -> JSONResponse:
        """Halt the session: propose and apply answer 409 halted until a mode is set.
        ---
        summary: Stop the narrator
        requestBody:
          content:
            application/json:
              schema:
                type: object
                required: [scene_id]
                properties: {scene_id: {type: string}, force: {type: boolean}}
        responses:
          200: {description: "{ok, state}"}
          403: {description: enable_narrator is off}
          404: {description: no such session}
        """
        req = await body(request, SceneRequest)
        return JSONResponse({"ok": True, "state": await run_in_threadpool(session.stop, kernel, req.scene_id)})

    async def rollback(request: Request) -> JSONResponse:
        """Undo the last applies (steps, 1-16): the variables before them come back, the proposals are rolled_back.
        ---
        summary: Roll back narrator applies
        requestBody:
          content:
            application/json:
              schema:
                type: object
                required: [scene_id]
                properties:
                  scene_id: {type: string}
                  steps: {type: integer, minimum: 1, maximum: 16, default: 1}
                  force: {type: boolean}
        responses:
          200: {description: "{ok, state, rolled_back[]}"}
          403: {description: enable_narrator is off}
          404: {description: no such session}
          409: {description: "nothing_to_rollback (fewer applies in the history than steps; error.available)"}
        """
        req = await body(request, RollbackRequest)
        state, undone = await run_in_threadpool(session.rollback, kernel, req)
        return JSONResponse({"ok": True, "state": state, "rolled_back": undone})

    async def chat(request: Request) -> JSONResponse:
        """A free message to the narrator role; the reply comes back and nothing is queued or changed.
        ---
        summary: Chat with the narrator
        requestBody:
          content:
            application/json:
              schema:
                type: object
                required: [scene_id, message]
                properties:
                  scene_id: {type: string}
                  message: {type: string}
                  node_id: {type: string}
                  role: {type: string}
                  pov: {type: string}
                  gate: {type: object}
                  force: {type: boolean}
        responses:
          200: {description: "{ok, state, reply, metadata{adapter, model, provider, usage, budget}}"}
          403: {description: enable_narrator is off}
          423: {description: the llm call gate blocked the call}
          502: {description: the model failed}
        """
        req = await body(request, ChatRequest)
        state, reply, metadata = await session.chat(kernel, req)
        return JSONResponse({"ok": True, "state": state, "reply": reply, "metadata": metadata})

    return [
        Route("/api/narrator/status", status, methods=["GET"], name="narrator_status"),
        Route("/api/narrator/mode", mode, methods=["POST"], name="narrator_mode"),
        Route("/api/narrator/propose", propose, methods=["POST"], name="narrator_propose"),
        Route("/api/narrator/apply", apply, methods=["POST"], name="narrator_apply"),
        Route("/api/narrator/stop", stop, methods=["POST"], name="narrator_stop"),
        Route("/api/narrator/rollback", rollback, methods=["POST"], name="narrator_rollback"),
        Route("/api/narrator/chat", chat, methods=["POST"], name="narrator_chat"),
    ]
