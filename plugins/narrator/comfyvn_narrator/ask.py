"""Asking a model through a prompt pack: render, call through the llm role orchestrator, parse, validate, repair once.

The provider is the role's (``enable_llm_role_mapping`` on: the role's assignment or the scene's pinned session),
else the llm plugin's default, the offline adapter. The offline adapter writes prose, not JSON, so when it is the
one that would serve, the answer is built here from the inputs (`comfyvn_narrator.offline`): deterministic,
schema-valid, and labelled ``adapter: "offline"``. The llm call gate (rating) is asked either way, about the
story's strings in the inputs (`gate_subject`), not the pack's own wording; a block passes through as
`comfyvn.errors.Blocked`.

A model's reply is parsed as JSON (a ```json fence is stripped) and validated against the pack's schema plus the
pack's own checks (a choice id that was offered, every node answered…). An invalid answer gets one repair
round-trip — the problems go back with a request for corrected JSON only — and then `UpstreamError`
``invalid_model_answer`` naming the problems. Callers apply nothing until an answer is valid.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import anyio
import attrs
from comfyvn.errors import Invalid, Unprocessable, UpstreamError
from comfyvn.wire import loads as wire_loads
from comfyvn_llm.calls import CallSpec, prepare_call, run_call
from comfyvn_llm.service import ROLES_FLAG, service_for

from . import offline
from .packs import Pack, check_answer, load_pack, render, validate

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = [
    "Check",
    "PackAnswer",
    "answer_tokens",
    "ask_pack",
    "ask_pack_async",
    "chunk_lines",
    "gate_subject",
    "parse_answer",
]

Check = Callable[[dict[str, Any]], list[str]]
MAX_ECHO = 8000  # how much of an invalid reply goes back in the repair request
_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)


@attrs.frozen
class PackAnswer:
    """A validated answer and who gave it. ``adapter`` is ``offline`` when the answer was built from the inputs."""

    answer: dict[str, Any]
    adapter: str
    model: str | None
    provider: str | None
    repaired: bool = False
    usage: dict[str, Any] = attrs.field(factory=dict)

    def metadata(self) -> dict[str, Any]:
        """``{adapter, model, provider, repaired, usage}`` for a caller's result or a proposal's metadata."""
        return {
            "adapter": self.adapter,
            "model": self.model,
            "provider": self.provider,
            "repaired": self.repaired,
            "usage": dict(self.usage),
        }


def parse_answer(reply: str) -> tuple[Any, list[str]]:
    """The JSON value in a model's ``reply`` and the problems reading it.

    Accepts a bare object, one fenced with ```json, or an object surrounded by a sentence of prose."""
    text = reply.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        json.loads(text)
    except RecursionError:
        return None, ["(root): the answer is nested too deeply"]
    except json.JSONDecodeError as exc:
        first, last = text.find("{"), text.rfind("}")
        if 0 <= first < last:
            try:
                json.loads(text[first : last + 1])
            except (json.JSONDecodeError, RecursionError):
                pass
            else:
                return _storable(text[first : last + 1])
        return None, [f"(root): the answer is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"]
    return _storable(text)


def _storable(text: str) -> tuple[Any, list[str]]:
    # JSON, but read under the kernel's policy: NaN, Infinity, huge integers, lone surrogates and deep nesting
    # would be accepted by `json.loads` and then fail the digest, the session file or its next reading.
    try:
        return wire_loads(text, field="(root)"), []
    except Invalid as exc:
        return None, [exc.message]


def _problems(pack: Pack, inputs: Mapping[str, Any], value: Any, check: Check | None) -> list[str]:
    if not isinstance(value, dict):
        return ["(root): the answer must be a JSON object"]
    problems = validate(pack, value)
    if problems:
        return problems
    problems = check_answer(pack, inputs, value)
    if not problems and check is not None:
        problems = check(value)
    return problems


def _repair_request(problems: list[str]) -> str:
    listed = "\n".join(f"- {p}" for p in problems)
    return (
        "Your answer is not valid:\n"
        f"{listed}\n"
        "Reply again with the corrected JSON object only: no explanation, no code fence, nothing else."
    )


def _add_usage(total: dict[str, Any], usage: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in usage.items():
        if isinstance(value, int) and not isinstance(value, bool):
            total[key] = int(total.get(key, 0)) + value
    return total


def gate_subject(inputs: Any) -> str:
    """What the call gate judges for a pack call: every string in ``inputs`` (mapping keys too: a story variable's
    name is story text), one a line, depth first. The pack's template is the installation's own wording, not the
    story, so it is left out; a caller whose inputs carry machine keys passes its own subject instead."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                found.append(str(key))
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(inputs)
    return "\n".join(text for text in found if text.strip())


async def ask_pack_async(
    kernel: Kernel,
    pack: str,
    inputs: Mapping[str, Any],
    *,
    role: str = "narrator",
    scene_id: str | None = None,
    gate: Mapping[str, Any] | None = None,
    check: Check | None = None,
    params: Mapping[str, Any] | None = None,
    offline_answer: Callable[[], dict[str, Any]] | None = None,
    subject: str | None = None,
) -> PackAnswer:
    """`ask_pack` for async callers."""
    loaded = load_pack(pack, kernel=kernel)
    messages = render(loaded, inputs)
    service = service_for(kernel)
    roles = kernel.flags.is_enabled(ROLES_FLAG)
    sampling = {"max_tokens": loaded.max_tokens} if loaded.max_tokens else {}
    spec = CallSpec(
        messages=messages,
        gate=dict(gate or {}),
        role=role if roles else None,
        scene_id=scene_id if roles else None,
        params={**sampling, **(params or {})},
        subject=gate_subject(inputs) if subject is None else subject,
    )
    # The plan without pinning: which provider would serve, so that the offline adapter is never asked for JSON.
    provider, request, _ = await anyio.to_thread.run_sync(prepare_call, service, attrs.evolve(spec, dry_run=True))
    if provider.adapter == "offline":
        await anyio.to_thread.run_sync(service.gate, provider, request, spec.gate, spec.role, spec.subject)
        answer = offline_answer() if offline_answer is not None else offline.answer(loaded.name, inputs)
        problems = _problems(loaded, inputs, answer, check)
        if problems:
            # The offline answers are built to fit; reaching this means a user pack changed what a shipped one
            # accepts, or a caller's check refuses what the inputs allow.
            raise Unprocessable(
                f"{pack}: the offline answer does not fit the pack: {problems[0]}",
                field="pack",
                code="offline_answer_invalid",
                details={"problems": problems},
            )
        return PackAnswer(answer, "offline", request.model, provider.id)

    first = await run_call(service, spec)
    usage = _add_usage({}, first.get("usage") or {})
    value, problems = parse_answer(str(first.get("reply") or ""))
    if not problems:
        problems = _problems(loaded, inputs, value, check)
    repaired = False
    if problems:
        repair = [
            *messages,
            {"role": "assistant", "content": str(first.get("reply") or "")[:MAX_ECHO] or "(empty)"},
            {"role": "user", "content": _repair_request(problems)},
        ]
        second = await run_call(service, attrs.evolve(spec, messages=repair))
        usage = _add_usage(usage, second.get("usage") or {})
        value, problems = parse_answer(str(second.get("reply") or ""))
        if not problems:
            problems = _problems(loaded, inputs, value, check)
        if problems:
            raise UpstreamError(
                f"the model's answer to {pack} is not valid after one repair: {problems[0]}",
                field="answer",
                code="invalid_model_answer",
                details={
                    "pack": pack,
                    "problems": problems,
                    "provider": second.get("provider"),
                    "model": second.get("model"),
                },
            )
        first, repaired = second, True
    assert isinstance(value, dict)
    return PackAnswer(
        value,
        str(first.get("adapter") or provider.adapter),
        first.get("model"),
        first.get("provider"),
        repaired,
        usage,
    )


def ask_pack(
    kernel: Kernel,
    pack: str,
    inputs: Mapping[str, Any],
    *,
    role: str = "narrator",
    scene_id: str | None = None,
    gate: Mapping[str, Any] | None = None,
    check: Check | None = None,
    params: Mapping[str, Any] | None = None,
    offline_answer: Callable[[], dict[str, Any]] | None = None,
    subject: str | None = None,
) -> PackAnswer:
    """Ask ``role`` (in ``scene_id``'s sticky session) for the answer of ``pack`` to ``inputs``.

    ``gate``: the llm call gate's options (a rating acknowledgement). ``check``: more problems of a schema-valid
    answer (they take part in the repair round like schema problems). ``params``: sampling kwargs over the pack's
    ``max_tokens``. ``offline_answer``: the caller's own deterministic answer when the offline adapter would
    serve (validated like any other), instead of the pack's offline template. ``subject``: what the call gate
    judges (default: `gate_subject` of ``inputs``).

    Runs its own event loop: call it from a thread (a plain route handler, a CLI command, a hook); async code
    uses `ask_pack_async`.

    Raises `UpstreamError` ``invalid_model_answer`` when the answer is still invalid after one repair, and lets
    `Blocked` (the gate), `UpstreamError` (the provider) and `FeatureDisabled` pass through."""
    call = functools.partial(
        ask_pack_async,
        kernel,
        pack,
        inputs,
        role=role,
        scene_id=scene_id,
        gate=gate,
        check=check,
        params=params,
        offline_answer=offline_answer,
        subject=subject,
    )
    result: PackAnswer = anyio.run(call)
    return result


CHUNK_CHARS = 6000
CHUNK_LINES = 60


def chunk_lines(lines: list[dict[str, Any]], *, chars: int = CHUNK_CHARS, count: int = CHUNK_LINES) -> list[Any]:
    """``lines`` (``{id, text, …}``) in consecutive groups of at most ``count`` lines and about ``chars``
    characters of text, so that a long scene is asked in requests that fit a role's prompt budget."""
    chunks: list[list[dict[str, Any]]] = []
    size = 0
    for line in lines:
        length = len(str(line.get("text") or ""))
        if not chunks or len(chunks[-1]) >= count or (chunks[-1] and size + length > chars):
            chunks.append([])
            size = 0
        chunks[-1].append(line)
        size += length
    return chunks


def answer_tokens(lines: list[dict[str, Any]]) -> int:
    """A ``max_tokens`` for an answer that gives back about the text of ``lines`` with room to reword it."""
    text = sum(len(str(line.get("text") or "")) for line in lines)
    return min(8000, text // 2 + 16 * len(lines) + 200)
