"""``comfyvn llm list|health|test|chat|roles|assign``: parse options → `service` / `calls` → print.

A provider failure exits 1 with one line (the provider's message, keys redacted); a gate's block exits 3;
bad input exits 2 (the kernel's CLI maps the errors).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import anyio
import click
from comfyvn.cli import gate_option, parse_gate_options
from comfyvn.errors import Invalid

from .calls import CallSpec, run_call, stream_call
from .orchestrator import ROLES
from .service import service_for

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["llm_group"]


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))


def _params(temperature: float | None, max_tokens: int | None) -> dict[str, Any]:
    return {k: v for k, v in (("temperature", temperature), ("max_tokens", max_tokens)) if v is not None}


_common = [
    click.option("--model", "-m", help="Model (default: the provider's first)."),
    click.option("--system", help="A system message sent first."),
    click.option("--temperature", type=float),
    click.option("--max-tokens", type=click.IntRange(1, 1_000_000)),
    gate_option,
    click.option("--role", type=click.Choice(ROLES), help="Call as a role (needs enable_llm_role_mapping)."),
    click.option("--scene", help="The scene a role call belongs to (its session sticks to one provider)."),
]


def common(func: Any) -> Any:
    for option in reversed(_common):
        func = option(func)
    return func


@click.group("llm")
def llm_group() -> None:
    """Language models: providers, health, test calls and streamed chat (offline unless configured)."""


@llm_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def list_command(kernel: Kernel, as_json: bool) -> None:
    """List the configured providers and whether each key it needs is set (never the keys)."""
    service = service_for(kernel)
    providers = [service.describe(p) for p in service.registry.all()]
    if as_json:
        _echo_json(providers)
        return
    for p in providers:
        where = p["base_url"] or "(no network)"
        models = ", ".join(p["models"][:3]) or "-"
        external = " external" if p["external"] else ""
        key = {True: " key: set", False: " key: MISSING", None: " key: vault locked"}
        needs = key[p["key_configured"]] if p["requires_key"] else ""
        click.echo(f"{p['id']:<16} {p['adapter']:<9} {where:<32} {models}{external}{needs}")


@llm_group.command("health")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def health_command(kernel: Kernel, as_json: bool) -> None:
    """Probe every provider (model listing, 5 s each, concurrently)."""
    answers = anyio.run(service_for(kernel).health)
    if as_json:
        _echo_json(answers)
        return
    for a in answers:
        detail = ", ".join(a["models"][:4]) if a["status"] == "ok" else a.get("message") or ""
        click.echo(f"{a['id']:<16} {a['status']:<11} {detail}")


def _spec(
    provider: str | None, model: str | None, system: str | None, prompt: str, history: list[dict[str, str]], **kw: Any
) -> CallSpec:
    messages = ([{"role": "system", "content": system}] if system else []) + history
    messages.append({"role": "user", "content": prompt})
    return CallSpec(
        messages=messages,
        registry_id=provider,
        model=model,
        gate=parse_gate_options(kw["gate"]),
        role=kw["role"],
        scene_id=kw["scene"],
        params=_params(kw["temperature"], kw["max_tokens"]),
        stream=kw.get("stream", False),
    )


def _split(words: tuple[str, ...], *, need_prompt: bool) -> tuple[str | None, str | None]:
    if len(words) > 2 or (need_prompt and not words):
        raise Invalid("expected [PROVIDER] PROMPT", field="prompt", code="invalid_arguments")
    if len(words) == 2:
        return words[0], words[1]
    return None, words[0] if words else None


@llm_group.command("test")
@click.argument("words", nargs=-1, metavar="[PROVIDER] PROMPT")
@common
@click.option("--json", "as_json", is_flag=True, help="Print {reply, raw, usage, ...}.")
@click.pass_obj
def test_command(kernel: Kernel, /, words: tuple[str, ...], model: str | None, system: str | None, **kw: Any) -> None:
    """Send PROMPT to PROVIDER (default: offline) and print the reply."""
    provider, prompt = _split(words, need_prompt=True)
    assert prompt is not None
    as_json = kw.pop("as_json")
    spec = _spec(provider, model, system, prompt, [], **kw)
    answer = anyio.run(run_call, service_for(kernel), spec)
    if as_json:
        _echo_json(answer)
        return
    click.echo(answer["reply"])
    usage = answer["usage"]
    click.echo(
        f"[{answer['provider']} {answer['model']}: {usage['prompt_tokens']}+{usage['completion_tokens']} tokens, "
        f"{answer['latency_ms']:.0f} ms]",
        err=True,
    )


@llm_group.command("chat")
@click.argument("words", nargs=-1, metavar="[PROVIDER] [PROMPT]")
@common
@click.pass_obj
def chat_command(kernel: Kernel, /, words: tuple[str, ...], model: str | None, system: str | None, **kw: Any) -> None:
    """Chat with PROVIDER, streaming tokens to the terminal. With PROMPT: one turn; without: read turns from
    standard input until end of input, keeping the conversation. One word alone is the provider when it names
    one, else the prompt."""
    service = service_for(kernel)
    provider, prompt = _split(words, need_prompt=False)
    if len(words) == 1 and words[0] in {p.id for p in service.registry.all()}:
        provider, prompt = words[0], None
    history: list[dict[str, str]] = []

    async def turn(text: str) -> str:
        events, _ = await stream_call(service, _spec(provider, model, system, text, history, stream=True, **kw))
        reply = ""
        async with _Closing(events):
            async for event in events:
                if event.kind == "delta":
                    click.echo(event.text, nl=False)
                elif event.result is not None:
                    reply = event.result.reply
        click.echo()
        return reply

    turns = [prompt] if prompt is not None else (line.rstrip("\n") for line in sys.stdin)
    for text in turns:
        if not text.strip():
            continue
        reply = anyio.run(turn, text)
        history += [{"role": "user", "content": text}, {"role": "assistant", "content": reply}]


class _Closing:
    def __init__(self, events: Any) -> None:
        self.events = events

    async def __aenter__(self) -> Any:
        return self.events

    async def __aexit__(self, *exc: object) -> None:
        await self.events.aclose()
