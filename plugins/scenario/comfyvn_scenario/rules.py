"""Conditions and actions over runner variables, compiled once per scenario.

Variables are nested dicts that are never mutated: an action returns a new top-level dict that
shares every branch it did not touch (copy-on-write along the dot-path). That keeps `step` pure
and cheap -- a step copies O(path length) dicts, not the whole variable tree.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeGuard

__all__ = [
    "MISSING",
    "Action",
    "Condition",
    "all_of",
    "compile_action",
    "compile_condition",
    "compose",
    "get_path",
    "split_key",
]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
Condition = Callable[[Mapping[str, Any]], bool]
Action = Callable[[dict[str, Any]], dict[str, Any]]


def split_key(key: str) -> tuple[str, ...]:
    """Dot-path segments; empty segments are ignored as the original runner did (``a..b`` == ``a.b``)."""
    return tuple(part for part in key.split(".") if part)


def get_path(variables: Mapping[str, Any], parts: Sequence[str]) -> Any:
    """The value at ``parts`` or `MISSING` (an intermediate that is not an object counts as missing)."""
    current: Any = variables
    for part in parts:
        if type(current) is dict:  # the usual case, without the slower isinstance(Mapping) check
            if part not in current:
                return MISSING
            current = current[part]
        elif isinstance(current, Mapping) and part in current:
            current = current[part]
        else:
            return MISSING
    return current


def _number(value: Any) -> float | None:
    # "gt/gte/lt/lte compare as numbers" (wire): the original used float(), so "3" compares as 3.
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _getter(parts: tuple[str, ...]) -> Callable[[Mapping[str, Any]], Any]:
    """`get_path` bound to ``parts``, with plain-dict fast paths for the usual one- and two-segment keys
    (conditions and increments run on every step). Anything but a plain dict on the way takes
    `get_path` itself, so the result is always exactly `get_path`'s."""
    if len(parts) == 1:
        (head,) = parts

        def get_one(variables: Mapping[str, Any]) -> Any:
            if type(variables) is dict:
                return variables.get(head, MISSING)
            return get_path(variables, parts)

        return get_one
    if len(parts) == 2:
        head, leaf = parts

        def get_two(variables: Mapping[str, Any]) -> Any:
            if type(variables) is dict:
                child = variables.get(head, MISSING)
                if type(child) is dict:
                    return child.get(leaf, MISSING)
            return get_path(variables, parts)

        return get_two
    return lambda variables: get_path(variables, parts)


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def compile_condition(condition: Mapping[str, Any]) -> Condition:
    """A predicate over variables. A missing key makes every operator false except ``not_exists``."""
    parts = split_key(str(condition["key"]))
    kind = str(condition["operator"])
    value = condition.get("value")
    get = _getter(parts)

    if kind == "exists":
        return lambda variables: get(variables) is not MISSING
    if kind == "not_exists":
        return lambda variables: get(variables) is MISSING
    if kind in _COMPARE:
        bound = _number(value)
        if bound is None:
            return lambda variables: False
        compare = _COMPARE[kind]

        def numeric(variables: Mapping[str, Any]) -> bool:
            current = get(variables)
            if current is MISSING:
                return False
            try:  # _number, inlined: this runs on every step
                number = float(current)
            except (TypeError, ValueError):
                return False
            return compare(number, bound)

        if len(parts) != 2:
            return numeric
        head, leaf = parts

        def numeric_two(variables: Mapping[str, Any]) -> bool:
            # `numeric` with `get_two` written out: comparing a ``stats.hp``-like key is the most
            # common condition, and one call per evaluation is cheaper than two.
            if type(variables) is dict:
                child = variables.get(head, MISSING)
                current = child.get(leaf, MISSING) if type(child) is dict else get_path(variables, parts)
            else:
                current = get_path(variables, parts)
            if current is MISSING:
                return False
            try:
                number = float(current)
            except (TypeError, ValueError):
                return False
            return compare(number, bound)

        return numeric_two
    if kind in ("in", "not_in"):
        negate = kind == "not_in"

        def member(variables: Mapping[str, Any]) -> bool:
            current = get(variables)
            if current is MISSING:
                return False
            if isinstance(value, str):
                found = isinstance(current, str) and current in value
            elif isinstance(value, list):
                found = current in value
            else:
                return False
            return found != negate

        return member
    if kind in ("eq", "neq"):
        negate = kind == "neq"

        def equal(variables: Mapping[str, Any]) -> bool:
            current = get(variables)
            if current is MISSING:
                return False
            return bool(current == value) != negate

        return equal
    raise ValueError(f"unknown condition operator {kind!r}")


def all_of(conditions: Sequence[Condition]) -> Condition | None:
    """One predicate for "every condition holds", checked in order and stopping at the first false one
    (as ``all()`` does); None when there is none, so callers skip the call altogether."""
    if not conditions:
        return None
    # One condition object twice (a scenario compiles each distinct condition once) is one check:
    # conditions are pure, so the first false one is found as soon either way.
    checks = tuple(dict.fromkeys(conditions))
    if len(checks) == 1:
        return checks[0]

    def every(variables: Mapping[str, Any]) -> bool:
        for check in checks:  # noqa: SIM110 - a loop, not all(genexpr): no generator per step
            if not check(variables):
                return False
        return True

    return every


def _assoc(tree: Mapping[str, Any], parts: Sequence[str], value: Any) -> dict[str, Any]:
    new = dict(tree)
    head = parts[0]
    if len(parts) == 1:
        new[head] = value
    else:
        child = tree.get(head)
        if type(child) is not dict and not isinstance(child, Mapping):
            child = {}
        new[head] = _assoc(child, parts[1:], value)
    return new


def _dissoc(tree: dict[str, Any], parts: Sequence[str]) -> dict[str, Any]:
    head = parts[0]
    if head not in tree:
        return tree
    if len(parts) == 1:
        new = dict(tree)
        del new[head]
        return new
    child = tree[head]
    if not isinstance(child, dict):
        return tree
    updated = _dissoc(child, parts[1:])
    if updated is child:
        return tree
    new = dict(tree)
    new[head] = updated
    return new


def is_number(value: Any) -> TypeGuard[int | float]:
    """A JSON number (booleans are not numbers here, unlike Python's ``isinstance(True, int)``)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def compile_action(action: Mapping[str, Any]) -> Action:
    """A function ``variables -> new variables`` (the input is never modified)."""
    parts = split_key(str(action["key"]))
    kind = action["type"]
    if not parts:
        return lambda variables: variables
    if kind == "set":
        value = action.get("value")
        return lambda variables: _assoc(variables, parts, value)
    if kind == "clear":
        return lambda variables: _dissoc(variables, parts)
    if kind in ("increment", "decrement"):
        raw = action.get("amount")
        if raw is None:
            raw = action.get("value")
        # A non-numeric amount falls back to 1 as in the original; the validator reports it.
        delta: int | float = raw if is_number(raw) else 1
        if kind == "decrement":
            delta = -delta

        get = _getter(parts)

        def bump(variables: dict[str, Any]) -> dict[str, Any]:
            base = get(variables)
            # Missing or non-numeric base counts as 0 (original behaviour); ints stay ints.
            start = base if type(base) is int or type(base) is float or is_number(base) else 0
            return _assoc(variables, parts, start + delta)

        if len(parts) != 2:
            return bump
        head, leaf = parts

        def bump_two(variables: dict[str, Any]) -> dict[str, Any]:
            # `bump` on a two-segment key (``stats.steps``) through plain dicts, written out: the same
            # copies and the same key order as `_assoc`, without its recursion.
            if type(variables) is dict:
                child = variables.get(head)
                if type(child) is dict:
                    base = child.get(leaf, MISSING)
                    start = base if type(base) is int or type(base) is float or is_number(base) else 0
                    new = dict(variables)
                    inner = dict(child)
                    inner[leaf] = start + delta
                    new[head] = inner
                    return new
            return bump(variables)

        return bump_two
    raise ValueError(f"unknown action type {kind!r}")


def compose(actions: Sequence[Action]) -> Action | None:
    """``actions`` run in order as one function (the action itself when there is one); None for none."""
    if not actions:
        return None
    if len(actions) == 1:
        return actions[0]
    chain = tuple(actions)

    def run_all(variables: dict[str, Any]) -> dict[str, Any]:
        for action in chain:
            variables = action(variables)
        return variables

    return run_all


def apply_actions(actions: Sequence[Action], variables: dict[str, Any]) -> dict[str, Any]:
    """Run compiled actions in order."""
    for action in actions:
        variables = action(variables)
    return variables
