"""The scenario runner as it was before the step fast path (commit 8637416), kept verbatim as the
reference the optimised runner is checked against (test_runner_equivalence.py).

It is the project's own earlier code, copied so that a change to the real runner cannot also change
the reference: rules (conditions, actions), the weighted pick, the RNG state and `_advance` are all
here. Only the imports and docstrings were trimmed; do not "optimise" this file.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeGuard

import attrs
from comfyvn.errors import ComfyVNError, Conflict, Unprocessable
from comfyvn_scenario.project import DEFAULT_POV, Project, split_target

# ---- rng.py ---------------------------------------------------------------------------------------
MOD = 2**32


def normalize_seed(seed: int) -> int:
    return int(seed) % MOD


def lcg_next(value: int) -> int:
    return (1664525 * value + 1013904223) % MOD


@attrs.frozen(slots=True)
class Rng:
    seed: int = attrs.field(converter=normalize_seed)
    value: int = attrs.field(converter=normalize_seed)
    uses: int = 0

    @classmethod
    def from_seed(cls, seed: int) -> Rng:
        return cls(seed, seed, 0)

    def draw(self) -> tuple[float, Rng]:
        value = lcg_next(self.value)
        return value / MOD, type(self)(self.seed, value, self.uses + 1)

    def to_wire(self) -> dict[str, int]:
        return {"seed": self.seed, "value": self.value, "uses": self.uses}

    @classmethod
    def from_wire(cls, raw: Any, *, field: str = "rng") -> Rng:
        """Parse ``{seed, value?, uses?}`` (value defaults to seed, uses to 0) or a bare integer seed."""
        if _is_int(raw):
            return cls.from_seed(raw)
        if not isinstance(raw, dict):
            raise ComfyVNError("rng must be an object {seed, value, uses}", field=field, code="invalid_state")
        seed = raw.get("seed")
        if not _is_int(seed):
            raise ComfyVNError("rng.seed must be an integer", field=f"{field}.seed", code="invalid_state")
        value = raw.get("value", seed)
        uses = raw.get("uses", 0)
        if not _is_int(value):
            raise ComfyVNError("rng.value must be an integer", field=f"{field}.value", code="invalid_state")
        if not _is_int(uses) or uses < 0:
            raise ComfyVNError("rng.uses must be a non-negative integer", field=f"{field}.uses", code="invalid_state")
        return cls(seed, value, uses)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def weighted_index(weights: Sequence[float], r: float) -> int:
    total = 0.0
    for weight in weights:
        total += weight
    threshold = r * total
    cursor = 0.0
    for index, weight in enumerate(weights):
        cursor += weight
        if threshold < cursor:
            return index
    return len(weights) - 1


# ---- rules.py -------------------------------------------------------------------------------------
class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
Condition = Callable[[Mapping[str, Any]], bool]
Action = Callable[[dict[str, Any]], dict[str, Any]]


def split_key(key: str) -> tuple[str, ...]:
    """Dot-path segments; empty segments are ignored as the original runner did (``a..b`` == ``a.b``)."""
    return tuple(part for part in key.split(".") if part)


def get_path(variables: Mapping[str, Any], parts: Sequence[str]) -> Any:
    """The value at ``parts`` or `MISSING` (an intermediate that is not an object counts as missing)."""
    current: Any = variables
    for part in parts:
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        else:
            return MISSING
    return current


def _number(value: Any) -> float | None:
    # "gt/gte/lt/lte compare as numbers" (wire): the original used float(), so "3" compares as 3.
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def compile_condition(condition: Mapping[str, Any]) -> Condition:
    """A predicate over variables. A missing key makes every operator false except ``not_exists``."""
    parts = split_key(str(condition["key"]))
    operator = str(condition["operator"])
    value = condition.get("value")

    if operator == "exists":
        return lambda variables: get_path(variables, parts) is not MISSING
    if operator == "not_exists":
        return lambda variables: get_path(variables, parts) is MISSING
    if operator in ("gt", "gte", "lt", "lte"):
        bound = _number(value)
        if bound is None:
            return lambda variables: False
        compare: Callable[[float, float], bool] = {
            "gt": float.__gt__,
            "gte": float.__ge__,
            "lt": float.__lt__,
            "lte": float.__le__,
        }[operator]

        def numeric(variables: Mapping[str, Any]) -> bool:
            current = get_path(variables, parts)
            if current is MISSING:
                return False
            number = _number(current)
            return number is not None and compare(number, bound)

        return numeric
    if operator in ("in", "not_in"):
        negate = operator == "not_in"

        def member(variables: Mapping[str, Any]) -> bool:
            current = get_path(variables, parts)
            if current is MISSING:
                return False
            if isinstance(value, str):
                found = isinstance(current, str) and current in value
            elif isinstance(value, list):
                found = current in value
            else:
                return False
            return found != negate

        return member
    if operator in ("eq", "neq"):
        negate = operator == "neq"

        def equal(variables: Mapping[str, Any]) -> bool:
            current = get_path(variables, parts)
            if current is MISSING:
                return False
            return bool(current == value) != negate

        return equal
    raise ValueError(f"unknown condition operator {operator!r}")


def _assoc(tree: Mapping[str, Any], parts: Sequence[str], value: Any) -> dict[str, Any]:
    new = dict(tree)
    head = parts[0]
    if len(parts) == 1:
        new[head] = value
    else:
        child = tree.get(head)
        new[head] = _assoc(child if isinstance(child, Mapping) else {}, parts[1:], value)
    return new


def _dissoc(tree: dict[str, Any], parts: Sequence[str]) -> dict[str, Any]:
    head = parts[0]
    if head not in tree:
        return tree
    if len(parts) == 1:
        new = dict(tree)
        del new[head]
        return new
    child = tree[head]
    if not isinstance(child, dict):
        return tree
    updated = _dissoc(child, parts[1:])
    if updated is child:
        return tree
    new = dict(tree)
    new[head] = updated
    return new


def is_number(value: Any) -> TypeGuard[int | float]:
    """A JSON number (booleans are not numbers here, unlike Python's ``isinstance(True, int)``)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def compile_action(action: Mapping[str, Any]) -> Action:
    """A function ``variables -> new variables`` (the input is never modified)."""
    parts = split_key(str(action["key"]))
    kind = action["type"]
    if not parts:
        return lambda variables: variables
    if kind == "set":
        value = action.get("value")
        return lambda variables: _assoc(variables, parts, value)
    if kind == "clear":
        return lambda variables: _dissoc(variables, parts)
    if kind in ("increment", "decrement"):
        raw = action.get("amount")
        if raw is None:
            raw = action.get("value")
        # A non-numeric amount falls back to 1 as in the original; the validator reports it.
        delta: int | float = raw if is_number(raw) else 1
        if kind == "decrement":
            delta = -delta

        def bump(variables: dict[str, Any]) -> dict[str, Any]:
            base = get_path(variables, parts)
            # Missing or non-numeric base counts as 0 (original behaviour); ints stay ints.
            start = base if is_number(base) else 0
            return _assoc(variables, parts, start + delta)

        return bump
    raise ValueError(f"unknown action type {kind!r}")


def apply_actions(actions: Sequence[Action], variables: dict[str, Any]) -> dict[str, Any]:
    """Run compiled actions in order."""
    for action in actions:
        variables = action(variables)
    return variables


# ---- runner.py ------------------------------------------------------------------------------------
class Choice:
    """A compiled choice. ``raw`` is the scene's choice dict (read-only)."""

    __slots__ = ("actions", "conditions", "key", "raw", "target", "visible_to", "weight")

    def __init__(self, raw: Mapping[str, Any], target: Node) -> None:
        self.raw = raw
        self.key: str = raw.get("id") or raw["target"]
        self.target = target
        weight = raw.get("weight", 1)
        self.weight: float = weight if is_number(weight) else 0
        self.conditions: tuple[Condition, ...] = tuple(compile_condition(c) for c in raw.get("conditions") or ())
        self.actions: tuple[Action, ...] = tuple(compile_action(a) for a in raw.get("actions") or ())
        visible = raw.get("visible_to")
        if isinstance(visible, str):
            visible = [visible]
        self.visible_to: frozenset[str] | None = frozenset(visible) if visible else None


class Node:
    """A compiled node; ``choices`` are filled in once every node of the scenario exists."""

    __slots__ = ("actions", "choices", "end", "id", "raw", "scene_id")

    def __init__(self, scene_id: str, raw: Mapping[str, Any]) -> None:
        self.scene_id = scene_id
        self.id: str = raw["id"]
        self.raw = raw
        self.end = bool(raw.get("end", False))
        self.actions: tuple[Action, ...] = tuple(compile_action(a) for a in raw.get("actions") or ())
        self.choices: tuple[Choice, ...] = ()

    def available(self, variables: Mapping[str, Any], pov: str) -> list[Choice]:
        """Choices visible to ``pov`` with weight > 0 and every condition true, in scene order."""
        return [
            c
            for c in self.choices
            if c.weight > 0
            and (c.visible_to is None or pov in c.visible_to)
            and all(cond(variables) for cond in c.conditions)
        ]


@attrs.frozen(slots=True)
class RunState:
    """Runner state. ``history`` is a persistent linked list ``((scene_id, node, choice), previous)``
    so a step appends in O(1) without copying; `to_wire` lays it out as the wire list."""

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


@attrs.frozen(slots=True)
class StepResult:
    """What a step returns: the new state, the current node and the choices available there."""

    state: RunState
    node: Node
    choices: list[Choice]
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
        for scene_id, scene_nodes in self.nodes.items():
            for node in scene_nodes.values():
                node.choices = tuple(
                    Choice(raw, self._resolve(scene_id, raw["target"])) for raw in node.raw.get("choices") or ()
                )

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
        from comfyvn_scenario.validation import raise_for_invalid, validate_project, validate_scene

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
    choices = [] if node.end else node.available(values, pov)
    state = RunState(
        scene_id, node_id, values, ((scene_id, node_id, None), None), Rng.from_seed(seed or 0), not choices, pov
    )
    return StepResult(state, node, choices, scenario.multi_scene)


def _advance(scenario: Scenario, state: RunState, choice_id: str | None, pov: str | None) -> StepResult:
    if pov is not None and pov != state.pov:
        state = attrs.evolve(state, pov=pov)
    node = scenario.node(state.scene_id, state.node_id)
    if state.finished:
        return StepResult(state, node, [], scenario.multi_scene)
    available = [] if node.end else node.available(state.variables, state.pov)
    if not available:
        return StepResult(attrs.evolve(state, finished=True), node, [], scenario.multi_scene)
    rng = state.rng
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
        r, rng = rng.draw()
        choice = available[weighted_index([c.weight for c in available], r)]
    target = choice.target
    variables = apply_actions(target.actions, apply_actions(choice.actions, state.variables))
    choices = [] if target.end else target.available(variables, state.pov)
    new_state = RunState(
        target.scene_id,
        target.id,
        variables,
        ((state.scene_id, node.id, choice.key), state.history),
        rng,
        target.end or not choices,
        state.pov,
    )
    return StepResult(new_state, target, choices, scenario.multi_scene)


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
    scenario = compile_scenario(source)
    if state is None:
        return _advance(scenario, initial_state(scenario, seed=seed, pov=pov).state, choice_id, None)
    if not isinstance(state, RunState):
        state = state_from_wire(scenario, state, seed=seed)
    if seed is not None and int(seed) % 2**32 != state.rng.seed:
        raise Conflict(
            f"state already carries rng seed {state.rng.seed}; drop `seed` or start a new state",
            field="seed",
            code="seed_mismatch",
        )
    return _advance(scenario, state, choice_id, pov)


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
