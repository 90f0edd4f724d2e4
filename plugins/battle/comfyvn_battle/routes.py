"""HTTP surface of the battle layer: parse → `service` → JSON. Plain Starlette routes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from comfyvn.wire import parse_request, read_json
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from . import service
from .wire import PlanRequest, ResolveRequest, SimRequest

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["make_routes"]


def make_routes(kernel: Kernel) -> list[Route]:
    """The ``/api/battle/*`` routes bound to ``kernel``."""

    async def resolve(request: Request) -> JSONResponse:
        """Commit the editor's winner; with stats, also the roll sheet and a predicted outcome.
        ---
        summary: Resolve a battle by choice
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [winner]
                additionalProperties: false
                properties:
                  winner: {type: string, minLength: 1}
                  state: {type: object, description: scenario state; copied, never mutated}
                  persist_state: {type: boolean, default: true}
                  stats: {type: object, description: "{name: number | {base, str, agi, weapon_tier, status_mod, rng}}"}
                  seed: {type: integer, minimum: 0}
                  pov: {type: string}
                  narrate: {type: boolean, default: true}
                  rounds: {type: integer, minimum: 1, maximum: 50, default: 1}
                  scene_id: {type: string}
                  node_id: {type: string}
                  gate: {type: object, description: "the narrator's llm call-gate options (a rating acknowledgement)"}
        responses:
          200:
            description: >-
              {outcome, vars, persisted, editor_prompt: "Pick winner", formula, state?, context?},
              plus seed, rng, weights, breakdown, predicted_outcome, provenance, log, narration with stats
          400: {description: invalid input; error.field names the field}
        """
        req = parse_request(await read_json(request), ResolveRequest)
        return JSONResponse(await run_in_threadpool(service.resolve_battle, kernel, req))

    async def sim(request: Request) -> JSONResponse:
        """Let the v0 formula decide the battle (feature flag enable_battle_sim).
        ---
        summary: Simulate a battle
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [stats]
                additionalProperties: false
                properties:
                  stats: {type: object, minProperties: 1}
                  seed: {type: integer, minimum: 0, description: "default: COMFYVN_BATTLE_SEED, else random (reported)"}
                  state: {type: object}
                  persist_state: {type: boolean, default: false}
                  pov: {type: string}
                  rounds: {type: integer, minimum: 1, maximum: 50, default: 3}
                  narrate: {type: boolean, default: false}
                  scene_id: {type: string}
                  node_id: {type: string}
                  gate: {type: object, description: "the narrator's llm call-gate options (a rating acknowledgement)"}
        responses:
          200:
            description: >-
              {outcome, seed, weights, rng, breakdown[], formula, provenance, log[], narration, persisted,
              state?, context?}
          400: {description: invalid input; error.field names the field}
          403: {description: enable_battle_sim is off}
        """
        req = parse_request(await read_json(request), SimRequest)
        return JSONResponse(await run_in_threadpool(service.simulate_battle, kernel, req))

    async def plan(request: Request) -> JSONResponse:
        """The setup → engagement → resolution timeline of a battle beat (feature flag enable_battle).
        ---
        summary: Plan a battle timeline
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                additionalProperties: false
                properties:
                  stats: {type: object}
                  contenders: {type: array, items: {type: string}, minItems: 1}
                  pov: {type: string}
                  rounds: {type: integer, minimum: 1, maximum: 50, default: 3}
                  world: {type: object, additionalProperties: {type: string}}
                  scene_id: {type: string}
                  node_id: {type: string}
        responses:
          200:
            description: >-
              {plan{contenders, pov, rounds, world, phases[setup, engagement, resolution], duration, hash},
              feature}
          400: {description: invalid input; error.field names the field}
          403: {description: enable_battle is off}
        """
        req = parse_request(await read_json(request), PlanRequest)
        return JSONResponse(service.plan_battle(kernel, req))

    return [
        Route("/api/battle/resolve", resolve, methods=["POST"], name="battle_resolve"),
        Route("/api/battle/sim", sim, methods=["POST"], name="battle_sim"),
        # The original's legacy name; same handler, kept so old scripts keep working.
        Route("/api/battle/simulate", sim, methods=["POST"], name="battle_simulate"),
        Route("/api/battle/plan", plan, methods=["POST"], name="battle_plan"),
    ]
