"""The offline adapter: deterministic replies from templates over the request's structured context.

No network, no model. It is labelled (``adapter: "offline"``, model ``codex/offline-narrator``) and answers
the same request with the same words every time: the template is picked by a SHA-256 of the request, so
tests and first-time users get stable output that still reflects the scene, the speaker and the last line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ..registry import Provider
from .base import ChatRequest, ChatResult, StreamEvent, usage_of

__all__ = ["OfflineAdapter", "estimate_tokens", "offline_reply"]

MODEL = "codex/offline-narrator"
_TEMPLATES: dict[str, tuple[str, ...]] = {
    "narrator": (
        "In {scene}, the air stills after {speaker}'s words: “{last}” Everyone waits to see who answers first.",
        "{scene}: {speaker} lets the line hang — “{last}” — and the moment turns toward what comes next.",
        "The moment holds in {scene}: {speaker} has said “{last}”, and the silence that follows says as much.",
    ),
    "mc": (
        "I take a breath. “{last}” — {speaker} means it, and in {scene} I can't pretend I didn't hear.",
        "“Then we do it together,” I tell {speaker}, still turning over “{last}” here in {scene}.",
    ),
    "antagonist": (
        "“{last}”? How quaint, {speaker}. All of {scene} belongs to me, and you are only visiting.",
        "A slow smile. “Say it again, {speaker}: '{last}'. I want to remember how certain you sounded in {scene}.”",
    ),
    "extras": (
        "A passer-by in {scene} glances at {speaker} and mutters about “{last}” before moving on.",
        "Somewhere in {scene}, a voice repeats “{last}” with a laugh; {speaker} pretends not to notice.",
    ),
    "translator": ("[offline: no translation model] {last}",),
    "worldbuilder": (
        "{scene} — notes: who lives here, what they fear, and why “{last}” matters to {speaker}.",
        "Lore for {scene}: rumours, a landmark, and a custom {speaker} would know; seeded by “{last}”.",
    ),
}


def estimate_tokens(text: str) -> int:
    """A provider-neutral token estimate: about four characters a token, at least one a word."""
    return max(len(text.split()), (len(text) + 3) // 4)


def _last_line(context: Mapping[str, Any], messages: tuple[Mapping[str, str], ...]) -> tuple[str | None, str]:
    lines = context.get("last_lines")
    if isinstance(lines, list) and lines:
        last = lines[-1]
        if isinstance(last, Mapping):
            return str(last.get("speaker") or "") or None, str(last.get("text") or "")
        return None, str(last)
    for message in reversed(messages):
        if message.get("role") == "user":
            return None, str(message.get("content") or "")
    return None, ""


def offline_reply(request: ChatRequest) -> str:
    """The deterministic reply to ``request``."""
    context = request.context
    role = str(context.get("role") or "narrator").lower()
    templates = _TEMPLATES.get(role, _TEMPLATES["narrator"])
    line_speaker, last = _last_line(context, request.messages)
    last = " ".join(last.split())[:240] or "…"
    scene = str(context.get("scene") or "the scene")[:120]
    speaker = str(context.get("speaker") or line_speaker or "someone")[:80]
    digest = hashlib.sha256(
        json.dumps([list(map(dict, request.messages)), dict(context)], sort_keys=True, default=str).encode()
    ).digest()
    template = templates[int.from_bytes(digest[:4], "big") % len(templates)]
    reply = template.format(scene=scene, speaker=speaker, last=last)
    return reply[:1].upper() + reply[1:]


class OfflineAdapter:
    """The ``offline`` adapter (see the module docstring)."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    def _result(self, request: ChatRequest) -> ChatResult:
        reply = offline_reply(request)
        limit = request.params.get("max_tokens")
        if isinstance(limit, int) and limit > 0 and estimate_tokens(reply) > limit:
            reply, finish = " ".join(reply.split()[:limit]), "length"
        else:
            finish = "stop"
        prompt = sum(estimate_tokens(str(m.get("content") or "")) for m in request.messages)
        usage = usage_of(prompt, estimate_tokens(reply))
        raw = {"adapter": "offline", "model": MODEL, "template_context": sorted(request.context)}
        return ChatResult(reply=reply, model=MODEL, usage=usage, finish_reason=finish, raw=raw)

    async def chat(self, request: ChatRequest) -> ChatResult:
        return self._result(request)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        result = self._result(request)
        words = result.reply.split(" ")
        for index, word in enumerate(words):
            yield StreamEvent("delta", word if index == 0 else " " + word)
        yield StreamEvent("done", result=result)

    async def models(self) -> list[str]:
        return [MODEL]

    async def aclose(self) -> None:
        return None
