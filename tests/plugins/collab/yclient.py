"""A Python pycrdt client of the y-websocket protocol, for the collaboration tests.

``async with YClient(url) as client:`` connects with the ``websockets`` package, sends sync step 1, answers
the server's step 1 with step 2, and returns once the server's step 2 has been applied (the room's state
is in ``client.doc``). From then on every local transaction on ``client.doc`` goes out as an update, every
remote update is applied, and awareness states are kept in ``client.awareness``. It writes the document
layout of docs/collab.md by hand (not through comfyvn_collab.layout) so it checks the server against the
contract rather than against itself.

Wire (y-websocket): a frame is varUint(message type) + payload; SYNC=0 carries varUint(STEP1=0 | STEP2=1 |
UPDATE=2) + varUint8Array; AWARENESS=1 carries varUint8Array(awareness update).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from pycrdt import (
    Array,
    Awareness,
    Doc,
    Map,
    Text,
    TextEvent,
    TransactionEvent,
    YMessageType,
    create_awareness_message,
    create_sync_message,
    create_update_message,
    handle_sync_message,
    read_message,
)
from websockets.asyncio.client import ClientConnection, connect

SYNC_STEP2 = 1


class YClient:
    """One pycrdt document kept in sync with a y-websocket server room at ``url``."""

    def __init__(self, url: str, *, sync_timeout: float = 20.0, **connect_kwargs: Any) -> None:
        self.url = url
        self.doc: Doc[Any] = Doc()
        self.awareness = Awareness(self.doc)
        self.synced = asyncio.Event()
        self._sync_timeout = sync_timeout
        self._connect_kwargs = connect_kwargs
        self._ws: ClientConnection | None = None
        self._outbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._remote = False  # set while a remote update is applied: its doc event must not be echoed
        self._failure: BaseException | None = None
        self._subscription = self.doc.observe(self._on_update)

    async def __aenter__(self) -> YClient:
        self._ws = await connect(self.url, max_size=None, **self._connect_kwargs)
        self._tasks = [asyncio.create_task(self._send_loop()), asyncio.create_task(self._receive_loop())]
        self._outbox.put_nowait(create_sync_message(self.doc))
        try:
            await asyncio.wait_for(self.synced.wait(), self._sync_timeout)
        except TimeoutError:
            await self.close()
            raise AssertionError(
                f"{self.url}: no sync step 2 within {self._sync_timeout}s ({self._failure!r})"
            ) from None
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Flush what is queued, then close the socket and stop the tasks."""
        if self._ws is None:
            return
        self._outbox.put_nowait(None)
        if self._tasks and not self._tasks[0].done():
            try:
                await asyncio.wait_for(asyncio.shield(self._tasks[0]), 5)
            except Exception:
                pass
        await self._ws.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._ws = None

    # -- the wire --------------------------------------------------------------------------------------

    def _on_update(self, event: TransactionEvent) -> None:
        if not self._remote and event.update != b"\x00\x00":
            self._outbox.put_nowait(create_update_message(event.update))

    async def _send_loop(self) -> None:
        assert self._ws is not None
        while (frame := await self._outbox.get()) is not None:
            await self._ws.send(frame)

    async def _receive_loop(self) -> None:
        assert self._ws is not None
        try:
            async for frame in self._ws:
                if isinstance(frame, str):
                    raise AssertionError(f"a text frame on the y-websocket: {frame[:80]!r}")
                self._handle(frame)
        except BaseException as error:
            self._failure = error
            raise

    def _handle(self, frame: bytes) -> None:
        kind = frame[0]
        if kind == YMessageType.SYNC:
            self._remote = True
            try:
                reply = handle_sync_message(frame[1:], self.doc)
            finally:
                self._remote = False
            if reply is not None:
                self._outbox.put_nowait(reply)
            if frame[1] == SYNC_STEP2:
                self.synced.set()
        elif kind == YMessageType.AWARENESS:
            self.awareness.apply_awareness_update(read_message(frame[1:]), "remote")
        else:
            raise AssertionError(f"unknown y-websocket message type {kind}")

    def check(self) -> None:
        """Raise what broke the connection, if something did."""
        if self._failure is not None:
            raise AssertionError(f"{self.url}: the connection failed: {self._failure!r}") from self._failure

    # -- presence --------------------------------------------------------------------------------------

    def set_awareness(self, state: dict[str, Any] | None) -> None:
        """Set this client's awareness state (presence) and send it."""
        self.awareness.set_local_state(state)
        update = self.awareness.encode_awareness_update([self.doc.client_id])
        self._outbox.put_nowait(create_awareness_message(update))

    def awareness_states(self) -> dict[int, dict[str, Any]]:
        """Every known client's awareness state (this one's included), by client id."""
        return dict(self.awareness.states)

    # -- the document (layout of docs/collab.md) -------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The document as plain JSON (scene map, nodes map, order array), as the JavaScript client dumps it."""
        document: dict[str, Any] = json.loads(
            json.dumps(
                {
                    "scene": self.doc.get("scene", type=Map).to_py() or {},
                    "nodes": self.doc.get("nodes", type=Map).to_py() or {},
                    "order": self.doc.get("order", type=Array).to_py() or [],
                }
            ),
            parse_float=_integral,
        )
        return document

    def node_text(self, node_id: str) -> Text:
        """The ``text`` Text of node ``node_id``."""
        nodes = self.doc.get("nodes", type=Map)
        node = nodes[node_id]
        assert isinstance(node, Map), f"node {node_id!r} is not a Map"
        text = node["text"]
        assert isinstance(text, Text), f"node {node_id!r} has no Text 'text'"
        return text

    def add_node(self, node: dict[str, Any]) -> None:
        """Add a node (a Map, its ``text`` a Text) and append its id to ``order``, in one transaction."""
        fields = {key: value for key, value in node.items() if key != "text"}
        with self.doc.transaction(origin="yclient"):
            entry = Map({**fields, "text": Text(str(node.get("text", "")))})
            self.doc.get("nodes", type=Map)[node["id"]] = entry
            self.doc.get("order", type=Array).append(node["id"])

    async def type_text(self, node_id: str, text: str, pos: int | None = None, *, delay: float = 0.0) -> None:
        """Type ``text`` into the node's text one character per transaction, starting at byte ``pos`` (the
        end when None), sleeping ``delay`` seconds between keystrokes (at least yielding to the event loop);
        remote edits before the cursor move it, so each character lands right after this client's previous
        one."""
        ytext = self.node_text(node_id)
        cursor = [len(ytext) if pos is None else pos]
        typing = [False]

        def follow(event: TextEvent) -> None:
            if typing[0]:
                return
            at = 0
            for op in event.delta:  # type: ignore[attr-defined]  # set by pycrdt, not declared
                if "retain" in op:
                    at += op["retain"]
                elif "insert" in op:
                    size = len(op["insert"].encode()) if isinstance(op["insert"], str) else 1
                    if at < cursor[0]:
                        cursor[0] += size
                    at += size
                elif "delete" in op and at < cursor[0]:
                    cursor[0] -= min(op["delete"], cursor[0] - at)

        subscription = ytext.observe(follow)
        try:
            for ch in text:
                typing[0] = True
                try:
                    with self.doc.transaction(origin="yclient"):
                        ytext.insert(cursor[0], ch)
                finally:
                    typing[0] = False
                cursor[0] += len(ch.encode())
                await asyncio.sleep(delay)
                self.check()
        finally:
            ytext.unobserve(subscription)

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
        """Poll ``predicate()`` (while the connection runs) until truthy; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not (value := predicate()):
            self.check()
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
            await asyncio.sleep(0.02)
        return value


def _integral(literal: str) -> int | float:
    # pycrdt returns every number as a float; JSON (and the JavaScript client's dump) writes 1.0 as 1
    number = float(literal)
    return int(number) if number.is_integer() and abs(number) <= 2**53 else number
