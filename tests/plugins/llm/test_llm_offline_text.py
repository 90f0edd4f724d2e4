"""The offline adapter's replies read as English with no context at all (what a first-time user sees from
`comfyvn llm test offline "hi"`): the defaults ("the scene", "someone") never start a sentence in lower case
and never repeat themselves ("The scene holds in the scene.")."""

from __future__ import annotations

import re

from comfyvn_llm.adapters import ChatRequest
from comfyvn_llm.adapters.offline import _TEMPLATES, offline_reply


def _replies(role: str) -> list[str]:
    # Enough distinct prompts that every template of the role is picked at least once.
    replies = []
    for i in range(200):
        request = ChatRequest("codex/offline-narrator", ({"role": "user", "content": f"line {i}"},), {}, {"role": role})
        replies.append(offline_reply(request))
    return replies


def test_replies_without_context_read_as_sentences() -> None:
    for role, templates in _TEMPLATES.items():
        replies = _replies(role)
        assert len({re.sub(r"line \d+", "", r) for r in replies}) == len(templates), role
        for reply in replies:
            prose = re.sub(r"“[^”]*”|'[^']*'", "“…”", reply)  # the user's words are theirs, not the template's
            assert not re.search(r"[.!?] [a-z]", prose), reply
            assert "the scene holds in the scene" not in reply.lower(), reply
