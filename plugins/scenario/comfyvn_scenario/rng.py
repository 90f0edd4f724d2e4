"""The original runner's RNG: a 32-bit linear congruential generator, fully described by its state.

``value = (1664525 * value + 1013904223) mod 2**32`` starting from ``value = seed``;
``random() = value / 2**32``. Integer arithmetic and one exact division make every draw identical
on every machine and Python build. This is the one implementation: battle rolls use it too.

Seeds are normalised to ``seed mod 2**32`` (Python's floor modulo, so ``-1`` is ``4294967295`` and
``2**33 + 5`` is ``5``). The recurrence is taken mod 2**32 anyway, so the draws are those of the raw
seed; normalising makes the reported ``{seed, value, uses}`` the same for every seed that gives the
same stream, and keeps it within 32 bits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Self, TypeGuard

from comfyvn.errors import ComfyVNError

__all__ = ["INCREMENT", "MASK", "MOD", "MULTIPLIER", "Rng", "lcg_next", "normalize_seed", "weighted_index"]

MOD = 2**32
MULTIPLIER = 1664525
INCREMENT = 1013904223
MASK = MOD - 1  # ``value & MASK == value % MOD`` for every value >= 0, without a division


_make: Any = tuple.__new__


def normalize_seed(seed: int) -> int:
    """The canonical form of ``seed`` (or of a state value): ``seed mod 2**32``, in ``[0, 2**32)``."""
    return int(seed) % MOD


def lcg_next(value: int) -> int:
    """One step of the recurrence (hot loops call this instead of building states)."""
    return (MULTIPLIER * value + INCREMENT) % MOD


class _RngFields(NamedTuple):
    seed: int
    value: int
    uses: int


class Rng(_RngFields):
    """RNG state ``{seed, value, uses}`` (wire shape), normalised on construction; `draw` returns a new state.

    A named tuple (immutable, compared and printed field by field) rather than an attrs class: the
    runner draws on every step, and a tuple is built in one operation where a frozen attrs instance
    stores field by field through ``object.__setattr__``."""

    __slots__ = ()

    def __new__(cls, seed: int, value: int, uses: int = 0) -> Self:
        new: Self = _make(cls, (normalize_seed(seed), normalize_seed(value), uses))
        return new

    @classmethod
    def from_seed(cls, seed: int) -> Self:
        return cls(seed, seed, 0)

    def draw(self) -> tuple[float, Self]:
        """One ``random()`` in [0, 1) and the advanced state (of the same class)."""
        value = (MULTIPLIER * self.value + INCREMENT) % MOD  # lcg_next, inlined: the runner draws per step
        # Both numbers are already normalised: the tuple is built without going through the converters.
        new: Self = _make(type(self), (self.seed, value, self.uses + 1))
        return value / MOD, new

    def to_wire(self) -> dict[str, int]:
        return {"seed": self.seed, "value": self.value, "uses": self.uses}

    @classmethod
    def from_wire(cls, raw: Any, *, field: str = "rng") -> Self:
        """Parse ``{seed, value?, uses?}`` (value defaults to seed, uses to 0) or a bare integer seed."""
        if _is_int(raw):
            return cls.from_seed(raw)
        if not isinstance(raw, dict):
            raise ComfyVNError("rng must be an object {seed, value, uses}", field=field, code="invalid_state")
        seed = raw.get("seed")
        if not _is_int(seed):
            raise ComfyVNError("rng.seed must be an integer", field=f"{field}.seed", code="invalid_state")
        value = raw.get("value", seed)
        uses = raw.get("uses", 0)
        if not _is_int(value):
            raise ComfyVNError("rng.value must be an integer", field=f"{field}.value", code="invalid_state")
        if not _is_int(uses) or uses < 0:
            raise ComfyVNError("rng.uses must be a non-negative integer", field=f"{field}.uses", code="invalid_state")
        return cls(seed, value, uses)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def weighted_index(weights: Sequence[float], r: float) -> int:
    """The first index whose cumulative weight exceeds ``r * total`` (the original's weighted pick).

    ``weights`` are all > 0 (unavailable choices are filtered out before); float rounding at the
    very end falls back to the last index, as the original did.
    """
    total = 0.0
    for weight in weights:  # not sum(): Python 3.12 made sum() of floats compensated, changing bits
        total += weight
    threshold = r * total
    cursor = 0.0
    for index, weight in enumerate(weights):
        cursor += weight
        if threshold < cursor:
            return index
    return len(weights) - 1
