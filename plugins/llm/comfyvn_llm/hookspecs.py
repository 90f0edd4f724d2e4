"""Extension points the llm plugin publishes (added to the kernel's manager via ``add_hookspecs``)."""

from __future__ import annotations

from typing import Any

from comfyvn.hookspecs import hookspec


@hookspec
def llm_call_gate(prompt: str, options: dict[str, Any], kernel: Any) -> dict[str, Any] | None:
    """Allow or block a language-model call before anything is sent to a provider.

    Runs once per call (``/api/llm/test-call``, ``/api/llm/chat``, ``comfyvn llm test|chat``, role calls;
    dry runs too). ``prompt`` is the call's message contents joined by blank lines; ``options`` is the
    caller's ``gate`` object verbatim (a plugin's own keys, such as an acknowledgement token), plus
    ``provider``, ``model`` and ``role`` when known. Return None to allow; ``{"allow": True, ...}`` to allow
    and say something (its ``warnings`` are returned with the reply); any other answer blocks: HTTP 423 /
    CLI exit 3, code ``llm_blocked``, each blocking answer listed under ``blocked_by`` (its ``ack_token``
    and ``reason`` included). A gate that raises a `comfyvn.errors.ComfyVNError` fails the call with it; one
    that crashes otherwise blocks the call (fails closed).
    """
