"""Narrator sessions, Observe → Propose → Apply: the operations behind ``/api/narrator/*`` and ``comfyvn narrator``.

Modes. ``observe``: the narrator only watches; ``propose`` and ``apply`` answer 409 ``observe_mode``. ``propose``
and ``apply`` both take turns; the mode names the step last taken (a proposal sets ``propose``, an apply sets
``apply``), and only an explicit ``mode`` call returns a session to ``observe``. A session that ``propose`` starts
begins in ``propose`` (the spec's drill proposes on a fresh scene); one that ``mode`` or ``chat`` starts begins in
the mode named (``chat``: ``observe``).

Turns. A proposal asks the session's role for the ``NARRATOR_TURN`` prompt pack's answer (`ask.ask_pack`;
offline: deterministic) and queues it as ``pending`` with the next id (``p0001``, never reused). At most
`MAX_TURNS` proposals per node may be pending or applied; a further propose is 409 ``turn_cap``; a rolled-back
proposal (or one dropped by ``reset_queue``) frees its turn. Only `apply` changes the variables: it merges the
proposal's ``vars_patch`` (without ``$narrator``; semantics in `patch`) and remembers the variables before it in
the rollback ring. An applied proposal cannot be applied again (409 ``duplicate_apply``), nor a rolled-back one.

Halting. `stop` halts: propose and apply answer 409 ``halted`` until a ``mode`` call (any mode) resumes. Rollback
and chat work while halted: undoing and asking questions are safe.

Determinism. The digest in ``vars_patch.$narrator`` is `comfyvn.digest.digest` over the proposal's content
(id, scene, node, role, turn, message, narration, rationale, choice, patch), never over times or usage, so the
same sequence of requests gives the same queue and digests in any process when the answer is deterministic.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import anyio
import attrs
from comfyvn.digest import digest
from comfyvn.errors import Conflict, Invalid, UpstreamError
from comfyvn_llm.calls import CallSpec, run_call
from comfyvn_llm.service import ROLES_FLAG, service_for

from .patch import META, apply_patch, check_value, patch_problems, without_meta
from .state_store import MAX_PROPOSALS, MAX_TURNS, Proposal, Session, SessionStore, Snapshot
from .wire import ApplyRequest, ChatRequest, ModeRequest, ProposeRequest, RollbackRequest

if TYPE_CHECKING:
    from comfyvn import Kernel

    from .ask import PackAnswer

__all__ = [
    "APPLY_EVENT",
    "FLAG",
    "PACK",
    "PROPOSAL_EVENT",
    "Ask",
    "apply",
    "chat",
    "propose",
    "rollback",
    "set_mode",
    "status",
    "stop",
]

FLAG: Final = "enable_narrator"
PACK: Final = "NARRATOR_TURN"
PROPOSAL_EVENT: Final = "on_narrator_proposal"
APPLY_EVENT: Final = "on_narrator_apply"
CHAT_VARIABLES_CHARS: Final = 4000  # how much of the variables a chat's system message quotes

Ask = Callable[..., "PackAnswer"]


def _store(kernel: Kernel) -> SessionStore:
    return SessionStore.for_kernel(kernel)


def _starter(scene_id: str, node_id: str | None, mode: str) -> Callable[[], Session]:
    def create() -> Session:
        if node_id is None:
            raise Invalid(f"node_id: required to start the session of scene {scene_id!r}", field="node_id")
        return Session(scene_id=scene_id, node_id=node_id, mode=mode)

    return create


def _require_turns(session: Session) -> None:
    if session.halted:
        raise Conflict(
            f"the narrator of scene {session.scene_id!r} is halted; set a mode to resume",
            field="scene_id",
            code="halted",
        )
    if session.mode == "observe":
        raise Conflict(
            f"the narrator of scene {session.scene_id!r} is observing; set mode 'propose' to take turns",
            field="mode",
            code="observe_mode",
        )


def status(kernel: Kernel, scene_id: str) -> dict[str, Any]:
    """The state of ``scene_id``'s session (404 ``session_not_found``)."""
    return _store(kernel).get(scene_id).state()


def set_mode(kernel: Kernel, request: ModeRequest) -> dict[str, Any]:
    """Set the mode (ending a halt), and optionally the node, role, POV and observed variables; see `ModeRequest`."""
    with _store(kernel).edit(request.scene_id, _starter(request.scene_id, request.node_id, request.mode)) as session:
        session.mode, session.halted = request.mode, False
        if request.node_id is not None:
            session.node_id = request.node_id
        if request.pov is not None:
            session.pov = request.pov
        if request.role is not None:
            session.role = request.role.lower()
        if request.variables is not None:
            # Observed state, not a narrator change: check it as a whole-value patch would be checked, then start
            # a new rollback history (older snapshots describe a world the caller has just replaced).
            check_value(request.variables, "variables")
            session.variables = copy.deepcopy(request.variables)
            session.history.clear()
        if request.reset_queue:
            for proposal in [p for p in session.proposals if p.status == "pending"]:
                session.turn_counts[proposal.node_id] -= 1
            session.proposals = [p for p in session.proposals if p.status != "pending"]
    return session.state()


def _budget(kernel: Kernel, role: str, usage: Mapping[str, Any]) -> dict[str, Any]:
    limit = None
    if kernel.flags.is_enabled(ROLES_FLAG):
        limit = service_for(kernel).roles.assignments()[role].budget_tokens
    spent = usage.get("total_tokens", 0)
    return {"limit": limit, "spent": spent if isinstance(spent, int) else 0}


def _answer_check(value: dict[str, Any]) -> list[str]:
    return patch_problems(value.get("vars_patch"))


def propose(
    kernel: Kernel, request: ProposeRequest, *, ask: Ask | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ask the narrator role for one turn and queue it: ``(state, proposal)``. 409 when halted, observing, at the
    turn cap or with a full queue; the model's errors (`UpstreamError`, `Blocked`) pass through with nothing queued.
    ``ask`` replaces `ask.ask_pack` (same signature)."""
    if ask is None:
        from .ask import ask_pack

        ask = ask_pack
    create = _starter(request.scene_id, request.node_id, "propose")
    with _store(kernel).edit(request.scene_id, create) as session:
        _require_turns(session)
        node = request.node_id or session.node_id
        used = session.turn_counts.get(node, 0)
        if used >= MAX_TURNS:
            raise Conflict(
                f"node {node!r} has had its {MAX_TURNS} narrator turns; roll back or move to another node",
                field="node_id",
                code="turn_cap",
                details={"node_id": node, "turns": used, "max_turns": MAX_TURNS},
            )
        if sum(p.status == "pending" for p in session.proposals) >= MAX_PROPOSALS:
            raise Conflict(f"{MAX_PROPOSALS} proposals are pending; apply or reset some", code="queue_full")
        # The lowest turn this node has free (a rolled-back turn frees its number): live turns never share one.
        live = {p.turn_index for p in session.proposals if p.node_id == node and p.status in ("pending", "applied")}
        turn = min(set(range(1, MAX_TURNS + 1)) - live)
        inputs = {
            "scene_id": session.scene_id,
            "scene_title": request.scene_title,
            "node_id": node,
            "speaker": request.speaker,
            "node_text": request.node_text,
            "choices": request.choices or [],
            "variables": copy.deepcopy(session.variables),
            "message": request.message,
            "pov": request.pov or session.pov,
        }
        answer = ask(
            kernel, PACK, inputs, role=session.role, scene_id=session.scene_id, gate=request.gate, check=_answer_check
        )
        body = answer.answer
        patch = body.get("vars_patch")
        problems = patch_problems(patch)
        if problems or not isinstance(patch, dict):  # an `ask` without the check: refuse rather than queue it
            raise UpstreamError(
                f"the model's vars_patch is not valid: {problems[0] if problems else 'not an object'}",
                field="answer",
                code="invalid_model_answer",
            )
        number = session.counter + 1
        content: dict[str, Any] = {
            "id": f"p{number:04d}",
            "scene_id": session.scene_id,
            "node_id": node,
            "role": session.role,
            "turn_index": turn,
            "message": request.message,
            "narration": str(body.get("narration", "")),
            "rationale": str(body.get("rationale", "")),
            "choice_id": body.get("choice_id"),
            "vars_patch": patch,
        }
        meta = {"scene_id": session.scene_id, "node_id": node, "turn": turn, "choice_id": content["choice_id"]}
        proposal = Proposal(
            id=content["id"],
            scene_id=session.scene_id,
            node_id=node,
            mode=session.mode,
            role=session.role,
            turn_index=turn,
            message=request.message,
            narration=content["narration"],
            rationale=content["rationale"],
            choice_id=content["choice_id"],
            vars_patch={META: {**meta, "digest": digest(content)}, **copy.deepcopy(patch)},
            status="pending",
            created_at=time.time(),
            metadata={
                "adapter": answer.adapter,
                "model": answer.model,
                "provider": answer.provider,
                "repaired": answer.repaired,
                "budget": _budget(kernel, session.role, answer.usage),
            },
        )
        session.counter = number
        session.proposals.append(proposal)
        session.turn_counts[node] = used + 1
        session.node_id, session.mode = node, "propose"
    kernel.events.emit(PROPOSAL_EVENT, _event(proposal))
    return session.state(), proposal.to_wire()


def _event(proposal: Proposal, *, rolled_back: bool | None = None) -> dict[str, Any]:
    payload = {
        "scene_id": proposal.scene_id,
        "node_id": proposal.node_id,
        "proposal_id": proposal.id,
        "turn_index": proposal.turn_index,
        "choice_id": proposal.choice_id,
        "digest": proposal.vars_patch[META]["digest"],
        "vars_patch": copy.deepcopy(proposal.vars_patch),
    }
    if rolled_back is None:
        payload.update(mode=proposal.mode, adapter=proposal.metadata.get("adapter"))
    else:
        payload["rolled_back"] = rolled_back
    return payload


def apply(kernel: Kernel, request: ApplyRequest) -> tuple[dict[str, Any], dict[str, Any]]:
    """Merge a pending proposal's ``vars_patch`` into the variables: ``(state, proposal)``. 404 for an unknown
    session or proposal; 409 ``duplicate_apply``, ``proposal_rolled_back``, ``halted`` or ``observe_mode``."""
    with _store(kernel).edit(request.scene_id) as session:
        _require_turns(session)
        proposal = session.proposal(request.proposal_id)
        if proposal.status == "applied":
            raise Conflict(f"proposal {proposal.id!r} is already applied", field="proposal_id", code="duplicate_apply")
        if proposal.status == "rolled_back":
            raise Conflict(
                f"proposal {proposal.id!r} was rolled back; propose again",
                field="proposal_id",
                code="proposal_rolled_back",
            )
        merged = apply_patch(session.variables, without_meta(proposal.vars_patch))
        session.history.append(
            Snapshot(proposal.id, proposal.node_id, session.variables, session.last_choice, time.time())
        )
        session.variables = merged
        if proposal.choice_id is not None:
            session.last_choice = proposal.choice_id
        proposal = attrs.evolve(proposal, status="applied")
        session.replace(proposal)
        session.mode = "apply"
    kernel.events.emit(APPLY_EVENT, _event(proposal, rolled_back=False))
    return session.state(), proposal.to_wire()


def stop(kernel: Kernel, scene_id: str) -> dict[str, Any]:
    """Halt the session (404 ``session_not_found``); a ``mode`` call resumes it. Halting twice is harmless."""
    with _store(kernel).edit(scene_id) as session:
        session.halted = True
    return session.state()


def rollback(kernel: Kernel, request: RollbackRequest) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Undo the last ``steps`` applies, newest first: the variables and last choice before each come back, each
    proposal becomes ``rolled_back`` and frees its turn. ``(state, undone proposals)``; 409
    ``nothing_to_rollback`` (nothing undone) when the ring holds fewer than ``steps`` applies."""
    undone: list[Proposal] = []
    with _store(kernel).edit(request.scene_id) as session:
        available = len(session.history)
        if request.steps > available:
            raise Conflict(
                f"cannot roll back {request.steps} applies: the history holds {available}",
                field="steps",
                code="nothing_to_rollback",
                details={"available": available},
            )
        for _ in range(request.steps):
            snapshot = session.history.pop()
            session.variables, session.last_choice = snapshot.variables, snapshot.last_choice
            session.turn_counts[snapshot.node_id] = max(0, session.turn_counts.get(snapshot.node_id, 0) - 1)
            kept = [p for p in session.proposals if p.id == snapshot.proposal_id]
            if kept:  # an old applied proposal may have been trimmed from the list; its snapshot still restores
                undone.append(attrs.evolve(kept[0], status="rolled_back"))
                session.replace(undone[-1])
    for proposal in undone:
        kernel.events.emit(APPLY_EVENT, _event(proposal, rolled_back=True))
    return session.state(), [p.to_wire() for p in undone]


def _chat_session(kernel: Kernel, request: ChatRequest) -> Session:
    store = _store(kernel)
    existing = store.load(request.scene_id)
    if existing is not None:
        return existing
    with store.edit(request.scene_id, _starter(request.scene_id, request.node_id, "observe")) as session:
        pass
    return session


def _chat_system(session: Session, request: ChatRequest, role: str) -> str:
    variables = session.variables
    quoted = repr(variables) if variables else "{}"
    if len(quoted) > CHAT_VARIABLES_CHARS:
        quoted = quoted[: CHAT_VARIABLES_CHARS - 1] + "…"
    pov = request.pov or session.pov
    lines = [
        f"You are the {role} of a visual novel, speaking with its author about scene {session.scene_id!r}.",
        f"The current node is {request.node_id or session.node_id!r}.",
        f"The story variables are {quoted}.",
        *([f"The point of view is {pov!r}."] if pov else []),
        "Answer briefly, in character; you change nothing by answering.",
    ]
    return "\n".join(lines)


async def chat(kernel: Kernel, request: ChatRequest) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """Send a free message to the narrator role (or ``request.role``) about the scene: ``(state, reply, metadata)``.

    Nothing is queued and the session is not changed (it is created, in ``observe``, when the scene has none). The
    call goes through the llm plugin: the role's provider with ``enable_llm_role_mapping``, else the default
    (offline) provider, which answers deterministically; the call gate applies (``request.gate``)."""
    session = await anyio.to_thread.run_sync(_chat_session, kernel, request)
    role = (request.role or session.role).lower()
    roles = kernel.flags.is_enabled(ROLES_FLAG)
    messages = [
        {"role": "system", "content": _chat_system(session, request, role)},
        {"role": "user", "content": request.message},
    ]
    spec = CallSpec(
        messages=messages,
        role=role if roles else None,
        scene_id=session.scene_id if roles else None,
        gate=dict(request.gate or {}),
        context={"role": role, "scene": session.scene_id},
    )
    answer = await run_call(service_for(kernel), spec)
    metadata = {
        "adapter": answer.get("adapter"),
        "model": answer.get("model"),
        "provider": answer.get("provider"),
        "usage": answer.get("usage") or {},
        "budget": _budget(kernel, role, answer.get("usage") or {}),
    }
    return session.state(), str(answer.get("reply") or ""), metadata
