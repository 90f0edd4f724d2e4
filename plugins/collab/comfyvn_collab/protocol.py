"""The y-websocket wire protocol (what the `y-websocket` npm provider and pycrdt speak), server side.

A frame is ``varUint(type)`` then a payload. ``type`` 0 is sync: ``varUint(step)`` then
``varUint8Array(data)``, where step 0 carries a state vector (the peer asks for what it lacks), step 1
the answer (an update) and step 2 an incremental update. ``type`` 1 is awareness: ``varUint8Array`` of
``varUint(count)`` then, per client, ``varUint(clientID) varUint(clock) varString(JSON state or "null")``.
Other types (auth, query-awareness) are answered or ignored as the reference server does.

Only framing lives here; rooms decide what a frame does (`comfyvn_collab.hub`).
"""

from __future__ import annotations

import json
from typing import Any

import attrs
from comfyvn.errors import Invalid
from comfyvn.wire import loads
from pycrdt import Decoder, Encoder

__all__ = [
    "AWARENESS",
    "MAX_AWARENESS_STATE",
    "QUERY_AWARENESS",
    "STEP1",
    "STEP2",
    "SYNC",
    "UPDATE",
    "AwarenessEntry",
    "FrameError",
    "awareness_frame",
    "decode_awareness",
    "encode_awareness",
    "read_payload",
    "step1_frame",
    "step2_frame",
    "update_frame",
]

SYNC = 0
AWARENESS = 1
QUERY_AWARENESS = 3
STEP1 = 0
STEP2 = 1
UPDATE = 2
# One client's presence (name, colour, selected node, cursor) is small; a bigger state is refused so a
# client cannot make every other client download megabytes per mouse move.
MAX_AWARENESS_STATE = 16 * 1024


class FrameError(ValueError):
    """A frame that does not follow the y-websocket protocol."""


def _var_uint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_var_uint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    value = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise FrameError("the frame ends inside a number")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise FrameError("a number in the frame is too long")


def read_payload(frame: bytes, start: int) -> bytes:
    """The ``varUint8Array`` that begins at ``start`` (the rest of the frame must be exactly that)."""
    size = len(frame)
    if size > start:  # the usual one- or two-byte length prefix, without the general loop
        first = frame[start]
        if first < 0x80:
            if start + 1 + first == size:
                return frame[start + 1 :]
        elif (
            size > start + 1
            and frame[start + 1] < 0x80
            and start + 2 + ((first & 0x7F) | (frame[start + 1] << 7)) == size
        ):
            return frame[start + 2 :]
    length, pos = _read_var_uint(frame, start)
    if pos + length != len(frame):
        raise FrameError("the frame's length prefix does not match its size")
    return frame[pos:]


def _frame(kind: int, step: int | None, data: bytes) -> bytes:
    head = bytes((kind,)) if step is None else bytes((kind, step))
    return head + _var_uint(len(data)) + data


def step1_frame(state_vector: bytes) -> bytes:
    """Sync step 1: "here is my state vector; send me what I lack"."""
    return _frame(SYNC, STEP1, state_vector)


def step2_frame(update: bytes) -> bytes:
    """Sync step 2: the answer to a step 1 (an update)."""
    return _frame(SYNC, STEP2, update)


def update_frame(update: bytes) -> bytes:
    """An incremental document update."""
    return _frame(SYNC, UPDATE, update)


def awareness_frame(payload: bytes) -> bytes:
    """An awareness message around an encoded awareness update."""
    return _frame(AWARENESS, None, payload)


@attrs.frozen
class AwarenessEntry:
    """One client's awareness record: its Yjs client id, a clock and its state (None = the client left)."""

    client_id: int
    clock: int
    state: dict[str, Any] | None


def decode_awareness(payload: bytes) -> list[AwarenessEntry]:
    """The entries of an awareness update; `FrameError` for anything malformed or oversized."""
    try:
        decoder = Decoder(payload)
        count = decoder.read_var_uint()
        if count > 10_000:
            raise FrameError("an awareness update lists too many clients")
        entries = []
        for _ in range(count):
            client_id = decoder.read_var_uint()
            clock = decoder.read_var_uint()
            text = decoder.read_var_string()
            if len(text) > MAX_AWARENESS_STATE:
                raise FrameError(f"an awareness state is over {MAX_AWARENESS_STATE} bytes")
            # The wire policy: bounded depth, no NaN, no lone surrogates (pycrdt panics on those).
            state = loads(text, field="awareness") if text else None
            if state is not None and not isinstance(state, dict):
                raise FrameError("an awareness state must be a JSON object or null")
            entries.append(AwarenessEntry(client_id, clock, state))
    except FrameError:
        raise
    except (Invalid, ValueError, IndexError, TypeError, RecursionError) as exc:
        raise FrameError("the awareness update is malformed") from exc
    return entries


def encode_awareness(entries: list[AwarenessEntry]) -> bytes:
    """An awareness update (the payload of `awareness_frame`) for ``entries``."""
    encoder = Encoder()
    encoder.write_var_uint(len(entries))
    for entry in entries:
        encoder.write_var_uint(entry.client_id)
        encoder.write_var_uint(entry.clock)
        encoder.write_var_string(json.dumps(entry.state, separators=(",", ":"), ensure_ascii=False))
    return encoder.to_bytes()
