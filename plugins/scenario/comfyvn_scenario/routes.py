"""HTTP surface of the scenario plugin: parse -> domain/service -> JSON. Plain Starlette routes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from comfyvn.errors import ComfyVNError
from comfyvn.wire import parse_request, read_json
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .pov import candidates
from .service import PLAYTEST_FLAG, ScenarioService, validate_story
from .wire import PlaytestRequest, PovForkRequest, PovSetRequest, StepRequest

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["make_routes"]


async def _off_loop(work: Callable[[], Any]) -> JSONResponse:
    """Run ``work`` and encode its answer in a worker thread: validating, stepping or walking a big story is
    CPU work that would otherwise stall the event loop, and with it every other client and /health."""
    return await run_in_threadpool(lambda: JSONResponse(work()))


async def _optional_body(request: Request) -> Any:
    return await read_json(request, default={})


def make_routes(kernel: Kernel) -> list[Route]:
    """The ``/api/scenario``, ``/api/save``, ``/api/pov`` and ``/api/playtest`` routes bound to ``kernel``."""
    service = ScenarioService(kernel)

    async def validate(request: Request) -> JSONResponse:
        """Validate a scene or a project: schema and semantic errors, warnings, JSON-pointer paths.
        ---
        summary: Validate a scenario
        requestBody:
          required: true
          content:
            application/json:
              schema:
                oneOf:
                  - {type: object, required: [scene], properties: {scene: {$ref: "urn:comfyvn:schema:scene"}}}
                  - {type: object, required: [project], properties: {project: {type: object}, scenes: {}}}
                  - type: object
                    required: [project]
                    properties: {project: {type: string, description: "the id of a project in the store"}}
                  - {type: object, description: a bare scene, required: [id, start, nodes]}
        responses:
          200: {description: "{valid, errors[{path, message, code, severity, document?}], warnings[]}"}
          400: {description: body is not a JSON object}
          404: {description: no stored project with that id}
        """
        body = await read_json(request)
        return await _off_loop(lambda: validate_story(body, lambda pid: service.store.load(pid)).to_wire())

    async def run_step(request: Request) -> JSONResponse:
        """Advance the deterministic runner one step (builds the initial state when none is given).
        ---
        summary: Step the scenario runner
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                additionalProperties: false
                properties:
                  scene: {type: object}
                  project:
                    description: "project.json content (with scenes given in `scenes`), or a store project's id"
                    oneOf: [{type: object}, {type: string}]
                  scenes: {description: "list of scenes or {id: scene} (with an inline project only)"}
                  state: {type: object, description: "{scene_id, current_node, variables, history, rng,
                          finished, pov}"}
                  seed: {type: integer, minimum: 0}
                  choice_id: {type: string}
                  choice: {type: string, description: alias of choice_id}
                  pov: {type: string}
        responses:
          200: {description: "{ok, state, node, choices, finished}"}
          400: {description: invalid input; error.field names the field}
          404: {description: no stored project with that id}
          409: {description: seed differs from the state's rng seed}
          422: {description: "invalid scenario, unknown node, or an unavailable choice
                (error.available lists the choices)"}
        """
        req = parse_request(await read_json(request), StepRequest)
        return await _off_loop(lambda: service.run_step(req))

    async def save_write(request: Request) -> JSONResponse:
        """Write a save slot atomically (slot names are normalised).
        ---
        summary: Save to a slot
        parameters: [{name: slot, in: path, required: true, schema: {type: string}}]
        requestBody:
          required: true
          content:
            application/json:
              schema: {type: object, required: [vars, node_pointer, seed], properties: {vars: {type: object}},
                       additionalProperties: true}
        responses:
          200: {description: "{ok, save: {slot, saved_at, saved_at_iso, vars, node_pointer, seed, ...}}"}
          400: {description: a required key is missing or the slot name is unusable}
        """
        body = await read_json(request)
        return await _off_loop(lambda: {"ok": True, "save": service.saves.write(request.path_params["slot"], body)})

    async def save_read(request: Request) -> JSONResponse:
        """Read a save slot.
        ---
        summary: Read a save
        parameters: [{name: slot, in: path, required: true, schema: {type: string}}]
        responses:
          200: {description: "{ok, save}"}
          404: {description: no such slot}
        """
        return JSONResponse({"ok": True, "save": service.saves.read(request.path_params["slot"])})

    async def save_delete(request: Request) -> JSONResponse:
        """Delete a save slot.
        ---
        summary: Delete a save
        parameters: [{name: slot, in: path, required: true, schema: {type: string}}]
        responses:
          200: {description: "{ok, slot, deleted: true}"}
          404: {description: no such slot}
        """
        return JSONResponse({"ok": True, "slot": service.saves.delete(request.path_params["slot"]), "deleted": True})

    async def save_list(request: Request) -> JSONResponse:
        """List save slots, newest first.
        ---
        summary: List saves
        responses:
          200: {description: "{ok, slots: [{slot, saved_at, saved_at_iso, size_bytes}]}"}
        """
        return await _off_loop(lambda: {"ok": True, "slots": service.saves.list()})

    async def pov_get(request: Request) -> JSONResponse:
        """The active POV and the POVs it replaced.
        ---
        summary: Get the POV
        responses:
          200: {description: "{ok, pov, history}"}
        """
        return JSONResponse({"ok": True, **service.pov.snapshot()})

    async def pov_set(request: Request) -> JSONResponse:
        """Switch the POV (absent/null: back to the default, `narrator`).
        ---
        summary: Set the POV
        requestBody:
          content: {application/json: {schema: {type: object, additionalProperties: false,
                    properties: {pov: {type: [string, "null"]}}}}}
        responses:
          200: {description: "{ok, pov, history}"}
          400: {description: pov is not a string}
        """
        req = parse_request(await _optional_body(request), PovSetRequest)
        return JSONResponse({"ok": True, **service.pov.set(req.pov)})

    async def pov_fork(request: Request) -> JSONResponse:
        """A deterministic save-slot name for a POV fork (`slot__pov_alice`, then `slot__pov_alice_2`, ...).
        ---
        summary: Fork a save slot per POV
        requestBody:
          required: true
          content: {application/json: {schema: {type: object, required: [slot], additionalProperties: false,
                    properties: {slot: {type: string}, pov: {type: string}}}}}
        responses:
          200: {description: "{ok, slot, pov}"}
          400: {description: slot missing or unusable}
        """
        req = parse_request(await read_json(request), PovForkRequest)
        slot = service.pov.fork(req.slot, req.pov)
        return JSONResponse({"ok": True, "slot": slot, "pov": req.pov or service.pov.snapshot()["pov"]})

    async def pov_candidates(request: Request) -> JSONResponse:
        """POV candidates of a scene or project (cast, POVs, node tags, speakers, visible_to ids).
        ---
        summary: POV candidates
        requestBody:
          required: true
          content: {application/json: {schema: {type: object,
                    description: "{scene} | {project, scenes} | {project: store id} | a bare scene"}}}
        responses:
          200: {description: "{ok, candidates: [{id, name, source}]}"}
          400: {description: body is not a scene or project}
          404: {description: no stored project with that id}
        """
        body = await read_json(request)
        if not isinstance(body, dict):
            raise ComfyVNError("the request body must be a JSON object", field="body", code="invalid_request")

        def work() -> dict[str, Any]:
            if "project" in body:
                story: Any = service.story(None, body["project"], body.get("scenes"))
            else:
                story = body["scene"] if isinstance(body.get("scene"), dict) else body
            return {"ok": True, "candidates": candidates(story)}

        return await _off_loop(work)

    async def playtest_run(request: Request) -> JSONResponse:
        """Run a headless playtest (flag enable_playtest_harness): a canonical trace and its digest.
        ---
        summary: Run a playtest
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                additionalProperties: false
                properties:
                  scene: {type: object}
                  project: {description: "a project object, or a store project's id", oneOf: [{type: object},
                            {type: string}]}
                  scenes: {}
                  seed: {type: integer, minimum: 0, default: 0}
                  pov: {type: string}
                  povs: {type: array, items: {type: string}, description: explore only}
                  variables: {type: object, description: deep-merged over the defaults}
                  policy: {enum: [first, random, scripted, explore], default: random}
                  choices: {type: array, items: {type: string}, description: scripted choice ids}
                  max_steps: {type: integer, default: 500}
                  max_depth: {type: integer, default: 200}
                  max_states: {type: integer, default: 20000}
                  golden: {type: object, description: a golden trace to compare with}
                  persist: {type: boolean, default: false}
                  dry_run: {type: boolean, default: false}
                  prompt_packs: {}
                  workflow: {}
        responses:
          200: {description: "{ok, digest, trace|report, provenance, comparison?, trace_path?, log_path?} (under logs)"}
          400: {description: invalid input; error.field names the field}
          403: {description: enable_playtest_harness is off}
          404: {description: no stored project with that id}
          422: {description: invalid scenario or an unavailable scripted choice}
        """
        kernel.flags.require(PLAYTEST_FLAG)
        req = parse_request(await read_json(request), PlaytestRequest)
        return await _off_loop(lambda: service.playtest(req))

    # Canonical paths live under /api/scenario/ (so writes need scenario.write); the original product's
    # /api/save/, /api/pov/ and /api/playtest/ paths stay as aliases of the same handlers, listed after.
    aliased = (
        ("save/list", save_list, "GET"),
        ("save/{slot}", save_write, "POST"),
        ("save/{slot}", save_read, "GET"),
        ("save/{slot}", save_delete, "DELETE"),
        ("pov/get", pov_get, "GET"),
        ("pov/set", pov_set, "POST"),
        ("pov/fork", pov_fork, "POST"),
        ("pov/candidates", pov_candidates, "POST"),
        ("playtest/run", playtest_run, "POST"),
    )
    return [
        Route("/api/scenario/validate", validate, methods=["POST"]),
        Route("/api/scenario/run/step", run_step, methods=["POST"]),
        *(Route(f"/api/scenario/{path}", endpoint, methods=[method]) for path, endpoint, method in aliased),
        *(Route(f"/api/{path}", endpoint, methods=[method]) for path, endpoint, method in aliased),
    ]
