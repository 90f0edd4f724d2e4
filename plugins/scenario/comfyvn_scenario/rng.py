"""The original runner's RNG: a 32-bit linear congruential generator, fully described by its state.

``value = (1664525 * value + 1013904223) mod 2**32`` starting from ``value = seed``;
``random() = value / 2**32``. Integer arithmetic and one exact division make every draw identical
on every machine and Python build.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
from comfyvn.errors import ComfyVNError

__all__ = ["MOD", "Rng", "weighted_index"]

MOD = 2**32
_MULT = 1664525
_INC = 1013904223


@attrs.frozen(slots=True)
class Rng:
    """RNG state ``{seed, value, uses}`` (wire shape); `draw` returns a new state."""

    seed: int
    value: int
    uses: int

    @classmethod
    def from_seed(cls, seed: int) -> Rng:
        seed = int(seed) % MOD
        return cls(seed, seed, 0)

    def draw(self) -> tuple[float, Rng]:
        """One ``random()`` in [0, 1) and the advanced state."""
        value = (_MULT * self.value + _INC) % MOD
        return value / MOD, Rng(self.seed, value, self.uses + 1)

    def to_wire(self) -> dict[str, int]:
        return {"seed": self.seed, "value": self.value, "uses": self.uses}

    @classmethod
    def from_wire(cls, raw: Any, *, field: str = "rng") -> Rng:
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
        return cls(seed % MOD, value % MOD, uses)


def _is_int(value: Any) -> bool:
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
