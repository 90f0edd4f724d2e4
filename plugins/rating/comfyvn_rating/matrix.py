"""The E/T/M/Adult keyword and tag matrix: the deterministic default classifier (wire doc "Rating").

Pure functions, no kernel: `tokens` splits a payload into text tokens and tags, `classify` applies the
matrix. A term matches only a whole token ("sexually" is not "sexual"); the highest level with a match
wins (Adult > M > T > E); with no match the answer is the conservative default T.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

__all__ = [
    "DEFAULT_RATING",
    "DESCRIPTIONS",
    "FALLBACK_REASON",
    "LEVELS",
    "MATRIX",
    "RISKY",
    "RatingResult",
    "classify",
    "confidence_for",
    "level_index",
    "match_terms",
    "normalise_rating",
    "tokens",
]

LEVELS = ("E", "T", "M", "Adult")  # lowest to highest; precedence is the reverse
RISKY = frozenset({"M", "Adult"})
DEFAULT_RATING = "T"
FALLBACK_REASON = "fallback: conservative teen rating"

#: level -> (keywords, tags), in the wire doc's order (``matched`` lists hits in this order).
MATRIX: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Adult": (
        ("explicit", "sexual", "porn", "nudity", "intercourse", "fetish", "erotic", "18+", "nsfw"),
        ("adult", "nsfw", "r18", "sex", "hentai", "pornography", "smut"),
    ),
    "M": (
        (
            "violence",
            "blood",
            "gore",
            "murder",
            "injury",
            "weapon",
            "alcohol",
            "drug",
            "narcotic",
            "intense",
            "gambling",
        ),
        ("mature", "violence", "blood", "gore", "substance", "horror", "psychological"),
    ),
    "T": (
        ("mild", "suggestive", "fantasy", "comic", "prank", "mystery", "romance"),
        ("teen", "pg13", "suggestive", "fantasy", "adventure"),
    ),
    "E": (
        ("wholesome", "educational", "friendly", "casual", "family", "puzzle"),
        ("all-ages", "casual", "family", "wholesome", "puzzle"),
    ),
}

DESCRIPTIONS = {
    "E": "Everyone: suitable for all audiences.",
    "T": "Teen: may contain mild language or thematic elements.",
    "M": "Mature: intense violence, blood, or substance references.",
    "Adult": "Adult: explicit sexual content or extreme material.",
}

#: Root-level text fields of a payload (``prompt`` for LLM calls; the rest as in the original).
TEXT_FIELDS = ("text", "title", "description", "summary", "prompt")
# A token is a run of letters/digits plus "+" and "#" (so "18+" is one token); anything else splits.
_TOKEN = re.compile(r"(?:[^\W_]|[+#])+")


def level_index(rating: str) -> int:
    """Position of ``rating`` in `LEVELS` (E=0 … Adult=3); ValueError for anything else."""
    return LEVELS.index(rating)


def normalise_rating(value: str) -> str | None:
    """``value`` as a canonical level (``"adult"`` → ``"Adult"``, ``" m "`` → ``"M"``), or None."""
    folded = value.strip().lower()
    return next((level for level in LEVELS if level.lower() == folded), None)


def confidence_for(rating: str, matched: bool) -> float:
    """The matrix's confidence: 0.85 for a matched M/Adult, 0.7 for a matched T/E, 0.55 for the default."""
    if not matched:
        return 0.55
    return 0.85 if rating in RISKY else 0.7


def _text_tokens(value: Any, into: set[str]) -> None:
    if isinstance(value, str):
        into.update(_TOKEN.findall(value.lower()))


def _tags(value: Any, into: set[str]) -> None:
    if isinstance(value, list | tuple):
        into.update(tag.strip().lower() for tag in value if isinstance(tag, str) and tag.strip())


def tokens(payload: Mapping[str, Any] | None) -> tuple[frozenset[str], frozenset[str]]:
    """(text tokens, tags) of a payload.

    Text: the root fields `TEXT_FIELDS` and every string value of ``meta``, lower-cased and split into
    tokens. Tags: whole strings (trimmed, lower-cased) from ``tags``, ``meta.tags`` and
    ``meta.categories``.
    """
    text: set[str] = set()
    tags: set[str] = set()
    if not payload:
        return frozenset(), frozenset()
    for key in TEXT_FIELDS:
        _text_tokens(payload.get(key), text)
    meta = payload.get("meta")
    _tags(payload.get("tags"), tags)
    if isinstance(meta, Mapping):
        _tags(meta.get("tags"), tags)
        _tags(meta.get("categories"), tags)
        for value in meta.values():
            _text_tokens(value, text)
    return frozenset(text), frozenset(tags)


@attrs.frozen
class RatingResult:
    """One rating decision (the wire's ``rating`` object)."""

    item_id: str
    rating: str
    confidence: float
    reasons: tuple[str, ...]
    matched: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    source: str = "classifier"  # classifier | override
    classifier: str = "matrix"  # which classifier decided (a plugin's name when one raised the rating)
    reviewer: str | None = None
    override_reason: str | None = None
    override_timestamp: float | None = None

    @property
    def nsfw(self) -> bool:
        return self.rating in RISKY

    def to_wire(self) -> dict[str, Any]:
        """The JSON shape: ``{item_id, rating, confidence, nsfw, reasons, matched, source, …}``."""
        return {
            "item_id": self.item_id,
            "rating": self.rating,
            "confidence": round(self.confidence, 3),
            "nsfw": self.nsfw,
            "reasons": list(self.reasons),
            "matched": {level: list(hits) for level, hits in self.matched.items()},
            "source": self.source,
            "classifier": self.classifier,
            "reviewer": self.reviewer,
            "override_reason": self.override_reason,
            "override_timestamp": self.override_timestamp,
        }


def match_terms(text: Iterable[str], tags: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Every matrix hit by level, ``keyword:<term>``/``tag:<term>``, in matrix order; empty levels left out.

    As in the original, a term of either list matches a text token or a tag: a chat saying "horror"
    counts like a ``horror`` tag. ``matched`` names the list the term came from.
    """
    seen = set(text) | set(tags)
    found: dict[str, tuple[str, ...]] = {}
    for level, (keywords, tag_terms) in MATRIX.items():
        hits = [f"keyword:{t}" for t in keywords if t in seen] + [f"tag:{t}" for t in tag_terms if t in seen]
        if hits:
            found[level] = tuple(hits)
    return found


def classify(item_id: str, payload: Mapping[str, Any] | None) -> RatingResult:
    """Rate ``payload`` with the matrix: the highest matched level, else the default T."""
    text, tags = tokens(payload)
    matched = match_terms(text, tags)
    for level in reversed(LEVELS):
        if level in matched:
            return RatingResult(item_id, level, confidence_for(level, True), matched[level], matched)
    return RatingResult(item_id, DEFAULT_RATING, confidence_for(DEFAULT_RATING, False), (FALLBACK_REASON,), {})
