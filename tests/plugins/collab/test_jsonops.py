"""The original JSON collaboration protocol over the Yjs document: operations, op log, locks, presence."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
from comfyvn.errors import ComfyVNError, Invalid, TooLarge
from comfyvn_collab import layout
from comfyvn_collab.jsonops import (
    KINDS,
    MAX_BATCH,
    ControlLocks,
    Operation,
    OpLog,
    apply_operation,
    apply_operations,
    parse_operations,
    presence_entry,
)
from hypothesis import given
from hypothesis import strategies as st
from pycrdt import Doc, Map

SCENE: dict[str, Any] = {
    "id": "intro",
    "title": "Intro",
    "start": "a",
    "metadata": {"author": "kim", "draft": True},
    "variables": {"trust": 1},
    "nodes": [
        {
            "id": "a",
            "type": "dialogue",
            "speaker": "ana",
            "text": "Hello.",
            "choices": [{"id": "c1", "label": "On", "target": "b"}],
        },
        {"id": "b", "type": "narration", "text": "Rain."},
        {"id": "c", "type": "end", "text": "Fin."},
    ],
}


def fresh() -> Doc[Any]:
    return layout.new_doc(copy.deepcopy(SCENE))


@pytest.fixture
def doc() -> Doc[Any]:
    return fresh()


def one(kind: str, payload: Any, **extra: Any) -> Operation:
    (op,) = parse_operations([{"kind": kind, "payload": payload, **extra}], "alice", now=100.0)
    return op


def ids(doc: Doc[Any]) -> list[str]:
    return [node["id"] for node in layout.to_scene(doc)["nodes"]]


def node(doc: Doc[Any], node_id: str) -> dict[str, Any]:
    return next(n for n in layout.to_scene(doc)["nodes"] if n["id"] == node_id)


# --- every kind against a real document ----------------------------------------------------------


def test_scene_field_set_changes_one_field_and_reports_no_change_when_equal(doc: Doc[Any]) -> None:
    assert apply_operation(doc, one("scene.field.set", {"field": "title", "value": "Prologue"})) is True
    scene = layout.to_scene(doc)
    assert scene["title"] == "Prologue"
    assert scene["start"] == "a" and ids(doc) == ["a", "b", "c"]
    assert apply_operation(doc, one("scene.field.set", {"field": "title", "value": "Prologue"})) is False


def test_scene_field_set_variables_replaces_the_nested_map(doc: Doc[Any]) -> None:
    op = one("scene.field.set", {"field": "variables", "value": {"trust": 3, "met": False}})
    assert apply_operation(doc, op) is True
    assert layout.to_scene(doc)["variables"] == {"trust": 3, "met": False}
    assert isinstance(doc.get(layout.SCENE, type=Map)["variables"], Map)


@pytest.mark.parametrize("name", ["nodes", "id"])
def test_scene_field_set_refuses_nodes_and_id(name: str) -> None:
    with pytest.raises(Invalid) as info:
        one("scene.field.set", {"field": name, "value": []})
    assert info.value.field == "operations/0/payload/field"


def test_scene_meta_update_merges_and_null_removes_a_key(doc: Doc[Any]) -> None:
    assert apply_operation(doc, one("scene.meta.update", {"meta": {"mood": "calm", "draft": None}})) is True
    assert layout.to_scene(doc)["metadata"] == {"author": "kim", "mood": "calm"}
    assert apply_operation(doc, one("scene.meta.update", {"meta": {"mood": "calm"}})) is False


def test_scene_meta_update_keeps_metadata_a_yjs_client_wrote_as_a_shared_map(doc: Doc[Any]) -> None:
    doc.get(layout.SCENE, type=Map)["metadata"] = Map({"author": "js"})
    assert apply_operation(doc, one("scene.meta.update", {"meta": {"mood": "calm"}})) is True
    assert layout.to_scene(doc)["metadata"] == {"author": "js", "mood": "calm"}


def test_graph_node_upsert_appends_a_new_node_and_edits_an_existing_one_in_place(doc: Doc[Any]) -> None:
    assert apply_operation(doc, one("graph.node.upsert", {"node": {"id": "d", "text": "New."}})) is True
    assert ids(doc) == ["a", "b", "c", "d"]
    edited = {"id": "b", "type": "narration", "text": "Thunder."}
    assert apply_operation(doc, one("graph.node.upsert", {"node": edited})) is True
    assert ids(doc) == ["a", "b", "c", "d"]
    assert node(doc, "b") == edited
    assert apply_operation(doc, one("graph.node.upsert", {"node": edited})) is False


@pytest.mark.parametrize(("kind", "key"), [("graph.node.remove", "node_id"), ("script.line.remove", "line_id")])
def test_removals_delete_the_node_and_are_idempotent(doc: Doc[Any], kind: str, key: str) -> None:
    assert apply_operation(doc, one(kind, {key: "b"})) is True
    assert ids(doc) == ["a", "c"]
    assert apply_operation(doc, one(kind, {key: "b"})) is False
    assert apply_operation(doc, one(kind, {key: "never-there"})) is False
    assert ids(doc) == ["a", "c"]


@pytest.mark.parametrize(
    ("place", "expected"),
    [
        ({"after": "a"}, ["a", "n", "b", "c"]),
        ({"after": "c"}, ["a", "b", "c", "n"]),
        ({"index": 0}, ["n", "a", "b", "c"]),
        ({"index": 2}, ["a", "b", "n", "c"]),
        ({"index": 99}, ["a", "b", "c", "n"]),
        ({"after": "gone"}, ["a", "b", "c", "n"]),
        ({}, ["a", "b", "c", "n"]),
        ({"after": None, "index": 1}, ["a", "n", "b", "c"]),
    ],
)
def test_script_line_upsert_places_a_new_line(doc: Doc[Any], place: dict[str, Any], expected: list[str]) -> None:
    assert apply_operation(doc, one("script.line.upsert", {"line": {"id": "n", "text": "Hm."}, **place})) is True
    assert ids(doc) == expected
    assert node(doc, "n") == {"id": "n", "text": "Hm."}


def test_script_line_upsert_of_an_existing_line_edits_it_where_it_is(doc: Doc[Any]) -> None:
    op = one("script.line.upsert", {"line": {"id": "c", "type": "end", "text": "The end."}, "index": 0})
    assert apply_operation(doc, op) is True
    assert ids(doc) == ["a", "b", "c"]
    assert node(doc, "c")["text"] == "The end."


def test_script_order_replace_sets_the_display_order(doc: Doc[Any]) -> None:
    assert apply_operation(doc, one("script.order.replace", {"order": ["c", "a", "b"]})) is True
    assert ids(doc) == ["c", "a", "b"]
    assert apply_operation(doc, one("script.order.replace", {"order": ["c", "a", "b"]})) is False


def test_a_stale_order_keeps_nodes_it_does_not_name_and_drops_ids_that_are_gone(doc: Doc[Any]) -> None:
    # The client saw a, b, c; meanwhile someone added d and removed b.
    apply_operation(doc, one("graph.node.upsert", {"node": {"id": "d", "text": "D"}}))
    apply_operation(doc, one("graph.node.remove", {"node_id": "b"}))
    assert apply_operation(doc, one("script.order.replace", {"order": ["c", "b", "c", "a"]})) is True
    assert ids(doc) == ["c", "a", "d"]


def test_operations_become_yjs_edits_that_another_replica_receives(doc: Doc[Any]) -> None:
    replica: Doc[Any] = Doc()
    replica.apply_update(doc.get_update())
    before = replica.get_state()
    apply_operation(doc, one("script.line.upsert", {"line": {"id": "n", "text": "Hi"}, "after": "a"}))
    apply_operation(doc, one("scene.field.set", {"field": "title", "value": "Shared"}))
    replica.apply_update(doc.get_update(before))
    assert layout.to_scene(replica) == layout.to_scene(doc)
    assert layout.to_scene(replica)["title"] == "Shared" and ids(replica) == ["a", "n", "b", "c"]


def test_every_kind_passes_the_origin_to_its_transactions(doc: Doc[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # The hub tags its own transactions (origin) so it does not echo a JSON client's edit back to it.
    origins: list[Any] = []
    for name in ("set_field", "upsert_node", "remove_node", "replace_order"):
        real = getattr(layout, name)

        def spy(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
            origins.append(kwargs.get("origin"))
            return _real(*args, **kwargs)

        monkeypatch.setattr(layout, name, spy)
    raw = [
        {"kind": "scene.field.set", "payload": {"field": "title", "value": "O"}},
        {"kind": "scene.meta.update", "payload": {"meta": {"o": 1}}},
        {"kind": "graph.node.upsert", "payload": {"node": {"id": "d"}}},
        {"kind": "graph.node.remove", "payload": {"node_id": "d"}},
        {"kind": "script.line.upsert", "payload": {"line": {"id": "e"}, "after": "a"}},
        {"kind": "script.line.remove", "payload": {"line_id": "e"}},
        {"kind": "script.order.replace", "payload": {"order": ["c", "b", "a"]}},
    ]
    for op in parse_operations(raw, "alice"):
        assert apply_operation(doc, op, origin="hub") is True
    assert origins == ["hub"] * len(raw)


# --- batches, duplicates and the op log ----------------------------------------------------------


def test_a_duplicate_op_id_answers_the_earlier_result_and_changes_nothing(doc: Doc[Any]) -> None:
    log = OpLog()
    first = parse_operations(
        [{"op_id": "o1", "kind": "scene.field.set", "payload": {"field": "title", "value": "X"}}], "alice"
    )
    (done,) = apply_operations(doc, log, first)
    assert done["applied"] is True and done["duplicate"] is False and done["version"] == 1
    apply_operations(
        doc, log, parse_operations([{"kind": "scene.field.set", "payload": {"field": "title", "value": "Y"}}], "bob")
    )
    (again,) = apply_operations(doc, log, first)
    assert again["duplicate"] is True and again["applied"] is True
    assert (again["version"], again["server_clock"]) == (done["version"], done["server_clock"])
    assert layout.to_scene(doc)["title"] == "Y"
    assert log.version == 2 and len(log) == 2


def test_a_batch_repeating_an_op_id_applies_it_once(doc: Doc[Any]) -> None:
    log = OpLog()
    item = {"op_id": "same", "kind": "graph.node.upsert", "payload": {"node": {"id": "d", "text": "D"}}}
    results = apply_operations(doc, log, parse_operations([item, item], "alice"))
    assert [r["duplicate"] for r in results] == [False, True]
    assert ids(doc) == ["a", "b", "c", "d"] and log.version == 1


def test_op_ids_are_per_actor(doc: Doc[Any]) -> None:
    log = OpLog()
    for actor, title in (("alice", "A"), ("bob", "B")):
        ops = parse_operations(
            [{"op_id": "1", "kind": "scene.field.set", "payload": {"field": "title", "value": title}}], actor
        )
        assert apply_operations(doc, log, ops)[0]["duplicate"] is False
    assert layout.to_scene(doc)["title"] == "B"


def test_version_counts_changes_and_the_server_clock_is_lamport(doc: Doc[Any]) -> None:
    log = OpLog()
    raw = [
        {"kind": "scene.field.set", "clock": 10, "payload": {"field": "title", "value": "Z"}},
        {"kind": "graph.node.remove", "clock": 3, "payload": {"node_id": "nope"}},
        {"kind": "scene.field.set", "payload": {"field": "title", "value": "W"}},
    ]
    results = apply_operations(doc, log, parse_operations(raw, "alice"))
    assert [(r["version"], r["server_clock"], r["applied"]) for r in results] == [
        (1, 11, True),
        (1, 12, False),
        (2, 13, True),
    ]
    assert (log.version, log.clock) == (2, 13)


def test_an_operation_the_layout_refuses_is_recorded_unapplied_and_the_batch_goes_on(
    doc: Doc[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = layout.set_field

    def picky(doc: Doc[Any], field: str, value: Any, **kw: Any) -> bool:
        if field == "background":
            raise Invalid("no backgrounds here", field="background")
        return real(doc, field, value, **kw)

    monkeypatch.setattr(layout, "set_field", picky)
    raw = [
        {"kind": "scene.field.set", "payload": {"field": "background", "value": "x.png"}},
        {"kind": "scene.field.set", "payload": {"field": "title", "value": "Still"}},
    ]
    bad, good = apply_operations(doc, OpLog(), parse_operations(raw, "alice"))
    assert bad["applied"] is False and bad["error"]["field"] == "background"
    assert good["applied"] is True and layout.to_scene(doc)["title"] == "Still"


def _title_op(n: int, actor: str = "alice") -> Operation:
    return Operation(f"op{n}", actor, 0, "scene.field.set", {"field": "title", "value": f"t{n}"}, 0.0)


def test_history_is_bounded_and_since_says_when_it_cannot_replay() -> None:
    log = OpLog(max_entries=3, max_ids=5)
    for n in range(1, 7):
        log.record(_title_op(n), applied=True, now=1.0)
    assert len(log) == 3 and log.version == 6
    recent = log.since(4)
    assert [e["op_id"] for e in recent["history"]] == ["op5", "op6"]
    assert recent["truncated"] is False and recent["version"] == 6
    assert log.since(3)["truncated"] is False  # op4..op6 are all kept
    old = log.since(2)
    assert old["truncated"] is True and [e["op_id"] for e in old["history"]] == ["op4", "op5", "op6"]
    assert log.since(6) == {"since": 6, "version": 6, "clock": 6, "history": [], "truncated": False}
    assert log.since(9)["truncated"] is True  # a client ahead of this room (a restart lost its history)
    # Ids are remembered longer than the history, but not forever.
    assert log.seen("alice", "op2") is not None and log.seen("alice", "op1") is None


def test_history_keeps_to_its_byte_budget() -> None:
    log = OpLog(max_bytes=2_000)
    big = Operation("big", "alice", 0, "scene.field.set", {"field": "title", "value": "x" * 1_500}, 0.0)
    log.record(big, applied=True)
    log.record(_title_op(1), applied=True)
    log.record(_title_op(2), applied=True)
    assert log.bytes <= 2_000
    assert [e["op_id"] for e in log.since(0)["history"]] == ["op1", "op2"]
    assert log.since(0)["truncated"] is True and log.seen("alice", "big") is not None


def test_a_restored_room_and_outside_changes_send_older_clients_to_the_snapshot() -> None:
    log = OpLog(version=7, clock=40)
    assert log.since(3)["truncated"] is True and log.since(7)["truncated"] is False
    result = log.record(_title_op(1), applied=True)
    assert (result["version"], result["server_clock"]) == (8, 41)
    assert log.advance() == 9
    assert log.since(8)["truncated"] is True and log.since(9)["truncated"] is False


@pytest.mark.parametrize("since", [-1, "3", 1.5, True, None])
def test_since_refuses_what_is_not_a_version(since: Any) -> None:
    with pytest.raises(Invalid) as info:
        OpLog().since(since)
    assert info.value.field == "since"


# --- parsing -------------------------------------------------------------------------------------


def test_parse_fills_defaults_and_takes_the_actor_from_the_server() -> None:
    raw = [
        {"kind": "graph.node.remove", "payload": {"node_id": "b", "junk": 1}, "actor": "mallory", "applied": True},
        {"op_id": "x1", "clock": 5, "timestamp": 12.5, "kind": "script.line.remove", "payload": {"line_id": "c"}},
    ]
    first, second = parse_operations(raw, "alice", now=99.0)
    assert first.actor == "alice" and first.clock == 0 and first.timestamp == 99.0
    assert len(first.op_id) == 32 and int(first.op_id, 16) >= 0
    assert first.payload == {"node_id": "b"}
    assert second.to_wire() == {
        "op_id": "x1",
        "actor": "alice",
        "clock": 5,
        "kind": "script.line.remove",
        "payload": {"line_id": "c"},
        "timestamp": 12.5,
    }
    assert parse_operations(raw[:1], "alice")[0].op_id != first.op_id


def test_parse_accepts_the_originals_id_aliases_and_names_an_unnamed_node() -> None:
    assert one("graph.node.upsert", {"node": {"node_id": "q", "text": "Q"}}).payload["node"] == {"id": "q", "text": "Q"}
    assert one("script.line.upsert", {"line": {"line_id": "r"}}).payload["line"] == {"id": "r"}
    fresh_id = one("graph.node.upsert", {"node": {"text": "anon"}}).payload["node"]["id"]
    assert isinstance(fresh_id, str) and len(fresh_id) == 16


LONG = "k" * 10_000


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"operations": []}, "operations"),
        ([42], "operations/0"),
        ([{"payload": {}}], "operations/0/kind"),
        ([{"kind": LONG, "payload": {}}], "operations/0/kind"),
        ([{"kind": "graph.node.remove", "payload": {"node_id": "a"}, "op_id": ""}], "operations/0/op_id"),
        ([{"kind": "graph.node.remove", "payload": {"node_id": "a"}, "op_id": "o" * 256}], "operations/0/op_id"),
        ([{"kind": "graph.node.remove", "payload": {"node_id": "a"}, "clock": -1}], "operations/0/clock"),
        ([{"kind": "graph.node.remove", "payload": {"node_id": "a"}, "clock": 1.5}], "operations/0/clock"),
        ([{"kind": "graph.node.remove", "payload": {"node_id": "a"}, "clock": 2**60}], "operations/0/clock"),
        ([{"kind": "graph.node.remove", "payload": {"node_id": "a"}, "timestamp": "now"}], "operations/0/timestamp"),
        ([{"kind": "graph.node.remove", "payload": {"node_id": "a"}, "timestamp": math.nan}], "operations/0/timestamp"),
        ([{"kind": "graph.node.remove"}], "operations/0/payload"),
        ([{"kind": "graph.node.remove", "payload": {"node_id": 3}}], "operations/0/payload/node_id"),
        ([{"kind": "graph.node.remove", "payload": {}}], "operations/0/payload/node_id"),
        ([{"kind": "scene.field.set", "payload": {"field": "title"}}], "operations/0/payload/value"),
        ([{"kind": "scene.field.set", "payload": {"field": "variables", "value": [1]}}], "operations/0/payload/value"),
        ([{"kind": "scene.field.set", "payload": {"field": "start", "value": ""}}], "operations/0/payload/value"),
        ([{"kind": "scene.meta.update", "payload": {"meta": "x"}}], "operations/0/payload/meta"),
        ([{"kind": "scene.meta.update", "payload": {"meta": {"n": 2**53}}}], "operations/0/payload/meta/n"),
        ([{"kind": "scene.meta.update", "payload": {"meta": {"n": [math.inf]}}}], "operations/0/payload/meta/n/0"),
        ([{"kind": "scene.meta.update", "payload": {"meta": {"s": "a\ud800"}}}], "operations/0/payload/meta/s"),
        ([{"kind": "scene.meta.update", "payload": {"meta": {"s": (1, 2)}}}], "operations/0/payload/meta/s"),
        ([{"kind": "graph.node.upsert", "payload": {"node": ["id"]}}], "operations/0/payload/node"),
        ([{"kind": "graph.node.upsert", "payload": {"node": {"id": 5}}}], "operations/0/payload/node/id"),
        ([{"kind": "graph.node.upsert", "payload": {"node": {"id": "i" * 256}}}], "operations/0/payload/node/id"),
        (
            [{"kind": "script.line.upsert", "payload": {"line": {"id": "n"}, "after": "a", "index": 0}}],
            "operations/0/payload/index",
        ),
        ([{"kind": "script.line.upsert", "payload": {"line": {"id": "n"}, "index": -1}}], "operations/0/payload/index"),
        (
            [{"kind": "graph.node.upsert", "payload": {"node": {"id": "n", "text": 5}}}],
            "operations/0/payload/node/text",
        ),
        (
            [{"kind": "graph.node.upsert", "payload": {"node": {"id": "n", "actions": {}}}}],
            "operations/0/payload/node/actions",
        ),
        (
            [{"kind": "graph.node.upsert", "payload": {"node": {"id": "n", "choices": "x"}}}],
            "operations/0/payload/node/choices",
        ),
        (
            [{"kind": "graph.node.upsert", "payload": {"node": {"id": "n", "choices": [1]}}}],
            "operations/0/payload/node/choices/0",
        ),
        (
            [{"kind": "script.line.upsert", "payload": {"line": {"id": "n", "choices": [{"label": None}]}}}],
            "operations/0/payload/line/choices/0/label",
        ),
        ([{"kind": "script.line.upsert", "payload": {"line": {"id": "n"}, "after": 7}}], "operations/0/payload/after"),
        ([{"kind": "script.order.replace", "payload": {"order": "abc"}}], "operations/0/payload/order"),
        ([{"kind": "script.order.replace", "payload": {"order": ["a", None]}}], "operations/0/payload/order/1"),
    ],
)
def test_parse_refuses_bad_input_naming_the_place(raw: Any, field: str) -> None:
    good = {"kind": "graph.node.remove", "payload": {"node_id": "a"}}
    batch = raw if not isinstance(raw, list) else [good, *raw]
    with pytest.raises(Invalid) as info:
        parse_operations(batch, "alice")
    expected = field if not isinstance(raw, list) else field.replace("operations/0", "operations/1")
    assert info.value.field == expected
    assert len(info.value.message) <= 400 and LONG not in info.value.message


def test_parse_refuses_an_oversized_batch_and_a_bad_actor() -> None:
    item = {"kind": "graph.node.remove", "payload": {"node_id": "a"}}
    assert len(parse_operations([item] * MAX_BATCH, "alice")) == MAX_BATCH
    with pytest.raises(TooLarge):
        parse_operations([item] * (MAX_BATCH + 1), "alice")
    with pytest.raises(Invalid) as info:
        parse_operations([item], "")
    assert info.value.field == "actor"


def test_a_deeply_nested_value_is_refused_not_a_recursion_error() -> None:
    deep: Any = "x"
    for _ in range(5_000):
        deep = [deep]
    with pytest.raises(Invalid):
        parse_operations([{"kind": "scene.meta.update", "payload": {"meta": {"d": deep}}}], "alice")


# Lone surrogates get through json.loads and make pycrdt panic, so the fuzz includes them.
texts = st.text(max_size=8) | st.text(max_size=8) | st.text(st.sampled_from(["\ud800", "\udfff", "é"]), max_size=3)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)
payload_keys = ["field", "value", "meta", "node", "node_id", "line", "line_id", "after", "index", "order"]
some_ids = st.sampled_from(["a", "b", "c", "n"]) | texts
node_like = st.fixed_dictionaries(
    {"id": some_ids},
    optional={
        "text": texts | json_values,
        "choices": st.lists(
            st.fixed_dictionaries({"id": some_ids}, optional={"label": texts, "target": some_ids}), max_size=2
        )
        | json_values,
        "actions": st.lists(json_values, max_size=2) | json_values,
        "speaker": json_values,
    },
)
# Junk in the shape of operations: every key present or not, every value anything.
junk_items = st.fixed_dictionaries(
    {"kind": st.sampled_from([*KINDS, "other"])},
    optional={
        "payload": st.dictionaries(st.sampled_from(payload_keys), json_values | node_like, max_size=4),
        "op_id": json_values,
        "clock": json_values,
        "timestamp": json_values,
    },
)


def _op(kind: str, **payload: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"kind": st.just(kind), "payload": st.fixed_dictionaries(payload)})


# Operations that mostly parse, so the fuzz reaches the document with odd but well-formed values.
plausible_items = st.one_of(
    _op(
        "scene.field.set",
        field=st.sampled_from(["title", "start", "variables", "metadata", "x-extra"]) | texts,
        value=json_values,
    ),
    _op("scene.meta.update", meta=st.dictionaries(texts, json_values, max_size=3)),
    _op("graph.node.upsert", node=node_like),
    _op("graph.node.remove", node_id=some_ids),
    _op("script.line.upsert", line=node_like, after=some_ids | st.none()),
    _op("script.line.upsert", line=node_like, index=st.integers(min_value=-1, max_value=9)),
    _op("script.line.remove", line_id=some_ids),
    _op("script.order.replace", order=st.lists(some_ids, max_size=6)),
)


@given(raw=json_values)
def test_parse_on_any_json_raises_only_invalid(raw: Any) -> None:
    try:
        parse_operations(raw, "alice")
    except Invalid:
        pass


@given(batch=st.lists(junk_items, max_size=5))
def test_parse_on_operation_shaped_junk_raises_only_invalid(batch: list[dict[str, Any]]) -> None:
    try:
        parse_operations(batch, "alice")
    except Invalid:
        pass


@given(item=plausible_items)
def test_a_parsed_operation_applies_once_or_is_refused_with_a_domain_error(item: dict[str, Any]) -> None:
    try:
        (op,) = parse_operations([item], "alice")
    except Invalid:
        return
    doc = fresh()
    try:
        apply_operation(doc, op)
    except ComfyVNError:
        return
    # Every kind is idempotent: the same operation again finds nothing to do.
    after = layout.to_scene(doc)
    assert apply_operation(doc, op) is False
    assert layout.to_scene(doc) == after


# --- request control -----------------------------------------------------------------------------


def test_control_is_taken_queued_extended_and_passed_on_release() -> None:
    locks = ControlLocks()
    assert locks.state(0.0) == {"holder": None, "owner": None, "expires_at": None, "queue": []}
    assert locks.request("alice", now=0.0) == {"holder": "alice", "owner": "alice", "expires_at": 30.0, "queue": []}
    assert locks.request("bob", ttl=60, now=1.0)["queue"] == ["bob"]
    locks.request("carol", ttl=5, now=2.0)
    assert locks.request("alice", ttl=10, now=20.0)["expires_at"] == 30.0  # extended from now: 20 + 10
    state = locks.release("alice", now=25.0)
    assert (state["holder"], state["expires_at"], state["queue"]) == ("bob", 85.0, ["carol"])
    assert locks.release("nobody", now=26.0)["holder"] == "bob"


def test_control_expires_and_passes_to_the_next_in_line() -> None:
    locks = ControlLocks()
    locks.request("alice", ttl=10, now=0.0)
    locks.request("bob", ttl=20, now=1.0)
    assert locks.state(9.9)["holder"] == "alice"
    assert locks.next_deadline() == 10.0
    state = locks.state(12.0)
    assert (state["holder"], state["expires_at"], state["queue"]) == ("bob", 32.0, [])
    assert locks.state(40.0)["holder"] is None and locks.next_deadline() is None


def test_a_waiting_actor_keeps_its_place_and_can_leave_the_queue() -> None:
    locks = ControlLocks()
    locks.request("alice", now=0.0)
    locks.request("bob", now=0.0)
    locks.request("carol", now=0.0)
    assert locks.request("bob", ttl=99, now=1.0)["queue"] == ["bob", "carol"]
    assert locks.release("bob", now=2.0)["queue"] == ["carol"]
    assert locks.release("alice", now=3.0)["holder"] == "carol"


def test_ttl_is_clamped_and_must_be_a_number() -> None:
    assert ControlLocks().request("a", ttl=0.01, now=0.0)["expires_at"] == 1.0
    assert ControlLocks().request("a", ttl=10**9, now=0.0)["expires_at"] == 600.0
    for bad in ("5", True, math.nan, [1]):
        with pytest.raises(Invalid) as info:
            ControlLocks().request("a", ttl=bad, now=0.0)
        assert info.value.field == "ttl"


def test_the_queue_is_bounded() -> None:
    locks = ControlLocks(max_queue=2)
    for actor in ("holder", "w1", "w2"):
        locks.request(actor, now=0.0)
    with pytest.raises(TooLarge):
        locks.request("w3", now=0.0)


# --- presence ------------------------------------------------------------------------------------


def test_presence_entry_keeps_known_fields_and_clips_strings() -> None:
    data = {
        "name": "N" * 500,
        "color": "#3366ff",
        "node": "a",
        "selected": ["a", "b"],
        "cursor": {"line": 3, "column": 7, "label": "x" * 500},
        "status": "typing",
        "secret": "dropped",
    }
    entry = presence_entry("alice", "Alice", data, now=5.0)
    assert set(entry) == {"actor", "name", "color", "node", "selected", "cursor", "status", "updated_at"}
    assert len(entry["name"]) == 80 and entry["color"] == "#3366ff" and entry["selected"] == ["a", "b"]
    assert entry["cursor"]["line"] == 3 and len(entry["cursor"]["label"]) == 80
    assert entry["updated_at"] == 5.0


def test_presence_entry_falls_back_to_the_connection_name_and_bounds_lists() -> None:
    entry = presence_entry("u1", "Kim", {"selected": "only", "cursor": {str(i): i for i in range(50)}}, now=0.0)
    assert entry["name"] == "Kim" and entry["selected"] == ["only"] and len(entry["cursor"]) == 8
    assert presence_entry("u1", None, None, now=0.0)["name"] == "u1"
    assert len(presence_entry("u1", None, {"selected": [str(i) for i in range(500)]}, now=0.0)["selected"]) == 64


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ("hi", "presence"),
        ({"color": "red; background: url(x)"}, "presence/color"),
        ({"color": 3}, "presence/color"),
        ({"node": ["a"]}, "presence/node"),
        ({"selected": 5}, "presence/selected"),
        ({"selected": ["a", 5]}, "presence/selected/1"),
        ({"cursor": [1, 2]}, "presence/cursor"),
        ({"cursor": {"x": {"deep": 1}}}, "presence/cursor/x"),
        ({"cursor": {"x": math.inf}}, "presence/cursor/x"),
    ],
)
def test_presence_entry_refuses_wrong_types(data: Any, field: str) -> None:
    with pytest.raises(Invalid) as info:
        presence_entry("alice", "Alice", data, now=0.0)
    assert info.value.field == field
