"""Scenario conditions and actions as Python for ``menu … if`` clauses and ``$`` lines.

The scenario semantics (comfyvn-wire.md) are kept exactly: a missing key makes every operator false
except ``not_exists``, ``gt/gte/lt/lte`` compare as numbers, ints stay ints, ``set`` creates
intermediate objects, ``clear`` removes. The small helpers the translations call (``cvn_get``,
``cvn_num``, ``cvn_assoc``…) are emitted once into ``game/comfyvn_runtime.rpy`` (`RUNTIME_RPY`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from comfyvn_scenario.rules import is_number, split_key

from .names import py_literal

__all__ = ["RUNTIME_RPY", "Memo", "action_python", "choice_condition", "condition_python", "key_parts"]

RUNTIME_RPY = '''\
## ComfyVN runtime helpers: scenario conditions and actions with the runner's exact semantics.

init -10 python:

    class CvnMissing(object):
        """A variable that does not exist (cleared, or set by an action but never declared)."""

        def __eq__(self, other):
            return isinstance(other, CvnMissing)

        def __ne__(self, other):
            return not isinstance(other, CvnMissing)

        def __hash__(self):
            return 0

        def __repr__(self):
            return "CvnMissing()"

    def cvn_is_number(value):
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    def cvn_get(value, path):
        for part in path:
            if isinstance(value, dict) and part in value:
                value = value[part]
            else:
                return CvnMissing()
        return value

    def cvn_missing(value):
        return isinstance(value, CvnMissing)

    def cvn_num(value):
        if isinstance(value, CvnMissing):
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            return None

    def cvn_eq(value, expected):
        return not cvn_missing(value) and value == expected

    def cvn_neq(value, expected):
        return not cvn_missing(value) and value != expected

    def cvn_cmp(value, op, bound):
        number = cvn_num(value)
        if number is None:
            return False
        if op == "gt":
            return number > bound
        if op == "gte":
            return number >= bound
        if op == "lt":
            return number < bound
        return number <= bound

    def cvn_in(value, container, negate=False):
        if cvn_missing(value):
            return False
        if isinstance(container, str):
            found = isinstance(value, str) and value in container
        elif isinstance(container, list):
            found = value in container
        else:
            return False
        return found != negate

    def cvn_assoc(tree, path, value):
        new = dict(tree) if isinstance(tree, dict) else dict()
        head = path[0]
        if len(path) == 1:
            new[head] = value
        else:
            new[head] = cvn_assoc(tree.get(head) if isinstance(tree, dict) else None, path[1:], value)
        return new

    def cvn_dissoc(tree, path):
        if not isinstance(tree, dict) or path[0] not in tree:
            return tree
        new = dict(tree)
        if len(path) == 1:
            del new[path[0]]
        else:
            new[path[0]] = cvn_dissoc(tree[path[0]], path[1:])
        return new

    def cvn_bump(tree, path, delta):
        base = cvn_get(tree, path)
        start = base if cvn_is_number(base) else 0
        if not path:
            return start + delta
        return cvn_assoc(tree, path, start + delta)
'''


# A project names a few variables many times over (one condition or action per choice): each key is
# split once. Tuples are immutable, so sharing them is safe; the bound keeps a server's memory flat.
key_parts: Callable[[str], tuple[str, ...]] = functools.lru_cache(maxsize=4096)(split_key)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def condition_python(condition: Mapping[str, Any], variables: Mapping[str, str]) -> str:
    """One condition object as a Python boolean expression over the exported variables."""
    parts = key_parts(str(condition.get("key", "")))
    operator = condition.get("operator")
    value = condition.get("value")
    if not parts:
        return "True" if operator == "not_exists" else "False"
    root = variables[parts[0]]
    getter = f"cvn_get({root}, {py_literal(list(parts[1:]))})" if len(parts) > 1 else root
    if operator == "exists":
        return f"not cvn_missing({getter})"
    if operator == "not_exists":
        return f"cvn_missing({getter})"
    if operator in ("gt", "gte", "lt", "lte"):
        bound = _number(value)
        return "False" if bound is None else f"cvn_cmp({getter}, {py_literal(operator)}, {py_literal(bound)})"
    if operator in ("in", "not_in"):
        return f"cvn_in({getter}, {py_literal(value)}, {operator == 'not_in'})"
    if operator in ("eq", "neq"):
        return f"cvn_{operator}({getter}, {py_literal(value)})"
    raise ValueError(f"unknown condition operator {operator!r}")


def choice_condition(
    choice: Mapping[str, Any],
    variables: Mapping[str, str],
    translate: Callable[[Mapping[str, Any], Mapping[str, str]], str] = condition_python,
) -> str | None:
    """The ``if`` expression of a menu choice (POV visibility and every condition), or None.
    ``translate`` is `condition_python` or a memo of it (`Memo`)."""
    visible = choice.get("visible_to")
    conditions = choice.get("conditions")
    if visible is None and not conditions:
        return None  # most choices: no POV filter, no condition
    terms: list[str] = []
    if isinstance(visible, str):
        visible = [visible]
    if visible:
        terms.append(f"cvn_pov in {py_literal(sorted({str(v) for v in visible}))}")
    terms.extend(translate(c, variables) for c in conditions or () if type(c) is dict or isinstance(c, Mapping))
    return " and ".join(f"({t})" if " or " in t else t for t in terms) or None


def action_python(action: Mapping[str, Any], variables: Mapping[str, str]) -> str | None:
    """One action object as a Python statement (for a ``$`` line), or None when it does nothing."""
    parts = key_parts(str(action.get("key", "")))
    if not parts:
        return None
    root, rest, kind = variables[parts[0]], list(parts[1:]), action.get("type")
    if kind == "set":
        value = py_literal(action.get("value"))
        return f"{root} = cvn_assoc({root}, {py_literal(rest)}, {value})" if rest else f"{root} = {value}"
    if kind == "clear":
        return f"{root} = cvn_dissoc({root}, {py_literal(rest)})" if rest else f"{root} = CvnMissing()"
    if kind in ("increment", "decrement"):
        raw = action.get("amount")
        if raw is None:
            raw = action.get("value")
        delta = raw if is_number(raw) else 1
        if kind == "decrement":
            delta = -delta
        return f"{root} = cvn_bump({root}, {py_literal(rest)}, {py_literal(delta)})"
    raise ValueError(f"unknown action type {kind!r}")


def _scalar_key(item: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """A hashable key equal for two condition or action objects exactly when their translations are,
    or None when a value is not a plain JSON scalar. Type and float ``repr`` are part of the key: 1, 1.0
    and True (and 0.0 and -0.0) are equal in Python but not as literals."""
    key: list[Any] = []
    for name, value in item.items():
        kind = value.__class__
        if value is None or kind is str or kind is int or kind is bool:
            key.append((name, kind, value))
        elif kind is float:
            key.append((name, kind, repr(value)))
        else:
            return None
    return tuple(key)


class Memo:
    """`condition_python` and `action_python` for one set of variable names, each distinct condition or
    action translated once (a project repeats the same few many times: ``increment score`` per choice)."""

    def __init__(self) -> None:
        self._conditions: dict[tuple[Any, ...], str] = {}
        self._actions: dict[tuple[Any, ...], str | None] = {}

    def condition(self, condition: Mapping[str, Any], variables: Mapping[str, str]) -> str:
        key = _scalar_key(condition)
        if key is None:
            return condition_python(condition, variables)
        found = self._conditions.get(key)
        if found is None:
            found = self._conditions[key] = condition_python(condition, variables)
        return found

    def action(self, action: Mapping[str, Any], variables: Mapping[str, str]) -> str | None:
        key = _scalar_key(action)
        if key is None:
            return action_python(action, variables)
        if key not in self._actions:
            self._actions[key] = action_python(action, variables)
        return self._actions[key]
