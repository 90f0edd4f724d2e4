"""What one app instance holds: the kernel, settings, tokens, webhooks and WebSocket bookkeeping."""

from __future__ import annotations

import time
from typing import Any

import anyio
import attrs
from comfyvn import Kernel
from comfyvn.events import Envelope

from .auth import TokenStore
from .settings import ServerSettings
from .signing import Signer
from .webhooks import WebhookDispatcher, WebhookRegistry, envelope_json

__all__ = ["ServerState", "WsHub"]

TOKENS_FILE = "server_tokens.json"


class WsHub:
    """Counts WebSocket clients, shares each envelope's message text between them, closes them on shutdown."""

    def __init__(self) -> None:
        self.clients = 0
        self.dropped_total = 0
        self.closing: anyio.Event | None = None  # made inside the loop: anyio events need one
        self._last: tuple[Envelope, str] | None = None

    def closing_event(self) -> anyio.Event:
        if self.closing is None:
            self.closing = anyio.Event()
        return self.closing

    def encode(self, envelope: Envelope) -> str:
        """The JSON text of an envelope message. Built from the payload the bus encoded at emit; only the
        latest is kept, which clients reading in step share, so the cache never outgrows one payload."""
        last = self._last
        if last is not None and last[0] is envelope:
            return last[1]
        text = envelope_json(envelope, topic=f"modder.{envelope.event}")
        self._last = (envelope, text)
        return text


@attrs.define(eq=False)
class ServerState:
    """Shared by the routes of one app (reachable as ``request.app.state.server``)."""

    kernel: Kernel
    settings: ServerSettings
    tokens: TokenStore
    webhooks: WebhookRegistry
    signer: Signer
    dispatcher: WebhookDispatcher
    hub: WsHub = attrs.field(factory=WsHub)
    started_at: float = attrs.field(factory=time.time)
    route_owner: dict[str, str] = attrs.field(factory=dict)
    route_conflicts: list[dict[str, Any]] = attrs.field(factory=list)
    route_errors: list[dict[str, Any]] = attrs.field(factory=list)

    @classmethod
    def build(cls, kernel: Kernel, settings: ServerSettings) -> ServerState:
        signer = Signer(kernel.secrets)
        registry = WebhookRegistry(kernel.paths.plugin_dir("server", "config") / "webhooks.json", kernel.secrets)
        return cls(
            kernel=kernel,
            settings=settings,
            tokens=TokenStore(kernel.paths.config / TOKENS_FILE),
            webhooks=registry,
            signer=signer,
            dispatcher=WebhookDispatcher(kernel.events, registry, signer, settings),
        )
