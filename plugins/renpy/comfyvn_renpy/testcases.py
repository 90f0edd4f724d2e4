"""Ren'Py ``testcase`` blocks derived from the scenario's own playtest traces (``--testcases``).

`explore` finds a path to every ending for every POV; each path is replayed with `run_playtest`
(scripted policy) and the trace becomes one testcase: a click on the title screen's Start, a ``click``
per say interaction, a click on the chosen menu entry per menu, then a wait for the ending's label
and an ``assert`` on every variable of the trace's final state. Ren'Py 8.0's ``click until`` stalls
on plain dialogue, so clicks are counted exactly from the exported flow instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs
from comfyvn_scenario import Project
from comfyvn_scenario.playtest import explore, run_playtest

from .fonts import default_pager
from .layout import Layout
from .names import py_literal
from .script import choice_text, flow_kind, shown_choices
from .text import Paginator, parse_markdown

__all__ = ["MARKER", "Testcase", "derive_testcases", "render_testcases"]

MARKER = "comfyvn-testcase-passed"
_UNSAFE = re.compile(r"[\[\]{}%\\\"\n]")


@attrs.frozen
class Testcase:
    """One derived testcase: its name, POV, the choices taken, the ending label and final variables."""

    name: str
    pov: str
    choices: tuple[str, ...]
    ending: str
    lines: tuple[str, ...]


def _pattern(text: str) -> str | None:
    """A substring of ``text`` that Ren'Py's focus matcher can search for verbatim (None if too short)."""
    collapsed = " ".join(text.split())
    pieces = sorted(_UNSAFE.split(collapsed), key=len, reverse=True)
    best = pieces[0].strip() if pieces else ""
    return f'"{best}"' if best else None


def _says(node: Mapping[str, Any]) -> bool:
    return isinstance(node.get("text"), str) and bool(node["text"])


def _node(project: Project, scene_id: str, node_id: str) -> Mapping[str, Any]:
    return next(n for n in project.scenes[scene_id]["nodes"] if n["id"] == node_id)


def _case(
    project: Project,
    layout: Layout,
    trace: Mapping[str, Any],
    name: str,
    pov_menu: bool,
    pov_names: Mapping[str, str],
    pager: Paginator,
) -> Testcase | None:
    # Ren'Py calls a testcase stuck after 5 s without progress and clicks through a transition after
    # 5 s; a software-rendered 1080p game on a busy machine needs longer, and a click that cuts a
    # transition short is lost. Then the game opens on its title screen: start as a player does.
    # Ren'Py's test runner redraws at the maximum frame rate by default; software rendering of a
    # 1080p game then spends most of a run drawing frames nobody looks at (4x slower here).
    lines: list[str] = [
        "$ _test.maximum_framerate = False",
        "$ _test.timeout = 90.0",
        "$ _test.transition_timeout = 60.0",
        '"Start"',
    ]
    if pov_menu:
        pattern = _pattern(pov_names[trace["pov"]])
        if pattern is None:
            return None
        lines.append(pattern)
    for step in trace["steps"]:
        node = _node(project, step["scene_id"], step["node"])
        kind = flow_kind(node, layout.variables)
        pages = len(pager.pages(node["text"])) if _says(node) else 0
        if kind == "auto":
            lines += ["click"] * pages
            continue
        lines += ["click"] * max(0, pages - 1)  # the pages before the one that captions the menu
        chosen = next((c for c in shown_choices(node) if (c.get("id") or c.get("target")) == step["choice"]), None)
        pattern = _pattern(parse_markdown(choice_text(chosen)).text) if chosen is not None else None
        if pattern is None:
            return None  # a choice whose text cannot be matched reliably: no testcase for this path
        lines.append(pattern)
    final = trace["final"]
    end_node = _node(project, final["scene_id"], final["node"])
    if not _says(end_node):
        return None  # the game ends without an interaction there: nothing to stop and assert at
    label = layout.node_labels[(final["scene_id"], final["node"])]
    lines.append(f"label {label}")
    variables = final["variables"]
    for key, python_name in layout.variables.items():
        check = f"{python_name} == {py_literal(variables[key])}" if key in variables else f"cvn_missing({python_name})"
        lines.append(f"assert {check}")
    lines += [f"$ print({py_literal(f'{MARKER} {name}')})", "$ renpy.quit()"]
    return Testcase(name, trace["pov"], tuple(s["choice"] for s in trace["steps"]), label, tuple(lines))


def derive_testcases(
    project: Project, layout: Layout, *, pov_menu: bool, pov: str, limit: int = 16, pager: Paginator | None = None
) -> list[Testcase]:
    """One testcase per (POV, ending) that explore reaches, at most ``limit``, in a stable order.

    ``pager`` must be the one the script was written with: a click is counted per page of text."""
    pager = pager or default_pager()
    pov_names = {p["id"]: str(p.get("name") or p["id"]) for p in project.povs if isinstance(p.get("id"), str)}
    povs = list(pov_names) if pov_menu else [pov]
    report = explore(project, povs=povs)
    cases: list[Testcase] = []
    for index, ending in enumerate(report.data["endings"]):
        if len(cases) >= limit:
            break
        trace = run_playtest(project, pov=ending["pov"], policy="scripted", choices=ending["path"]).data
        case = _case(project, layout, trace, f"cvn_path_{index + 1}", pov_menu, pov_names, pager)
        if case is not None:
            cases.append(case)
    return cases


def render_testcases(cases: list[Testcase], header: str) -> str:
    """``tests.rpy`` text; run one with ``renpy <dir> test <name>`` (each ends with ``renpy.quit()``)."""
    out = [header]
    for case in cases:
        out.append(f"## POV {case.pov}: {' > '.join(case.choices) or '(no choice)'} -> {case.ending}")
        out.append(f"testcase {case.name}:")
        out += [f"    {line}" for line in case.lines]
        out.append("")
    return "\n".join(out)
