"""The document layout contract: scene JSON <-> pycrdt Doc, minimal edits, concurrent replicas."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest
from comfyvn.errors import ComfyVNError, Conflict, Invalid, TooLarge, Unprocessable
from comfyvn_collab import layout
from comfyvn_collab.layout import (
    apply_scene,
    check_scene,
    delete_field,
    fill,
    new_doc,
    remove_node,
    replace_order,
    set_field,
    set_text,
    to_scene,
    upsert_node,
)
from comfyvn_scenario.validation import validate_scene
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text

from .scenes import canonical, edited, json_values, scenes, texts

SCENE: dict[str, Any] = {
    "id": "intro",
    "title": "Intro",
    "start": "a",
    "variables": {"gold": 1, "met": False},
    "metadata": {"author": "ann", "tags": ["x", 2]},
    "nodes": [
        {"id": "a", "speaker": "ann", "text": "Hello there", "choices": [{"label": "Go", "target": "b"}]},
        {"id": "b", "text": "日本語 😀 e\u0301", "actions": [{"type": "set", "key": "met", "value": True}]},
        {"id": "c", "type": "end", "end": True},
    ],
}


def replica(doc: Doc[Any], client_id: int) -> Doc[Any]:
    """A second client's copy of ``doc``, synced over the wire format."""
    other: Doc[Any] = Doc(client_id=client_id)
    other.apply_update(doc.get_update())
    return other


def sync(a: Doc[Any], b: Doc[Any]) -> None:
    """Exchange what each has that the other lacks (state-vector diffs, as y-websocket does)."""
    to_b = a.get_update(b.get_state())
    to_a = b.get_update(a.get_state())
    b.apply_update(to_b)
    a.apply_update(to_a)


def updates_of(doc: Doc[Any]) -> list[bytes]:
    seen: list[bytes] = []
    doc.observe(lambda event: seen.append(event.update))
    return seen


def node_of(doc: Doc[Any], node_id: str) -> Map[Any]:
    node = doc.get(layout.NODES, type=Map)[node_id]
    assert isinstance(node, Map)
    return node


def text_of(doc: Doc[Any], node_id: str) -> Text:
    text = node_of(doc, node_id)["text"]
    assert isinstance(text, Text)
    return text


# -- round trips -------------------------------------------------------------------------------------


@settings(max_examples=20)
@given(scenes())
def test_generated_scenes_are_valid_scenarios(scene: dict[str, Any]) -> None:
    # The strategy stands for "every valid scene" only if the scenario validator agrees.
    report = validate_scene(scene)
    assert report.valid, report.errors


@given(scenes())
def test_a_scene_round_trips_through_a_document(scene: dict[str, Any]) -> None:
    before = copy.deepcopy(scene)
    assert canonical(to_scene(new_doc(scene))) == canonical(scene)
    assert scene == before  # the input is not touched


@given(scenes())
def test_the_layout_survives_the_wire(scene: dict[str, Any]) -> None:
    doc = new_doc(scene, client_id=1)
    fresh: Doc[Any] = Doc(client_id=2)
    fresh.apply_update(doc.get_update())
    assert canonical(to_scene(fresh)) == canonical(scene)
    assert isinstance(fresh.get(layout.ORDER, type=Array), Array)
    for node in scene["nodes"]:
        if "text" in node:
            assert str(text_of(fresh, node["id"])) == node["text"]


def test_the_stored_shapes_are_the_published_contract() -> None:
    doc = new_doc(SCENE)
    scene_map = doc.get(layout.SCENE, type=Map)
    assert scene_map["title"] == "Intro" and "nodes" not in scene_map
    assert isinstance(scene_map["variables"], Map) and scene_map["variables"]["met"] is False
    a = node_of(doc, "a")
    assert isinstance(a["text"], Text) and a["speaker"] == "ann" and a["id"] == "a"
    choices = a["choices"]
    assert isinstance(choices, Array) and isinstance(choices[0], Map) and isinstance(choices[0]["label"], Text)
    assert choices[0]["target"] == "b"
    actions = node_of(doc, "b")["actions"]
    assert isinstance(actions, Array) and actions[0] == {"type": "set", "key": "met", "value": True}
    assert list(doc.get(layout.ORDER, type=Array)) == ["a", "b", "c"]


def test_numbers_read_back_by_value_integral_floats_as_ints() -> None:
    values = {"one": 1, "onef": 1.0, "half": 2.5, "big": 1e300, "yes": True}
    scene: dict[str, Any] = {"nodes": [{"id": "a", "data": values}], "edge": [2**53, -(2**53), 0.1]}
    out = to_scene(new_doc(scene))
    data = out["nodes"][0]["data"]
    assert data["one"] == 1 and type(data["one"]) is int
    assert data["onef"] == 1 and type(data["onef"]) is int
    assert data["half"] == 2.5 and data["big"] == 1e300 and type(data["big"]) is float
    assert data["yes"] is True
    assert out["edge"] == [2**53, -(2**53), 0.1] and type(out["edge"][0]) is int


def test_key_order_is_deterministic_and_known_fields_come_first() -> None:
    scene = {"zeta": 1, "nodes": [{"x-b": 1, "text": "t", "id": "a", "speaker": None, "aa": 2}], "id": "s"}
    scene |= {"start": "a", "metadata": {"b": 1, "a": {"d": 1, "c": 2}}}
    dumps = {json.dumps(to_scene(new_doc(scene))) for _ in range(5)}
    assert len(dumps) == 1
    out = to_scene(new_doc(scene))
    assert list(out) == ["id", "start", "metadata", "zeta", "nodes"]
    assert list(out["nodes"][0]) == ["id", "speaker", "text", "aa", "x-b"]
    assert list(out["metadata"]) == ["a", "b"] and list(out["metadata"]["a"]) == ["c", "d"]


# -- check_scene -------------------------------------------------------------------------------------

REFUSED: list[tuple[Any, type[ComfyVNError], str]] = [
    ([], Invalid, "/"),
    ({"id": "s"}, Invalid, "nodes"),
    ({"nodes": {"a": {}}}, Invalid, "nodes"),
    ({"nodes": [{"id": "a"}, 1]}, Invalid, "nodes/1"),
    ({"nodes": [{"text": "x"}]}, Invalid, "nodes/0/id"),
    ({"nodes": [{"id": 7}]}, Invalid, "nodes/0/id"),
    ({"nodes": [{"id": "a"}, {"id": "b"}, {"id": "a"}]}, Unprocessable, "nodes/2/id"),
    ({"nodes": [{"id": "a"}, {"id": "b", "text": None}]}, Invalid, "nodes/1/text"),
    ({"nodes": [{"id": "a", "text": ["x"]}]}, Invalid, "nodes/0/text"),
    ({"nodes": [{"id": "a", "choices": {"target": "a"}}]}, Invalid, "nodes/0/choices"),
    ({"nodes": [{"id": "a", "choices": [{"target": "a"}, "a"]}]}, Invalid, "nodes/0/choices/1"),
    ({"nodes": [{"id": "a", "choices": [{"target": "a", "label": 3}]}]}, Invalid, "nodes/0/choices/0/label"),
    ({"nodes": [{"id": "a", "actions": {"type": "set"}}]}, Invalid, "nodes/0/actions"),
    ({"nodes": [], "variables": ["gold"]}, Invalid, "variables"),
    ({"nodes": [], "metadata": {"n": 2**53 + 1}}, Unprocessable, "metadata/n"),
    ({"nodes": [], "metadata": {"a/b": -(2**63) - 1}}, Unprocessable, "metadata/a~1b"),
    ({"nodes": [{"id": "a", "data": [0, 2**64]}]}, Unprocessable, "nodes/0/data/1"),
    (
        {"nodes": [{"id": "a", "choices": [{"target": "a", "weight": 2**70}]}]},
        Unprocessable,
        "nodes/0/choices/0/weight",
    ),
    ({"nodes": [], "variables": {"gold": float("nan")}}, Unprocessable, "variables/gold"),
    ({"nodes": [], "title": float("inf")}, Unprocessable, "title"),
    ({"nodes": [{"id": "a", "text": "bad \ud800"}]}, Unprocessable, "nodes/0/text"),
    ({"nodes": [{"id": "a\udfff"}]}, Unprocessable, "nodes/0/id"),
    ({"nodes": [], "metadata": {"when": {1, 2}}}, Invalid, "metadata/when"),
    ({"nodes": [], "metadata": {1: "x"}}, Invalid, "metadata"),
    ({"nodes": [], "metadata": {"deep": json.loads("[" * 80 + "]" * 80)}}, TooLarge, "metadata/deep"),
]


@pytest.mark.parametrize(("scene", "error", "field"), REFUSED)
def test_check_scene_refuses_what_cannot_be_represented(scene: Any, error: type[ComfyVNError], field: str) -> None:
    with pytest.raises(error) as caught:
        check_scene(scene)
    assert type(caught.value) is error
    assert caught.value.field is not None and caught.value.field.startswith(field)
    # The same refusal guards every way in, before pycrdt (which panics on integers beyond int64) sees it.
    with pytest.raises(error):
        new_doc(scene) if isinstance(scene, dict) else check_scene(scene)


def test_check_scene_returns_the_scene_and_accepts_the_limits() -> None:
    scene = {"nodes": [{"id": "a", "data": [2**53, -(2**53)]}], "x": None}
    assert check_scene(scene) is scene
    assert to_scene(new_doc(scene)) == scene


def test_fill_wants_an_empty_document() -> None:
    doc = new_doc(SCENE)
    with pytest.raises(Conflict):
        fill(doc, SCENE)


# -- reading what concurrent or foreign clients made ---------------------------------------------------


def test_to_scene_reads_the_order_rules() -> None:
    doc = new_doc({"nodes": [{"id": i} for i in "abcd"]})
    order = doc.get(layout.ORDER, type=Array)
    order.clear()
    order.extend(["b", "ghost", "a", "b", 3])  # "d", then "c" are missing: appended in id order
    assert [n["id"] for n in to_scene(doc)["nodes"]] == ["b", "a", "c", "d"]


def test_to_scene_reads_foreign_shapes_as_json_and_apply_scene_repairs_them() -> None:
    doc = new_doc(SCENE)
    scene_map, nodes = doc.get(layout.SCENE, type=Map), doc.get(layout.NODES, type=Map)
    with doc.transaction():
        scene_map["variables"] = {"gold": 2.0}  # a plain object, not a Map
        scene_map["metadata"] = Map({"author": Text("bob"), "n": Array([1.0, Map({"k": 2.0})])})
        scene_map["nodes"] = "stray"  # nodes live in their own root: ignored
        nodes["a"] = {"id": "a", "text": "plain", "choices": [{"label": "Go", "target": "b"}]}  # a plain object
        node_of(doc, "b")["text"] = "plain string"
        node_of(doc, "b")["actions"] = [{"type": "clear", "key": "met"}]
        node_of(doc, "c")["choices"] = Array([{"target": "a"}, Map({"label": 5.0, "target": "b"})])
        node_of(doc, "c")["id"] = "liar"  # the node's key is its id
        nodes["junk"] = "not a node"
        doc.get(layout.ORDER, type=Array).append("junk")
    out = to_scene(doc)
    json.dumps(out, allow_nan=False)
    assert out["variables"] == {"gold": 2} and out["metadata"] == {"author": "bob", "n": [1, {"k": 2}]}
    assert [n["id"] for n in out["nodes"]] == ["a", "b", "c"]
    assert out["nodes"][0]["text"] == "plain" and out["nodes"][1]["text"] == "plain string"
    assert out["nodes"][2]["choices"] == [{"target": "a"}, {"label": 5, "target": "b"}]
    assert apply_scene(doc, SCENE)
    assert canonical(to_scene(doc)) == canonical(SCENE)
    assert isinstance(text_of(doc, "a"), Text) and isinstance(text_of(doc, "b"), Text)
    assert isinstance(doc.get(layout.SCENE, type=Map)["variables"], Map)
    assert "junk" not in doc.get(layout.NODES, type=Map) and "nodes" not in scene_map


# -- set_text ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "delta"),
    [
        ("a😀b", "a😀Xb", [{"retain": 5}, {"insert": "X"}]),  # 😀 is 4 UTF-8 bytes
        ("日本語", "日本の語", [{"retain": 6}, {"insert": "の"}]),
        ("e\u0301e", "e\u0300e", [{"retain": 1}, {"delete": 2}, {"insert": "\u0300"}]),
        ("😀😀", "😀", [{"retain": 4}, {"delete": 4}]),
        ("x😀y", "x😁y", [{"retain": 1}, {"delete": 4}, {"insert": "😁"}]),
        ("", "新しい", [{"insert": "新しい"}]),
    ],
)
def test_set_text_edits_around_the_common_prefix_and_suffix_in_utf8_offsets(
    old: str, new: str, delta: list[dict[str, Any]]
) -> None:
    doc: Doc[Any] = Doc()
    text = doc.get("t", type=Text)
    text += old
    deltas: list[Any] = []
    text.observe(lambda event: deltas.append(event.delta))
    assert set_text(text, new)
    assert str(text) == new
    assert deltas == [delta]  # one transaction, and only the changed characters
    assert not set_text(text, new)
    assert len(deltas) == 1


@given(texts, texts, texts)
def test_set_text_reaches_any_text_and_keeps_an_edit_made_elsewhere(head: str, old: str, new: str) -> None:
    doc: Doc[Any] = Doc(client_id=1)
    text = doc.get("t", type=Text)
    text += head + "|" + old
    other = replica(doc, 2)
    other_text = other.get("t", type=Text)
    other_text.insert(0, "<")  # typed concurrently at the very start
    set_text(text, head + "|" + new)
    assert str(text) == head + "|" + new
    sync(doc, other)
    assert str(text) == str(other_text) == "<" + head + "|" + new


# -- apply_scene -------------------------------------------------------------------------------------


@given(st.data())
def test_apply_scene_turns_one_scene_into_another(data: st.DataObject) -> None:
    a = data.draw(scenes())
    b = data.draw(edited(a) | scenes())
    doc = new_doc(a)
    apply_scene(doc, b)
    assert canonical(to_scene(doc)) == canonical(b)
    seen = updates_of(doc)
    assert not apply_scene(doc, b)  # nothing left to change: no update goes out
    assert seen == []


@settings(max_examples=30)
@given(st.data())
def test_apply_scene_merges_under_concurrent_edits(data: st.DataObject) -> None:
    a = data.draw(scenes())
    b = data.draw(edited(a))
    doc = new_doc(a, client_id=1)
    other = replica(doc, 2)
    typed = [n["id"] for n in a["nodes"] if "text" in n]
    if typed:
        text_of(other, typed[0]).insert(0, "✍")
    apply_scene(doc, b)
    sync(doc, other)
    merged = to_scene(doc)
    assert canonical(merged) == canonical(to_scene(other))
    check_scene(merged)
    if typed and any(n["id"] == typed[0] for n in b["nodes"]):
        expected = next(n for n in b["nodes"] if n["id"] == typed[0])["text"]
        got = next(n for n in merged["nodes"] if n["id"] == typed[0])["text"]
        # apply_scene kept the Text, so the concurrent typing survived (where both typed at the very start,
        # the client ids order the two inserts).
        old = next(n for n in a["nodes"] if n["id"] == typed[0])["text"]
        if old[:1] == expected[:1] != "":
            assert got == "✍" + expected
        else:
            assert sorted(got) == sorted("✍" + expected)


def test_apply_scene_keeps_concurrent_typing_in_texts_and_labels() -> None:
    doc = new_doc(SCENE, client_id=1)
    other = replica(doc, 2)
    text_of(other, "a").insert(len("Hello"), ", dear")  # someone types in the live room...
    node_of(other, "a")["choices"][0]["label"].insert(0, "» ")
    outside = copy.deepcopy(SCENE)  # ...while an outside edit is merged in
    outside["nodes"][0]["text"] = "Hello there, friend"
    outside["nodes"][0]["choices"][0]["label"] = "Go on"
    outside["nodes"][0]["choices"].append({"label": "Stay", "target": "a"})
    outside["nodes"].reverse()
    outside["title"] = "Intro, revised"
    assert apply_scene(doc, outside)
    sync(doc, other)
    merged = to_scene(other)
    assert merged == to_scene(doc)
    assert merged["nodes"][2]["text"] == "Hello, dear there, friend"
    assert merged["nodes"][2]["choices"] == [{"label": "» Go on", "target": "b"}, {"label": "Stay", "target": "a"}]
    assert [n["id"] for n in merged["nodes"]] == ["c", "b", "a"] and merged["title"] == "Intro, revised"


def test_apply_scene_reconciles_choices_by_id_when_they_have_ids() -> None:
    choices = [{"id": k, "label": k.upper(), "target": "a"} for k in ("x", "y", "z")]
    doc = new_doc({"nodes": [{"id": "a", "choices": choices}]}, client_id=1)
    other = replica(doc, 2)
    node_of(other, "a")["choices"][2]["label"].insert(1, "?")  # concurrently edits choice z
    # x goes and y changes: matched by position, z's Map would be deleted (its old place is gone) and the
    # concurrent edit lost; matched by id, z's Map stays.
    apply_scene(doc, {"nodes": [{"id": "a", "choices": [choices[1] | {"label": "Why"}, choices[2]]}]})
    sync(doc, other)
    assert to_scene(other)["nodes"][0]["choices"] == [
        {"id": "y", "label": "Why", "target": "a"},
        {"id": "z", "label": "Z?", "target": "a"},
    ]


# -- node and field edits ----------------------------------------------------------------------------


def ids(doc: Doc[Any]) -> list[str]:
    return [n["id"] for n in to_scene(doc)["nodes"]]


def test_upsert_node_places_new_nodes_and_keeps_existing_ones() -> None:
    doc = new_doc(SCENE)
    assert upsert_node(doc, {"id": "d"}) and ids(doc) == ["a", "b", "c", "d"]
    assert upsert_node(doc, {"id": "e"}, index=0) and ids(doc) == ["e", "a", "b", "c", "d"]
    assert upsert_node(doc, {"id": "f"}, after="a") and ids(doc) == ["e", "a", "f", "b", "c", "d"]
    assert upsert_node(doc, {"id": "g"}, index=99) and ids(doc)[-1] == "g"
    assert upsert_node(doc, {"id": "a", "text": "new"}) and ids(doc) == ["e", "a", "f", "b", "c", "d", "g"]
    assert upsert_node(doc, {"id": "a", "text": "new"}, index=6) and ids(doc)[-1] == "a"
    assert upsert_node(doc, {"id": "a", "text": "new"}, after="e") and ids(doc)[:2] == ["e", "a"]
    # Upsert replaces: the speaker and choices it leaves out are gone.
    assert to_scene(doc)["nodes"][1] == {"id": "a", "text": "new"}


def test_upsert_node_is_one_update_and_false_when_nothing_changes() -> None:
    doc = new_doc(SCENE)
    seen = updates_of(doc)
    node = {"id": "d", "text": "x", "choices": [{"label": "L", "target": "a"}]}
    assert upsert_node(doc, node, after="b")
    assert len(seen) == 1  # a peer never sees the node without its order entry
    assert not upsert_node(doc, node) and not upsert_node(doc, node, after="b")
    assert not upsert_node(doc, {**SCENE["nodes"][0]}) and len(seen) == 1


def test_upsert_node_refusals() -> None:
    doc = new_doc(SCENE)
    with pytest.raises(Unprocessable) as caught:
        upsert_node(doc, {"id": "d"}, after="nope")
    assert caught.value.field == "after"
    with pytest.raises(Invalid):
        upsert_node(doc, {"id": "d"}, index=0, after="a")
    with pytest.raises(Invalid):
        upsert_node(doc, {"id": "d"}, index=-1)
    with pytest.raises(Invalid) as invalid:
        upsert_node(doc, {"id": "d", "text": 3})
    assert invalid.value.field == "node/text"
    with pytest.raises(Unprocessable):
        upsert_node(doc, {"id": "d", "data": 2**64})
    assert ids(doc) == ["a", "b", "c"]


def test_remove_node_removes_every_order_entry() -> None:
    doc = new_doc(SCENE)
    doc.get(layout.ORDER, type=Array).append("b")  # a duplicate left by a concurrent move
    assert remove_node(doc, "b")
    assert ids(doc) == ["a", "c"] and list(doc.get(layout.ORDER, type=Array)) == ["a", "c"]
    assert not remove_node(doc, "b")
    with pytest.raises(Invalid):
        remove_node(doc, 3)  # type: ignore[arg-type]


def test_replace_order_moves_only_what_moved() -> None:
    doc = new_doc({"nodes": [{"id": str(i)} for i in range(50)]})
    order = doc.get(layout.ORDER, type=Array)
    deltas: list[Any] = []
    order.observe(lambda event: deltas.append(event.delta))
    target = [str(i) for i in range(50)]
    target.insert(10, target.pop(40))
    assert replace_order(doc, target) and ids(doc) == target
    assert len(deltas) == 1
    assert sorted(json.dumps(op) for op in deltas[0] if "retain" not in op) == ['{"delete": 1}', '{"insert": ["40"]}']
    assert not replace_order(doc, target) and len(deltas) == 1


def test_long_orders_are_edited_in_small_transactions() -> None:
    # One pycrdt transaction with thousands of edits is super-linear; long order edits are cut in pieces
    # that must still land in order.
    scene = {"nodes": [{"id": f"n{i}"} for i in range(350)]}
    doc = new_doc(scene)
    assert to_scene(doc) == scene
    updates = updates_of(doc)
    target = [f"n{i}" for i in range(350)]
    random.Random(7).shuffle(target)
    assert replace_order(doc, target) and ids(doc) == target
    assert replace_order(doc, target[::-1]) and ids(doc) == target[::-1]
    assert len(updates) > 2
    bigger = {"nodes": scene["nodes"][:100] + [{"id": f"m{i}"} for i in range(250)] + scene["nodes"][100:]}
    assert apply_scene(doc, bigger) and to_scene(doc) == bigger
    deltas: list[Any] = []
    doc.get(layout.ORDER, type=Array).observe(lambda event: deltas.append(event.delta))
    assert replace_order(doc, [n["id"] for n in scene["nodes"]] + [f"m{i}" for i in range(250)])
    assert all(sum(len(op.get("insert", [])) for op in delta) <= layout.STEP for delta in deltas)


@pytest.mark.parametrize(
    ("order", "field"),
    [(["a", "b"], "order"), (["a", "b", "c", "d"], "order/3"), (["a", "b", "a", "c"], "order/2"), ("abc", "order")],
)
def test_replace_order_must_name_every_node_once(order: Any, field: str) -> None:
    doc = new_doc(SCENE)
    with pytest.raises(ComfyVNError) as caught:
        replace_order(doc, order)
    assert caught.value.field == field
    assert ids(doc) == ["a", "b", "c"]


def test_set_and_delete_fields() -> None:
    doc = new_doc(SCENE)
    assert set_field(doc, "title", None) and to_scene(doc)["title"] is None  # null is a value
    assert not set_field(doc, "title", None)
    assert set_field(doc, "x", 1) and not set_field(doc, "x", 1.0)  # the same JSON number
    assert set_field(doc, "x", True) and to_scene(doc)["x"] is True  # but true is not 1
    assert delete_field(doc, "x") and "x" not in to_scene(doc) and not delete_field(doc, "x")
    for bad, error in [("nodes", Invalid), (3, Invalid)]:
        with pytest.raises(error):
            set_field(doc, bad, [])  # type: ignore[arg-type]
    with pytest.raises(Invalid) as caught:
        set_field(doc, "variables", [1])
    assert caught.value.field == "variables"
    with pytest.raises(Unprocessable) as unprocessable:
        set_field(doc, "metadata", {"n": [2**63]})
    assert unprocessable.value.field == "metadata/n/0"


def test_variables_are_edited_per_variable() -> None:
    doc = new_doc(SCENE, client_id=1)
    other = replica(doc, 2)
    set_field(other, "variables", {"gold": 1, "met": False, "trust": 3})
    set_field(doc, "variables", {"gold": 5, "met": False})
    sync(doc, other)
    assert to_scene(doc)["variables"] == to_scene(other)["variables"] == {"gold": 5, "met": False, "trust": 3}


# -- concurrent replicas -----------------------------------------------------------------------------


def _random_edit(doc: Doc[Any], rnd: random.Random, value: Any, word: str) -> None:
    current = ids(doc)
    kind = rnd.choice(["upsert", "new", "remove", "order", "field", "type", "move"])
    if kind == "upsert" and current:
        node = rnd.choice(to_scene(doc)["nodes"])
        upsert_node(doc, node | {"text": word, "x": value})
    elif kind == "new":
        upsert_node(doc, {"id": rnd.choice(["n1", "n2", word[:3] or "n"]), "text": word}, index=rnd.randrange(5))
    elif kind == "remove" and current:
        remove_node(doc, rnd.choice(current))
    elif kind == "order":
        rnd.shuffle(current)
        replace_order(doc, current)
    elif kind == "move" and current:
        upsert_node(doc, to_scene(doc)["nodes"][0], index=rnd.randrange(len(current) + 1))
    elif kind == "field":
        set_field(doc, rnd.choice(["title", "variables"]), {"v": value})
    elif kind == "type" and current:
        node_id = rnd.choice(current)
        text = node_of(doc, node_id).get("text")
        if isinstance(text, Text):
            text.insert(rnd.randrange(len(text) + 1) if str(text).isascii() else 0, word)


@settings(max_examples=40)
@given(scenes(), st.randoms(use_true_random=False), st.lists(json_values, min_size=1, max_size=3), texts)
def test_concurrent_replicas_converge_to_a_valid_scene(
    scene: dict[str, Any], rnd: random.Random, values: list[Any], word: str
) -> None:
    docs = [new_doc(scene, client_id=1)]
    docs += [replica(docs[0], 2), replica(docs[0], 3)]
    for _ in range(3):
        for doc in docs:
            for value in values:
                _random_edit(doc, rnd, value, word)
        sync(docs[0], docs[1])
        sync(docs[1], docs[2])
        sync(docs[0], docs[1])
        results = [canonical(to_scene(doc)) for doc in docs]
        assert results[0] == results[1] == results[2]
        merged = check_scene(to_scene(docs[0]))
        assert (
            len({n["id"] for n in merged["nodes"]}) == len(merged["nodes"]) == len(docs[0].get(layout.NODES, type=Map))
        )


def test_concurrent_adds_and_moves_of_the_same_node_keep_one_place() -> None:
    doc = new_doc(SCENE, client_id=1)
    other = replica(doc, 2)
    upsert_node(doc, {"id": "d", "text": "mine"}, index=0)
    upsert_node(other, {"id": "d", "text": "theirs"})
    upsert_node(doc, {"id": "a"}, index=3)
    upsert_node(other, {"id": "a"}, index=1)
    sync(doc, other)
    for replica_doc in (doc, other):
        assert sorted(ids(replica_doc)) == ["a", "b", "c", "d"]
    assert to_scene(doc) == to_scene(other)
    # The next order edit cleans the duplicates the concurrent moves left behind.
    replace_order(doc, ["a", "b", "c", "d"])
    assert list(doc.get(layout.ORDER, type=Array)) == ["a", "b", "c", "d"]
