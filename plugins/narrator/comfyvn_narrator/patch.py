"""Variable patches: the deep merge that `apply` performs, with ``$replace`` and ``$delete``.

A patch is a JSON object merged into the variables level by level. At each level:

1. ``"$delete": [path, ...]`` removes each path, relative to this level. A path is a key (``"gold"``), a dotted
   string (``"stats.hp"``) or a list of keys (``["odd.key", "x"]``, for keys that hold a dot). A path that does
   not exist is skipped, so applying the same deletion twice is harmless.
2. ``"$replace": {key: value, ...}`` sets each key to its value as given: an object there is replaced whole,
   never merged.
3. Every other key: an object merges into the object stored there (a missing or non-object value becomes a
   fresh object first); anything else (string, number, boolean, null, array) is stored as given. Arrays replace,
   never concatenate; ``null`` stores null (use ``$delete`` to remove a key).

Deleting runs before setting, so ``{"$delete": ["inv"], "inv": {"key": 1}}`` resets ``inv`` to ``{"key": 1}``.
A key both in ``$replace`` and merged at the same level is ambiguous and refused. Keys starting with ``$`` are
reserved: the variables never hold one, and no other ``$`` directive exists (the proposal's ``$narrator``
record is taken off before the merge, see `without_meta`). The input objects are never modified.

Variables and patches nest at most `MAX_DEPTH` levels: a session file stores them a few levels deeper (in the
queue, in the rollback ring), and it must stay within what the kernel's JSON reader accepts, or the session
could no longer be read.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from comfyvn.errors import Invalid

__all__ = [
    "DELETE",
    "MAX_DEPTH",
    "META",
    "REPLACE",
    "apply_patch",
    "check_patch",
    "check_value",
    "patch_problems",
    "without_meta",
]

DELETE, REPLACE, META = "$delete", "$replace", "$narrator"
MAX_PATH = 32
MAX_DEPTH = 32  # nesting levels of variables and patches (objects and arrays); the kernel reads files up to 64


def _bad(where: str, message: str) -> Invalid:
    return Invalid(f"{where}: {message}", field=where, code="invalid_vars_patch")


def _segments(path: Any, where: str) -> tuple[str, ...]:
    if isinstance(path, str):
        parts: list[Any] = path.split(".")
    elif isinstance(path, list):
        parts = path
    else:
        raise _bad(where, "a path is a key, a dotted string or a list of keys")
    if not parts or len(parts) > MAX_PATH:
        raise _bad(where, f"a path has 1-{MAX_PATH} keys")
    for part in parts:
        if not isinstance(part, str) or not part:
            raise _bad(where, "every key of a path is a non-empty string")
        if part.startswith("$"):
            raise _bad(where, "keys starting with '$' are reserved")
    return tuple(parts)


def _too_deep(where: str) -> Invalid:
    return _bad(where, f"nested deeper than {MAX_DEPTH} levels")


def check_value(value: Any, where: str, depth: int = 1) -> None:
    """Refuse a value to store that holds a ``$`` key anywhere inside (the variables never hold directives) or
    nests deeper than `MAX_DEPTH` levels (``depth``: the level of ``value`` itself)."""
    if isinstance(value, (dict, list)) and depth > MAX_DEPTH:
        raise _too_deep(where)
    if isinstance(value, dict):
        for key, child in value.items():
            if not isinstance(key, str) or key.startswith("$"):
                raise _bad(f"{where}.{key}", "keys starting with '$' are reserved")
            check_value(child, f"{where}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            check_value(child, f"{where}[{index}]", depth + 1)


def check_patch(patch: Any, field: str = "vars_patch", depth: int = 1) -> None:
    """Refuse a malformed patch with `Invalid` naming where (``vars_patch.stats.$delete[0]``)."""
    if not isinstance(patch, dict):
        raise _bad(field, "must be a JSON object")
    if depth > MAX_DEPTH:
        raise _too_deep(field)
    replaced: set[str] = set()
    for key, value in patch.items():
        where = f"{field}.{key}"
        if key == DELETE:
            if not isinstance(value, list):
                raise _bad(where, "must be a list of paths")
            for index, path in enumerate(value):
                _segments(path, f"{where}[{index}]")
        elif key == REPLACE:
            if not isinstance(value, dict):
                raise _bad(where, "must be an object of keys to replace")
            for name, child in value.items():
                if name.startswith("$"):
                    raise _bad(f"{where}.{name}", "keys starting with '$' are reserved")
                check_value(child, f"{where}.{name}", depth + 1)
            replaced = set(value)
        elif key.startswith("$"):
            raise _bad(where, "unknown directive (only $replace and $delete)")
        elif isinstance(value, dict):
            check_patch(value, where, depth + 1)
        else:
            check_value(value, where, depth + 1)
    both = sorted(replaced.intersection(k for k in patch if not k.startswith("$")))
    if both:
        raise _bad(f"{field}.{both[0]}", "is both in $replace and merged at the same level")


def patch_problems(patch: Any, field: str = "vars_patch") -> list[str]:
    """`check_patch` as a list of problems (empty when the patch is well formed), for a model-answer check."""
    try:
        check_patch(patch, field)
    except Invalid as exc:
        return [exc.message]
    return []


def without_meta(vars_patch: Mapping[str, Any]) -> dict[str, Any]:
    """The patch to merge: a proposal's ``vars_patch`` without its ``$narrator`` record."""
    return {k: v for k, v in vars_patch.items() if k != META}


def _delete(target: dict[str, Any], path: tuple[str, ...]) -> None:
    node: Any = target
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            return
    node.pop(path[-1], None)


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    for path in patch.get(DELETE, ()):
        _delete(target, _segments(path, DELETE))
    for key, value in patch.get(REPLACE, {}).items():
        target[key] = copy.deepcopy(value)
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if isinstance(value, dict):
            child = target.get(key)
            if not isinstance(child, dict):
                child = target[key] = {}
            _merge(child, value)
        else:
            target[key] = copy.deepcopy(value)


def apply_patch(variables: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """The variables after ``patch`` (checked first: `Invalid` for a malformed one); neither input is changed."""
    check_patch(patch)
    result = copy.deepcopy(dict(variables))
    _merge(result, patch)
    return result
