"""The original ComfyVN collaboration JSON protocol, as pure domain code over the Yjs document.

The original hand-rolled a Lamport-clock CRDT; its clients send ``doc.apply {operations[]}`` with
operations ``{op_id, actor, clock, kind, payload, timestamp}``. Here each operation becomes edits of
the shared pycrdt document through `comfyvn_collab.layout`, so a JSON client and a Yjs client in the
same room see each other's work. Around that: the per-room operation log (duplicate ``op_id``s, the
Lamport server clock, the numeric ``version`` and ``history?since=``), the "request control" advisory
lock with its queue, and the shaping of presence entries. Nothing here knows of HTTP or asyncio; time
is passed in (``now``) so every rule is testable.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import Any

import attrs
from comfyvn.errors import ComfyVNError, Invalid, TooLarge, clip
from pycrdt import Array, Doc, Map

from comfyvn_collab import layout

__all__ = [
    "DEFAULT_TTL",
    "KINDS",
    "MAX_BATCH",
    "MAX_ID",
    "MAX_TTL",
    "MIN_TTL",
    "ControlLocks",
    "OpLog",
    "Operation",
    "apply_operation",
    "apply_operations",
    "parse_operations",
    "presence_entry",
]

KINDS = (
    "scene.field.set",
    "scene.meta.update",
    "graph.node.upsert",
    "graph.node.remove",
    "script.line.upsert",
    "script.line.remove",
    "script.order.replace",
)
MAX_BATCH = 500
MAX_ID = 255
# JavaScript clients hold numbers as doubles: integers past 2**53 would silently change on their side.
MAX_SAFE_INT = 2**53 - 1
MAX_DEPTH = 64
MAX_ORDER = 100_000
MIN_TTL, DEFAULT_TTL, MAX_TTL = 1.0, 30.0, 600.0
MAX_QUEUE = 256


@attrs.frozen
class Operation:
    """One validated operation. ``payload`` holds only the keys its ``kind`` defines (see `parse_operations`)."""

    op_id: str
    actor: str
    clock: int
    kind: str
    payload: dict[str, Any]
    timestamp: float

    def to_wire(self) -> dict[str, Any]:
        """The wire object ``{op_id, actor, clock, kind, payload, timestamp}``."""
        return {
            "op_id": self.op_id,
            "actor": self.actor,
            "clock": self.clock,
            "kind": self.kind,
            "payload": dict(self.payload),
            "timestamp": self.timestamp,
        }


# --- parsing -------------------------------------------------------------------------------------


def _ident(value: Any, field: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise Invalid(f"{what} must be a non-empty string", field=field)
    if len(value) > MAX_ID:
        raise Invalid(f"{what} is longer than {MAX_ID} characters", field=field)
    _check_text(value, field)
    return value


def _check_text(value: str, field: str) -> None:
    # pycrdt panics (a BaseException, not an error) on lone surrogates, which json.loads lets through.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid("text holds a lone surrogate (not valid UTF-8)", field=field) from None


def _check_json(value: Any, field: str, depth: int = 0) -> None:
    """Refuse what the document cannot hold exactly: non-JSON types, unsafe integers, NaN, deep nesting."""
    if depth > MAX_DEPTH:
        raise Invalid(f"nested deeper than {MAX_DEPTH} levels", field=field)
    if isinstance(value, str):
        _check_text(value, field)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            raise Invalid("integer outside the range JavaScript holds exactly (±2**53)", field=field)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise Invalid("number is not finite", field=field)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise Invalid("object keys must be strings", field=field)
            sub = f"{field}/{clip(key, 40)}"
            _check_text(key, sub)
            _check_json(item, sub, depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_json(item, f"{field}/{i}", depth + 1)
    else:
        raise Invalid(f"not a JSON value ({type(value).__name__})", field=field)


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid("must be an object", field=field)
    _check_json(value, field)
    return value


def _node(raw: Any, field: str, alias: str) -> dict[str, Any]:
    """A node as a new dict with a string ``id``: ``alias`` (the original's ``node_id``/``line_id``) is
    accepted in its place, and a node without either gets a fresh id, as the original did."""
    node = dict(_object(raw, field))
    if "id" not in node and alias in node:
        node["id"] = node.pop(alias)
    if node.get("id") is None:
        node["id"] = uuid.uuid4().hex[:16]
    _ident(node["id"], f"{field}/id", "node id")
    # The layout shares these as Yjs types (Text, Array of Maps), so their shape is fixed.
    if "text" in node and not isinstance(node["text"], str):
        raise Invalid("text must be a string", field=f"{field}/text")
    if "actions" in node and not isinstance(node["actions"], list):
        raise Invalid("actions must be a list", field=f"{field}/actions")
    choices = node.get("choices", [])
    if not isinstance(choices, list):
        raise Invalid("choices must be a list of objects", field=f"{field}/choices")
    for i, choice in enumerate(choices):
        if not isinstance(choice, dict):
            raise Invalid("a choice must be an object", field=f"{field}/choices/{i}")
        if "label" in choice and not isinstance(choice["label"], str):
            raise Invalid("a choice label must be a string", field=f"{field}/choices/{i}/label")
    return node


def _payload(kind: str, raw: Any, field: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise Invalid("payload must be an object", field=field)
    if kind == "scene.field.set":
        name = _ident(raw.get("field"), f"{field}/field", "field")
        if name in ("nodes", "id"):
            raise Invalid(f"scene field {name!r} cannot be set by scene.field.set", field=f"{field}/field")
        if "value" not in raw:
            raise Invalid("value is required", field=f"{field}/value")
        value = raw["value"]
        _check_json(value, f"{field}/value")
        if name in ("variables", "metadata") and not isinstance(value, dict):
            raise Invalid(f"{name} must be an object", field=f"{field}/value")
        if name == "start" and (not isinstance(value, str) or not value):
            raise Invalid("start must be a non-empty node id", field=f"{field}/value")
        return {"field": name, "value": value}
    if kind == "scene.meta.update":
        return {"meta": _object(raw.get("meta"), f"{field}/meta")}
    if kind == "graph.node.upsert":
        return {"node": _node(raw.get("node"), f"{field}/node", "node_id")}
    if kind == "graph.node.remove":
        return {"node_id": _ident(raw.get("node_id"), f"{field}/node_id", "node_id")}
    if kind == "script.line.remove":
        return {"line_id": _ident(raw.get("line_id"), f"{field}/line_id", "line_id")}
    if kind == "script.line.upsert":
        out: dict[str, Any] = {"line": _node(raw.get("line"), f"{field}/line", "line_id")}
        after, index = raw.get("after"), raw.get("index")
        if after is not None and index is not None:
            raise Invalid("give either after or index, not both", field=f"{field}/index")
        if after is not None:
            out["after"] = _ident(after, f"{field}/after", "after")
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= MAX_ORDER:
                raise Invalid(f"index must be an integer from 0 to {MAX_ORDER}", field=f"{field}/index")
            out["index"] = index
        return out
    # script.order.replace
    order = raw.get("order")
    if not isinstance(order, list):
        raise Invalid("order must be a list of node ids", field=f"{field}/order")
    if len(order) > MAX_ORDER:
        raise TooLarge(f"order names more than {MAX_ORDER} nodes", field=f"{field}/order")
    return {"order": [_ident(item, f"{field}/order/{i}", "node id") for i, item in enumerate(order)]}


def parse_operations(raw: Any, actor: str, *, field: str = "operations", now: float | None = None) -> list[Operation]:
    """Validate a client's ``operations[]`` into `Operation`s attributed to ``actor``.

    ``actor`` is the server's idea of who sent them (the connection's identity), never the client's
    claim. Each item needs a known ``kind`` and an object ``payload``; ``op_id`` (at most 255
    characters) is generated when absent, ``clock`` defaults to 0 and ``timestamp`` to ``now``. Other
    item keys (a client echoing ``version`` or ``applied``) are ignored, and each payload keeps only the
    keys of its kind. Raises `Invalid` naming the place (``operations/2/payload/node``) and never
    quoting a whole input; `TooLarge` (a batch over 500) is the only other error.
    """
    _ident(actor, "actor", "actor")
    if not isinstance(raw, list):
        raise Invalid("operations must be a list", field=field)
    if len(raw) > MAX_BATCH:
        raise TooLarge(f"at most {MAX_BATCH} operations per batch", field=field)
    stamp = time.time() if now is None else now
    ops: list[Operation] = []
    for i, item in enumerate(raw):
        at = f"{field}/{i}"
        if not isinstance(item, dict):
            raise Invalid("each operation must be an object", field=at)
        kind = item.get("kind")
        if kind not in KINDS:
            shown = clip(kind, 40) if isinstance(kind, str) else type(kind).__name__
            raise Invalid(f"unknown operation kind {shown!r}; known: {', '.join(KINDS)}", field=f"{at}/kind")
        op_id = item.get("op_id")
        op_id = uuid.uuid4().hex if op_id is None else _ident(op_id, f"{at}/op_id", "op_id")
        clock = item.get("clock", 0)
        if clock is None:
            clock = 0
        if isinstance(clock, bool) or not isinstance(clock, int) or not 0 <= clock <= MAX_SAFE_INT:
            raise Invalid("clock must be a non-negative integer below 2**53", field=f"{at}/clock")
        timestamp = item.get("timestamp")
        if timestamp is None:
            timestamp = stamp
        if isinstance(timestamp, bool) or not isinstance(timestamp, int | float) or not math.isfinite(timestamp):
            raise Invalid("timestamp must be a number", field=f"{at}/timestamp")
        payload = _payload(kind, item.get("payload"), f"{at}/payload")
        ops.append(Operation(op_id, actor, clock, kind, payload, float(timestamp)))
    return ops


# --- applying ------------------------------------------------------------------------------------


def _has_node(doc: Doc[Any], node_id: str) -> bool:
    # One lookup, not a walk over every node: operations on a 10,000-node scene stay cheap.
    return isinstance(doc.get(layout.NODES, type=Map).get(node_id), Map | dict)


def _node_ids(doc: Doc[Any]) -> set[str]:
    # As the layout reads it: a key whose value is not a map (a foreign client's) is no node.
    return {key for key, value in doc.get(layout.NODES, type=Map).items() if isinstance(value, Map | dict)}


def _order(doc: Doc[Any]) -> list[str]:
    return [item for item in doc.get(layout.ORDER, type=Array).to_py() or () if isinstance(item, str)]


def _display_order(doc: Doc[Any], nodes: set[str]) -> list[str]:
    """The order `layout.to_scene` shows: ``order`` without duplicates or dangling ids, then the rest."""
    shown = [node_id for node_id in dict.fromkeys(_order(doc)) if node_id in nodes]
    return shown + sorted(nodes.difference(shown))


def _merged_order(doc: Doc[Any], wanted: Sequence[str]) -> list[str]:
    """``wanted`` made complete: ids of nodes that no longer exist are dropped and nodes it does not name
    (added concurrently by someone else) keep their relative place after it, so a stale order from a
    JSON client never loses or refuses a node."""
    nodes = _node_ids(doc)
    head = [node_id for node_id in dict.fromkeys(wanted) if node_id in nodes]
    named = set(head)
    return head + [node_id for node_id in _display_order(doc, nodes) if node_id not in named]


def _metadata(doc: Doc[Any]) -> dict[str, Any]:
    current = doc.get(layout.SCENE, type=Map).get("metadata")
    if isinstance(current, Map):  # a Yjs client may have written it as a shared map
        current = current.to_py()
    return dict(current) if isinstance(current, dict) else {}


def apply_operation(doc: Doc[Any], op: Operation, *, origin: Any = None) -> bool:
    """Apply one operation to ``doc`` (a document in the `comfyvn_collab.layout` layout); return
    whether the document changed.

    ``scene.field.set`` sets one top-level scene field; ``scene.meta.update`` merges ``meta`` into the
    scene's ``metadata`` (a ``null`` value removes that key, as in JSON merge patch);
    ``graph.node.upsert`` writes a node (a new one goes to the end of the order);
    ``script.line.upsert`` does the same, placing a new node after ``after`` or at ``index`` of the
    display order (the end when ``after`` names no node); the two removals delete a node and are
    idempotent (a missing node changes nothing); ``script.order.replace`` sets the display order,
    tolerating a stale list (see `_merged_order`). Errors from the layout (a value it cannot hold)
    propagate as `comfyvn.errors` exceptions.
    """
    kind, payload = op.kind, op.payload
    if kind == "scene.field.set":
        return layout.set_field(doc, payload["field"], payload["value"], origin=origin)
    if kind == "scene.meta.update":
        merged = _metadata(doc)
        for key, value in payload["meta"].items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        return layout.set_field(doc, "metadata", merged, origin=origin)
    if kind == "graph.node.upsert":
        return layout.upsert_node(doc, payload["node"], origin=origin)
    if kind in ("graph.node.remove", "script.line.remove"):
        node_id = payload["node_id" if kind == "graph.node.remove" else "line_id"]
        if not _has_node(doc, node_id):
            return False
        return layout.remove_node(doc, node_id, origin=origin)
    if kind == "script.line.upsert":
        line = payload["line"]
        if _has_node(doc, line["id"]):
            # An existing line keeps its place: upsert edits content, script.order.replace moves.
            return layout.upsert_node(doc, line, origin=origin)
        after = payload.get("after")
        if after is not None and _has_node(doc, after):
            return layout.upsert_node(doc, line, after=after, origin=origin)
        index = payload.get("index")
        if index is not None:
            return layout.upsert_node(doc, line, index=index, origin=origin)
        return layout.upsert_node(doc, line, origin=origin)
    if kind == "script.order.replace":
        return layout.replace_order(doc, _merged_order(doc, payload["order"]), origin=origin)
    raise Invalid(f"unknown operation kind {clip(kind, 40)!r}", field="kind")


def apply_operations(
    doc: Doc[Any], log: OpLog, ops: Sequence[Operation], *, origin: Any = None, now: float | None = None
) -> list[dict[str, Any]]:
    """Apply a batch in order, each once: a duplicate ``op_id`` answers its earlier result (with
    ``duplicate: true``) and changes nothing; an operation the layout refuses is recorded as not
    applied with its ``error`` and the batch goes on (the rest of a batch does not depend on it).
    Returns one wire result per operation (``{**operation, version, server_clock, applied,
    duplicate}``)."""
    results: list[dict[str, Any]] = []
    for op in ops:
        earlier = log.seen(op.actor, op.op_id)
        if earlier is not None:
            results.append({**op.to_wire(), **earlier})
            continue
        try:
            changed = apply_operation(doc, op, origin=origin)
        except ComfyVNError as exc:
            results.append(log.record(op, applied=False, error=exc.to_dict()["error"], now=now))
        else:
            results.append(log.record(op, applied=changed, now=now))
    return results


# --- the operation log ---------------------------------------------------------------------------


class OpLog:
    """A room's recent operations, bounded in entries and bytes, with its ``version`` (+1 per change)
    and Lamport ``clock`` (``max(clock, op.clock) + 1`` per operation).

    Recent ``(actor, op_id)`` pairs are remembered longer than the history (``max_ids``) so a client
    retrying a batch gets its earlier results back. ``version``/``clock`` start where a persisted room
    left off; history from before that is not kept, which `since` reports as ``truncated``.
    """

    def __init__(
        self,
        *,
        max_entries: int = 5_000,
        max_bytes: int = 8 * 1024 * 1024,
        max_ids: int = 20_000,
        version: int = 0,
        clock: int = 0,
    ) -> None:
        if min(max_entries, max_bytes, max_ids) < 1 or version < 0 or clock < 0:
            raise ValueError("OpLog bounds must be positive and version/clock non-negative")
        self.max_entries, self.max_bytes, self.max_ids = max_entries, max_bytes, max_ids
        self.version, self.clock = version, clock
        self._entries: deque[tuple[dict[str, Any], int]] = deque()
        self._bytes = 0
        self._ids: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        # Clients at a version below this cannot be brought up to date from the history alone.
        self._floor = version

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """The estimated JSON size of the kept history."""
        return self._bytes

    def seen(self, actor: str, op_id: str) -> dict[str, Any] | None:
        """The earlier result of ``actor``'s ``op_id`` (``{version, server_clock, applied, duplicate:
        True}``), or None when it is new (or too old to remember)."""
        earlier = self._ids.get((actor, op_id))
        return None if earlier is None else {**earlier, "duplicate": True}

    def record(
        self, op: Operation, *, applied: bool, error: dict[str, Any] | None = None, now: float | None = None
    ) -> dict[str, Any]:
        """Log ``op`` as processed (after applying it): advance the clock, and the version when it
        changed the document. Returns the wire result ``{**operation, version, server_clock, applied,
        duplicate: False}`` (with ``error`` when given)."""
        self.clock = max(self.clock, op.clock) + 1
        if applied:
            self.version += 1
        outcome: dict[str, Any] = {"version": self.version, "server_clock": self.clock, "applied": applied}
        entry = {**op.to_wire(), **outcome, "processed_at": time.time() if now is None else now}
        if error is not None:
            entry["error"] = error
        size = len(json.dumps(entry, ensure_ascii=False, default=str)) + 64
        self._entries.append((entry, size))
        self._bytes += size
        while len(self._entries) > self.max_entries or (self._bytes > self.max_bytes and len(self._entries) > 1):
            dropped, dropped_size = self._entries.popleft()
            self._bytes -= dropped_size
            self._floor = max(self._floor, dropped["version"])
        self._ids[(op.actor, op.op_id)] = outcome
        self._ids.move_to_end((op.actor, op.op_id))
        while len(self._ids) > self.max_ids:
            self._ids.popitem(last=False)
        result = {**entry, "duplicate": False}
        del result["processed_at"]
        return result

    def advance(self, count: int = 1) -> int:
        """Count ``count`` changes that did not come through an operation (a Yjs client's updates): the
        version moves on and the history cannot replay them, so older clients must pull the snapshot."""
        self.version += count
        self._floor = self.version
        return self.version

    def since(self, version: Any) -> dict[str, Any]:
        """The ``history/{room}?since=`` answer: ``{since, version, clock, history, truncated}``, where
        ``history`` holds the logged operations with a version above ``since`` and ``truncated`` says
        that history alone cannot bring a client at ``since`` up to date (it is older than what is
        kept, or newer than this room knows): pull the snapshot instead."""
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise Invalid("since must be a non-negative integer", field="since")
        history = [dict(entry) for entry, _ in self._entries if entry["version"] > version]
        truncated = version < self._floor or version > self.version
        return {
            "since": version,
            "version": self.version,
            "clock": self.clock,
            "history": history,
            "truncated": truncated,
        }


# --- request control -----------------------------------------------------------------------------


def _ttl(value: Any) -> float:
    if value is None:
        return DEFAULT_TTL
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Invalid(f"ttl must be a number of seconds ({MIN_TTL:g} to {MAX_TTL:g})", field="ttl")
    return min(max(float(value), MIN_TTL), MAX_TTL)


class ControlLocks:
    """A room's "request control" advisory lock: one holder until it releases or its TTL runs out,
    then the longest-waiting actor. Advisory: nothing refuses an edit from someone else; clients
    show the state. The holder asking again extends its time; a waiting actor asking again keeps its
    place (with the new TTL). Expiry is noticed when any method runs with a later ``now``: the
    next holder's time starts then, when it can be told (`next_deadline` says when to look).
    """

    def __init__(self, *, max_queue: int = MAX_QUEUE) -> None:
        self.max_queue = max_queue
        self.holder: str | None = None
        self.expires_at: float | None = None
        self._queue: OrderedDict[str, float] = OrderedDict()

    def _tick(self, now: float) -> None:
        if self.holder is not None and self.expires_at is not None and now >= self.expires_at:
            self._pass_on(now)

    def _pass_on(self, now: float) -> None:
        if self._queue:
            self.holder, ttl = self._queue.popitem(last=False)
            self.expires_at = now + ttl
        else:
            self.holder, self.expires_at = None, None

    def request(self, actor: str, *, ttl: Any = None, now: float) -> dict[str, Any]:
        """``control.request {ttl}``: take the lock when free, extend it when held by ``actor``, else
        queue ``actor``. ``ttl`` is clamped to 1..600 s (default 30). Returns `state`."""
        _ident(actor, "actor", "actor")
        seconds = _ttl(ttl)
        self._tick(now)
        if self.holder is None or self.holder == actor:
            self.holder, self.expires_at = actor, now + seconds
        elif actor in self._queue:
            self._queue[actor] = seconds
        else:
            if len(self._queue) >= self.max_queue:
                raise TooLarge(f"the control queue is full ({self.max_queue} waiting)", field="ttl")
            self._queue[actor] = seconds
        return self.state(now)

    def release(self, actor: str, *, now: float) -> dict[str, Any]:
        """``control.release`` (also for an actor leaving the room): the holder passes the lock to the
        next in the queue; a waiting actor leaves the queue; anyone else changes nothing."""
        self._tick(now)
        if self.holder == actor:
            self._pass_on(now)
        else:
            self._queue.pop(actor, None)
        return self.state(now)

    def next_deadline(self) -> float | None:
        """When the current hold runs out (None when nobody holds the lock)."""
        return self.expires_at

    def state(self, now: float) -> dict[str, Any]:
        """The wire state ``{holder, owner, expires_at, queue}`` after expiring a hold that ran out
        (``owner`` is the original's name for ``holder``)."""
        self._tick(now)
        return {"holder": self.holder, "owner": self.holder, "expires_at": self.expires_at, "queue": list(self._queue)}


# --- presence ------------------------------------------------------------------------------------

_COLOR = re.compile(r"^#(?:[0-9A-Fa-f]{3}|[0-9A-Fa-f]{6}|[0-9A-Fa-f]{8})$")
MAX_SELECTED = 64
MAX_CURSOR_KEYS = 8


def _short(value: Any, field: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid("must be a string", field=field)
    return clip(value, limit)


def presence_entry(actor: str, name: str | None, data: Any, *, now: float | None = None) -> dict[str, Any]:
    """A presence roster entry from a client's ``presence.update`` payload: ``{actor, name, color,
    node, selected, cursor, status, updated_at}``. Unknown keys are dropped and strings clipped (the
    entry is broadcast to the whole room, so it stays small); a wrong type is `Invalid` naming it.
    ``name`` (the connection's display name) is used when the payload names none; ``color`` is a hex
    colour (``#rgb``, ``#rrggbb``, ``#rrggbbaa``); ``node`` the node being edited; ``selected`` up to 64
    node ids; ``cursor`` a flat object of at most 8 numbers/short strings (``{x, y}``,
    ``{line, column}``)."""
    _ident(actor, "actor", "actor")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise Invalid("presence must be an object", field="presence")
    color = _short(data.get("color"), "presence/color", 16)
    if color is not None and not _COLOR.match(color):
        raise Invalid("color must be a hex colour like #3366ff", field="presence/color")
    selected_raw = data.get("selected")
    selected: list[str] = []
    if selected_raw is not None:
        if isinstance(selected_raw, str):
            selected_raw = [selected_raw]
        if not isinstance(selected_raw, list):
            raise Invalid("selected must be a list of node ids", field="presence/selected")
        for i, item in enumerate(selected_raw[:MAX_SELECTED]):
            selected.append(_short(item, f"presence/selected/{i}", MAX_ID) or "")
    cursor_raw = data.get("cursor")
    cursor: dict[str, Any] | None = None
    if cursor_raw is not None:
        if not isinstance(cursor_raw, dict):
            raise Invalid("cursor must be an object", field="presence/cursor")
        cursor = {}
        for key, value in list(cursor_raw.items())[:MAX_CURSOR_KEYS]:
            at = f"presence/cursor/{clip(str(key), 40)}"
            if isinstance(value, bool) or value is None:
                cursor[clip(str(key), 40)] = value
            elif isinstance(value, int | float):
                if not math.isfinite(value) or abs(value) > MAX_SAFE_INT:
                    raise Invalid("cursor numbers must be finite and below 2**53", field=at)
                cursor[clip(str(key), 40)] = value
            elif isinstance(value, str):
                cursor[clip(str(key), 40)] = clip(value, 80)
            else:
                raise Invalid("cursor values must be numbers or short strings", field=at)
    shown = _short(data.get("name"), "presence/name", 80) or (clip(name, 80) if name else None) or clip(actor, 80)
    return {
        "actor": actor,
        "name": shown,
        "color": color,
        "node": _short(data.get("node"), "presence/node", MAX_ID),
        "selected": [item for item in selected if item],
        "cursor": cursor,
        "status": _short(data.get("status"), "presence/status", 80),
        "updated_at": time.time() if now is None else now,
    }
