"""The modder event bus: declared events, envelopes ``{event, payload, ts, seq}``, bounded history.

Subscribers: sync callbacks, ``async def`` callbacks, or bounded async streams (which drop and count
rather than slow the emitter). A subscriber that raises is logged and never breaks ``emit``.
Payloads are encoded once at emit as strict JSON (``Envelope.data``); one that cannot be, or is too large,
is refused, so what the bus keeps and hands on can always be sent. Memory is bounded by those bytes.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import anyio
import attrs
import jsonschema
import structlog

from .errors import Invalid, TooLarge

__all__ = ["Envelope", "EventBus", "EventRegistrar", "EventSpec", "EventStream", "Subscription", "UndeclaredEvent"]

log = structlog.get_logger("comfyvn.events")
_EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


class UndeclaredEvent(LookupError):
    """An event was emitted that no plugin declared (raised only by strict buses)."""


@attrs.frozen
class EventSpec:
    name: str
    description: str
    schema: Mapping[str, Any] | None
    owner: str
    as_dict = attrs.asdict


@attrs.frozen(slots=True)
class Envelope:
    """One emitted event. ``seq`` increases by one per emit on a bus; ``ts`` is Unix seconds; ``data`` is
    the payload as encoded at emit and ``size`` its length in UTF-8 bytes."""

    event: str
    payload: Mapping[str, Any]
    ts: float
    seq: int
    data: str = attrs.field(repr=False)
    size: int

    def as_dict(self) -> dict[str, Any]:
        return {"event": self.event, "payload": self.payload, "ts": self.ts, "seq": self.seq}


class EventRegistrar:
    """The ``register`` handed to one plugin's ``register_events`` hook."""

    def __init__(self, bus: EventBus, owner: str) -> None:
        self._bus, self.owner = bus, owner

    def __call__(self, name: str, description: str, schema: Mapping[str, Any] | None = None) -> None:
        if not isinstance(name, str) or not _EVENT_NAME.match(name):
            raise ValueError(f"invalid event name {name!r}: use lower-case words joined by _ or .")
        if not isinstance(description, str) or not description.strip():
            raise ValueError(f"event {name!r} needs a description")
        if schema is not None and not isinstance(schema, Mapping):
            raise TypeError(f"event {name!r}: schema must be a JSON Schema object")
        jsonschema.Draft202012Validator.check_schema(schema or {})
        if (existing := self._bus.spec(name)) is not None:
            raise ValueError(f"event {name!r} is already declared by {existing.owner!r}")
        self._bus._specs[name] = EventSpec(name, description.strip(), schema, self.owner)


@attrs.define(eq=False)
class Subscription:
    """A live subscription; ``close()`` ends it (idempotent)."""

    bus: EventBus
    events: frozenset[str] | None
    deliver: Callable[[Envelope], Any]

    def close(self) -> None:
        self.bus._remove(self)


class EventStream:
    """Envelopes from `EventBus.emit` (any thread) as an async iterator with a bounded buffer.
    ``async with bus.stream(events, max_buffer=n) as stream: async for env in stream: ...``. When the
    buffer is full (``max_buffer`` envelopes, or the bus's ``max_history_bytes`` of payload) new envelopes
    are dropped and counted; `take_dropped()` reports them.
    """

    def __init__(self, bus: EventBus, events: Iterable[str] | None, max_buffer: int) -> None:
        if max_buffer < 1:
            raise ValueError("max_buffer must be at least 1")
        self._loop, self._thread, self.dropped = asyncio.get_running_loop(), threading.get_ident(), 0
        self.max_bytes, self._bytes = bus.max_history_bytes, 0
        self._send, self._receive = anyio.create_memory_object_stream[Envelope](max_buffer)
        self._subscription = bus._add(_frozen(events), self._offer)

    def _offer(self, envelope: Envelope) -> None:
        if threading.get_ident() == self._thread:
            return self._put(envelope)
        self._loop.call_soon_threadsafe(self._put, envelope)

    def _put(self, envelope: Envelope) -> None:
        try:
            if self._bytes + envelope.size > self.max_bytes:
                raise anyio.WouldBlock
            self._send.send_nowait(envelope)
            self._bytes += envelope.size
        except anyio.WouldBlock:
            self.dropped += 1
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    def take_dropped(self) -> int:
        """How many envelopes were dropped since the last call (and reset the count)."""
        count, self.dropped = self.dropped, 0
        return count

    async def receive(self) -> Envelope:
        envelope = await self._receive.receive()
        self._bytes -= envelope.size
        return envelope

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Envelope:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._subscription.close()
        self._send.close()
        self._receive.close()


class EventBus:
    """Declared events, their subscribers and the last ``history_size`` envelopes holding at most
    ``max_history_bytes`` of encoded payload (``history_bytes``). A host may set either byte limit."""

    max_payload_bytes = 256 * 2**10
    max_history_bytes = 16 * 2**20

    def __init__(self, *, history_size: int = 500, strict: bool = False) -> None:
        self.strict, self.history_size, self.history_bytes = strict, history_size, 0
        self._specs: dict[str, EventSpec] = {}
        self._validators: dict[str, jsonschema.Draft202012Validator] = {}
        self._history: deque[Envelope] = deque()
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []
        self._routes: dict[str, tuple[Subscription, ...]] = {}
        self._warned: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def registrar(self, owner: str) -> EventRegistrar:
        return EventRegistrar(self, owner)

    def spec(self, name: str) -> EventSpec | None:
        return self._specs.get(name)

    def specs(self) -> list[EventSpec]:
        return sorted(self._specs.values(), key=lambda s: s.name)

    def remove_owner(self, owner: str) -> None:
        """Forget every event a (failed) plugin declared."""
        for name in [n for n, s in self._specs.items() if s.owner == owner]:
            del self._specs[name]
            self._validators.pop(name, None)

    def emit(self, event: str, payload: Mapping[str, Any] | None = None) -> Envelope:
        """Record and deliver one event; returns its envelope. Never raises for a subscriber's error; raises
        `Invalid` for a payload strict JSON cannot encode and `TooLarge` past ``max_payload_bytes``."""
        payload = {} if payload is None else payload
        if self.strict or event not in self._specs:
            self._check(event, payload)
        data, size = self._encode(event, payload)
        with self._lock:
            envelope = Envelope(event, payload, time.time(), next(self._seq), data, size)
            self._history.append(envelope)
            self.history_bytes += size
            while len(self._history) > self.history_size or self.history_bytes > self.max_history_bytes:
                self.history_bytes -= self._history.popleft().size
        subscribers = self._routes.get(event)
        for subscription in self._route(event) if subscribers is None else subscribers:
            try:
                subscription.deliver(envelope)
            except Exception:
                log.exception("event subscriber failed", event_name=event, seq=envelope.seq)
        return envelope

    def _encode(self, event: str, payload: Mapping[str, Any]) -> tuple[str, int]:
        try:
            data = _ENCODE(payload)
            size = len(data) if data.isascii() else len(data.encode("utf-8"))
        except (TypeError, ValueError, RecursionError) as exc:  # a lone surrogate raises UnicodeEncodeError
            reason = "a string is not valid Unicode" if isinstance(exc, UnicodeError) else str(exc)[:120]
            error: Exception = Invalid(f"the {event} payload is not strict JSON: {reason}", field="payload")
        else:
            if size <= self.max_payload_bytes:
                return data, size
            error = TooLarge(f"the {event} payload is {size} bytes, over {self.max_payload_bytes}", field="payload")
        log.warning("event refused", event_name=event, error=str(error))
        raise error

    def _check(self, event: str, payload: Mapping[str, Any]) -> None:
        spec = self._specs.get(event)
        if spec is None:
            if self.strict:
                raise UndeclaredEvent(f"event {event!r} was emitted but never declared")
            if event not in self._warned:
                self._warned.add(event)
                log.warning("undeclared event emitted", event_name=event)
            return
        if spec.schema is not None:
            if event not in self._validators:
                self._validators[event] = jsonschema.Draft202012Validator(spec.schema)
            if (error := jsonschema.exceptions.best_match(self._validators[event].iter_errors(payload))) is not None:
                where = "/".join(str(p) for p in error.absolute_path) or "(root)"
                raise ValueError(f"payload of {event!r} does not match its schema at {where}: {error.message}")

    def subscribe(self, callback: Callable[[Envelope], Any], events: Iterable[str] | None = None) -> Subscription:
        """Call ``callback(envelope)`` for each event (or those in ``events``). A coroutine function runs as a
        task on the loop it subscribed from, so an emit from any thread never blocks on it."""
        if inspect.iscoroutinefunction(callback):
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                raise TypeError("async subscribers must subscribe from inside a running event loop") from None
            return self._add(_frozen(events), lambda env: loop.call_soon_threadsafe(self._spawn, loop, callback, env))
        return self._add(_frozen(events), callback)

    def stream(self, events: Iterable[str] | None = None, *, max_buffer: int = 256) -> EventStream:
        """An async stream of envelopes with a bounded buffer (call inside a running event loop)."""
        return EventStream(self, events, max_buffer)

    def _spawn(self, loop: asyncio.AbstractEventLoop, callback: Callable[[Envelope], Any], env: Envelope) -> None:
        async def run() -> None:
            try:
                await callback(env)
            except Exception:
                log.exception("async event subscriber failed", event_name=env.event, seq=env.seq)

        task = loop.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _add(self, events: frozenset[str] | None, deliver: Callable[[Envelope], Any]) -> Subscription:
        subscription = Subscription(self, events, deliver)
        with self._lock:
            self._subs = [*self._subs, subscription]
            self._routes = {}
        return subscription

    def _remove(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subs:
                self._subs = [s for s in self._subs if s is not subscription]
                self._routes = {}

    def _route(self, event: str) -> tuple[Subscription, ...]:
        # self._routes may be replaced concurrently by _add/_remove; a stale entry is then discarded.
        routes = self._routes
        routes[event] = tuple(s for s in self._subs if s.events is None or event in s.events)
        return routes[event]

    subscriber_count = property(lambda self: len(self._subs))

    def history(
        self, since: int = 0, event: str | Iterable[str] | None = None, limit: int | None = None
    ) -> list[Envelope]:
        """Envelopes with ``seq > since``, optionally of some events, the newest ``limit`` of them."""
        names = _frozen([event] if isinstance(event, str) else event)
        items = [e for e in list(self._history) if e.seq > since and (names is None or e.event in names)]
        return items if limit is None else items[-limit:] if limit > 0 else []


def _frozen(events: Iterable[str] | None) -> frozenset[str] | None:
    return (frozenset(events) or None) if events is not None else None
