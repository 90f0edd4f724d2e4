"""A text-editing trace shaped like the "automerge-paper" trace, generated (deterministically) at run time.

The real trace (josephg/editing-traces: the keystrokes of writing the Automerge paper, 259,778 single-
character edits: 182,315 inserts and 77,463 deletes, ending at 104,852 characters) cannot be downloaded
here, and the tests do no downloads at run time. This module generates a stand-in with the same size and
mix from a seeded ``random.Random``: runs of typing at a cursor, runs of backspaces (and, after a jump,
forward deletes), and occasional cursor jumps elsewhere in the text. Exactly ``INSERTS`` inserts and
``DELETES`` deletes, so the final text has ``INSERTS - DELETES`` characters. Every character is ASCII, so
pycrdt's byte positions are character positions.

``replay`` types the trace into a pycrdt ``Text`` one transaction per edit (as an editor does) and
returns each transaction's update, the per-keystroke updates a client sends over y-websocket.
Nothing is cached on disk.
"""

from __future__ import annotations

import random
from typing import Any, NamedTuple

from pycrdt import Doc, Text, TransactionEvent

OPS = 259_778
INSERTS = 182_315
DELETES = OPS - INSERTS  # 77,463
SEED = 20_180_919

# letters roughly by English frequency, spaces between words, a few newlines and punctuation
_ALPHABET = "eeeeeeetttttaaaaoooiiinnnssshhhrrrdddlllcuummwfgypbvkjxqz        ,.\n"
_INSERT_RUN = 12.0  # mean characters typed before a pause (a correction or a jump)
_DELETE_RUN = 5.0  # mean characters deleted in a row
_JUMP = 0.12  # chance that a run starts somewhere else in the text


class Edit(NamedTuple):
    """One keystroke: insert ``insert`` at ``pos`` (when not empty), else delete one character at ``pos``."""

    pos: int
    insert: str


def generate(seed: int = SEED, ops: int = OPS, inserts: int = INSERTS) -> list[Edit]:
    """The trace: ``ops`` single-character edits, exactly ``inserts`` of them inserts, the same for a seed."""
    if not 0 <= ops - inserts <= inserts:
        raise ValueError("a trace needs at least as many inserts as deletes")
    rng = random.Random(seed)
    edits: list[Edit] = []
    length = cursor = 0
    left_ins, left_del = inserts, ops - inserts
    while left_ins or left_del:
        # pick the next run's kind in proportion to what is left, so the mix stays even to the end
        typing = left_del == 0 or length == 0 or rng.random() < left_ins / (left_ins + left_del * 2.4)
        jump = length > 0 and rng.random() < _JUMP
        if jump:
            cursor = rng.randint(0, length)
        if typing:
            run = min(left_ins, 1 + int(rng.expovariate(1 / (_INSERT_RUN - 1))))
            for _ in range(run):
                edits.append(Edit(cursor, rng.choice(_ALPHABET)))
                cursor += 1
            length += run
            left_ins -= run
        else:
            forward = jump and cursor < length and rng.random() < 0.5
            run = min(left_del, length, 1 + int(rng.expovariate(1 / (_DELETE_RUN - 1))))
            for _ in range(run):
                if forward and cursor < length:
                    edits.append(Edit(cursor, ""))
                else:
                    cursor = cursor - 1 if cursor > 0 else 0
                    edits.append(Edit(cursor, ""))
                length -= 1
            left_del -= run
    return edits


def final_text(edits: list[Edit]) -> str:
    """The text the trace leaves, computed on a plain ``bytearray`` (the trace is ASCII), independently of
    any CRDT."""
    text = bytearray()
    for pos, insert in edits:
        if insert:
            text[pos:pos] = insert.encode()
        else:
            del text[pos]
    return text.decode()


def replay(doc: Doc[Any], text: Text, edits: list[Edit]) -> list[bytes]:
    """Apply ``edits`` to ``text`` (a Text in ``doc``), one transaction each, and return the update each
    transaction produced."""
    updates: list[bytes] = []

    def collect(event: TransactionEvent) -> None:
        updates.append(event.update)

    subscription = doc.observe(collect)
    try:
        for pos, insert in edits:
            with doc.transaction():
                if insert:
                    text.insert(pos, insert)
                else:
                    del text[pos]
    finally:
        doc.unobserve(subscription)
    assert len(updates) == len(edits), "an edit made no update"
    return updates
