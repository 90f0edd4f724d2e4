"""The deterministic runner (comfyvn-wire.md "Deterministic runner"), as a pure library.

`compile_scenario` turns a scene dict or a `Project` into a `Scenario` once (validated, nodes
indexed, conditions and actions compiled); `step` is then a pure function of its inputs: no I/O,
no clock, no global state, so identical inputs give identical states in any process.
"""

from __future__ import annotations

import copy
import json
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from comfyvn.errors import ComfyVNError, Conflict, Unprocessable

from .project import DEFAULT_POV, Project, split_target
from .rng import INCREMENT, MASK, MOD, MULTIPLIER, Rng, weighted_index
from .rules import Action, Condition, all_of, apply_actions, compile_action, compile_condition, compose, is_number

__all__ = [
    "Choice",
    "Node",
    "RunState",
    "Scenario",
    "StepResult",
    "compile_scenario",
    "initial_state",
    "step",
]


class Choice:
    """A compiled choice. ``raw`` is the scene's choice dict (read-only)."""

    __slots__ = (
        "actions",
        "apply",
        "check",
        "conditions",
        "entry",
        "key",
        "move",
        "raw",
        "target",
        "visible_to",
        "weight",
    )

    def __init__(
        self,
        raw: Mapping[str, Any],
        target: Node,
        origin: Node,
        condition: Callable[[Mapping[str, Any]], Condition] = compile_condition,
    ) -> None:
        self.raw = raw
        self.key: str = raw.get("id") or raw["target"]
        self.target = target
        # The history entry a step through this choice appends: built once, shared by every step.
        self.entry: tuple[str, str, str | None] = (origin.scene_id, origin.id, self.key)
        weight = raw.get("weight", 1)
        self.weight: float = weight if is_number(weight) else 0
        self.conditions: tuple[Condition, ...] = tuple(condition(c) for c in raw.get("conditions") or ())
        self.check: Condition | None = all_of(self.conditions)  # every condition, or None without any
        self.actions: tuple[Action, ...] = tuple(compile_action(a) for a in raw.get("actions") or ())
        self.apply = compose(self.actions)  # all of them as one call, or None
        visible = raw.get("visible_to")
        if isinstance(visible, str):
            visible = [visible]
        self.visible_to: frozenset[str] | None = frozenset(visible) if visible else None

    move: Move  # set by `seal_move`

    def seal_move(self) -> None:
        """Gather what `step` needs after taking this choice into one tuple (`Move`), once the target is
        sealed: one object read per step instead of one per field of the choice and of its target node,
        which a step through a large scenario finds cold in the cache."""
        target = self.target
        menu = target.default_menu if target.menus is None else None
        self.move = (
            self.apply,
            target,
            self.entry,
            target.scene_id,
            target.id,
            target.apply,
            target.end,
            target.settled,
            menu,
        )


# What taking a choice leads to (`Choice.move`): the choice's actions, the target node, the history
# entry, the target's scene and id, the target's actions, whether it ends, its settled choices (or
# None) and the menu every POV sees there (or None when a POV has its own).
Move = tuple[Any, "Node", tuple[str, str, str | None], str, str, Any, bool, "tuple[Choice, ...] | None", "Menu | None"]


LastStep = tuple["RunState", "Node", "tuple[Choice, ...]", "Menu", tuple[Any, ...], tuple[int, int, int] | None]


class Menu:
    """The choices of a node that one POV may take before conditions: weight > 0 and visible to it,
    in scene order. Built once per node and POV at compile time, so a step only evaluates conditions."""

    __slots__ = ("all_hold", "candidates", "cumulative", "picks", "total")

    def __init__(self, candidates: Sequence[Choice]) -> None:
        self.candidates: tuple[Choice, ...] = tuple(candidates)
        # Every condition of every candidate, in order: when it holds (the usual case), all candidates
        # are available and no per-choice filtering is needed. None when no candidate has a condition.
        self.all_hold = all_of([cond for c in self.candidates for cond in c.conditions])
        # For a draw when every candidate is available: the running sums `weighted_index` computes
        # (same order, same float additions), their total, and the candidates indexed by
        # bisect_right(sums, r * total) -- which finds the first sum above the threshold, as the scan
        # does (the sums never decrease: weights are > 0) -- with the last one repeated for the
        # scan's fallback past the end. None when the sums cannot be computed here (an int weight too
        # large for a float): the pick then raises at the step, as it always did.
        self.cumulative: tuple[float, ...] = ()
        self.total = 0.0
        self.picks: tuple[Choice, ...] | None = None
        cursor, sums = 0.0, []
        try:
            for choice in self.candidates:
                cursor += choice.weight
                sums.append(cursor)
        except OverflowError:
            return
        if sums:
            self.cumulative, self.total = tuple(sums), sums[-1]
            self.picks = (*self.candidates, self.candidates[-1])

    def select(self, variables: Mapping[str, Any]) -> tuple[Choice, ...]:
        """The candidates whose conditions all hold, in order (the shared tuple when all of them do).

        Same conditions, same order, same first exception as checking choice by choice: `all_hold`
        stops at the first false condition, and only then are the choices checked one by one."""
        all_hold = self.all_hold
        if all_hold is None or all_hold(variables):
            return self.candidates
        return tuple([c for c in self.candidates if c.check is None or c.check(variables)])

    def pick(self, available: Sequence[Choice], r: float) -> Choice:
        """`weighted_index` over ``available`` (what `select` returned) for the draw ``r``."""
        if available is self.candidates and self.picks is not None:
            return self.picks[bisect_right(self.cumulative, r * self.total)]
        return available[weighted_index([c.weight for c in available], r)]


class Node:
    """A compiled node; ``choices`` are filled in once every node of the scenario exists, then `seal`
    builds the per-POV menus."""

    __slots__ = ("actions", "apply", "choices", "default_menu", "end", "id", "menus", "raw", "scene_id", "settled")

    def __init__(self, scene_id: str, raw: Mapping[str, Any]) -> None:
        self.scene_id = scene_id
        self.id: str = raw["id"]
        self.raw = raw
        self.end = bool(raw.get("end", False))
        self.actions: tuple[Action, ...] = tuple(compile_action(a) for a in raw.get("actions") or ())
        self.apply = compose(self.actions)  # all of them as one call, or None
        self.choices: tuple[Choice, ...] = ()
        self.default_menu = Menu(())
        self.menus: dict[str, Menu] | None = None
        # The choices every POV has here whatever the variables (an ending's none), or None when they
        # depend on the POV or on conditions: `step` then takes them as they are, without the menus.
        self.settled: tuple[Choice, ...] | None = ()

    def seal(self) -> None:
        """Build the menus: one per POV that a ``visible_to`` of a takeable choice names, and one for
        every other POV (which sees exactly the unrestricted choices)."""
        takeable = [c for c in self.choices if c.weight > 0]
        self.default_menu = Menu([c for c in takeable if c.visible_to is None])
        named = sorted({pov for c in takeable for pov in c.visible_to or ()})
        self.menus = {
            pov: Menu([c for c in takeable if c.visible_to is None or pov in c.visible_to]) for pov in named
        } or None
        if self.end:
            self.settled = ()
        elif self.menus is None and self.default_menu.all_hold is None:
            self.settled = self.default_menu.candidates
        else:
            self.settled = None

    def menu(self, pov: str) -> Menu:
        """The menu ``pov`` sees here."""
        menus = self.menus
        return self.default_menu if menus is None else menus.get(pov, self.default_menu)

    def available(self, variables: Mapping[str, Any], pov: str) -> list[Choice]:
        """Choices visible to ``pov`` with weight > 0 and every condition true, in scene order."""
        return list(self.menu(pov).select(variables))


class RunState(NamedTuple):
    """Runner state. ``history`` is a persistent linked list ``((scene_id, node, choice), previous)``
    so a step appends in O(1) without copying; `to_wire` lays it out as the wire list.

    A named tuple rather than an attrs class because `step` builds one per step and a tuple is built
    in one operation (attrs' frozen ``__init__`` stores field by field through ``object.__setattr__``,
    the largest cost of a step). It is a value either way: immutable, compared and printed field by
    field; ``state._replace(pov=...)`` is ``attrs.evolve``. Never mutate its ``variables`` in place:
    consecutive states share them when no action ran.

    The linked list nests one tuple per step, and Python's own tuple comparison, printing and pickling
    recurse into nested tuples: past about a thousand steps they would raise ``RecursionError``. So
    `__eq__`, `__repr__` and `__reduce__` (pickle, ``copy``) walk the history in a loop instead, and
    the repr shows it as the list of its entries."""

    scene_id: str
    node_id: str
    variables: dict[str, Any]
    history: tuple[Any, ...] | None
    rng: Rng
    finished: bool
    pov: str

    def history_list(self) -> list[tuple[str, str, str | None]]:
        entries: list[tuple[str, str, str | None]] = []
        link = self.history
        while link is not None:
            entries.append(link[0])
            link = link[1]
        entries.reverse()
        return entries

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RunState):
            return tuple.__eq__(self, other)
        if self[:3] != other[:3] or self[4:] != other[4:]:
            return False
        mine, theirs = self.history, other.history
        while mine is not theirs:
            if mine is None or theirs is None or mine[0] != theirs[0]:
                return False
            mine, theirs = mine[1], theirs[1]
        return True

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:  # what it was (a state holds a dict: hashing one raises TypeError)
        return tuple.__hash__(self)

    def __repr__(self) -> str:
        return (
            f"RunState(scene_id={self.scene_id!r}, node_id={self.node_id!r}, variables={self.variables!r}, "
            f"history={self.history_list()!r}, rng={self.rng!r}, finished={self.finished!r}, pov={self.pov!r})"
        )

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _unpickle_state, (type(self), self[:3], self.history_list(), self[4:])

    def __copy__(self) -> RunState:
        return self  # a value: a shallow copy is the state itself, as for a tuple

    def to_wire(self, *, with_scene: bool = False) -> dict[str, Any]:
        """The wire state; ``with_scene`` adds ``scene_id`` to history entries (multi-scene projects)."""
        history = [
            {"node": node, "choice": choice, "scene_id": scene} if with_scene else {"node": node, "choice": choice}
            for scene, node, choice in self.history_list()
        ]
        return {
            "scene_id": self.scene_id,
            "current_node": self.node_id,
            "variables": copy.deepcopy(self.variables),
            "history": history,
            "rng": self.rng.to_wire(),
            "finished": self.finished,
            "pov": self.pov,
        }


def linked_history(entries: Iterable[tuple[str, str, str | None]]) -> tuple[Any, ...] | None:
    """The history linked list (`RunState.history`) of ``entries``, oldest first."""
    history: tuple[Any, ...] | None = None
    for entry in entries:
        history = (entry, history)
    return history


def _unpickle_state(
    cls: type[RunState], head: tuple[Any, ...], entries: list[tuple[str, str, str | None]], tail: tuple[Any, ...]
) -> RunState:
    state: RunState = tuple.__new__(cls, (*head, linked_history(entries), *tail))
    return state


class StepResult(NamedTuple):
    """What a step returns: the new state, the current node and the choices available there (a named
    tuple for the same reason as `RunState`; ``choices`` is a tuple, often the node's own shared one)."""

    state: RunState
    node: Node
    choices: tuple[Choice, ...]
    multi_scene: bool = False

    @property
    def finished(self) -> bool:
        return self.state.finished

    def to_wire(self) -> dict[str, Any]:
        """``{ok, state, node, choices, finished}`` as in the original API (deep copies)."""
        return {
            "ok": True,
            "state": self.state.to_wire(with_scene=self.multi_scene),
            "node": copy.deepcopy(dict(self.node.raw)),
            "choices": [copy.deepcopy(dict(c.raw)) for c in self.choices],
            "finished": self.state.finished,
        }


# The LCG's constants under names runner.pxd gives C types, so that compiled, a draw is C arithmetic.
# ``value / _SCALE`` is ``value / MOD`` to the bit: both operands are exact doubles (value < 2**32) and
# the division is correctly rounded either way.
_MULTIPLIER, _INCREMENT, _MASK, _SCALE = MULTIPLIER, INCREMENT, MASK, float(MOD)

try:  # tuple.__new__(cls, fields) without the generic call, where setup.py compiled it
    from ._tuples import new_tuple as _make
except ImportError:  # pragma: no cover - the source install
    _make = tuple.__new__


def _remembering(check: Condition) -> Condition:
    """``check`` answering again at once for the variables object it was last called with."""
    last: tuple[Any, bool] = (None, False)

    def remembered(variables: Mapping[str, Any]) -> bool:
        nonlocal last
        seen = last
        if seen[0] is variables:
            return seen[1]
        answer = check(variables)
        last = (variables, answer)
        return answer

    return remembered


def _deep_merge_defaults(into: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """Add ``extra``'s keys missing from ``into`` (recursively); the first declaration wins."""
    for key, value in extra.items():
        if key not in into:
            into[key] = copy.deepcopy(value)
        elif isinstance(into[key], dict) and isinstance(value, Mapping):
            _deep_merge_defaults(into[key], value)


def deep_override(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` merged in recursively (override wins at the leaves)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_override(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class Scenario:
    """A compiled scene or project: what `step` runs. Build it with `compile_scenario` and reuse it."""

    def __init__(
        self,
        source: Mapping[str, Any] | Project,
        scenes: Mapping[str, Mapping[str, Any]],
        *,
        start: tuple[str, str],
        variables: dict[str, Any],
        default_pov: str,
    ) -> None:
        self.source = source
        project = source if isinstance(source, Project) else None
        self.project = project
        self.multi_scene = project is not None
        self.start = start
        self.variables = variables
        self.default_pov = default_pov
        self.nodes: dict[str, dict[str, Node]] = {
            scene_id: {raw["id"]: Node(scene_id, raw) for raw in scene["nodes"]} for scene_id, scene in scenes.items()
        }
        self.scene_starts = {scene_id: str(scene["start"]) for scene_id, scene in scenes.items()}
        # What the last `step` left: the state it returned, that state's node, its choices, the menu
        # its POV sees there, and its fields and its RNG's fields (None for an `Rng` subclass) as
        # plain tuples. Stepping on from that state then neither looks the node up nor evaluates its
        # conditions again, and unpacks plain tuples (one specialised instruction each; a named
        # tuple's unpacking goes through an iterator). Replaced whole, so threads sharing a scenario
        # never see a state with another state's choices. It relies on states being values: a
        # state's variables are never changed in place.
        self.last_step: LastStep | None = None
        self._conditions: dict[tuple[str, str, str], Condition] = {}
        for scene_id, scene_nodes in self.nodes.items():
            for node in scene_nodes.values():
                node.choices = tuple(
                    Choice(raw, self._resolve(scene_id, raw["target"]), node, self._condition)
                    for raw in node.raw.get("choices") or ()
                )
                node.seal()
        for scene_nodes in self.nodes.values():
            for node in scene_nodes.values():
                for choice in node.choices:
                    choice.seal_move()

    def _condition(self, raw: Mapping[str, Any]) -> Condition:
        """The compiled condition for ``raw``: one function per distinct condition in the scenario,
        which remembers its answer for the last variables it saw.

        Scripts repeat conditions ("has the key", "trust >= 3") on many choices, and variables only
        change when an action runs: between two actions each distinct condition is computed once.
        Remembering by identity is sound because variables are values, never changed in place (see
        `RunState`; `last_step` relies on the same), and the memory holds the dict it answered for,
        so its id cannot be reused. The pair is replaced whole, so threads sharing the scenario never
        read one state's variables with another's answer."""
        key = (
            str(raw["operator"]),
            str(raw["key"]),
            json.dumps(raw.get("value"), sort_keys=True, ensure_ascii=False, default=repr),
        )
        found = self._conditions.get(key)
        if found is None:
            found = self._conditions[key] = _remembering(compile_condition(raw))
        return found

    def _resolve(self, scene_id: str, target: str) -> Node:
        local = self.nodes[scene_id]
        other, node_id = split_target(target, local)
        return self.nodes[other][node_id] if other is not None else local[node_id]

    def node(self, scene_id: str, node_id: str) -> Node:
        """The compiled node, or a 422 naming the field."""
        scene_nodes = self.nodes.get(scene_id)
        if scene_nodes is None:
            raise Unprocessable(f"unknown scene {scene_id!r}", field="state.scene_id", code="unknown_scene")
        found = scene_nodes.get(node_id)
        if found is None:
            raise Unprocessable(
                f"unknown node {node_id!r} in scene {scene_id!r}",
                field="state.current_node",
                code="unknown_node",
            )
        return found


def compile_scenario(source: Mapping[str, Any] | Project | Scenario, *, validate: bool = True) -> Scenario:
    """Compile a scene dict or a `Project` (validated first unless ``validate=False``, which is only
    for input already validated by the caller; invalid input then fails in undefined ways)."""
    if isinstance(source, Scenario):
        return source
    if validate:
        from .validation import raise_for_invalid, validate_project, validate_scene

        report = validate_project(source) if isinstance(source, Project) else validate_scene(source)
        raise_for_invalid(report)
    if isinstance(source, Project):
        variables = copy.deepcopy(source.variables)
        for scene in source.scenes.values():
            _deep_merge_defaults(variables, scene.get("variables") or {})
        scene_id, node_id = source.start_pointer()
        start = (scene_id, node_id or str(source.scenes[scene_id]["start"]))
        return Scenario(source, source.scenes, start=start, variables=variables, default_pov=source.default_pov)
    if not isinstance(source, Mapping):
        raise ComfyVNError("scene must be a JSON object", field="scene", code="invalid_scene")
    scene_id = str(source["id"])
    pov = source.get("default_pov")
    if not (isinstance(pov, str) and pov.strip()):
        metadata = source.get("metadata")
        pov = metadata.get("default_pov") if isinstance(metadata, Mapping) else None
    return Scenario(
        source,
        {scene_id: source},
        start=(scene_id, str(source["start"])),
        variables=copy.deepcopy(dict(source.get("variables") or {})),
        default_pov=pov.strip() if isinstance(pov, str) and pov.strip() else DEFAULT_POV,
    )


def initial_state(
    scenario: Scenario, *, seed: int | None = None, pov: str | None = None, variables: Mapping[str, Any] | None = None
) -> StepResult:
    """The state before any step: at the start node, its actions applied, history ``[{start, null}]``."""
    scene_id, node_id = scenario.start
    node = scenario.node(scene_id, node_id)
    base = scenario.variables if variables is None else deep_override(scenario.variables, variables)
    pov = pov or scenario.default_pov
    values = apply_actions(node.actions, base)
    choices = () if node.end else node.menu(pov).select(values)
    state = RunState(
        scene_id, node_id, values, ((scene_id, node_id, None), None), Rng.from_seed(seed or 0), not choices, pov
    )
    return StepResult(state, node, choices, scenario.multi_scene)


def step(
    source: Mapping[str, Any] | Project | Scenario,
    state: RunState | Mapping[str, Any] | None = None,
    choice_id: str | None = None,
    seed: int | None = None,
    pov: str | None = None,
) -> StepResult:
    """Advance one step (wire semantics). ``state=None`` builds the initial state and steps once.

    ``source`` is a scene dict, a `Project` or a compiled `Scenario` (compile once when stepping
    repeatedly: compiling validates). ``state`` is a `RunState` or a wire state dict. ``seed`` only
    seeds a new state; with a state it must equal ``state.rng.seed``. ``pov`` switches the POV.
    Raises `ComfyVNError` (4xx) naming the field for bad input or an unavailable ``choice_id``.
    """
    # This is the runner's hot loop (a playtest or a client steps thousands of times): `Node.menu`,
    # `Menu.select`, `Menu.pick` and `Rng.draw` are written out inline below, and stepping on from the
    # state the previous step returned reuses its node, choices and menu (`Scenario.last_step`).
    scenario = source if type(source) is Scenario else compile_scenario(source)
    if type(state) is not RunState or seed is not None or pov is not None:
        state = _prepare(scenario, state, seed, pov)
    last = scenario.last_step
    if last is not None and last[0] is state:
        # The state's fields and its RNG's come from plain tuples the last step kept: unpacking a plain
        # tuple is one specialised instruction, a named tuple's goes through an iterator.
        _, node, available, menu, (scene_id, node_id, variables, history, rng, finished, pov), draws = last
        if finished:
            return StepResult(state, node, (), scenario.multi_scene)
    else:
        scene_id, node_id, variables, history, rng, finished, pov = state
        # The inlined draw takes an `Rng` whose value is a 32-bit int, as every `Rng` made through its
        # constructor or a draw is; anything else (a subclass, a value put in with `_replace`) draws
        # through `Rng.draw`, which gives the same numbers for any int.
        value = rng.value
        draws = (rng.seed, value, rng.uses) if type(rng) is Rng and type(value) is int and 0 <= value <= MASK else None
        try:
            node = scenario.nodes[scene_id][node_id]
        except KeyError:
            node = scenario.node(scene_id, node_id)  # raises the 422 naming the field
        if finished:
            return StepResult(state, node, (), scenario.multi_scene)
        menus = node.menus
        menu = node.default_menu if menus is None else menus.get(pov, node.default_menu)
        if node.end:
            available = ()
        else:
            all_hold = menu.all_hold
            available = menu.candidates if all_hold is None or all_hold(variables) else menu.select(variables)
    if not available:
        return StepResult(state._replace(finished=True), node, (), scenario.multi_scene)
    if choice_id is not None:
        for choice in available:
            if choice.key == choice_id:
                break
        else:
            keys = [c.key for c in available]
            raise Unprocessable(
                f"choice {choice_id!r} is not available at node {node.id!r}; available: {', '.join(keys)}",
                field="choice_id",
                code="choice_unavailable",
                details={"available": keys},
            )
    else:
        # The original draws even when one choice is available; so do we, to keep RNG states equal.
        if draws is not None:  # Rng.draw, inlined
            seed, current, uses = draws
            current = (_MULTIPLIER * current + _INCREMENT) & _MASK  # the same as % MOD for an int
            r = current / _SCALE
            draws = (seed, current, uses + 1)
            rng = _make(Rng, draws)
        else:
            r, rng = rng.draw()
        picks = menu.picks  # Menu.pick, inlined
        if available is menu.candidates and picks is not None:
            choice = picks[bisect_right(menu.cumulative, r * menu.total)]
        else:
            choice = available[weighted_index([c.weight for c in available], r)]
    apply, target, entry, scene_id, node_id, target_apply, end, following, shared_menu = choice.move
    if apply is not None:
        variables = apply(variables)
    if target_apply is not None:
        variables = target_apply(variables)
    menu = shared_menu if shared_menu is not None else target.menu(pov)  # None: a menu per POV there
    if following is None:
        all_hold = menu.all_hold
        following = menu.candidates if all_hold is None or all_hold(variables) else menu.select(variables)
    # tuple.__new__ with the fields in order is what the named tuples' constructors do, minus a frame.
    fields = (scene_id, node_id, variables, (entry, history), rng, end or not following, pov)
    new_state = _make(RunState, fields)
    scenario.last_step = (new_state, target, following, menu, fields, draws)
    result: StepResult = _make(StepResult, (new_state, target, following, scenario.multi_scene))
    return result


def _prepare(
    scenario: Scenario, state: RunState | Mapping[str, Any] | None, seed: int | None, pov: str | None
) -> RunState:
    """The state `step` starts from: a new one (``state=None``), one parsed from the wire, the seed
    checked against it, the POV switched."""
    if state is None:
        return initial_state(scenario, seed=seed, pov=pov).state
    if not isinstance(state, RunState):
        state = state_from_wire(scenario, state, seed=seed)
    if seed is not None and int(seed) % 2**32 != state.rng.seed:
        raise Conflict(
            f"state already carries rng seed {state.rng.seed}; drop `seed` or start a new state",
            field="seed",
            code="seed_mismatch",
        )
    if pov is not None and pov != state.pov:
        state = state._replace(pov=pov)
    return state


def state_from_wire(scenario: Scenario, raw: Any, *, seed: int | None = None, field: str = "state") -> RunState:
    """Parse a wire state; missing parts default as the original did (start node, empty history…)."""
    if not isinstance(raw, Mapping):
        raise ComfyVNError("state must be an object", field=field, code="invalid_state")
    start_scene, start_node = scenario.start
    scene_id = raw.get("scene_id") or start_scene
    if not isinstance(scene_id, str):
        raise ComfyVNError("state.scene_id must be a string", field=f"{field}.scene_id", code="invalid_state")
    default_node = start_node if scene_id == start_scene else scenario.scene_starts.get(scene_id, start_node)
    node_id = raw.get("current_node") or default_node
    if not isinstance(node_id, str):
        raise ComfyVNError("state.current_node must be a string", field=f"{field}.current_node", code="invalid_state")
    scenario.node(scene_id, node_id)
    variables = raw.get("variables", {})
    if not isinstance(variables, Mapping):
        raise ComfyVNError("state.variables must be an object", field=f"{field}.variables", code="invalid_state")
    history: tuple[Any, ...] | None = None
    entries = raw.get("history", [])
    if not isinstance(entries, list):
        raise ComfyVNError("state.history must be a list", field=f"{field}.history", code="invalid_state")
    for index, entry in enumerate(entries):
        if not (
            isinstance(entry, Mapping)
            and isinstance(entry.get("node"), str)
            and (entry.get("choice") is None or isinstance(entry.get("choice"), str))
        ):
            raise ComfyVNError(
                "history entries are {node: str, choice: str|null}",
                field=f"{field}.history.{index}",
                code="invalid_state",
            )
        history = ((str(entry.get("scene_id") or scene_id), entry["node"], entry.get("choice")), history)
    rng_raw = raw.get("rng")
    rng = Rng.from_wire(rng_raw, field=f"{field}.rng") if rng_raw is not None else Rng.from_seed(seed or 0)
    finished = raw.get("finished", False)
    if not isinstance(finished, bool):
        raise ComfyVNError("state.finished must be a boolean", field=f"{field}.finished", code="invalid_state")
    pov = raw.get("pov")
    if pov is not None and not isinstance(pov, str):
        raise ComfyVNError("state.pov must be a string", field=f"{field}.pov", code="invalid_state")
    return RunState(
        scene_id, node_id, copy.deepcopy(dict(variables)), history, rng, finished, pov or scenario.default_pov
    )
