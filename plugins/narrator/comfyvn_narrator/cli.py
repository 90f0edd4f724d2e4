"""``comfyvn narrator status|mode|propose|apply|stop|rollback|chat SCENE``: options → `session` → print.

The same requests and checks as the REST routes. ``enable_narrator`` is needed unless ``--force`` (the local
drill the spec allows; a command line is always a caller on this machine). Bad input exits 2, a 409 (turn cap,
halted, duplicate apply) and a missing session exit 2 too, a failed model call 1, a gate's block 3 (the kernel's
CLI maps the errors). Other commands of the narrator (prompt packs, POV rewrites) join `narrator_group`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import click
from comfyvn.cli import gate_option, parse_gate_options
from comfyvn.errors import Invalid
from comfyvn.wire import loads, parse_request

from . import session
from .wire import MODES, ApplyRequest, ChatRequest, ModeRequest, ProposeRequest, RollbackRequest

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["narrator_group"]

T = TypeVar("T")

_json_option = click.option("--json", "as_json", is_flag=True, help="Print the whole answer as JSON.")
_force_option = click.option("--force", is_flag=True, help="Run although enable_narrator is off (a local drill).")
_node_option = click.option("--node", "node_id", help="The node (needed when the scene has no session yet).")


def _request(kernel: Kernel, force: bool, cls: type[T], fields: dict[str, Any]) -> T:
    if not force:
        kernel.flags.require(session.FLAG)
    return parse_request({k: v for k, v in fields.items() if v is not None}, cls)


def _print(as_json: bool, answer: dict[str, Any], line: str) -> None:
    if as_json:
        click.echo(json.dumps(answer, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        click.echo(line)


def _summary(state: dict[str, Any]) -> str:
    flags = " halted" if state["halted"] else ""
    pending = sum(p["status"] == "pending" for p in state["queue"])
    turns = state["turn_counts"].get(state["node_id"], 0)
    return (
        f"{state['scene_id']} @ {state['node_id']}: mode {state['mode']}{flags}, {pending} pending, "
        f"turns here {turns}, history {state['history_size']}"
    )


@click.group("narrator")
def narrator_group() -> None:
    """The narrator: Observe → Propose → Apply sessions per scene (and its prompt packs)."""


@narrator_group.command("status")
@click.argument("scene_id")
@_json_option
@_force_option
@click.pass_obj
def status_command(kernel: Kernel, scene_id: str, as_json: bool, force: bool) -> None:
    """Show the narrator session of SCENE_ID."""
    if not force:
        kernel.flags.require(session.FLAG)
    state = session.status(kernel, scene_id)
    lines = [_summary(state)]
    lines += [
        f"  {p['id']} {p['status']:<11} {p['node_id']} turn {p['turn_index']}: {p['narration']}" for p in state["queue"]
    ]
    _print(as_json, {"ok": True, "state": state}, "\n".join(lines))


@narrator_group.command("mode")
@click.argument("scene_id")
@click.argument("mode", type=click.Choice(MODES))
@_node_option
@click.option("--pov", help="The point-of-view character.")
@click.option("--role", help="The llm role that narrates (default narrator).")
@click.option("--variables", help="The observed variables as a JSON object (starts a new rollback history).")
@click.option("--reset-queue", is_flag=True, help="Drop the pending proposals and free their turns.")
@_json_option
@_force_option
@click.pass_obj
def mode_command(
    kernel: Kernel,
    scene_id: str,
    mode: str,
    node_id: str | None,
    pov: str | None,
    role: str | None,
    variables: str | None,
    reset_queue: bool,
    as_json: bool,
    force: bool,
) -> None:
    """Set the mode of SCENE_ID (observe, propose, apply); resumes a halted session."""
    fields: dict[str, Any] = {"scene_id": scene_id, "mode": mode, "node_id": node_id, "pov": pov, "role": role}
    if variables is not None:
        fields["variables"] = loads(variables, field="variables")
    fields["reset_queue"] = reset_queue
    state = session.set_mode(kernel, _request(kernel, force, ModeRequest, fields))
    _print(as_json, {"ok": True, "state": state}, _summary(state))


def _choices(pairs: tuple[str, ...]) -> list[dict[str, str]] | None:
    choices = []
    for pair in pairs:
        ident, _, text = pair.partition("=")
        if not ident:
            raise Invalid(f"--choice expects ID or ID=TEXT, got {pair[:60]!r}", field="choices", code="invalid_option")
        choices.append({"id": ident, "text": text})
    return choices or None


@narrator_group.command("propose")
@click.argument("scene_id")
@_node_option
@click.option("--message", "-m", default="", help="What the player or author says to the narrator.")
@click.option("--node-text", help="The node's text, for the model.")
@click.option("--speaker", help="Who speaks at the node.")
@click.option("--choice", "choices", multiple=True, metavar="ID[=TEXT]", help="An offered choice (repeatable).")
@click.option("--pov", help="The point-of-view character for this turn.")
@gate_option
@_json_option
@_force_option
@click.pass_obj
def propose_command(
    kernel: Kernel,
    scene_id: str,
    node_id: str | None,
    message: str,
    node_text: str | None,
    speaker: str | None,
    choices: tuple[str, ...],
    pov: str | None,
    gate: tuple[str, ...],
    as_json: bool,
    force: bool,
) -> None:
    """Ask the narrator of SCENE_ID for one turn and queue it."""
    fields = {
        "scene_id": scene_id,
        "node_id": node_id,
        "message": message,
        "node_text": node_text,
        "speaker": speaker,
        "choices": _choices(choices),
        "pov": pov,
        "gate": parse_gate_options(gate) or None,
    }
    state, proposal = session.propose(kernel, _request(kernel, force, ProposeRequest, fields))
    line = f"{proposal['id']} (turn {proposal['turn_index']} at {proposal['node_id']}): {proposal['narration']}"
    _print(as_json, {"ok": True, "state": state, "proposal": proposal}, line)


@narrator_group.command("apply")
@click.argument("scene_id")
@click.argument("proposal_id")
@_json_option
@_force_option
@click.pass_obj
def apply_command(kernel: Kernel, scene_id: str, proposal_id: str, as_json: bool, force: bool) -> None:
    """Apply PROPOSAL_ID of SCENE_ID: merge its variables patch."""
    req = _request(kernel, force, ApplyRequest, {"scene_id": scene_id, "proposal_id": proposal_id})
    state, proposal = session.apply(kernel, req)
    line = f"applied {proposal['id']}; variables: {json.dumps(state['variables'], sort_keys=True, ensure_ascii=False)}"
    _print(as_json, {"ok": True, "state": state, "proposal": proposal}, line)


@narrator_group.command("stop")
@click.argument("scene_id")
@_json_option
@_force_option
@click.pass_obj
def stop_command(kernel: Kernel, scene_id: str, as_json: bool, force: bool) -> None:
    """Halt the narrator of SCENE_ID until a mode is set."""
    if not force:
        kernel.flags.require(session.FLAG)
    state = session.stop(kernel, scene_id)
    _print(as_json, {"ok": True, "state": state}, _summary(state))


@narrator_group.command("rollback")
@click.argument("scene_id")
@click.option("--steps", type=int, default=1, show_default=True, help="How many applies to undo (1-16).")
@_json_option
@_force_option
@click.pass_obj
def rollback_command(kernel: Kernel, scene_id: str, steps: int, as_json: bool, force: bool) -> None:
    """Undo the last applies of SCENE_ID."""
    state, undone = session.rollback(
        kernel, _request(kernel, force, RollbackRequest, {"scene_id": scene_id, "steps": steps})
    )
    line = f"rolled back {', '.join(p['id'] for p in undone) or 'nothing'}; {_summary(state)}"
    _print(as_json, {"ok": True, "state": state, "rolled_back": undone}, line)


@narrator_group.command("chat")
@click.argument("scene_id")
@click.argument("message")
@_node_option
@click.option("--role", help="Ask another llm role than the session's.")
@click.option("--pov", help="The point-of-view character.")
@gate_option
@_json_option
@_force_option
@click.pass_obj
def chat_command(
    kernel: Kernel,
    scene_id: str,
    message: str,
    node_id: str | None,
    role: str | None,
    pov: str | None,
    gate: tuple[str, ...],
    as_json: bool,
    force: bool,
) -> None:
    """Send MESSAGE to the narrator of SCENE_ID and print the reply (nothing is queued)."""
    fields = {
        "scene_id": scene_id,
        "message": message,
        "node_id": node_id,
        "role": role,
        "pov": pov,
        "gate": parse_gate_options(gate) or None,
    }
    req = _request(kernel, force, ChatRequest, fields)
    state, reply, metadata = anyio.run(session.chat, kernel, req)
    _print(as_json, {"ok": True, "state": state, "reply": reply, "metadata": metadata}, reply)
