"""The battle formula v0: contenders, rolls, breakdowns, weights and the editor's resolve.

Pure and deterministic: no HTTP, no click, no clock. For each contender, in the given order,

    total = base + STR*1.0 + AGI*0.5 + weapon_tier*0.75 + status_mod + jitter
    jitter = (random()*2 - 1) * variance          (one RNG draw per contender, variance default 1)

The winner is the highest total (ties: the name that sorts first, case-insensitively); weights are
``(total - min + 1) / sum``. This matches the original ComfyVN wire contract.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from comfyvn.errors import ComfyVNError

from .rng import MODULUS, RngState, lcg_next, normalize_seed

__all__ = [
    "EDITOR_PROMPT",
    "FORMULA",
    "MAX_CONTENDERS",
    "VARIABLE_KEY",
    "Breakdown",
    "Components",
    "Contender",
    "Simulation",
    "parse_stats",
    "resolve_state",
    "simulate",
]

FORMULA = "base + STR*1.0 + AGI*0.5 + weapon_tier*0.75 + status_mod + rng(seed)"
EDITOR_PROMPT = "Pick winner"
VARIABLE_KEY = "battle_outcome"
STRENGTH_COEF = 1.0
AGILITY_COEF = 0.5
WEAPON_COEF = 0.75
# A sanity bound, not a design limit: thousands of contenders is a malformed request.
MAX_CONTENDERS = 256
MAX_STAT = 1e15
# Totals are compared after rounding so that float noise (1.0+0.5 vs 0.75+0.75) cannot break a tie
# differently on different inputs that mean the same thing.
_RANK_DIGITS = 9
_OUT_DIGITS = 6

# Wire key -> (attribute, may be negative). Both spellings of the original are accepted.
_STAT_KEYS: dict[str, tuple[str, bool]] = {
    "base": ("base", False),
    "str": ("strength", False),
    "strength": ("strength", False),
    "agi": ("agility", False),
    "agility": ("agility", False),
    "weapon_tier": ("weapon_tier", False),
    "weapon": ("weapon_tier", False),
    # status_mod is a buff or a debuff, so it alone may be negative.
    "status_mod": ("status_mod", True),
    "status": ("status_mod", True),
    "rng": ("variance", False),
    "rng_variance": ("variance", False),
}


@attrs.frozen
class Contender:
    """One side of a battle with its formula inputs (already validated)."""

    name: str
    base: float = 0.0
    strength: float = 0.0
    agility: float = 0.0
    weapon_tier: float = 0.0
    status_mod: float = 0.0
    variance: float = 1.0

    @property
    def fixed(self) -> float:
        """The total without the jitter."""
        return (
            self.base
            + self.strength * STRENGTH_COEF
            + self.agility * AGILITY_COEF
            + self.weapon_tier * WEAPON_COEF
            + self.status_mod
        )


@attrs.frozen
class Components:
    """The weighted parts of one total, as the breakdown reports them."""

    base: float
    strength: float
    agility: float
    weapon_tier: float
    status_mod: float
    rng: float


@attrs.frozen
class Breakdown:
    name: str
    total: float
    components: Components

    def as_dict(self) -> dict[str, Any]:
        """``{name, total, components{base, strength, agility, weapon_tier, status_mod, rng}}``."""
        c = self.components
        return {
            "name": self.name,
            "total": round(self.total, _OUT_DIGITS),
            "components": {
                "base": round(c.base, _OUT_DIGITS),
                "strength": round(c.strength, _OUT_DIGITS),
                "agility": round(c.agility, _OUT_DIGITS),
                "weapon_tier": round(c.weapon_tier, _OUT_DIGITS),
                "status_mod": round(c.status_mod, _OUT_DIGITS),
                "rng": round(c.rng, _OUT_DIGITS),
            },
        }


@attrs.frozen
class Simulation:
    """One roll of the formula: the predicted outcome and everything needed to replay it."""

    outcome: str
    seed: int
    rng: RngState
    weights: tuple[tuple[str, float], ...]
    breakdown: tuple[Breakdown, ...]

    def weights_dict(self) -> dict[str, float]:
        return {name: round(weight, _OUT_DIGITS) for name, weight in self.weights}

    def provenance(self, *, seed_source: str, resolved_outcome: str | None = None) -> dict[str, Any]:
        """The replay block: formula, seed (and where it came from), RNG state, weights, winner."""
        block: dict[str, Any] = {
            "formula": FORMULA,
            "seed": self.seed,
            "seed_source": seed_source,
            "rng": self.rng.as_dict(),
            "weights": self.weights_dict(),
            "predicted_outcome": self.outcome,
        }
        if resolved_outcome is not None:
            block["resolved_outcome"] = resolved_outcome
        return block


def _number(value: Any, field: str, *, allow_negative: bool) -> float:
    # bool is an int subclass; `true` as a stat is a client mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ComfyVNError(f"{field} must be a number", field=field, code="invalid_stats")
    # Bounded (which also refuses NaN and infinities) so totals stay finite and float() cannot overflow.
    if not -MAX_STAT <= value <= MAX_STAT:
        raise ComfyVNError(f"{field} must be between -1e15 and 1e15", field=field, code="invalid_stats")
    number = float(value)
    if number < 0 and not allow_negative:
        raise ComfyVNError(f"{field} must not be negative (got {value})", field=field, code="negative_stat")
    return number


def _contender(name: str, raw: Any, field: str) -> Contender:
    if isinstance(raw, Mapping):
        values: dict[str, float] = {}
        for key, value in raw.items():
            spec = _STAT_KEYS.get(key) if isinstance(key, str) else None
            if spec is None:
                raise ComfyVNError(
                    f"unknown stat {key!r} for {name!r}; expected one of {sorted(_STAT_KEYS)}",
                    field=f"{field}.{key}",
                    code="invalid_stats",
                )
            attribute, allow_negative = spec
            if attribute in values:
                raise ComfyVNError(
                    f"{name!r} gives {attribute} twice (two spellings)", field=f"{field}.{key}", code="invalid_stats"
                )
            values[attribute] = _number(value, f"{field}.{key}", allow_negative=allow_negative)
        return Contender(name=name, **values)
    return Contender(name=name, base=_number(raw, field, allow_negative=False))


def parse_stats(raw: Any, field: str = "stats") -> tuple[Contender, ...]:
    """Validate ``{name: number | {base, str, agi, weapon_tier, status_mod, rng}}`` into contenders.

    Order is kept (it decides the order of RNG draws). Raises `ComfyVNError` naming the field
    for an empty or non-object ``stats``, blank or duplicate names (case-insensitive), unknown
    keys, non-numbers and negative stats (``status_mod`` may be negative).
    """
    if not isinstance(raw, Mapping):
        raise ComfyVNError(f"{field} must be an object of contenders", field=field, code="invalid_stats")
    if not raw:
        raise ComfyVNError(f"{field} needs at least one contender", field=field, code="empty_contenders")
    if len(raw) > MAX_CONTENDERS:
        raise ComfyVNError(f"{field} has more than {MAX_CONTENDERS} contenders", field=field, code="invalid_stats")
    seen: set[str] = set()
    contenders = []
    for key, value in raw.items():
        name = key.strip() if isinstance(key, str) else ""
        if not name:
            raise ComfyVNError(
                "contender names must be non-empty strings", field=f"{field}.{key}", code="invalid_stats"
            )
        if name.lower() in seen:
            raise ComfyVNError(f"duplicate contender {name!r}", field=f"{field}.{key}", code="invalid_stats")
        seen.add(name.lower())
        contenders.append(_contender(name, value, f"{field}.{key}"))
    return tuple(contenders)


def simulate(contenders: Sequence[Contender], seed: int) -> Simulation:
    """Roll the formula once for ``contenders`` from ``seed``; deterministic in its inputs.

    Draws exactly one RNG value per contender, in order, even when a variance is 0, so that the
    reported ``rng.uses`` always equals the number of contenders.
    """
    if not contenders:
        raise ComfyVNError("a battle needs at least one contender", field="stats", code="empty_contenders")
    seed = normalize_seed(seed)  # the reported seed is the canonical one (see rng.py)
    value = seed
    rows = []
    for c in contenders:
        # The bare step, not a state object per draw: this loop is the hot path of the simulations/s benchmark.
        value = lcg_next(value)
        jitter = (value / MODULUS * 2.0 - 1.0) * c.variance
        strength = c.strength * STRENGTH_COEF
        agility = c.agility * AGILITY_COEF
        weapon = c.weapon_tier * WEAPON_COEF
        total = c.base + strength + agility + weapon + c.status_mod + jitter
        rows.append(Breakdown(c.name, total, Components(c.base, strength, agility, weapon, c.status_mod, jitter)))
    winner = min(rows, key=lambda b: (-round(b.total, _RANK_DIGITS), b.name.lower())).name
    low = min(b.total for b in rows)
    scores = [b.total - low + 1.0 for b in rows]
    norm = sum(scores)
    weights = tuple((b.name, s / norm) for b, s in zip(rows, scores, strict=True))
    return Simulation(winner, seed, RngState(seed, value, len(rows)), weights, tuple(rows))


def resolve_state(
    state: Any, winner: str, *, persist: bool, field: str = "state"
) -> tuple[dict[str, Any] | None, bool]:
    """A deep copy of a scenario ``state`` with ``variables.battle_outcome`` set when ``persist``.

    The input is never mutated. Returns ``(state copy or None, persisted)``.
    """
    if state is None:
        return None, False
    if not isinstance(state, Mapping):
        raise ComfyVNError(f"{field} must be an object", field=field, code="invalid_state")
    working = copy.deepcopy(dict(state))
    if not persist:
        return working, False
    variables = working.get("variables")
    if variables is None:
        variables = working["variables"] = {}
    if not isinstance(variables, dict):
        raise ComfyVNError(f"{field}.variables must be an object", field=f"{field}.variables", code="invalid_state")
    variables[VARIABLE_KEY] = winner
    return working, True
