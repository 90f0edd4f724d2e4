"""Hypothesis strategies for scenario scenes the collaboration layout must carry, and a strict JSON comparison.

`scenes()` draws scenes the scenario validator accepts (unique node ids, a real ``start``, choice targets
that exist, unique choice keys, declared variables for actions) with the parts the layout treats apart:
unicode ``text``, choices with ``label`` and extra keys, ``actions``, ``variables``, nested metadata and
unknown ``x-*`` keys. `edited(scene)` draws a second version of a scene, as an outside editor would make it.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

from hypothesis import strategies as st

MAX_INT = 2**53
NODE_TYPES = ("dialogue", "narration", "choice", "jump", "end")

# Surrogates are excluded (they are not text); everything else, emoji and combining marks included.
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=12) | st.sampled_from(
    ["", "e\u0301", "日本語のテキスト", "👩‍👩‍👧 family", "a😀b", "Ω≈ç√∫", "\x00nul"]
)
keys = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=6)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-MAX_INT, MAX_INT)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)
objects = st.dictionaries(keys, json_values, max_size=3)
# No "-" in node ids, so the generated choice ids ("c-1") never equal a target (the choice keys stay unique).
node_ids = st.text("abcxyz019_éλ日", min_size=1, max_size=4)
variable_names = st.sampled_from(["gold", "met_ann", "route", "trust"])


def canonical(value: Any) -> str:
    """JSON text that equates what JSON equates: numbers by value (``1.0`` is ``1``), booleans apart,
    object keys in any order, list order kept."""

    def norm(v: Any) -> Any:
        if isinstance(v, float) and math.isfinite(v) and v.is_integer() and abs(v) <= MAX_INT:
            return int(v)
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return [norm(x) for x in v]
        return v

    return json.dumps(norm(value), sort_keys=True, ensure_ascii=False)


@st.composite
def _choice(draw: st.DrawFn, target: str, choice_id: str | None, variables: list[str]) -> dict[str, Any]:
    choice: dict[str, Any] = {"target": target}
    if choice_id is not None:
        choice["id"] = choice_id
    if draw(st.booleans()):
        choice["label"] = draw(texts)
    if draw(st.booleans()):
        choice["weight"] = draw(st.integers(0, 5) | st.floats(0, 5))
    if draw(st.booleans()):
        choice["metadata"] = draw(objects)
    if draw(st.booleans()) and variables:
        choice["actions"] = [{"type": "set", "key": draw(st.sampled_from(variables)), "value": draw(scalars)}]
    if draw(st.booleans()):
        choice["x-note"] = draw(json_values)
    return choice


@st.composite
def _node(draw: st.DrawFn, node_id: str, ids: list[str], variables: list[str]) -> dict[str, Any]:
    node: dict[str, Any] = {"id": node_id}
    if draw(st.booleans()):
        node["type"] = draw(st.sampled_from(NODE_TYPES[:3]))
    if draw(st.integers(0, 3)):
        node["text"] = draw(texts)
    if draw(st.booleans()):
        node["speaker"] = draw(st.none() | texts)
    if draw(st.booleans()):
        node["data"] = draw(objects)
    if draw(st.booleans()):
        node["end"] = draw(st.booleans())
    if draw(st.booleans()) and variables:
        kind = draw(st.sampled_from(["set", "increment", "clear"]))
        action = {"type": kind, "key": draw(st.sampled_from(variables))}
        node["actions"] = [action | ({"value": draw(scalars)} if kind == "set" else {"amount": 1})]
    if draw(st.booleans()):
        targets = draw(st.lists(st.sampled_from(ids), max_size=3, unique=True))
        with_ids = draw(st.booleans())
        node["choices"] = [
            draw(_choice(target, f"c-{i}" if with_ids else None, variables)) for i, target in enumerate(targets)
        ]
    if draw(st.booleans()):
        node["x-" + draw(keys)] = draw(json_values)
    return node


@st.composite
def scenes(draw: st.DrawFn, max_nodes: int = 5) -> dict[str, Any]:
    """A scene the scenario validator accepts, drawn with the shapes the layout stores apart."""
    ids = draw(st.lists(node_ids, min_size=1, max_size=max_nodes, unique=True))
    # Numeric defaults, so increment actions on them are fine.
    variables = draw(st.dictionaries(variable_names, st.integers(-100, 100) | st.floats(-1, 1), max_size=3))
    names = sorted(variables)
    scene: dict[str, Any] = {
        "id": draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,8}", fullmatch=True)),
        "start": draw(st.sampled_from(ids)),
        "nodes": [draw(_node(node_id, ids, names)) for node_id in ids],
    }
    if draw(st.booleans()) or variables:
        scene["variables"] = variables
    if draw(st.booleans()):
        scene["title"] = draw(texts)
    if draw(st.booleans()):
        scene["metadata"] = draw(objects)
    if draw(st.booleans()):
        scene["default_pov"] = draw(st.sampled_from(["narrator", "ann"]))
    if draw(st.booleans()):
        scene["x-" + draw(keys)] = draw(json_values)
    return scene


def _typed(draw: st.DrawFn, old: str) -> str:
    """``old`` retyped: an insert, a delete or a replacement somewhere in it."""
    a = draw(st.integers(0, len(old)))
    b = draw(st.integers(a, len(old)))
    return old[:a] + draw(texts) + old[b:]


@st.composite
def edited(draw: st.DrawFn, scene: dict[str, Any]) -> dict[str, Any]:
    """A later version of ``scene`` (still valid): texts retyped, fields changed, nodes added, removed and
    reordered, choices changed — the outside edits apply_scene merges into a live room."""
    out = copy.deepcopy(scene)
    nodes: list[dict[str, Any]] = out["nodes"]
    for node in nodes:
        if "text" in node and draw(st.booleans()):
            node["text"] = _typed(draw, node["text"])
        for choice in node.get("choices", []):
            if "label" in choice and draw(st.booleans()):
                choice["label"] = _typed(draw, choice["label"])
        if draw(st.integers(0, 4)) == 0:
            node["speaker"] = draw(texts)
        if node.get("choices") and draw(st.integers(0, 3)) == 0:
            node["choices"].pop(draw(st.integers(0, len(node["choices"]) - 1)))
    if len(nodes) > 1 and draw(st.booleans()):
        gone = nodes.pop(draw(st.integers(0, len(nodes) - 1)))
        for node in nodes:
            if "choices" in node:
                node["choices"] = [c for c in node["choices"] if c["target"] != gone["id"]]
        out["start"] = nodes[0]["id"]
    for extra in draw(st.lists(node_ids, max_size=2, unique=True)):
        if all(node["id"] != extra for node in nodes):
            nodes.insert(draw(st.integers(0, len(nodes))), {"id": extra, "text": draw(texts)})
    if draw(st.booleans()):
        nodes[:] = draw(st.permutations(nodes))
    if draw(st.booleans()):
        out["title"] = draw(texts)
    if "metadata" in out and draw(st.booleans()):
        del out["metadata"]
    if draw(st.booleans()):
        out["variables"] = dict(out.get("variables", {})) | {"gold": draw(st.integers(0, 9))}
    return out
