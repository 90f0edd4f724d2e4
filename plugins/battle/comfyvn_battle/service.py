"""The battle use cases shared by HTTP and CLI: seed choice, narration hook, events, payloads.

Routes and commands parse their input into a `wire` request and call `simulate_battle`,
`resolve_battle` or `plan_battle`; everything kernel-facing (environment seed, the
``narrate_battle`` hook, modder events, flags) happens here so both edges behave identically.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import structlog
from comfyvn.errors import Blocked, ComfyVNError

from .engine import EDITOR_PROMPT, FORMULA, VARIABLE_KEY, Simulation, parse_stats, resolve_state, simulate
from .narration import DEFAULT_POV, NarrationRequest, check_narration, compose_log, template_narration
from .planner import build_plan, contender_names
from .wire import PlanRequest, ResolveRequest, SimRequest

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = [
    "ENV_SEED",
    "PLAN_FLAG",
    "SIM_FLAG",
    "choose_seed",
    "narrate",
    "plan_battle",
    "resolve_battle",
    "simulate_battle",
]

ENV_SEED = "COMFYVN_BATTLE_SEED"
SIM_FLAG = "enable_battle_sim"
PLAN_FLAG = "enable_battle"
log = structlog.get_logger("comfyvn.battle.engine")


def choose_seed(seed: int | None, env: Mapping[str, str]) -> tuple[int, str]:
    """The seed to roll with and where it came from: ``request``, ``env`` or ``random``."""
    if seed is not None:
        return seed, "request"
    raw = env.get(ENV_SEED)
    if raw is not None and raw.strip():
        try:
            value = int(raw.strip())
        except ValueError:
            value = -1
        if 0 <= value < 2**64:
            return value, "env"
        # A broken deployment setting must not turn every request into a 400; say so and go on.
        log.warning("ignoring invalid battle seed", variable=ENV_SEED, value=raw)
    return secrets.randbits(32), "random"


def narrate(kernel: Kernel, request: NarrationRequest) -> dict[str, Any]:
    """Ask the ``narrate_battle`` hook; fall back to the template when the answer breaks the contract, the
    narrator's model call is refused (a content-rating gate: the warning says how to acknowledge) or fails.
    The fallback reports ``source: "template"`` and ``adapter: None`` (no narrator answered)."""
    problem: str | None
    blocked: Blocked | None = None
    try:
        answer = kernel.pm.hook.narrate_battle(request=request, kernel=kernel)
        problem = check_narration(answer, request.outcome) if answer is not None else "no narrator answered"
    except Blocked as exc:
        # A gate refusing the narrator's model call is policy working, not a fault: no traceback, the answer says
        # why and how to go on. The battle itself is decided and stands.
        log.info("battle narration blocked by a call gate", code=exc.code)
        answer, problem, blocked = None, f"the content-rating gate refused the narration: {exc.message}", exc
    except ComfyVNError as exc:  # the model failed or a feature is off: expected operational failures
        log.warning("battle narrator failed", code=exc.code, error=exc.message)
        answer, problem = None, f"the narrator failed: {exc.message}"
    except Exception as exc:  # a third-party narrator's bug must not fail the battle
        log.exception("battle narrator failed")
        answer, problem = None, f"narrator raised {type(exc).__name__}"
    if problem is None:
        result = dict(answer)
        result.setdefault("next_choice_hint", None)
        result.setdefault("mode", request.mode)
        if not isinstance(result.get("source"), str):
            result["source"] = "plugin"
        return result
    fallback = template_narration(request)
    fallback["warnings"] = [f"template used: {problem}"]
    if blocked is not None:
        token = blocked.details.get("ack_token")
        fallback["gate"] = {
            "blocked": True,
            "code": blocked.code,
            "ack_token": token if isinstance(token, str) else None,
        }
    return fallback


def _context(scene_id: str | None, node_id: str | None, pov: str | None) -> dict[str, Any] | None:
    if scene_id is None and node_id is None:
        return None
    return {"scene_id": scene_id, "node_id": node_id, "pov": pov or DEFAULT_POV}


def _roll(kernel: Kernel, stats: Any, seed: int | None) -> tuple[Simulation, str]:
    contenders = parse_stats(stats)
    chosen, source = choose_seed(seed, kernel.env)
    sim = simulate(contenders, chosen)
    log.debug(
        "battle roll",
        seed=chosen,
        seed_source=source,
        rng=sim.rng.as_dict(),
        totals={b.name: b.total for b in sim.breakdown},
        outcome=sim.outcome,
    )
    return sim, source


def _narration_request(
    sim: Simulation,
    mode: str,
    outcome: str,
    pov: str | None,
    rounds: int,
    context: dict[str, Any] | None,
    gate: dict[str, Any] | None = None,
) -> NarrationRequest:
    return NarrationRequest(
        mode=mode,
        outcome=outcome,
        contenders=tuple(b.name for b in sim.breakdown),
        pov=pov or DEFAULT_POV,
        rounds=rounds,
        seed=sim.seed,
        rng=sim.rng,
        weights=sim.weights,
        breakdown=tuple(b.as_dict() for b in sim.breakdown),
        context=context or {},
        gate=dict(gate or {}),
    )


def _sheet(sim: Simulation) -> dict[str, Any]:
    return {
        "seed": sim.seed,
        "rng": sim.rng.as_dict(),
        "weights": sim.weights_dict(),
        "breakdown": [b.as_dict() for b in sim.breakdown],
    }


def _narrate_into(
    kernel: Kernel,
    response: dict[str, Any],
    sim: Simulation,
    mode: str,
    outcome: str,
    req: SimRequest | ResolveRequest,
    context: dict[str, Any] | None,
) -> None:
    nreq = _narration_request(sim, mode, outcome, req.pov, req.rounds, context, req.gate)
    response["log"] = compose_log(nreq)
    response["narration"] = narrate(kernel, nreq)


def _finish(
    kernel: Kernel,
    event: str,
    response: dict[str, Any],
    req: SimRequest | ResolveRequest,
    state: dict[str, Any] | None,
    context: dict[str, Any] | None,
) -> dict[str, Any]:
    """Attach the optional ``state``/``context`` and emit ``event`` (the state copy stays out of the event)."""
    if state is not None:
        response["state"] = state
    if context is not None:
        response["context"] = context
    payload = {k: v for k, v in response.items() if k != "state"}
    kernel.events.emit(event, {**payload, "narrate": req.narrate, "rounds": req.rounds})
    return response


def simulate_battle(kernel: Kernel, req: SimRequest) -> dict[str, Any]:
    """``/api/battle/sim``: the formula decides; requires ``enable_battle_sim``."""
    kernel.flags.require(SIM_FLAG)
    sim, source = _roll(kernel, req.stats, req.seed)
    context = _context(req.scene_id, req.node_id, req.pov)
    state, persisted = resolve_state(req.state, sim.outcome, persist=req.persist_state)
    response: dict[str, Any] = {
        "outcome": sim.outcome,
        **_sheet(sim),
        "formula": FORMULA,
        "provenance": sim.provenance(seed_source=source),
        "log": [],
        "narration": None,
        "persisted": persisted,
    }
    if req.narrate:
        _narrate_into(kernel, response, sim, "sim", sim.outcome, req, context)
    return _finish(kernel, "on_battle_simulated", response, req, state, context)


def resolve_battle(kernel: Kernel, req: ResolveRequest) -> dict[str, Any]:
    """``/api/battle/resolve``: the editor's winner, analysed against ``stats`` when given."""
    winner = req.winner.strip()
    context = _context(req.scene_id, req.node_id, req.pov)
    state, persisted = resolve_state(req.state, winner, persist=req.persist_state)
    response: dict[str, Any] = {
        "outcome": winner,
        "vars": {VARIABLE_KEY: winner},
        "persisted": persisted,
        "editor_prompt": EDITOR_PROMPT,
        "formula": FORMULA,
    }
    if req.stats is not None:
        sim, source = _roll(kernel, req.stats, req.seed)
        response.update(
            _sheet(sim),
            predicted_outcome=sim.outcome,
            provenance=sim.provenance(seed_source=source, resolved_outcome=winner),
            log=[],
            narration=None,
        )
        if req.narrate:
            _narrate_into(kernel, response, sim, "choice", winner, req, context)
    return _finish(kernel, "on_battle_resolved", response, req, state, context)


def plan_battle(kernel: Kernel, req: PlanRequest) -> dict[str, Any]:
    """``/api/battle/plan``: the timeline plus which battle features are on (``enable_battle``)."""
    kernel.flags.require(PLAN_FLAG)
    names = contender_names(req.stats, req.contenders)
    plan = build_plan(
        names, pov=req.pov, rounds=req.rounds, world=req.world, scene_id=req.scene_id, node_id=req.node_id
    )
    return {"plan": plan.as_dict(), "feature": {PLAN_FLAG: True, SIM_FLAG: kernel.flags.is_enabled(SIM_FLAG)}}
