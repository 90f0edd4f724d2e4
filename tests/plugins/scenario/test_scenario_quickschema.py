"""The compiled quick schema check (quickschema.py) against jsonschema, the detailed validator.

Validation trusts the quick check's "valid" without asking jsonschema, so it must never accept a
document jsonschema rejects; on JSON documents the two must agree exactly (else valid projects would
pay for the slow pass). Generated documents: valid scenes, projects and saves, then mutated at random
places with values of every JSON type and with the field names the schemas know.
"""

from __future__ import annotations

import copy
import decimal
import json
from typing import Any

import jsonschema
import pytest
from comfyvn_scenario.quickschema import Unsupported, compile_check
from comfyvn_scenario.schemas import SCHEMA_NAMES, load_schema, quick_check, validator
from comfyvn_scenario.validation import schema_issues
from hypothesis import given, settings
from hypothesis import strategies as st

FIELDS = sorted(
    {
        key
        for name in SCHEMA_NAMES
        for key in json.dumps(load_schema(name)).split('"')
        if key.isidentifier() and not key.startswith("$")
    }
)


def mostly(good: list[Any], bad: list[Any]) -> st.SearchStrategy[Any]:
    """Mostly one of ``good``, about one time in eight one of ``bad`` (values the schema rejects)."""
    return st.integers(0, 7).flatmap(lambda i: st.sampled_from(bad if i == 7 else good))


WORDS = ["", "n0", "n1", "s:n0", "a b", "x\n", "eq", "gte", "set", "increment", "fade", "left", "#a0b1c2", "#zzz", "é"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 3),
    st.sampled_from([0.0, 0.5, 1.0, -0.5, 2.0, 1e300, 4294967296]),
    st.sampled_from(WORDS),
    st.text(max_size=3),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=2)), inner, max_size=3),
    ),
    max_leaves=6,
)

condition = st.fixed_dictionaries(
    {
        "key": st.sampled_from(["gold", "flags.met", "a.b.c", "flags.met.x", "x", "", "."]),
        "operator": st.sampled_from(["eq", "gte", "in", "exists"]),
    },
    optional={"value": json_values},
)
action = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["set", "increment", "decrement", "clear"]),
        "key": st.sampled_from(["gold", "a.b", "a", "flags", ".", "x..y"]),
    },
    optional={"value": json_values, "amount": st.sampled_from([1, 2.5, -1])},
)
choice = st.fixed_dictionaries(
    {"target": st.sampled_from(["n0", "n1", "n2", "other:n0", "s0:n1", "intro:n0", "s1:zz", ":n0"])},
    optional={
        "id": st.sampled_from(["a", "b"]),
        "label": st.text(max_size=5),
        "weight": st.sampled_from([0, 1, 2.5]),
        "conditions": st.lists(condition, max_size=2),
        "actions": st.lists(action, max_size=2),
        "visible_to": st.one_of(st.sampled_from(["alice", "bob"]), st.lists(st.sampled_from(["alice", "bob"]))),
        "metadata": st.dictionaries(st.text(max_size=2), scalars, max_size=2),
    },
)
music = st.fixed_dictionaries(
    {"track": st.one_of(st.none(), st.sampled_from(["a.ogg"]))},
    optional={"volume": st.sampled_from([0, 0.5, 1]), "fade": st.sampled_from([0, 2]), "loop": st.booleans()},
)
node = st.fixed_dictionaries(
    {"id": mostly(["n0", "n1", "n2"], [""])},
    optional={
        "type": st.sampled_from(["dialogue", "narration", "choice", "jump", "end", "custom"]),
        "text": st.text(max_size=8),
        "speaker": st.one_of(st.none(), st.sampled_from(["hero", "Someone"])),
        "pov": st.sampled_from(["alice", "bob"]),
        "background": st.one_of(st.none(), st.sampled_from(["bg.png"])),
        "music": music,
        "sfx": st.lists(st.fixed_dictionaries({"sound": st.just("s.ogg")}, optional={"delay": st.just(1)}), max_size=2),
        "voice": st.just("v.ogg"),
        "characters": st.lists(
            st.fixed_dictionaries(
                {"id": st.sampled_from(["hero", "mira"])},
                optional={
                    "expression": st.just("smile"),
                    "position": st.sampled_from(["left", "far_right"]),
                    "hide": st.booleans(),
                },
            ),
            max_size=2,
        ),
        "transition": st.fixed_dictionaries(
            {"type": st.sampled_from(["fade", "cut"])}, optional={"duration": st.sampled_from([0, 0.5])}
        ),
        "data": st.dictionaries(st.text(max_size=2), scalars, max_size=2),
        "actions": st.lists(action, max_size=2),
        "choices": st.lists(choice, max_size=3),
        "end": st.booleans(),
    },
)
scene = st.fixed_dictionaries(
    {"id": st.sampled_from(["s0", "intro"]), "start": st.just("n0"), "nodes": st.lists(node, min_size=1, max_size=4)},
    optional={
        "title": st.text(max_size=5),
        "variables": st.dictionaries(st.sampled_from(["gold", "flags"]), json_values, max_size=2),
        "default_pov": st.just("alice"),
        "cast": st.lists(st.fixed_dictionaries({"id": st.just("hero")}, optional={"name": st.just("Hero")})),
        "background": st.one_of(st.none(), st.just("bg.png")),
        "music": music,
        "metadata": st.dictionaries(st.text(max_size=2), scalars, max_size=2),
    },
)
character = st.fixed_dictionaries(
    {"name": st.sampled_from(["Hero", "Mira"])},
    optional={
        "color": mostly(["#336699", "#ABCDEF"], ["#12345", "336699", "#3366991"]),
        "sprites": st.dictionaries(st.sampled_from(["neutral", "smile"]), st.just("a.png"), max_size=2),
        "default_expression": st.just("neutral"),
        "voice": st.just("v"),
    },
)
project = st.fixed_dictionaries(
    {
        "id": mostly(["demo", "my.project-1"], ["bad id", "-x", "é", "x" * 81]),
        "title": st.just("Title"),
        "scenes": st.integers(0, 7).flatmap(
            lambda i: (
                st.just(["s0", "s0"])  # not unique
                if i == 7
                else st.lists(mostly(["s0", "s1", "intro"], ["a/b", ""]), min_size=1, max_size=3, unique=True)
            )
        ),
        "start": mostly(["s0", "s0:n1", "intro"], ["s0:", ":n1", "s 0", "s0\n"]),
    },
    optional={
        "format": st.just("comfyvn-project"),
        "format_version": st.just(1),
        "characters": st.dictionaries(mostly(["hero", "mira", "_x"], ["9x", "a-b", "h" * 65]), character, max_size=2),
        "variables": st.dictionaries(st.sampled_from(["gold", "flags"]), json_values, max_size=2),
        "povs": st.lists(
            st.fixed_dictionaries({"id": st.sampled_from(["alice", "bob"])}, optional={"character": st.just("hero")}),
            max_size=2,
        ),
        "default_pov": st.just("alice"),
        "metadata": st.dictionaries(st.text(max_size=2), scalars, max_size=2),
    },
)
save = st.fixed_dictionaries(
    {
        "slot": mostly(["a", "slot-1", "quick_save"], ["Slot", "a-", "_a", "a" * 81]),
        "saved_at": mostly([0, 1700000000000, 1.0], [-1, 1.5, True]),
        "saved_at_iso": mostly(["2024-01-02T03:04:05Z"], ["2024-01-02 03:04:05Z", "2024-01-02T03:04:05Z\n"]),
        "vars": st.dictionaries(st.sampled_from(["gold"]), scalars, max_size=1),
        "node_pointer": st.one_of(
            st.fixed_dictionaries({"scene_id": st.just("s"), "node": st.just("n0")}), json_values
        ),
        "seed": st.one_of(
            st.fixed_dictionaries(
                {"seed": st.integers(0, 2**32 - 1), "value": st.integers(0, 2**32 - 1), "uses": st.integers(0, 9)}
            ),
            json_values,
        ),
    },
    optional={
        "history": st.lists(
            st.fixed_dictionaries({"node": st.just("n0"), "choice": st.one_of(st.none(), st.just("a"))}), max_size=2
        ),
        "pov": st.one_of(st.none(), st.just("alice")),
        "finished": st.booleans(),
    },
)
DOCUMENTS = {"scene": scene, "project": project, "save": save}


def _containers(value: Any) -> list[Any]:
    found = [value] if isinstance(value, (dict, list)) else []
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        found.extend(_containers(child))
    return found


@st.composite
def mutated(draw: st.DrawFn, name: str, values: st.SearchStrategy[Any] = json_values) -> Any:
    """A generated valid document with 0-3 random edits: a value replaced, a key removed or added."""
    document = copy.deepcopy(draw(DOCUMENTS[name]))
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.integers(0, 9)) == 0:
            return draw(values)  # the whole document replaced
        target = draw(st.sampled_from(_containers(document)))
        if isinstance(target, dict):
            key = draw(st.sampled_from(sorted(target) + FIELDS[:5] + ["id", "type", "target", "nodes"]))
            if key in target and draw(st.booleans()):
                del target[key]
            else:
                target[key] = draw(values)
        elif target:
            target[draw(st.integers(0, len(target) - 1))] = draw(values)
        else:
            target.append(draw(values))
    return document


def _jsonschema_valid(name: str, document: Any) -> bool:
    return next(iter(validator(name).iter_errors(document)), None) is None


def test_every_shipped_schema_compiles() -> None:
    # A schema the check cannot compile silently falls back to the slow path: keep them compilable.
    for name in SCHEMA_NAMES:
        assert quick_check(name) is not None, name


@pytest.mark.parametrize("name", SCHEMA_NAMES)
@settings(max_examples=300)
@given(data=st.data())
def test_quick_check_agrees_with_jsonschema_on_json(name: str, data: st.DataObject) -> None:
    document = data.draw(mutated(name))
    check = quick_check(name)
    assert check is not None
    assert check(document) == _jsonschema_valid(name, document)


unusual_values = st.one_of(
    json_values,
    st.tuples(st.sampled_from(["n0", "x"])),
    st.builds(tuple, st.lists(st.fixed_dictionaries({"id": st.just("n0")}), max_size=2)),
    st.sampled_from([decimal.Decimal("0.5"), decimal.Decimal("-1"), 1 + 0j, float("nan"), float("inf")]),
    st.dictionaries(st.integers(0, 2), scalars, max_size=2),
    st.frozensets(st.sampled_from(["a", "b"])),
)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
@given(data=st.data())
def test_quick_check_never_accepts_what_jsonschema_rejects(name: str, data: st.DataObject) -> None:
    document = data.draw(mutated(name, unusual_values))
    check = quick_check(name)
    assert check is not None
    if check(document):
        assert _jsonschema_valid(name, document), document


def test_tuples_and_decimals_go_to_the_detailed_validator() -> None:
    # jsonschema's "array" is a list only and its "number" any numbers.Number: a compiled check that
    # took a tuple for an array would report valid where validation reports "must be of type array".
    scene_check = quick_check("scene")
    assert scene_check is not None
    valid = {"id": "s", "start": "n0", "nodes": [{"id": "n0"}]}
    assert scene_check(valid)
    assert not scene_check({**valid, "nodes": ({"id": "n0"},)})
    assert schema_issues("scene", {**valid, "nodes": ({"id": "n0"},)}, None)[0].code == "schema_type"
    music = {"track": None, "volume": decimal.Decimal("0.5")}
    assert not scene_check({**valid, "music": music})  # stricter than jsonschema: the slow pass decides
    assert schema_issues("scene", {**valid, "music": music}, None) == []
    assert not scene_check({**valid, "music": {"track": None, "volume": True}})


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "patternProperties": {"^x": {}}},
        {"prefixItems": [{"type": "string"}]},
        {"$ref": "https://example.com/other.json"},
        {"enum": [[1], {"a": 1}]},
        {"if": {"type": "string"}, "then": {"minLength": 2}},
    ],
)
def test_unknown_keywords_refuse_to_compile(schema: dict[str, Any]) -> None:
    with pytest.raises(Unsupported):
        compile_check(schema)


def test_recursive_definitions_compile() -> None:
    tree = {
        "$ref": "#/$defs/tree",
        "$defs": {
            "tree": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/tree"}},
                },
            }
        },
    }
    check = compile_check(tree)
    assert check({"name": "a", "children": [{"name": "b", "children": []}]})
    assert not check({"name": "a", "children": [{"name": 1}]})
    assert check({"name": "a", "children": [{"name": "b"}]}) is True


SMALL_SCHEMAS = [
    {"oneOf": [{"type": "integer"}, {"minimum": 0}]},
    {"anyOf": [{"type": "string", "maxLength": 1}, {"type": "array", "minItems": 2}]},
    {"not": {"type": ["string", "null"]}},
    {"allOf": [{"type": "number"}, {"maximum": 2}], "minimum": -1},
    {"enum": ["a", 1, True, None, 0.5]},
    {"const": False},
    {"type": "integer", "minimum": 1},
    {"type": "array", "items": {"type": "object", "required": ["id"]}, "maxItems": 2},
    {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "integer"}},
    {"propertyNames": {"pattern": "^[a-z]$"}, "additionalProperties": False},
]


@pytest.mark.parametrize("schema", SMALL_SCHEMAS)
@given(value=json_values)
def test_keywords_agree_with_jsonschema(schema: dict[str, Any], value: Any) -> None:
    assert compile_check(schema)(value) == jsonschema.Draft202012Validator(schema).is_valid(value)
