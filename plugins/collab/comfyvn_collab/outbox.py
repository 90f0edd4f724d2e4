"""A connection's outgoing queue: rooms put frames in synchronously, the WebSocket route drains them.

Bounded: a client that cannot keep up (more than ``limit`` frames waiting) is disconnected rather than
letting the server buffer without end; a Yjs client resyncs when it reconnects, so nothing is lost.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

__all__ = ["CLOSE", "Outbox"]

CLOSE = None  # put by the hub at shutdown: the route closes the connection (1001, going away)


class Outbox:
    """Frames (bytes) or messages (str) for one connection, in order."""

    def __init__(self, limit: int = 20_000) -> None:
        self.limit = limit
        self._items: deque[Any] = deque()
        self._ready = asyncio.Event()
        self.overflowed = False
        self.closing = False

    def put(self, item: Any) -> None:
        """Queue ``item`` (`CLOSE` asks the route to close the connection)."""
        if item is CLOSE:
            self.closing = True
        elif len(self._items) >= self.limit:
            self.overflowed = True
        else:
            self._items.append(item)
        self._ready.set()

    async def take(self) -> list[Any]:
        """Everything queued (waits for at least one item, or for a close)."""
        while not self._items and not self.closing and not self.overflowed:
            self._ready.clear()
            await self._ready.wait()
        items = list(self._items)
        self._items.clear()
        return items
