"""comfyvn.wire: the one JSON decoding policy, the strict encoder and the shared request structuring."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import attrs
import pytest
from comfyvn.errors import ComfyVNError, Invalid
from comfyvn.wire import MAX_DEPTH, MAX_INT_DIGITS, dumps, loads, parse_request, read_json
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ("[" * 100_000 + "]" * 100_000, "body"),
        ('{"a": ' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1), ".".join(["a"] * MAX_DEPTH)),
        ('{"stats": {"hero": ' + "7" * 5000 + "}}", "stats.hero"),
        ('{"n": -' + "9" * (MAX_INT_DIGITS + 1) + "}", "n"),
        ('{"data": [1, {"x": NaN}]}', "data[1].x"),
        ('{"x": Infinity}', "x"),
        ("[-Infinity]", "[0]"),
        ('{"x": 1e400}', "x"),
        ('{"pov": "\\ud800"}', "pov"),
        ('{"a": {"\\udfffkey": 1}}', "a.\\udfffkey"),
        ('{"list": ["ok", "\\uDC00"]}', "list[1]"),
        ('{"a": "\udcff"}', "a"),  # a str argument decoded with surrogateescape
        ("NaN", "body"),
        (b'{"a": "\xff"}', "body"),
        ('{"a": 1', "body"),
        ("", "body"),
    ],
)
def test_refused_documents_name_the_field(document: str | bytes, field: str) -> None:
    with pytest.raises(Invalid) as info:
        loads(document)
    assert info.value.field == field
    assert info.value.code == "invalid_json"
    assert len(info.value.message) <= 400


def test_the_limits_themselves_are_accepted() -> None:
    deep = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert loads(deep) is not None
    assert loads('{"n": -' + "9" * MAX_INT_DIGITS + "}")["n"] == -int("9" * MAX_INT_DIGITS)
    assert loads('{"emoji": "\\ud83d\\ude00"}') == {"emoji": "\U0001f600"}  # a valid pair is one character


def test_a_named_document_prefixes_its_fields() -> None:
    with pytest.raises(Invalid) as info:
        loads('{"hero": NaN}', field="stats")
    assert info.value.field == "stats.hero"
    with pytest.raises(Invalid) as info:
        loads("[1, 2", field="variables")
    assert info.value.field == "variables" and "line 1" in info.value.message


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**MAX_INT_DIGITS) + 1, max_value=10**MAX_INT_DIGITS - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_what_dumps_writes_loads_reads_back_unchanged(value: Any) -> None:
    text = dumps(value)
    assert loads(text) == value
    assert loads(text.encode("utf-8")) == value


@given(st.text(max_size=60) | st.binary(max_size=60))
def test_any_input_decodes_or_is_invalid(data: str | bytes) -> None:
    try:
        loads(data)
    except Invalid as exc:
        assert exc.field is not None


@pytest.mark.parametrize("value", [{"x": float("nan")}, [float("inf")], {"s": "\ud800"}, {"\udc80": 1}])
def test_dumps_refuses_what_could_not_be_read_back(value: Any) -> None:
    with pytest.raises(Invalid) as info:
        dumps(value)
    assert info.value.code == "unencodable"


def _positive(instance: Any, attribute: Any, value: int) -> None:
    if value < 1:
        raise Invalid(f"{attribute.name} must be positive", field=attribute.name, code="not_positive")


@attrs.frozen
class Inner:
    level: int


@attrs.frozen
class Request:
    name: str
    inner: Inner
    count: int = attrs.field(default=1, validator=_positive)
    ratio: float = 0.5
    tags: list[str] = attrs.Factory(list)
    poses: tuple[str, ...] = ()
    kinds: frozenset[str] = frozenset()


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": "a", "inner": {"level": "3"}}, "inner.level", "expected int, got str"),
        ({"name": "a", "inner": {"level": True}}, "inner.level", "expected int, got bool"),
        ({"name": 3, "inner": {"level": 1}}, "name", "expected str, got int"),
        ({"name": "a", "inner": {"level": 1}, "ratio": "x"}, "ratio", "expected a number, got str"),
        ({"name": "a", "inner": {"level": 1}, "tags": ["x", 2]}, "tags[1]", "expected str, got int"),
        # A string is iterable, but it is no array: never ["a", "b", "c"] for "abc".
        ({"name": "a", "inner": {"level": 1}, "tags": "abc"}, "tags", "expected list, got str"),
        ({"name": "a", "inner": {"level": 1}, "poses": "abc"}, "poses", "expected list, got str"),
        ({"name": "a", "inner": {"level": 1}, "kinds": {"a": 1}}, "kinds", "expected list, got dict"),
        ({"name": "a", "inner": {"level": 1}, "extra": 1}, "extra", "unknown field 'extra'"),
        ({"name": "a", "inner": {"level": 1, "deep": 1}}, "inner.deep", "unknown field 'deep'"),
        ({"inner": {"level": 1}}, "name", "required field missing"),
        ([1, 2], "body", "must be a JSON object"),
    ],
)
def test_parse_request_names_the_first_bad_field(body: Any, field: str, message: str) -> None:
    with pytest.raises(Invalid) as info:
        parse_request(body, Request)
    assert (info.value.field, info.value.code) == (field, "invalid_request")
    assert message in info.value.message


def test_parse_request_keeps_a_validators_own_error_and_accepts_good_input() -> None:
    with pytest.raises(ComfyVNError) as info:
        parse_request({"name": "a", "inner": {"level": 1}, "count": 0}, Request)
    assert (info.value.field, info.value.code) == ("count", "not_positive")
    assert parse_request({"name": "a", "inner": {"level": 2}, "ratio": 1}, Request) == Request("a", Inner(2), ratio=1.0)
    arrays = {"name": "a", "inner": {"level": 1}, "tags": ["x"], "poses": ["p", "q"], "kinds": ["k", "k"]}
    assert parse_request(arrays, Request) == Request(
        "a", Inner(1), tags=["x"], poses=("p", "q"), kinds=frozenset({"k"})
    )


class FakeRequest:
    def __init__(self, data: bytes) -> None:
        self.data = data

    async def body(self) -> bytes:
        return self.data


def test_read_json_decodes_the_body_under_the_policy() -> None:
    assert asyncio.run(read_json(FakeRequest(b'{"a": [1]}'))) == {"a": [1]}
    assert asyncio.run(read_json(FakeRequest(b""), default={})) == {}
    with pytest.raises(Invalid):
        asyncio.run(read_json(FakeRequest(b"")))
    with pytest.raises(Invalid) as info:
        asyncio.run(read_json(FakeRequest(json.dumps({"x": [1e308 * 10]}).encode())))
    assert info.value.field == "x[0]"
