"""The document layout: a scenario scene as a Yjs document (pycrdt), and back.

One scene is one `Doc` with three root types (the contract JavaScript clients rely on; docs/collab.md):

- ``scene`` (`Map`): every top-level scene field except ``nodes`` as a plain JSON value, except
  ``variables``, a nested `Map` (variable name -> plain JSON value);
- ``nodes`` (`Map`): node id -> `Map`; in it ``text`` is a `Text`, ``choices`` an `Array` of `Map`
  (``label`` a `Text`, every other field a plain value), ``actions`` an `Array` of plain JSON values and
  every other field (``id`` included) a plain JSON value;
- ``order`` (`Array`): node ids in display order.

Reading is total: whatever concurrent clients made of the document, `to_scene` returns JSON (an id listed
twice in ``order`` keeps its first place, an entry with no node is dropped, a node missing from ``order``
is appended in id order; shared types where plain values were expected are read as their JSON). Writing
is minimal: the edit functions change only what differs, so concurrent typing in a `Text` survives an
outside edit merged into the room. pycrdt stores every number as a float: an integral float read back
becomes an int, and integers beyond +-2**53 (which JavaScript cannot hold exactly) are refused.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from comfyvn.errors import Conflict, Invalid, TooLarge, Unprocessable, clip
from pycrdt import Array, Doc, Map, Text

__all__ = [
    "NODES",
    "ORDER",
    "SCENE",
    "apply_scene",
    "check_node",
    "check_scene",
    "check_value",
    "delete_field",
    "fill",
    "new_doc",
    "remove_node",
    "replace_order",
    "set_field",
    "set_text",
    "to_scene",
    "upsert_node",
]

SCENE, NODES, ORDER = "scene", "nodes", "order"
VARIABLES = "variables"
MAX_INT = 2**53
MAX_DEPTH = 64
# Inserts per transaction: a pycrdt transaction grows super-linearly with its edits (measured: one
# transaction appending 10,000 ids takes about 3 s, a hundred transactions of 100 take 0.03 s).
STEP = 100
# Known fields first, in the schema's order; the rest sorted (Yjs maps do not keep insertion order).
_SCENE_KEYS = ("id", "title", "description", "start", "default_pov", "metadata", "variables", "cast", "background")
_NODE_KEYS = ("id", "type", "speaker", "pov", "text", "voice", "background", "music", "actions", "choices", "end")
_CHOICE_KEYS = ("id", "label", "target", "description", "weight", "conditions", "actions", "visible_to", "metadata")
_MISSING = object()


# -- checks ------------------------------------------------------------------------------------------


def _path(base: str, key: str | int) -> str:
    part = str(key).replace("~", "~0").replace("/", "~1")
    return part if not base or base == "/" else f"{base}/{part}"


def check_value(value: Any, field: str, *, depth: int = 0) -> None:
    """Refuse what a Yjs document cannot hold as a plain JSON value: non-JSON types, integers beyond
    +-2**53, NaN and infinities, strings with lone surrogates, nesting deeper than `MAX_DEPTH`."""
    if depth > MAX_DEPTH:
        raise TooLarge(f"value nested deeper than {MAX_DEPTH} levels", field=field)
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if abs(value) > MAX_INT:
            raise Unprocessable("integers beyond +-2**53 cannot be shared exactly with JavaScript", field=field)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise Unprocessable("NaN and infinities are not JSON numbers", field=field)
    elif isinstance(value, str):
        _check_string(value, field)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_value(item, _path(field, i), depth=depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise Invalid("object keys must be strings", field=field)
            _check_string(key, field)
            check_value(item, _path(field, key), depth=depth + 1)
    else:
        raise Invalid(f"not a JSON value ({type(value).__name__})", field=field)


def _check_string(value: str, field: str) -> None:
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Unprocessable("text with a lone UTF-16 surrogate cannot be stored", field=field) from None


def _check_text(value: Any, field: str) -> None:
    if not isinstance(value, str):
        raise Invalid(f"must be a string (it is shared as collaborative text), not {_kind(value)}", field=field)
    _check_string(value, field)


def _as_dict(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) and not isinstance(value, dict) else value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def check_node(node: Any, *, field: str = "node") -> dict[str, Any]:
    """Refuse a node the layout cannot hold (see `check_scene`); return it unchanged."""
    if not isinstance(node, dict):
        raise Invalid(f"a node must be an object, not {_kind(node)}", field=field)
    if not isinstance(node.get("id"), str):
        raise Invalid("a node needs a string id", field=_path(field, "id"))
    for key, value in node.items():
        where = _path(field, key) if isinstance(key, str) else field
        if key == "text":
            _check_text(value, where)
        elif key == "choices":
            if not isinstance(value, list):
                raise Invalid("choices must be an array of objects", field=where)
            for i, choice in enumerate(value):
                if not isinstance(choice, dict):
                    raise Invalid(f"a choice must be an object, not {_kind(choice)}", field=_path(where, i))
                if "label" in choice:
                    _check_text(choice["label"], _path(_path(where, i), "label"))
        elif key == "actions" and not isinstance(value, list):
            raise Invalid("actions must be an array", field=where)
    check_value(node, field, depth=1)
    return node


def check_scene(scene: Any) -> dict[str, Any]:
    """Refuse a scene the layout cannot represent; return it unchanged.

    `Invalid` for the wrong shape (not an object, ``nodes`` not an array of objects, a node without a string
    id, ``text`` or a choice ``label`` not a string, ``variables`` not an object, ``choices``/``actions`` not
    arrays, a non-JSON value); `Unprocessable` for content Yjs or JavaScript cannot hold (duplicate node ids,
    integers beyond +-2**53, NaN, lone surrogates); `TooLarge` past `MAX_DEPTH`. ``field`` names the place
    (``nodes/3/id``); this is not the scenario validator (a missing ``start`` is fine here).
    """
    if not isinstance(scene, dict):
        raise Invalid(f"a scene must be an object, not {_kind(scene)}", field="/")
    nodes = scene.get(NODES)
    if not isinstance(nodes, list):
        raise Invalid("a scene needs a nodes array", field=NODES)
    for key, value in scene.items():
        if not isinstance(key, str):
            raise Invalid("object keys must be strings", field="/")
        if key == VARIABLES and not isinstance(value, dict):
            raise Invalid(f"variables must be an object, not {_kind(value)}", field=VARIABLES)
        if key != NODES:
            _check_string(key, "/")
            check_value(value, _path("", key), depth=1)
    first: dict[str, int] = {}
    for i, node in enumerate(nodes):
        check_node(node, field=f"nodes/{i}")
        node_id = node["id"]
        if node_id in first:
            raise Unprocessable(
                f"node id {clip(node_id)!r} is used twice (first at nodes/{first[node_id]})", field=f"nodes/{i}/id"
            )
        first[node_id] = i
    return scene


# -- reading -----------------------------------------------------------------------------------------


def _roots(doc: Doc[Any]) -> tuple[Map[Any], Map[Any], Array[Any]]:
    return doc.get(SCENE, type=Map), doc.get(NODES, type=Map), doc.get(ORDER, type=Array)


def _json(value: Any, depth: int = 0) -> Any:
    """Any stored value as JSON: shared types converted, integral floats as ints, object keys sorted."""
    if depth > 2 * MAX_DEPTH:
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return int(value) if value.is_integer() and abs(value) <= MAX_INT else value
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Text):
        return str(value)
    if isinstance(value, Map | dict):
        return {str(k): _json(v, depth + 1) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, Array | list | tuple):
        return [_json(item, depth + 1) for item in value]
    # XML types read as their text; binary, sub-documents and undefined have no JSON form.
    return str(value) if hasattr(value, "type_name") and not isinstance(value, Doc) else None


def _ordered(obj: dict[str, Any], known: Sequence[str]) -> dict[str, Any]:
    out = {key: obj[key] for key in known if key in obj}
    out.update((key, value) for key, value in obj.items() if key not in out)
    return out


def _is_node(value: Any) -> bool:
    return isinstance(value, Map | dict)


def _present(nodes: Map[Any]) -> dict[str, Any]:
    return {key: value for key, value in nodes.items() if _is_node(value)}


def _effective_order(raw: Sequence[Any], present: Mapping[str, Any]) -> list[str]:
    """``order`` as to_scene reads it: first place wins, dangling entries dropped, missing nodes appended."""
    seen: dict[str, None] = {}
    for entry in raw:
        if isinstance(entry, str) and entry in present:
            seen[entry] = None
    seen.update((key, None) for key in sorted(k for k in present if k not in seen))
    return list(seen)


def _node_json(node_id: str, value: Any) -> dict[str, Any]:
    node: dict[str, Any] = _json(value)
    node["id"] = node_id
    choices = node.get("choices")
    if isinstance(choices, list):
        node["choices"] = [_ordered(c, _CHOICE_KEYS) if isinstance(c, dict) else c for c in choices]
    return _ordered(node, _NODE_KEYS)


def to_scene(doc: Doc[Any]) -> dict[str, Any]:
    """The scene the document holds (deterministic key order: known fields first, then sorted). Not from
    inside an observer callback of ``doc``: pycrdt holds the transaction then ("Already borrowed")."""
    scene_map, nodes, order = _roots(doc)
    with doc.transaction():
        scene = {key: _json(scene_map[key]) for key in sorted(scene_map.keys()) if key != NODES}
        present = _present(nodes)
        listed = [_node_json(key, present[key]) for key in _effective_order(list(order), present)]
    scene = _ordered(scene, _SCENE_KEYS)
    scene[NODES] = listed
    return scene


# -- writing -----------------------------------------------------------------------------------------


def _common_prefix(a: str, b: str) -> int:
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:  # binary search with slice comparisons: C speed on long texts
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def set_text(text: Text, value: str) -> bool:
    """Make an integrated `Text` read ``value`` by one delete and one insert around the common prefix and
    suffix (characters, translated to the UTF-8 byte offsets pycrdt uses), so other edits survive."""
    _check_text(value, "text")
    old = str(text)
    if old == value:
        return False
    prefix = _common_prefix(old, value)
    suffix = _common_prefix(old[prefix:][::-1], value[prefix:][::-1])
    start = len(old[:prefix].encode("utf-8"))
    removed = len(old[prefix : len(old) - suffix].encode("utf-8"))
    inserted = value[prefix : len(value) - suffix]
    with text.doc.transaction():
        if removed:
            del text[start : start + removed]
        if inserted:
            text.insert(start, inserted)
    return True


def _same(a: Any, b: Any) -> bool:
    """JSON equality: numbers by value, booleans apart from numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _put_plain(target: Map[Any], key: str, value: Any) -> bool:
    current = target.get(key, _MISSING)
    if current is not _MISSING and not isinstance(current, Map | Array | Text) and _same(_json(current), value):
        return False
    target[key] = value
    return True


def _put_text(target: Map[Any], key: str, value: str) -> bool:
    current = target.get(key)
    if isinstance(current, Text):
        return set_text(current, value)
    target[key] = Text(value)
    return True


def _diff(old: Sequence[Hashable], new: Sequence[Hashable]) -> Sequence[tuple[str, int, int, int, int]]:
    return difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes()


def _edit_array(
    array: Array[Any],
    old: Sequence[Hashable],
    new: Sequence[Hashable],
    make: Callable[[int], Any],
    update: Callable[[int, int], bool] | None = None,
    origin: Any = None,
) -> bool:
    """Turn ``array`` (keyed ``old``) into ``new``: keep the longest common run, delete and insert the rest;
    ``update(i, j)`` reconciles a kept element in place, ``make(j)`` builds an inserted one. The changes go
    in transactions of about `STEP` edits each (or join the caller's transaction)."""
    ops = _diff(old, new)
    changed = False
    if update is not None:  # in place, so the indices below stay valid
        for tag, i1, i2, j1, _ in ops:
            if tag == "equal":
                for k in range(i2 - i1):
                    changed |= update(i1 + k, j1 + k)
    # From the end, so earlier indices hold; long inserts cut into pieces inserted last-first at one index.
    pieces: list[tuple[int, int, range]] = []
    for tag, i1, i2, j1, j2 in reversed(ops):
        if tag != "equal":
            starts = list(reversed(range(j1, j2, STEP))) or [j2]
            pieces += [(i1, i2 - i1 if n == 0 else 0, range(j, min(j + STEP, j2))) for n, j in enumerate(starts)]
    while pieces:
        size, batch = 0, 0
        while batch < len(pieces) and (not batch or size + len(pieces[batch][2]) + 1 <= STEP):
            size, batch = size + len(pieces[batch][2]) + 1, batch + 1
        with array.doc.transaction(origin=origin):
            for index, deleted, inserted in pieces[:batch]:
                if deleted:
                    del array[index : index + deleted]
                for k, j in enumerate(inserted):
                    array.insert(index + k, make(j))
        del pieces[:batch]
        changed = True
    return changed


def _choice_prelim(choice: Mapping[str, Any]) -> Map[Any]:
    return Map({key: Text(value) if key == "label" else value for key, value in choice.items()})


def _node_prelim(node: Mapping[str, Any]) -> Map[Any]:
    content: dict[str, Any] = {}
    for key, value in node.items():
        if key == "text":
            content[key] = Text(value)
        elif key == "choices":
            content[key] = Array([_choice_prelim(choice) for choice in value])
        elif key == "actions":
            content[key] = Array(list(value))
        else:
            content[key] = value
    return Map(content)


def _put_map(target: Map[Any], fields: Mapping[str, Any], texts: Sequence[str] = ()) -> bool:
    changed = False
    for key in [key for key in list(target.keys()) if key not in fields]:
        del target[key]
        changed = True
    for key, value in fields.items():
        changed |= _put_text(target, key, value) if key in texts else _put_plain(target, key, value)
    return changed


def _put_choices(node: Map[Any], choices: list[dict[str, Any]]) -> bool:
    current = node.get("choices")
    if not isinstance(current, Array):
        node["choices"] = Array([_choice_prelim(choice) for choice in choices])
        return True
    old = list(current)
    old_ids = [c.get("id") if isinstance(c, Map) else None for c in old]
    new_ids = [c.get("id") for c in choices]
    by_id = all(isinstance(i, str) for i in old_ids + new_ids)
    by_id = by_id and len(set(old_ids)) == len(old_ids) and len(set(new_ids)) == len(new_ids)
    old_keys: list[Hashable] = list(old_ids) if by_id else list(range(len(old)))
    new_keys: list[Hashable] = list(new_ids) if by_id else list(range(len(choices)))

    def update(i: int, j: int) -> bool:
        if isinstance(old[i], Map):
            return _put_map(old[i], choices[j], texts=("label",))
        del current[i]
        current.insert(i, _choice_prelim(choices[j]))
        return True

    return _edit_array(current, old_keys, new_keys, lambda j: _choice_prelim(choices[j]), update)


def _put_actions(node: Map[Any], actions: list[Any]) -> bool:
    current = node.get("actions")
    if not isinstance(current, Array):
        node["actions"] = Array(list(actions))
        return True
    old = [json.dumps(_json(item), sort_keys=True) for item in current]
    new = [json.dumps(_json(item), sort_keys=True) for item in actions]
    return _edit_array(current, old, new, lambda j: actions[j])


def _write_node(nodes: Map[Any], node: Mapping[str, Any]) -> bool:
    current = nodes.get(node["id"])
    if not isinstance(current, Map):
        nodes[node["id"]] = _node_prelim(node)
        return True
    changed = False
    for key in [key for key in list(current.keys()) if key not in node]:
        del current[key]
        changed = True
    for key, value in node.items():
        if key == "text":
            changed |= _put_text(current, key, value)
        elif key == "choices":
            changed |= _put_choices(current, value)
        elif key == "actions":
            changed |= _put_actions(current, value)
        else:
            changed |= _put_plain(current, key, value)
    return changed


def _set_order(order: Array[Any], target: Sequence[str], origin: Any = None) -> bool:
    raw = list(order)
    if raw == list(target):
        return False
    # An entry that is not a string (a foreign client's) gets a key equal to nothing, so it is deleted.
    keys: list[Hashable] = [entry if isinstance(entry, str) else object() for entry in raw]
    return _edit_array(order, keys, target, lambda j: target[j], origin=origin)


def _put_field(scene_map: Map[Any], field: str, value: Any) -> bool:
    if field != VARIABLES:
        return _put_plain(scene_map, field, value)
    current = scene_map.get(VARIABLES)
    if not isinstance(current, Map):
        scene_map[VARIABLES] = Map(dict(value))
        return True
    return _put_map(current, value)


def _check_field(field: Any, value: Any = None) -> None:
    if not isinstance(field, str):
        raise Invalid("a scene field name must be a string", field="field")
    if field == NODES:
        raise Invalid("nodes are edited with node operations, not as a scene field", field=NODES)
    _check_string(field, "field")
    if field == VARIABLES and not isinstance(value, dict):
        raise Invalid(f"variables must be an object, not {_kind(value)}", field=VARIABLES)


def fill(doc: Doc[Any], scene: Mapping[str, Any]) -> None:
    """Write ``scene`` into an empty document (fields in one transaction, one per node, then the order in
    transactions of `STEP` ids).
    `Conflict` when the document already holds something (use `apply_scene` there)."""
    checked = check_scene(_as_dict(scene))
    scene_map, nodes, order = _roots(doc)
    if len(scene_map) or len(nodes) or len(order):
        raise Conflict("the document is not empty; apply_scene merges into a live document")
    with doc.transaction():
        for key, value in checked.items():
            if key != NODES:
                _put_field(scene_map, key, value)
    for node in checked[NODES]:
        with doc.transaction():
            nodes[node["id"]] = _node_prelim(node)
    _set_order(order, [node["id"] for node in checked[NODES]])


def new_doc(scene: Mapping[str, Any], *, client_id: int | None = None) -> Doc[Any]:
    """A fresh document holding ``scene`` (checked first)."""
    doc: Doc[Any] = Doc() if client_id is None else Doc(client_id=client_id)
    fill(doc, scene)
    return doc


def set_field(doc: Doc[Any], field: str, value: Any, *, origin: Any = None) -> bool:
    """Set one top-level scene field (JSON ``null`` is a value; `delete_field` removes one). ``variables``
    is diffed per variable; ``nodes`` is refused."""
    _check_field(field, value)
    check_value(value, field)
    scene_map = doc.get(SCENE, type=Map)
    with doc.transaction(origin=origin):
        return _put_field(scene_map, field, value)


def delete_field(doc: Doc[Any], field: str, *, origin: Any = None) -> bool:
    """Remove one top-level scene field; False when it was not there."""
    _check_field(field, {})
    scene_map = doc.get(SCENE, type=Map)
    with doc.transaction(origin=origin):
        if field not in scene_map:
            return False
        del scene_map[field]
        return True


def upsert_node(
    doc: Doc[Any],
    node: Mapping[str, Any],
    *,
    index: int | None = None,
    after: str | None = None,
    origin: Any = None,
) -> bool:
    """Make the node with ``node["id"]`` read exactly ``node`` (fields it lacks are removed), diffing its text
    and choices in place. A new node goes at ``index`` of the display order, right ``after`` the named
    node, or last; an existing node keeps its place unless ``index`` or ``after`` is given."""
    checked = check_node(_as_dict(node))
    if index is not None and after is not None:
        raise Invalid("give index or after, not both", field="index")
    if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
        raise Invalid("index must be a non-negative integer", field="index")
    node_id: str = checked["id"]
    _, nodes, order = _roots(doc)
    with doc.transaction(origin=origin):
        if after is not None and (after == node_id or not isinstance(after, str) or not _is_node(nodes.get(after))):
            if after != node_id:
                raise Unprocessable(f"no node {clip(str(after))!r} to insert after", field="after")
            after = None  # after itself: stay where it is
        existed = _is_node(nodes.get(node_id))
        changed = _write_node(nodes, checked)
        if index is None and after is None:
            if existed:  # its place (or its absence from the order, read as last) stays: no O(nodes) work
                return changed
            raw = order.to_py() or []
            for i in reversed(range(len(raw))):
                if raw[i] == node_id:  # a stale entry would hold the new node's place
                    del order[i]
            order.append(node_id)
            return True
        target = [key for key in _effective_order(order.to_py() or [], _present(nodes)) if key != node_id]
        target.insert(min(index, len(target)) if index is not None else target.index(str(after)) + 1, node_id)
        return _set_order(order, target, origin) | changed


def remove_node(doc: Doc[Any], node_id: str, *, origin: Any = None) -> bool:
    """Delete a node and every ``order`` entry naming it; False when there was none."""
    if not isinstance(node_id, str):
        raise Invalid("a node id is a string", field="node_id")
    _, nodes, order = _roots(doc)
    with doc.transaction(origin=origin):
        changed = node_id in nodes
        if changed:
            del nodes[node_id]
        raw = list(order)
        for i in reversed(range(len(raw))):
            if raw[i] == node_id:
                del order[i]
                changed = True
        return changed


def replace_order(doc: Doc[Any], order: Sequence[str], *, origin: Any = None) -> bool:
    """Set the display order; ``order`` must name every node exactly once. Entries move by the fewest
    deletes and inserts the diff finds, in one transaction unless there are more than about `STEP`."""
    if isinstance(order, str) or not isinstance(order, Sequence):
        raise Invalid("order must be an array of node ids", field="order")
    target = list(order)
    _, nodes, array = _roots(doc)
    present = _present(nodes)
    seen: set[str] = set()
    for i, entry in enumerate(target):
        if not isinstance(entry, str) or entry not in present:
            raise Unprocessable(f"no node {clip(str(entry))!r}", field=f"order/{i}")
        if entry in seen:
            raise Unprocessable(f"node {clip(entry)!r} is listed twice", field=f"order/{i}")
        seen.add(entry)
    if len(seen) != len(present):
        missing = sorted(key for key in present if key not in seen)
        raise Unprocessable(f"order leaves out {len(missing)} node(s), e.g. {clip(missing[0])!r}", field="order")
    return _set_order(array, target, origin)


def apply_scene(doc: Doc[Any], scene: Mapping[str, Any], *, origin: Any = None) -> bool:
    """Edit ``doc`` until ``to_scene(doc) == scene`` by minimal changes: fields set or deleted, nodes removed
    or reconciled in place (texts diffed, never recreated), the order moved. One transaction for the
    fields, one per changed node, then the order's (one per `STEP` order edits)."""
    checked = check_scene(_as_dict(scene))
    scene_map, nodes, order = _roots(doc)
    changed = False
    with doc.transaction(origin=origin):
        for key in [key for key in list(scene_map.keys()) if key == NODES or key not in checked]:
            del scene_map[key]
            changed = True
        for key, value in checked.items():
            if key != NODES:
                changed |= _put_field(scene_map, key, value)
    wanted = {node["id"] for node in checked[NODES]}
    for key in [key for key in list(nodes.keys()) if key not in wanted]:
        with doc.transaction(origin=origin):
            del nodes[key]
            changed = True
    for node in checked[NODES]:
        with doc.transaction(origin=origin):
            changed |= _write_node(nodes, node)
    changed |= _set_order(order, [node["id"] for node in checked[NODES]], origin)
    return changed
