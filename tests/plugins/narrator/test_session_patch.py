"""The vars_patch merge of an apply: deep merge, ``$replace`` and ``$delete`` (properties and the refusals)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from comfyvn.errors import Invalid
from comfyvn_narrator.patch import apply_patch, check_patch, without_meta
from hypothesis import given
from hypothesis import strategies as st

KEYS = st.sampled_from(["a", "b", "c", "d"])  # few names, so patches and variables collide often
SCALARS = st.one_of(st.integers(-5, 5), st.booleans(), st.none(), st.text(max_size=3))
LEAVES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3))
VARIABLES = st.recursive(LEAVES, lambda inner: st.dictionaries(KEYS, inner, max_size=4), max_leaves=12).filter(
    lambda v: isinstance(v, dict)
)
# Plain patches: nested objects are never empty, so every patch object ends in leaves it sets.
PLAIN = st.recursive(LEAVES, lambda inner: st.dictionaries(KEYS, inner, min_size=1, max_size=3), max_leaves=8).filter(
    lambda v: isinstance(v, dict)
)
PATHS = st.lists(KEYS, min_size=1, max_size=3)


def leaves(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (path, value) where the value is not a non-empty object."""
    if isinstance(value, dict) and value:
        for key, child in value.items():
            yield from leaves(child, (*path, key))
    else:
        yield path, value


def at(value: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


def has(value: Any, path: tuple[str, ...]) -> bool:
    try:
        at(value, path)
    except (KeyError, TypeError):
        return False
    return True


def related(one: tuple[str, ...], other: tuple[str, ...]) -> bool:
    shorter = min(len(one), len(other))
    return one[:shorter] == other[:shorter]


@given(VARIABLES, PLAIN)
def test_a_plain_patch_sets_its_leaves_and_keeps_everything_else(
    variables: dict[str, Any], patch: dict[str, Any]
) -> None:
    frozen_variables, frozen_patch = copy.deepcopy(variables), copy.deepcopy(patch)
    result = apply_patch(variables, patch)
    assert variables == frozen_variables and patch == frozen_patch  # inputs untouched
    patched = list(leaves(patch))
    for path, value in patched:
        assert at(result, path) == value
    for path, value in leaves(variables):
        if path and not any(related(path, p) for p, _ in patched):
            assert at(result, path) == value


@given(VARIABLES, PLAIN, st.lists(PATHS, max_size=3), st.dictionaries(KEYS, LEAVES | PLAIN, max_size=2))
def test_applying_a_patch_twice_changes_nothing_more(
    variables: dict[str, Any], plain: dict[str, Any], deletes: list[list[str]], replace: dict[str, Any]
) -> None:
    patch = {k: v for k, v in plain.items() if k not in replace}
    patch.update({"$delete": deletes, "$replace": replace})
    once = apply_patch(variables, patch)
    assert apply_patch(once, patch) == once


@given(VARIABLES, st.dictionaries(KEYS, LEAVES | PLAIN, min_size=1, max_size=3), PLAIN)
def test_replace_puts_the_value_as_given(
    variables: dict[str, Any], replace: dict[str, Any], other: dict[str, Any]
) -> None:
    merged = {k: v for k, v in other.items() if k not in replace}
    result = apply_patch(variables, {"$replace": replace, **merged})
    for key, value in replace.items():
        assert result[key] == value  # replaced whole: nothing of the old value survives
    for key, value in variables.items():
        if key not in replace and key not in merged:
            assert result[key] == value


@given(VARIABLES, st.lists(PATHS, min_size=1, max_size=4), st.booleans())
def test_delete_removes_its_paths_and_nothing_else(
    variables: dict[str, Any], paths: list[list[str]], dotted: bool
) -> None:
    spelled: list[Any] = [".".join(p) for p in paths] if dotted else paths
    result = apply_patch(variables, {"$delete": spelled})
    deleted = [tuple(p) for p in paths]
    for path in deleted:
        assert not has(result, path)
    for path, value in leaves(variables):
        if path and not any(path[: len(d)] == d for d in deleted):
            assert at(result, path) == value


@given(VARIABLES, KEYS, PLAIN)
def test_nested_directives_apply_at_their_level(variables: dict[str, Any], key: str, fresh: dict[str, Any]) -> None:
    patch = {key: {"$delete": ["a"], "$replace": {"b": fresh}}}
    result = apply_patch(variables, patch)
    assert "a" not in result[key] and result[key]["b"] == fresh
    old = variables.get(key)
    if isinstance(old, dict):
        assert {k: v for k, v in result[key].items() if k != "b"} == {
            k: v for k, v in old.items() if k not in ("a", "b")
        }


def test_the_documented_examples() -> None:
    variables = {"stats": {"hp": 10, "mp": 3}, "inv": ["rope"], "flags": {"met": True}}
    assert apply_patch(variables, {"stats": {"hp": 9}, "inv": ["rope", "key"]}) == {
        "stats": {"hp": 9, "mp": 3},
        "inv": ["rope", "key"],  # arrays replace, never concatenate
        "flags": {"met": True},
    }
    assert apply_patch(variables, {"$replace": {"stats": {"hp": 1}}})["stats"] == {"hp": 1}
    assert apply_patch(variables, {"$delete": ["inv", "flags.met", ["no", "such"]]}) == {
        "stats": {"hp": 10, "mp": 3},
        "flags": {},
    }
    assert apply_patch(variables, {"$delete": ["inv"], "inv": {"key": 1}})["inv"] == {"key": 1}  # delete first
    assert apply_patch(variables, {"flags": None})["flags"] is None  # null is a value; $delete removes
    assert apply_patch({"odd.key": 1, "x": 2}, {"$delete": [["odd.key"]]}) == {"x": 2}
    assert without_meta({"$narrator": {"turn": 1}, "a": 1}) == {"a": 1}


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ([], "vars_patch"),
        ({"$merge": {}}, "vars_patch.$merge"),
        ({"$narrator": {}}, "vars_patch.$narrator"),
        ({"a": {"$delete": "b"}}, "vars_patch.a.$delete"),
        ({"$delete": [""]}, "vars_patch.$delete[0]"),
        ({"$delete": ["a..b"]}, "vars_patch.$delete[0]"),
        ({"$delete": [["$x"]]}, "vars_patch.$delete[0]"),
        ({"$delete": [3]}, "vars_patch.$delete[0]"),
        ({"$delete": [["k"] * 33]}, "vars_patch.$delete[0]"),
        ({"$replace": []}, "vars_patch.$replace"),
        ({"$replace": {"$a": 1}}, "vars_patch.$replace.$a"),
        ({"$replace": {"a": {"b": {"$c": 1}}}}, "vars_patch.$replace.a.b.$c"),
        ({"$replace": {"a": 1}, "a": 2}, "vars_patch.a"),
        ({"a": [{"$x": 1}]}, "vars_patch.a[0].$x"),
    ],
)
def test_malformed_patches_are_refused_naming_where(patch: Any, field: str) -> None:
    with pytest.raises(Invalid) as caught:
        check_patch(patch)
    assert caught.value.field == field and caught.value.code == "invalid_vars_patch"
    with pytest.raises(Invalid):
        apply_patch({}, patch if isinstance(patch, dict) else {"$replace": patch})
