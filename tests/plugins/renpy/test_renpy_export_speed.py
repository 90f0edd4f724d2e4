"""What the export's fast paths must keep exactly: the start variables, the stage plan, the short-line
check and the surrogate-safe literals, each against the slower computation it replaced."""

from __future__ import annotations

import copy
from typing import Any

from comfyvn_renpy.export import start_variables
from comfyvn_renpy.layout import build_layout
from comfyvn_renpy.names import py_literal
from comfyvn_renpy.text import Paginator
from comfyvn_scenario import Project, compile_scenario
from hypothesis import example, given, settings
from hypothesis import strategies as st

leaves = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False), st.text(max_size=3))
variables = st.recursive(
    leaves,
    lambda inner: st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3),
    max_leaves=8,
).filter(lambda v: isinstance(v, dict)) | st.dictionaries(st.sampled_from(["a", "b"]), leaves, max_size=2)


@given(project_vars=variables, scene_vars=st.lists(variables, min_size=1, max_size=3))
def test_start_variables_are_the_compiled_scenarios(project_vars: dict[str, Any], scene_vars: list[Any]) -> None:
    scenes = {
        f"s{i}": {"id": f"s{i}", "start": "n0", "variables": v, "nodes": [{"id": "n0", "end": True}]}
        for i, v in enumerate(scene_vars)
    }
    project = Project(meta={"id": "p", "title": "P", "start": "s0", "variables": project_vars}, scenes=scenes)
    before = copy.deepcopy((project.meta, project.scenes))
    merged = start_variables(project)
    assert merged == compile_scenario(project).variables
    merged.setdefault("a", {})  # a copy: editing it leaves the project alone
    assert (project.meta, project.scenes) == before


def test_stage_plan_keeps_first_appearance_order_per_character() -> None:
    def node(node_id: str, *actors: dict[str, Any]) -> dict[str, Any]:
        return {"id": node_id, "text": "x", "characters": list(actors), "choices": [{"target": "n0"}]}

    scene = {
        "id": "s",
        "start": "n0",
        "nodes": [
            node("n0", {"id": "ann", "expression": "smile"}, {"id": "bo", "hide": True}),
            node("n1", {"id": "ann", "expression": "neutral"}, {"id": "cy", "expression": "grin"}),
            node("n2", {"id": "ann", "expression": "angry"}, {"id": "ann", "expression": "smile"}),
        ],
    }
    characters = {"ann": {"name": "Ann", "sprites": {"neutral": "a.png"}}, "bo": {"name": "Bo"}, "cy": {"name": "Cy"}}
    layout = build_layout(
        Project(meta={"id": "p", "title": "P", "start": "s", "characters": characters}, scenes={"s": scene})
    )
    # The sprites' own order first, then the expressions as the story first shows them.
    assert [e for c, e in layout.attrs_of if c == "ann" and e] == ["neutral", "smile", "angry"]
    assert [e for c, e in layout.attrs_of if c == "cy" and e] == ["grin"]
    # Bo is only ever hidden: no image at all. Cy is shown with no sprites: a placeholder figure.
    names = [image.name for image in layout.images]
    assert not any(name.startswith("bo") for name in names)
    assert any(name.startswith("cy") for name in names)


class _Widths:
    """Metrics with awkward float widths, so the order of additions shows in the last bits."""

    def advance(self, ch: str, style: int) -> float:
        return 0.1 * (ord(ch) % 7) + 1 / 3

    def lineskip(self, ch: str, style: int) -> int:
        return 30


@given(text=st.text(alphabet="ab cdé\u3042W.,", max_size=80))
def test_short_check_sums_widths_like_a_loop(text: str) -> None:
    from comfyvn_renpy.gui import gui_spec

    pager = Paginator(gui_spec(1920, 1080), _Widths())
    total = 0.0
    for ch in text:
        total += _Widths().advance(ch, 0)
    for width in (total, total - 1e-9, total + 1e-9):
        pager.width = width
        assert pager._short(text) == ("\n" not in text and total <= width)


@given(text=st.text(max_size=20))
def test_py_literal_replaces_exactly_the_surrogates(text: str) -> None:
    has_surrogate = any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)
    expected = repr(text.encode("utf-8", "replace").decode("utf-8")) if has_surrogate else repr(text)
    assert py_literal(text) == expected


class _Varied(_Widths):
    def lineskip(self, ch: str, style: int) -> int:
        return 20 + ord(ch) % 5 + style


@settings(max_examples=300)
@example(text="\u3042\u0301 a ", data=None).via("a combining mark never starts a line")
@given(
    text=st.text(alphabet="ab c\u00e9\u0301*_`~\n\t\u3042\u3002\u300c\u30fc\uff0c.!?\"'(", max_size=60),
    data=st.data(),
)
def test_page_measures_are_measure(text: str, data: st.DataObject | None) -> None:
    # Pagination measures slices through one per-text table (_Measures); it must agree with `measure`.
    from comfyvn_renpy.text import _Measures, measure, parse_markdown

    parsed = parse_markdown(text)
    metrics = _Varied()
    table = _Measures(parsed, metrics)
    if data is None:  # the explicit example: the whole text at the narrowest width
        start, end, width = 0, len(parsed.text), 1.0
    else:
        end = data.draw(st.integers(0, len(parsed.text)))
        start = data.draw(st.integers(0, end))
        width = data.draw(st.sampled_from([1.0, 5.0, 12.5, 40.0, 1000.0]))
    assert table.measured(start, end, width) == measure(parsed, start, end, width, metrics)


# Values Python finds equal (hash alike) that are different literals: the memo must keep them apart.
scalars = st.sampled_from([0, 0.0, -0.0, False, 1, 1.0, True, None, "1", 2.5])
conditions = st.fixed_dictionaries(
    {"key": st.sampled_from(["x", "x.y"]), "operator": st.sampled_from(["eq", "gte"])},
    optional={"value": st.one_of(scalars, st.lists(scalars, max_size=2))},
)
actions = st.fixed_dictionaries(
    {"key": st.sampled_from(["x", "x.y"]), "type": st.sampled_from(["set", "increment"])},
    optional={"value": st.one_of(scalars, st.lists(scalars, max_size=2)), "amount": scalars},
)


@given(items=st.lists(st.tuples(conditions, actions), min_size=5, max_size=30))
def test_memo_translates_like_the_functions(items: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    # One memo across the list: equal-looking values (1, 1.0, True; 0.0, -0.0) must not share a result.
    from comfyvn_renpy.conditions import Memo, action_python, condition_python

    memo, names = Memo(), {"x": "v_x"}
    for condition, action in items:
        assert memo.condition(condition, names) == condition_python(condition, names)
        assert memo.action(action, names) == action_python(action, names)


def test_memo_keeps_equal_looking_values_apart() -> None:
    from comfyvn_renpy.conditions import Memo, action_python, condition_python

    memo, names = Memo(), {"x": "v_x"}
    for value in (0, 0.0, -0.0, False, 1, 1.0, True, None):
        for operator in ("eq", "gte"):
            condition = {"key": "x", "operator": operator, "value": value}
            assert memo.condition(condition, names) == condition_python(condition, names)
        for kind, field in (("set", "value"), ("increment", "amount")):
            action = {"key": "x", "type": kind, field: value}
            assert memo.action(action, names) == action_python(action, names)
