"""Narrator sessions as data, and their store: one JSON file per scene under ``<data>/plugins/narrator/sessions``.

Every change runs in `SessionStore.edit`: under the scene's file lock (``sessions/.locks/<scene>.lock``, an
exclusive ``flock``), read the file, change the `Session`, write it back atomically. ``flock`` locks belong to
an open file description and every `edit` opens its own, so the lock excludes threads of one server as well as
the CLI and other processes; readers need no lock because a write is a rename (a reader sees the old file or the
new one). A change that raises writes nothing, so a failed model call or a refused apply leaves the file as it was.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs
import cattrs
from comfyvn.digest import canonical_json
from comfyvn.errors import ComfyVNError, NotFound, TooLarge, Unprocessable
from comfyvn.paths import atomic_write_text, safe_join
from comfyvn.wire import converter, dumps, loads

from .wire import check_scene_id

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = [
    "HISTORY_LIMIT",
    "MAX_PROPOSALS",
    "MAX_TURNS",
    "MAX_VARIABLES_BYTES",
    "Proposal",
    "Session",
    "SessionStore",
    "Snapshot",
]

FORMAT: Final = 1
MAX_TURNS: Final = 3  # turns per node: pending and applied proposals count, rolled-back ones do not
HISTORY_LIMIT: Final = 16  # the rollback ring buffer
MAX_PROPOSALS: Final = 200  # proposals kept per session; the oldest settled ones go first
MAX_VARIABLES_BYTES: Final = 256 * 1024


@attrs.frozen
class Proposal:
    """One narrator turn waiting for approval (``pending``), merged (``applied``) or undone (``rolled_back``)."""

    id: str
    scene_id: str
    node_id: str
    mode: str
    role: str
    turn_index: int
    message: str
    narration: str
    rationale: str
    choice_id: str | None
    vars_patch: dict[str, Any]
    status: str
    created_at: float
    metadata: dict[str, Any]

    def to_wire(self) -> dict[str, Any]:
        result: dict[str, Any] = copy.deepcopy(converter.unstructure(self))
        return result


@attrs.frozen
class Snapshot:
    """What an apply changed, so that a rollback can restore it: the variables and last choice before it."""

    proposal_id: str
    node_id: str
    variables: dict[str, Any]
    last_choice: str | None
    created_at: float


@attrs.define
class Session:
    """A scene's narrator session: the aggregate `SessionStore.edit` hands out, changed only under its lock.

    ``turn_counts[node]`` is the number of the node's proposals that are pending or applied (at most
    `MAX_TURNS`); ``history`` is the rollback ring (newest last, at most `HISTORY_LIMIT`); ``counter`` numbers
    the proposals (``p0001`` …) and never goes back, so an id is never reused."""

    scene_id: str
    node_id: str
    mode: str = "observe"
    role: str = "narrator"
    halted: bool = False
    pov: str | None = None
    variables: dict[str, Any] = attrs.Factory(dict)
    turn_counts: dict[str, int] = attrs.Factory(dict)
    proposals: list[Proposal] = attrs.Factory(list)
    history: list[Snapshot] = attrs.Factory(list)
    counter: int = 0
    last_choice: str | None = None
    created_at: float = attrs.Factory(time.time)
    updated_at: float = attrs.Factory(time.time)

    @property
    def active(self) -> bool:
        """Whether the narrator takes turns now: not halted and not only observing."""
        return not self.halted and self.mode != "observe"

    def proposal(self, proposal_id: str) -> Proposal:
        """The proposal ``proposal_id`` (404 ``proposal_not_found``)."""
        for proposal in self.proposals:
            if proposal.id == proposal_id:
                return proposal
        raise NotFound(
            f"scene {self.scene_id!r} has no proposal {proposal_id!r}", field="proposal_id", code="proposal_not_found"
        )

    def replace(self, proposal: Proposal) -> None:
        """Put ``proposal`` in the place of the one with its id."""
        self.proposals = [proposal if p.id == proposal.id else p for p in self.proposals]

    def state(self) -> dict[str, Any]:
        """The wire state: ``{scene_id, node_id, mode, role, active, halted, turn_counts, queue[], history_size,
        last_choice, pov, variables, timestamp}`` (``queue``: every kept proposal in order, with its status)."""
        return {
            "scene_id": self.scene_id,
            "node_id": self.node_id,
            "mode": self.mode,
            "role": self.role,
            "active": self.active,
            "halted": self.halted,
            "turn_counts": dict(self.turn_counts),
            "queue": [p.to_wire() for p in self.proposals],
            "history_size": len(self.history),
            "last_choice": self.last_choice,
            "pov": self.pov,
            "variables": copy.deepcopy(self.variables),
            "timestamp": time.time(),
        }

    def trim(self) -> None:
        """Keep the bounds: the ring's newest `HISTORY_LIMIT` entries; at most `MAX_PROPOSALS` proposals, dropping
        the oldest settled ones (pending ones stay: they hold turns); variables of at most `MAX_VARIABLES_BYTES`."""
        del self.history[: max(0, len(self.history) - HISTORY_LIMIT)]
        excess = len(self.proposals) - MAX_PROPOSALS
        if excess > 0:
            settled = [p.id for p in self.proposals if p.status != "pending"][:excess]
            self.proposals = [p for p in self.proposals if p.id not in settled]
        size = len(canonical_json(self.variables).encode("utf-8"))
        if size > MAX_VARIABLES_BYTES:
            raise TooLarge(
                f"the variables would take {size} bytes (at most {MAX_VARIABLES_BYTES})",
                field="variables",
                code="variables_too_large",
            )


class SessionStore:
    """The session files of one data root (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def for_kernel(cls, kernel: Kernel) -> SessionStore:
        """The store under the kernel's data root."""
        return cls(kernel.paths.plugin_dir("narrator") / "sessions")

    def path(self, scene_id: str) -> Path:
        """The file of ``scene_id`` (validated: 400 ``invalid_scene_id``; never outside the store)."""
        return safe_join(self.root, f"{check_scene_id(scene_id)}.json", field="scene_id")

    def load(self, scene_id: str) -> Session | None:
        """The stored session of ``scene_id``, or None when it has none."""
        path = self.path(scene_id)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            document = loads(data, field="session")
            if not isinstance(document, dict) or document.get("format") != FORMAT:
                raise ValueError("not a narrator session document")
            session = converter.structure(document.get("session"), Session)
            if session.scene_id != scene_id:
                raise ValueError("the session belongs to another scene")
        except (ComfyVNError, ValueError, TypeError, cattrs.BaseValidationError) as exc:
            raise Unprocessable(
                f"the narrator session of scene {scene_id!r} cannot be read ({type(exc).__name__}); "
                "remove its file or restore it from a backup",
                field="scene_id",
                code="session_unreadable",
            ) from None
        return session

    def get(self, scene_id: str) -> Session:
        """The session of ``scene_id`` (404 ``session_not_found``)."""
        session = self.load(scene_id)
        if session is None:
            raise _missing(scene_id)
        return session

    @contextlib.contextmanager
    def _lock(self, scene_id: str) -> Iterator[None]:
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        fd = os.open(locks / f"{check_scene_id(scene_id)}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    @contextlib.contextmanager
    def edit(self, scene_id: str, create: Callable[[], Session] | None = None) -> Iterator[Session]:
        """The session of ``scene_id`` to change under its lock; written back when the block ends without an
        error. Without a session, ``create()`` makes one (404 ``session_not_found`` when ``create`` is None)."""
        path = self.path(scene_id)
        with self._lock(scene_id):
            session = self.load(scene_id)
            if session is None:
                if create is None:
                    raise _missing(scene_id)
                session = create()
            yield session
            session.trim()
            session.updated_at = time.time()
            document = {"format": FORMAT, "session": converter.unstructure(session)}
            atomic_write_text(path, dumps(document, indent=1, sort_keys=True) + "\n")


def _missing(scene_id: str) -> NotFound:
    return NotFound(
        f"scene {scene_id!r} has no narrator session; start one with mode or propose",
        field="scene_id",
        code="session_not_found",
    )
