"""Headless playtests: canonical JSON traces with a digest, explore-all, and golden comparisons.

A trace holds no clock and no machine detail, so the same scenario, seed, POV, variables and policy
give byte-identical canonical JSON (and digest) anywhere. Policies: ``first`` (always the first
available choice), ``random`` (the runner's seeded weighted pick), ``scripted`` (the given choice
ids in order). `explore` walks every branch up to a bound.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs
from comfyvn.digest import canonical_json
from comfyvn.digest import digest as digest_of
from comfyvn.errors import ComfyVNError, TooLarge

from .project import Project
from .runner import Choice, RunState, Scenario, compile_scenario, initial_state, step

__all__ = [
    "MAX_DEPTH",
    "MAX_STATES",
    "MAX_STEPS",
    "MAX_TRACE_BYTES",
    "POLICIES",
    "ExploreReport",
    "Trace",
    "TraceDiff",
    "canonical_json",
    "compare_traces",
    "explore",
    "run_playtest",
]

POLICIES = ("first", "random", "scripted")
TRACE_FORMAT = "comfyvn-playtest-trace"
DEFAULT_MAX_STEPS = 500
# Hard ceilings, whatever a caller asks for: a playtest runs inside the server process, so one request
# must not be able to take its memory or its CPU for minutes (an explore of 100,000 states at depth
# 100,000 on a three-choice loop once drove it to 24 GB).
MAX_STEPS = 10_000
MAX_DEPTH = 2_000
MAX_STATES = 50_000
# The canonical variables of all steps of one trace (or hashed by one explore) stay below this, so
# large variables cannot multiply into gigabytes of trace.
MAX_TRACE_BYTES = 32 * 2**20
MAX_EXPLORE_BYTES = 512 * 2**20


def check_bound(field: str, value: int, ceiling: int) -> None:
    """Refuse a bound below 0 (`ComfyVNError`) or above its hard ceiling (`TooLarge`, 413), naming ``field``."""
    if value < 0:
        raise ComfyVNError(f"{field} must be >= 0", field=field, code="invalid_bound")
    if value > ceiling:
        raise TooLarge(f"{field} must be at most {ceiling}, got {value}", field=field, code="bound_too_large")


def _describe(source: Mapping[str, Any] | Project | Scenario) -> dict[str, Any]:
    if isinstance(source, Scenario):
        source = source.source
    if isinstance(source, Project):
        return {
            "kind": "project",
            "id": source.id,
            "digest": digest_of({"project": source.document(), "scenes": source.scenes}),
        }
    return {"kind": "scene", "id": source.get("id"), "digest": digest_of(source)}


@attrs.frozen
class Trace:
    """A canonical playtest trace (``data``) and its ``digest``."""

    data: dict[str, Any]
    digest: str

    def to_wire(self) -> dict[str, Any]:
        return {**self.data, "digest": self.digest}


def _snapshot(state: RunState) -> dict[str, Any]:
    return {
        "scene_id": state.scene_id,
        "node": state.node_id,
        "variables": state.variables,
        "rng": state.rng.to_wire(),
        "finished": state.finished,
    }


def run_playtest(
    source: Mapping[str, Any] | Project | Scenario,
    *,
    seed: int = 0,
    pov: str | None = None,
    variables: Mapping[str, Any] | None = None,
    policy: str = "random",
    choices: Sequence[str] = (),
    max_steps: int = DEFAULT_MAX_STEPS,
) -> Trace:
    """Play ``source`` headless from its start and return the trace.

    Stops when the run finishes, after ``max_steps`` steps (``outcome: max_steps``) or, for a
    scripted policy, when the script runs out first (``outcome: script_exhausted``). A scripted
    choice that is unavailable raises a 422 naming ``choices.<index>`` and listing the available ones.
    """
    if policy not in POLICIES:
        raise ComfyVNError(
            f"unknown policy {policy!r}; use one of {', '.join(POLICIES)} (or explore)",
            field="policy",
            code="invalid_policy",
        )
    check_bound("max_steps", max_steps, MAX_STEPS)
    scenario = compile_scenario(source)
    result = initial_state(scenario, seed=seed, pov=pov, variables=variables)
    state = result.state
    initial = _snapshot(state)
    steps: list[dict[str, Any]] = []
    outcome = "finished"
    script = list(choices)
    trace_bytes, variables_bytes = 0, len(canonical_json(state.variables))
    while not state.finished:
        if len(steps) >= max_steps:
            outcome = "max_steps"
            break
        choice_id: str | None = None
        if policy == "first":
            choice_id = result.choices[0].key
        elif policy == "scripted":
            if len(steps) >= len(script):
                outcome = "script_exhausted"
                break
            choice_id = script[len(steps)]
        available = [c.key for c in result.choices]
        try:
            result = step(scenario, state, choice_id=choice_id)
        except ComfyVNError as exc:
            if exc.code == "choice_unavailable":
                exc.field = f"choices.{len(steps)}"
            raise
        previous, state = state, result.state
        if state.variables is not previous.variables:  # the runner shares unchanged variables
            variables_bytes = len(canonical_json(state.variables))
        trace_bytes += variables_bytes
        if trace_bytes > MAX_TRACE_BYTES:
            raise TooLarge(
                f"the trace would exceed {MAX_TRACE_BYTES // 2**20} MiB of variables; lower max_steps",
                field="max_steps",
                code="trace_too_large",
            )
        steps.append(
            {
                "index": len(steps),
                "scene_id": previous.scene_id,
                "node": previous.node_id,
                "choice": state.history[0][2] if state.history else None,
                "available": available,
                "to": {"scene_id": state.scene_id, "node": state.node_id},
                "rng": state.rng.to_wire(),
                "variables": state.variables,
            }
        )
    data = {
        "format": TRACE_FORMAT,
        "version": 1,
        "scenario": _describe(scenario),
        "seed": state.rng.seed,
        "pov": state.pov,
        "policy": {"kind": policy, **({"choices": script} if policy == "scripted" else {})},
        "max_steps": max_steps,
        "initial": initial,
        "steps": steps,
        "final": {**_snapshot(state), "steps": len(steps)},
        "outcome": outcome,
    }
    text = canonical_json(data)
    return Trace(json.loads(text), hashlib.sha256(text.encode("utf-8")).hexdigest())


@attrs.frozen
class ExploreReport:
    """Every branch walked: visited and unvisited nodes, endings with a path to each, bounds hit."""

    data: dict[str, Any]
    digest: str

    @property
    def visited(self) -> list[str]:
        return list(self.data["visited"])

    @property
    def unvisited(self) -> list[str]:
        return list(self.data["unvisited"])

    def to_wire(self) -> dict[str, Any]:
        return {**self.data, "digest": self.digest}


def _default_povs(scenario: Scenario) -> list[str]:
    if scenario.project is not None and scenario.project.povs:
        return [p["id"] for p in scenario.project.povs if isinstance(p.get("id"), str)]
    povs = [scenario.default_pov]
    for scene_nodes in scenario.nodes.values():
        for node in scene_nodes.values():
            for choice in node.choices:
                for pov in sorted(choice.visible_to or ()):
                    if pov not in povs:
                        povs.append(pov)
    return povs


def _path_list(link: tuple[str, Any] | None) -> list[str]:
    keys: list[str] = []
    while link is not None:
        keys.append(link[0])
        link = link[1]
    keys.reverse()
    return keys


def explore(
    source: Mapping[str, Any] | Project | Scenario,
    *,
    seed: int = 0,
    povs: Sequence[str] | None = None,
    variables: Mapping[str, Any] | None = None,
    max_depth: int = 200,
    max_states: int = 20_000,
) -> ExploreReport:
    """Take every available choice at every state (depth-first), for each POV (default: every declared
    POV, or for a scene its default POV plus every ``visible_to`` id). States already seen (same node,
    variables and POV) are not walked twice. ``truncated`` tells when a bound stopped the walk.

    ``max_depth`` and ``max_states`` above `MAX_DEPTH` / `MAX_STATES` raise `TooLarge`. Memory stays
    proportional to the states seen plus the depth: a seen state is kept as a 32-byte digest, paths are
    shared linked lists, and children are stepped one at a time rather than all pushed at once."""
    check_bound("max_depth", max_depth, MAX_DEPTH)
    check_bound("max_states", max_states, MAX_STATES)
    scenario = compile_scenario(source)
    pov_list = list(povs) if povs else _default_povs(scenario)
    label = (lambda s, n: f"{s}:{n}") if scenario.multi_scene else (lambda s, n: n)
    seen_states: set[bytes] = set()
    hashed_bytes = 0
    visited: set[tuple[str, str]] = set()
    endings: dict[tuple[str, str, str], list[str]] = {}
    truncated = False
    for pov in pov_list:
        start = initial_state(scenario, seed=seed, pov=pov, variables=variables)
        # A frame is a state whose choices are being walked: (state, remaining choices, path, depth).
        frames: list[tuple[RunState, Iterator[Choice], tuple[str, Any] | None, int]] = []
        pending: tuple[RunState, Sequence[Choice], tuple[str, Any] | None, int] | None = (
            start.state,
            start.choices,
            None,
            0,
        )
        while pending is not None:
            state, available, path, depth = pending
            visited.add((state.scene_id, state.node_id))
            text = canonical_json([state.scene_id, state.node_id, state.variables, pov])
            hashed_bytes += len(text)
            if hashed_bytes > MAX_EXPLORE_BYTES:
                raise TooLarge(
                    "the explored states' variables are too large to walk; lower max_states",
                    field="max_states",
                    code="explore_too_large",
                )
            key = hashlib.sha256(text.encode("utf-8")).digest()
            if key not in seen_states:
                if len(seen_states) >= max_states:
                    truncated = True
                    break
                seen_states.add(key)
                if state.finished:
                    ending = (pov, state.scene_id, state.node_id)
                    if ending not in endings:
                        endings[ending] = _path_list(path)
                elif depth >= max_depth:
                    truncated = True
                else:
                    frames.append((state, iter(available), path, depth))
            pending = None
            while frames and pending is None:
                parent, choices, parent_path, parent_depth = frames[-1]
                choice = next(choices, None)
                if choice is None:
                    frames.pop()
                    continue
                nxt = step(scenario, parent, choice_id=choice.key)
                pending = (nxt.state, nxt.choices, (choice.key, parent_path), parent_depth + 1)
    order = [(s, n) for s, nodes in scenario.nodes.items() for n in nodes]
    data = {
        "format": "comfyvn-playtest-explore",
        "version": 1,
        "scenario": _describe(scenario),
        "seed": seed,
        "povs": pov_list,
        "bounds": {"max_depth": max_depth, "max_states": max_states},
        "states": len(seen_states),
        "truncated": truncated,
        "visited": [label(s, n) for s, n in order if (s, n) in visited],
        "unvisited": [label(s, n) for s, n in order if (s, n) not in visited],
        "endings": [{"pov": p, "scene_id": s, "node": n, "path": path} for (p, s, n), path in sorted(endings.items())],
    }
    text = canonical_json(data)
    return ExploreReport(json.loads(text), hashlib.sha256(text.encode("utf-8")).hexdigest())


@attrs.frozen
class TraceDiff:
    """The result of `compare_traces`: ``equal``, each difference with a JSON pointer, and ``text``."""

    equal: bool
    differences: tuple[dict[str, Any], ...]
    first_divergent_step: int | None
    text: str

    def to_wire(self) -> dict[str, Any]:
        return {
            "equal": self.equal,
            "differences": list(self.differences),
            "first_divergent_step": self.first_divergent_step,
            "text": self.text,
        }


def _walk(expected: Any, actual: Any, path: str, out: list[dict[str, Any]]) -> None:
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        for key in sorted(set(expected) | set(actual), key=str):
            sub = f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"
            if key not in actual:
                out.append({"path": sub, "message": "missing", "expected": expected[key], "actual": None})
            elif key not in expected:
                out.append({"path": sub, "message": "unexpected", "expected": None, "actual": actual[key]})
            else:
                _walk(expected[key], actual[key], sub, out)
    elif isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            out.append(
                {
                    "path": path,
                    "message": f"length {len(actual)} instead of {len(expected)}",
                    "expected": len(expected),
                    "actual": len(actual),
                }
            )
        for index, (exp, act) in enumerate(zip(expected, actual, strict=False)):
            _walk(exp, act, f"{path}/{index}", out)
    elif type(expected) is not type(actual) or expected != actual:
        out.append({"path": path or "/", "message": "value differs", "expected": expected, "actual": actual})


def _plain(trace: Trace | ExploreReport | Mapping[str, Any]) -> dict[str, Any]:
    data = trace.to_wire() if isinstance(trace, (Trace, ExploreReport)) else dict(trace)
    data.pop("digest", None)  # derived from the rest; comparing it again only adds noise
    return data


def compare_traces(
    actual: Trace | Mapping[str, Any], golden: Trace | Mapping[str, Any], *, max_lines: int = 200
) -> TraceDiff:
    """Compare a trace with a golden one. ``text`` starts with a one-line summary (the first step
    whose choice or node differs) followed by a unified diff of the pretty JSON."""
    act, exp = _plain(actual), _plain(golden)
    differences: list[dict[str, Any]] = []
    _walk(exp, act, "", differences)
    if not differences:
        return TraceDiff(True, (), None, "traces are equal")
    first_step = None
    for diff in differences:
        parts = diff["path"].split("/")
        if len(parts) > 2 and parts[1] == "steps" and parts[2].isdigit():
            first_step = int(parts[2]) if first_step is None else min(first_step, int(parts[2]))
    summary = [f"{len(differences)} difference(s) from the golden trace"]
    if first_step is not None:
        exp_steps, act_steps = exp.get("steps") or [], act.get("steps") or []
        exp_step = exp_steps[first_step] if first_step < len(exp_steps) else None
        act_step = act_steps[first_step] if first_step < len(act_steps) else None
        prefix = f"/steps/{first_step}/"
        fields = sorted({d["path"][len(prefix) :].split("/")[0] for d in differences if d["path"].startswith(prefix)})
        summary.append(
            f"first divergence at step {first_step} ({', '.join(fields) or 'missing step'}): "
            f"expected {_step_text(exp_step)}, got {_step_text(act_step)}"
        )
    else:
        summary.append(f"first difference at {differences[0]['path']}")
    diff_lines = list(
        difflib.unified_diff(
            json.dumps(exp, indent=2, sort_keys=True).splitlines(),
            json.dumps(act, indent=2, sort_keys=True).splitlines(),
            "golden",
            "actual",
            n=2,
            lineterm="",
        )
    )
    if len(diff_lines) > max_lines:
        diff_lines = [*diff_lines[:max_lines], f"... ({len(diff_lines) - max_lines} more diff lines)"]
    return TraceDiff(False, tuple(differences), first_step, "\n".join(summary + diff_lines))


def _step_text(entry: Any) -> str:
    if not isinstance(entry, Mapping):
        return "no step"
    return f"choice {entry.get('choice')!r} at node {entry.get('node')!r}"
