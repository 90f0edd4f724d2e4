"""The deterministic RNG of the original runner, shared by every battle roll.

``value = (1664525 * value + 1013904223) mod 2**32`` starting from ``value = seed``;
``random() = value / 2**32``. The state ``{seed, value, uses}`` is what responses report, so a
caller can replay a roll sheet anywhere.
"""

from __future__ import annotations

import attrs

__all__ = ["INCREMENT", "MODULUS", "MULTIPLIER", "Lcg", "RngState"]

MULTIPLIER = 1664525
INCREMENT = 1013904223
MODULUS = 2**32


@attrs.frozen
class RngState:
    """A reportable snapshot of the generator."""

    seed: int
    value: int
    uses: int

    def as_dict(self) -> dict[str, int]:
        """The wire shape ``{seed, value, uses}``."""
        return {"seed": self.seed, "value": self.value, "uses": self.uses}


class Lcg:
    """The linear congruential generator; mutable on purpose (one instance per roll)."""

    __slots__ = ("seed", "uses", "value")

    def __init__(self, seed: int, value: int | None = None, uses: int = 0) -> None:
        self.seed = seed
        # Seeds outside 32 bits are folded in, exactly as the modular recurrence would do.
        self.value = (seed if value is None else value) % MODULUS
        self.uses = uses

    @classmethod
    def from_state(cls, state: RngState) -> Lcg:
        """Continue a stream from a reported state."""
        return cls(state.seed, state.value, state.uses)

    def random(self) -> float:
        """The next draw in ``[0, 1)``."""
        self.value = (MULTIPLIER * self.value + INCREMENT) % MODULUS
        self.uses += 1
        return self.value / MODULUS

    def state(self) -> RngState:
        """A frozen snapshot of where the stream stands."""
        return RngState(self.seed, self.value, self.uses)
