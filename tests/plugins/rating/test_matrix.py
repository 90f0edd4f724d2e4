"""The matrix exactly as the wire doc lists it: each level by keyword and by tag, precedence Adult > M > T > E,
default T, whole tokens only ("sexually" is not "sexual"), and the same answer for the same input."""

from __future__ import annotations

import random

import pytest
from comfyvn_rating.matrix import FALLBACK_REASON, LEVELS, MATRIX, classify, tokens
from hypothesis import given
from hypothesis import strategies as st

# The wire doc's matrix, written out again here (not read from the code) so a changed term fails a test.
WIRE = {
    "Adult": (
        "explicit sexual porn nudity intercourse fetish erotic 18+ nsfw",
        "adult nsfw r18 sex hentai pornography smut",
    ),
    "M": (
        "violence blood gore murder injury weapon alcohol drug narcotic intense gambling",
        "mature violence blood gore substance horror psychological",
    ),
    "T": ("mild suggestive fantasy comic prank mystery romance", "teen pg13 suggestive fantasy adventure"),
    "E": ("wholesome educational friendly casual family puzzle", "all-ages casual family wholesome puzzle"),
}
KEYWORDS = [(level, term) for level, (words, _) in WIRE.items() for term in words.split()]
TAGS = [(level, term) for level, (_, tags) in WIRE.items() for term in tags.split()]
ALL_TERMS = {term for _, term in KEYWORDS + TAGS}
FILLER = ["the", "harbour", "storm", "ledger", "coffee", "train", "quiet", "window", "walked", "letter"]


def test_the_matrix_is_the_wire_docs() -> None:
    assert {level: (" ".join(k), " ".join(t)) for level, (k, t) in MATRIX.items()} == WIRE
    assert LEVELS == ("E", "T", "M", "Adult")


@pytest.mark.parametrize(("level", "term"), KEYWORDS)
def test_each_keyword_rates_its_level_in_text(level: str, term: str) -> None:
    result = classify("x", {"text": f"The scene turns {term.upper()} at midnight."})
    assert result.rating == level
    assert f"keyword:{term}" in result.matched[level] and result.source == "classifier"


@pytest.mark.parametrize(("level", "term"), TAGS)
def test_each_tag_rates_its_level(level: str, term: str) -> None:
    for payload in ({"tags": [f" {term.title()} "]}, {"meta": {"tags": [term]}}, {"meta": {"categories": [term]}}):
        result = classify("x", payload)
        assert result.rating == level, payload
        assert f"tag:{term}" in result.matched[level]


def test_default_is_a_conservative_teen_rating() -> None:
    for payload in (None, {}, {"text": "The harbour office smelled of rain."}, {"tags": ["slice of life"]}):
        result = classify("x", payload)
        assert (result.rating, result.reasons, result.matched, result.confidence) == ("T", (FALLBACK_REASON,), {}, 0.55)


@pytest.mark.parametrize(
    "text",
    [
        "sexually charged",
        "a bloody nose",
        "mildly amused",
        "explicitly stated",
        "pornographic",
        "nsfwish",
        "18",
        "e18+",
    ],
)
def test_only_whole_tokens_match(text: str) -> None:
    assert classify("x", {"text": text}).rating == "T"


def test_punctuation_and_case_split_tokens() -> None:
    assert classify("x", {"text": "(Explicit!) content, 18+."}).matched["Adult"] == ("keyword:explicit", "keyword:18+")
    assert classify("x", {"text": "blood-soaked"}).rating == "M"
    assert classify("x", {"text": "all-ages"}).rating == "T"  # tags are whole values: "all-ages" as text is two words
    assert classify("x", {"tags": ["adult content"]}).rating == "T"  # a tag is matched whole, never split


def test_text_fields_and_meta_values_are_read() -> None:
    for payload in (
        {"title": "gore"},
        {"description": "gore"},
        {"summary": "gore"},
        {"prompt": "gore"},
        {"meta": {"note": "gore"}},
    ):
        assert classify("x", payload).rating == "M", payload
    assert classify("x", {"other": "gore", "meta": {"n": 5}}).rating == "T"


def test_confidence_and_reasons() -> None:
    adult = classify("x", {"text": "erotic", "tags": ["gore"]})
    assert (adult.rating, adult.confidence, adult.nsfw, adult.reasons) == ("Adult", 0.85, True, ("keyword:erotic",))
    assert adult.matched == {"Adult": ("keyword:erotic",), "M": ("keyword:gore", "tag:gore")}
    e = classify("x", {"text": "a wholesome puzzle"})
    assert (e.rating, e.confidence, e.nsfw) == ("E", 0.7, False)
    wire = adult.to_wire()
    assert (
        wire["rating"] == "Adult"
        and wire["source"] == "classifier"
        and wire["matched"]["M"] == ["keyword:gore", "tag:gore"]
    )


level_terms = st.sampled_from(LEVELS).flatmap(
    lambda level: st.sampled_from(
        [("text", t) for lv, t in KEYWORDS if lv == level] + [("tags", t) for lv, t in TAGS if lv == level]
    ).map(lambda found: (level, *found))
)


@given(st.lists(level_terms, max_size=8), st.lists(st.sampled_from(FILLER), max_size=8), st.randoms())
def test_precedence_is_the_highest_level_present(
    picks: list[tuple[str, str, str]], filler: list[str], rnd: random.Random
) -> None:
    words = [t for _, where, t in picks if where == "text"] + filler
    tags = [t for _, where, t in picks if where == "tags"]
    rnd.shuffle(words)
    result = classify("x", {"text": " ".join(words), "tags": tags})
    expected = max((LEVELS.index(level) for level, _, _ in picks), default=None)
    assert result.rating == (LEVELS[expected] if expected is not None else "T")
    assert set(result.matched) == {level for level, _, _ in picks}


@given(
    st.sampled_from(sorted(ALL_TERMS)), st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
)
def test_a_term_with_letters_attached_is_another_token(term: str, extra: str) -> None:
    for word in (term + extra, extra + term):
        if word in ALL_TERMS or "-" in word:
            continue  # still a term ("porn" + "ography"), or a tag that is two words in text
        assert tokens({"text": word})[0] == {word}
        assert classify("x", {"text": word}).rating == "T"
        assert classify("x", {"tags": [word]}).rating == "T"


@given(
    st.lists(st.sampled_from(sorted(ALL_TERMS) + FILLER), max_size=12),
    st.lists(st.sampled_from(sorted(ALL_TERMS)), max_size=5),
    st.randoms(),
)
def test_the_answer_depends_only_on_the_words_not_their_order(
    words: list[str], tags: list[str], rnd: random.Random
) -> None:
    first = classify("x", {"text": " ".join(words), "tags": tags})
    shuffled_words, shuffled_tags = words[:], tags[:]
    rnd.shuffle(shuffled_words)
    rnd.shuffle(shuffled_tags)
    again = classify("x", {"text": "  ".join(shuffled_words), "tags": shuffled_tags})
    assert again == first
    assert classify("x", {"text": " ".join(words), "tags": tags}).to_wire() == first.to_wire()
