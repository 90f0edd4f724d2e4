"""The canonical JSON digest: sorted keys, compact, UTF-8, sha256 — and nothing that cannot be encoded."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from comfyvn.digest import canonical_json, digest
from hypothesis import given
from hypothesis import strategies as st

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


def test_known_value() -> None:
    # The text is written by hand: sorted keys, no spaces, "é" as two UTF-8 bytes rather than \u00e9.
    expected_text = '{"a":[1,2.5,null],"b":"é","c":{"x":true}}'
    assert canonical_json({"c": {"x": True}, "b": "é", "a": [1, 2.5, None]}) == expected_text
    assert (
        digest({"c": {"x": True}, "b": "é", "a": [1, 2.5, None]})
        == hashlib.sha256(b'{"a":[1,2.5,null],"b":"\xc3\xa9","c":{"x":true}}').hexdigest()
    )


@given(st.dictionaries(st.text(max_size=6), json_values, max_size=6))
def test_key_order_does_not_matter_and_the_text_round_trips(value: dict[str, Any]) -> None:
    shuffled = dict(reversed(list(value.items())))
    assert digest(shuffled) == digest(value)
    assert json.loads(canonical_json(value)) == value


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), {"x": [float("-inf")]}])
def test_nan_and_infinity_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError):
        digest(bad)


def test_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(UnicodeEncodeError):
        digest({"name": "\ud800"})
