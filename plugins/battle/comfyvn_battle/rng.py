"""Battle rolls draw from the original runner's RNG, which the scenario plugin defines
(`comfyvn_scenario.rng`): one implementation, so a seed gives the same draws and the same reported
state ``{seed, value, uses}`` in a battle and in a playthrough. Seeds are normalised to ``seed mod 2**32``.
"""

from __future__ import annotations

from comfyvn_scenario.rng import INCREMENT, MOD, MULTIPLIER, Rng, lcg_next, normalize_seed

__all__ = ["INCREMENT", "MODULUS", "MULTIPLIER", "Lcg", "RngState", "lcg_next", "normalize_seed"]

MODULUS = MOD


class RngState(Rng):
    """A reportable snapshot of the generator (the scenario `Rng`, under battle's wire name)."""

    __slots__ = ()

    def as_dict(self) -> dict[str, int]:
        """The wire shape ``{seed, value, uses}``."""
        return self.to_wire()


class Lcg:
    """A mutable cursor over `RngState` (one instance per roll or narration)."""

    __slots__ = ("_state",)

    def __init__(self, seed: int, value: int | None = None, uses: int = 0) -> None:
        self._state = RngState(seed, seed if value is None else value, uses)

    @classmethod
    def from_state(cls, state: RngState) -> Lcg:
        """Continue a stream from a reported state."""
        return cls(state.seed, state.value, state.uses)

    def random(self) -> float:
        """The next draw in ``[0, 1)``."""
        r, self._state = self._state.draw()
        return r

    def state(self) -> RngState:
        """A frozen snapshot of where the stream stands."""
        return self._state
