"""Validation: the JSON Schema (jsonschema, Draft 2020-12) plus the semantic checks a schema cannot say.

Every issue carries a JSON-pointer ``path`` into its document (a scene, or project.json) and a
message. Semantic checks skip whatever the schema already rejected, so any JSON input gives a
report and never an exception.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import jsonschema
from comfyvn.errors import Unprocessable

from .files import missing_files
from .graph import reachable, trapped_cycles
from .project import PROJECT_FILE, SCENE_ID, SCENES_DIR, Project, load_project, split_target
from .rules import MISSING, get_path, is_number, split_key
from .schemas import quick_check, validator

__all__ = [
    "Issue",
    "ValidationReport",
    "pointer",
    "raise_for_invalid",
    "validate_project",
    "validate_project_dir",
    "validate_scene",
]

NODE_TYPES = ("dialogue", "narration", "choice", "jump", "end")


def pointer(*parts: str | int) -> str:
    """A JSON pointer (RFC 6901) from path segments."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


@attrs.frozen
class Issue:
    """One finding: where (``document`` + JSON-pointer ``path``), what, and how bad."""

    path: str
    message: str
    code: str
    severity: str = "error"
    document: str | None = None

    def to_wire(self) -> dict[str, Any]:
        out = {"path": self.path, "message": self.message, "code": self.code, "severity": self.severity}
        if self.document is not None:
            out["document"] = self.document
        return out


@attrs.frozen
class ValidationReport:
    errors: tuple[Issue, ...] = ()
    warnings: tuple[Issue, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.errors

    def to_wire(self) -> dict[str, Any]:
        """``{valid, errors[], warnings[]}``."""
        return {
            "valid": self.valid,
            "errors": [i.to_wire() for i in self.errors],
            "warnings": [i.to_wire() for i in self.warnings],
        }

    @classmethod
    def of(cls, issues: Iterable[Issue]) -> ValidationReport:
        issues = list(issues)
        return cls(tuple(i for i in issues if i.severity == "error"), tuple(i for i in issues if i.severity != "error"))


def raise_for_invalid(report: ValidationReport) -> None:
    """Raise a 422 `ComfyVNError` naming the first error's path when the report has errors."""
    if report.valid:
        return
    first = report.errors[0]
    where = f"{first.document} " if first.document else ""
    raise Unprocessable(
        f"scenario is invalid ({len(report.errors)} error(s)); first: {where}{first.path or '/'}: {first.message}",
        field=first.path or "/",
        code="invalid_scenario",
        details={"errors": [i.to_wire() for i in report.errors]},
    )


# -- schema ------------------------------------------------------------------------------------


def _schema_message(error: jsonschema.ValidationError) -> str:
    kind = error.validator
    value = error.validator_value
    if kind == "type":
        return f"must be of type {' or '.join(value) if isinstance(value, list) else value}"
    if kind == "enum":
        return f"must be one of {', '.join(map(str, value))}"
    if kind == "const":
        return f"must be {value!r}"
    if kind == "minLength" and value == 1:
        return "must not be empty"
    if kind == "minItems":
        return f"needs at least {value} item(s)"
    if kind in ("minimum", "maximum", "pattern", "maxLength", "minLength", "uniqueItems"):
        return f"fails {kind} {value!r}" if kind != "uniqueItems" else "items must be unique"
    if kind in ("oneOf", "anyOf"):
        return "does not match any allowed shape"
    message = error.message
    return message if len(message) <= 200 else f"fails {kind}"


def schema_issues(name: str, document: Any, doc_label: str | None) -> list[Issue]:
    """Schema violations of ``document`` against the schema ``name``, as issues."""
    check = quick_check(name)
    if check is not None and check(document):
        return []  # the compiled check accepts only what the detailed validator accepts
    issues = []
    for error in validator(name).iter_errors(document):
        path = list(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, Mapping):
            missing = [p for p in error.validator_value if p not in error.instance and repr(p) in error.message]
            issues.append(
                Issue(
                    pointer(*path, *missing[:1]),
                    f"{missing[0] if missing else 'a field'!r} is required",
                    "schema_required",
                    document=doc_label,
                )
            )
            continue
        issues.append(Issue(pointer(*path), _schema_message(error), f"schema_{error.validator}", document=doc_label))
    issues.sort(key=lambda i: i.path)
    return issues


# -- scene semantics ---------------------------------------------------------------------------
# These loops run once per node, choice, condition and action of a whole project (10,000+ nodes):
# they test types inline instead of through helper generators, and everything that depends only on
# a variable key (its path, its declared default, whether an action sets it) is worked out once per
# distinct key (`_Context`).


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


ACTION_TYPES = ("set", "increment", "decrement", "clear")


class _Context:
    """What scene checks need to know about the project they belong to (or its absence)."""

    def __init__(self, project: Project | None) -> None:
        self.project = project
        self.scenes: dict[str, dict[str, int]] = {}  # scene id -> node id -> index (first occurrence)
        self.declared: dict[str, Any] = {}
        self.action_keys: set[tuple[str, ...]] = set()
        self.characters: dict[str, Any] = project.characters if project else {}
        self.povs = {p["id"] for p in project.povs if isinstance(p.get("id"), str)} if project else set()
        # Per distinct key; filled only once `declared` and `action_keys` are complete (scene checks).
        self._parts: dict[str, tuple[str, ...]] = {}
        self._defaults: dict[tuple[str, ...], Any] = {}
        self._condition_ok: dict[str, bool] = {}

    def parts(self, key: str) -> tuple[str, ...]:
        parts = self._parts.get(key)
        if parts is None:
            parts = self._parts[key] = split_key(key)
        return parts

    def default(self, parts: tuple[str, ...]) -> Any:
        """The declared default at ``parts``, or `MISSING`."""
        try:
            return self._defaults[parts]
        except KeyError:
            value = self._defaults[parts] = get_path(self.declared, parts)
            return value

    def condition_key_known(self, key: str) -> bool:
        """Declared, or written by some action on the key or on one of its ancestors (set a = {...})."""
        known = self._condition_ok.get(key)
        if known is None:
            parts = self.parts(key)
            declared = bool(parts) and self.default(parts) is not MISSING
            # "some action key is a prefix of parts", the empty key included: one lookup per prefix.
            known = declared or any(parts[:n] in self.action_keys for n in range(len(parts) + 1))
            self._condition_ok[key] = known
        return known


def _index_scene(scene: dict[str, Any]) -> dict[str, int]:
    index: dict[str, int] = {}
    nodes = scene.get("nodes")
    if isinstance(nodes, list):
        for i, node in enumerate(nodes):
            if isinstance(node, dict):
                node_id = node.get("id")
                if isinstance(node_id, str) and node_id and node_id not in index:
                    index[node_id] = i
    return index


def _collect_actions(scene: dict[str, Any], ctx: _Context) -> None:
    nodes = scene.get("nodes")
    if not isinstance(nodes, list):
        return
    into = ctx.action_keys
    for node in nodes:
        if not isinstance(node, dict):
            continue
        lists = [node.get("actions")]
        choices = node.get("choices")
        if isinstance(choices, list):
            lists.extend(choice.get("actions") for choice in choices if isinstance(choice, dict))
        for actions in lists:
            if not isinstance(actions, list):
                continue
            for action in actions:
                if isinstance(action, dict):
                    key = action.get("key")
                    if isinstance(key, str) and key and action.get("type") != "clear":
                        into.add(ctx.parts(key))


def _check_actions(actions: list[Any], base: tuple[str | int, ...], ctx: _Context, doc: str | None) -> list[Issue]:
    issues = []
    for a, action in enumerate(actions):
        if not isinstance(action, dict):
            continue
        key = action.get("key")
        kind = action.get("type")
        if not (isinstance(key, str) and key) or kind not in ACTION_TYPES:
            continue
        parts = ctx.parts(key)
        if not parts:
            issues.append(Issue(pointer(*base, a, "key"), "action key has no path segment", "empty_key", document=doc))
            continue
        default = ctx.default(parts)
        if kind in ("increment", "decrement"):
            amount_field = "amount" if action.get("amount") is not None else "value"
            amount = action.get(amount_field)
            if amount is not None and not is_number(amount):
                issues.append(
                    Issue(
                        pointer(*base, a, amount_field),
                        f"{kind} needs a number",
                        "non_numeric_amount",
                        document=doc,
                    )
                )
            if default is not MISSING and not is_number(default):
                issues.append(
                    Issue(
                        pointer(*base, a, "key"),
                        f"cannot {kind} {key!r}: its declared default is not a number",
                        "non_numeric_variable",
                        document=doc,
                    )
                )
        if kind != "clear" and default is MISSING:
            issues.append(
                Issue(
                    pointer(*base, a, "key"),
                    f"variable {key!r} is set here but has no declared default",
                    "undeclared_variable",
                    "warning",
                    doc,
                )
            )
    return issues


def _check_target(target: str, where: str, local: dict[str, int], ctx: _Context, doc: str | None) -> Issue | None:
    """The issue with a choice target that is not a node of its own scene, if any."""
    other, node_id = split_target(target, local)
    if other is None and node_id not in local:
        message = f"unknown target node {target!r}"
    elif other is not None and ctx.project is None:
        message = f"target {target!r} names another scene: cross-scene targets need a project"
    elif other is not None and other not in ctx.scenes:
        message = f"unknown scene {other!r} in target"
    elif other is not None and node_id not in ctx.scenes[other]:
        message = f"scene {other!r} has no node {node_id!r}"
    else:
        return None
    return Issue(where, message, "unknown_target", document=doc)


def _check_actors(i: int, actors: list[Any], ctx: _Context, doc: str | None) -> list[Issue]:
    issues = []
    for k, actor in enumerate(actors):
        if not isinstance(actor, dict):
            continue
        char_id = _str(actor.get("id"))
        if char_id is None:
            continue
        if char_id not in ctx.characters:
            issues.append(
                Issue(
                    pointer("nodes", i, "characters", k, "id"),
                    f"unknown character {char_id!r}",
                    "unknown_character",
                    document=doc,
                )
            )
            continue
        expression = _str(actor.get("expression"))
        sprites = ctx.characters[char_id].get("sprites") if isinstance(ctx.characters[char_id], dict) else None
        if expression and isinstance(sprites, dict) and expression not in sprites:
            issues.append(
                Issue(
                    pointer("nodes", i, "characters", k, "expression"),
                    f"character {char_id!r} has no sprite {expression!r}",
                    "unknown_expression",
                    "warning",
                    doc,
                )
            )
    return issues


def _check_choice(
    i: int,
    c: int,
    choice: dict[str, Any],
    seen_keys: dict[str, int],
    local: dict[str, int],
    ctx: _Context,
    doc: str | None,
) -> list[Issue]:
    issues = []
    target = choice.get("target")
    if not (isinstance(target, str) and target):
        target = None
    elif target not in local:  # a node of the scene itself is always a good target
        issue = _check_target(target, pointer("nodes", i, "choices", c, "target"), local, ctx, doc)
        if issue is not None:
            issues.append(issue)
    choice_id = _str(choice.get("id"))
    key = choice_id or target
    if key is not None:
        if key in seen_keys:
            issues.append(
                Issue(
                    pointer("nodes", i, "choices", c, "id" if choice_id else "target"),
                    f"duplicate choice key {key!r} (also choice {seen_keys[key]}); give each an `id`",
                    "duplicate_choice",
                    document=doc,
                )
            )
        else:
            seen_keys[key] = c
    conditions = choice.get("conditions")
    if isinstance(conditions, list):
        for k, cond in enumerate(conditions):
            if not isinstance(cond, dict):
                continue
            key_path = cond.get("key")
            if isinstance(key_path, str) and key_path and not ctx.condition_key_known(key_path):
                issues.append(
                    Issue(
                        pointer("nodes", i, "choices", c, "conditions", k, "key"),
                        f"condition on undeclared variable {key_path!r}",
                        "undeclared_variable",
                        document=doc,
                    )
                )
    actions = choice.get("actions")
    if isinstance(actions, list) and actions:
        issues.extend(_check_actions(actions, ("nodes", i, "choices", c, "actions"), ctx, doc))
    visible = choice.get("visible_to")
    if ctx.povs and visible:
        for pov in [visible] if isinstance(visible, str) else _list(visible):
            if isinstance(pov, str) and pov not in ctx.povs:
                issues.append(
                    Issue(
                        pointer("nodes", i, "choices", c, "visible_to"),
                        f"POV {pov!r} is not declared in project.json povs",
                        "unknown_pov",
                        "warning",
                        doc,
                    )
                )
    return issues


def _check_node(i: int, node: dict[str, Any], local: dict[str, int], ctx: _Context, doc: str | None) -> list[Issue]:
    issues = []
    node_type = node.get("type", "dialogue")
    if isinstance(node_type, str) and node_type not in NODE_TYPES:
        issues.append(
            Issue(
                pointer("nodes", i, "type"),
                f"unknown node type {node_type!r}; it runs as dialogue",
                "unknown_node_type",
                "warning",
                doc,
            )
        )
    choices = node.get("choices")
    if node_type == "jump" and not _list(choices) and not node.get("end"):
        issues.append(
            Issue(
                pointer("nodes", i, "choices"),
                "a jump node needs a choice to follow",
                "jump_without_target",
                "warning",
                doc,
            )
        )
    if ctx.project is not None:
        speaker = node.get("speaker")
        if isinstance(speaker, str) and speaker not in ctx.characters:
            issues.append(
                Issue(
                    pointer("nodes", i, "speaker"), f"unknown character {speaker!r}", "unknown_character", document=doc
                )
            )
        actors = node.get("characters")
        if isinstance(actors, list) and actors:
            issues.extend(_check_actors(i, actors, ctx, doc))
    actions = node.get("actions")
    if isinstance(actions, list) and actions:
        issues.extend(_check_actions(actions, ("nodes", i, "actions"), ctx, doc))
    if isinstance(choices, list):
        seen_keys: dict[str, int] = {}
        for c, choice in enumerate(choices):
            if isinstance(choice, dict):
                issues.extend(_check_choice(i, c, choice, seen_keys, local, ctx, doc))
    return issues


def _scene_semantics(scene: dict[str, Any], scene_id: str, ctx: _Context, doc: str | None) -> list[Issue]:
    issues = []
    nodes = scene.get("nodes")
    nodes = nodes if isinstance(nodes, list) else []
    seen: dict[str, int] = {}
    for i, node in enumerate(nodes):
        if not isinstance(node, dict):
            continue
        node_id = _str(node.get("id"))
        if node_id is None:
            continue
        if node_id in seen:
            issues.append(
                Issue(
                    pointer("nodes", i, "id"),
                    f"duplicate node id {node_id!r} (first at /nodes/{seen[node_id]})",
                    "duplicate_node",
                    document=doc,
                )
            )
        else:
            seen[node_id] = i
    start = _str(scene.get("start"))
    if start is not None and isinstance(scene.get("nodes"), list) and start not in seen:
        issues.append(Issue("/start", f"start node {start!r} is not among the nodes", "missing_start", document=doc))
    local = ctx.scenes.get(scene_id, {})
    for i, node in enumerate(nodes):
        if isinstance(node, dict):
            issues.extend(_check_node(i, node, local, ctx, doc))
    return issues


Edges = dict[tuple[str, str], list[tuple[str, str]]]


def _edges(ctx: _Context, scenes: Mapping[str, dict[str, Any]]) -> Edges:
    edges: Edges = {}
    all_nodes = ctx.scenes
    for scene_id, scene in scenes.items():
        local = all_nodes[scene_id]
        nodes = scene.get("nodes")
        if not isinstance(nodes, list):
            continue
        for node in nodes:
            if not isinstance(node, dict):
                continue
            node_id = node.get("id")
            if not (isinstance(node_id, str) and node_id) or node.get("end") is True:
                continue
            out = edges.setdefault((scene_id, node_id), [])
            choices = node.get("choices")
            if not isinstance(choices, list):
                continue
            for choice in choices:
                if not isinstance(choice, dict):
                    continue
                target = choice.get("target")
                if not (isinstance(target, str) and target):
                    continue
                if target in local:
                    out.append((scene_id, target))
                    continue
                other, target_node = split_target(target, local)
                key = (other or scene_id, target_node)
                if key[0] in all_nodes and key[1] in all_nodes[key[0]]:
                    out.append(key)
    return edges


def _graph_warnings(
    ctx: _Context,
    edges: Edges,
    seen: set[tuple[str, str]],
    docs: Mapping[str, str | None],
    skip_scenes: set[str],
) -> list[Issue]:
    """Unreachable nodes (not in ``seen``, the keys reachable from the start) and trapped cycles."""
    issues = []
    for scene_id, index in ctx.scenes.items():
        if scene_id in skip_scenes:
            continue
        for node_id, i in index.items():
            if (scene_id, node_id) not in seen:
                issues.append(
                    Issue(
                        pointer("nodes", i),
                        f"node {node_id!r} is unreachable from the start",
                        "unreachable_node",
                        "warning",
                        docs[scene_id],
                    )
                )
    order = [(s, n) for s, index in ctx.scenes.items() for n in index]
    for cycle in trapped_cycles(order, edges):
        scene_id, node_id = cycle[0]
        names = ", ".join(n if s == scene_id else f"{s}:{n}" for s, n in cycle[:8])
        more = f" (+{len(cycle) - 8} more)" if len(cycle) > 8 else ""
        issues.append(
            Issue(
                pointer("nodes", ctx.scenes[scene_id][node_id]),
                f"nodes {names}{more} form a cycle with no way out",
                "trapped_cycle",
                "warning",
                docs[scene_id],
            )
        )
    return issues


def validate_scene(scene: Any) -> ValidationReport:
    """Validate one stand-alone scene: schema errors, semantic errors and warnings, JSON-pointer paths."""
    issues = schema_issues("scene", scene, None)
    if not isinstance(scene, dict):
        return ValidationReport.of(issues)
    ctx = _Context(None)
    scene_id = _str(scene.get("id")) or ""
    ctx.scenes[scene_id] = _index_scene(scene)
    if isinstance(scene.get("variables"), dict):
        ctx.declared = scene["variables"]
    _collect_actions(scene, ctx)
    issues.extend(_scene_semantics(scene, scene_id, ctx, None))
    start = _str(scene.get("start"))
    if start in ctx.scenes[scene_id]:
        edges = _edges(ctx, {scene_id: scene})
        seen = reachable([(scene_id, start)], edges)
        issues.extend(_graph_warnings(ctx, edges, seen, {scene_id: None}, set()))
    return ValidationReport.of(issues)


def _merge_declared(
    into: dict[str, Any],
    extra: Mapping[str, Any],
    where: str,
    scene_doc: str,
    issues: list[Issue],
    prefix: tuple[str, ...] = (),
) -> None:
    for key, value in extra.items():
        if key not in into:
            into[key] = copy.deepcopy(value)  # later merges write into it; never into the project
        elif isinstance(into[key], dict) and isinstance(value, Mapping):
            _merge_declared(into[key], value, where, scene_doc, issues, (*prefix, key))
        elif into[key] != value:
            issues.append(
                Issue(
                    pointer("variables", *prefix, key),
                    f"variable {'.'.join((*prefix, key))!r} is declared again with a different default; "
                    f"the first declaration ({where}) wins",
                    "conflicting_default",
                    "warning",
                    scene_doc,
                )
            )


def validate_project(project: Project) -> ValidationReport:
    """Validate project.json and every scene in the project's context (characters, variables, POVs,
    cross-scene targets). Issues name their ``document`` (``project.json`` or ``scenes/<id>.json``)."""
    issues = schema_issues("project", project.document(), PROJECT_FILE)
    ctx = _Context(project)
    docs = {scene_id: f"{SCENES_DIR}/{scene_id}.json" for scene_id in project.scenes}
    declared: dict[str, Any] = {}
    _merge_declared(declared, project.variables, PROJECT_FILE, PROJECT_FILE, issues)
    for scene_id, scene in project.scenes.items():
        ctx.scenes[scene_id] = _index_scene(scene) if isinstance(scene, dict) else {}
        if isinstance(scene, dict) and isinstance(scene.get("variables"), dict):
            _merge_declared(declared, scene["variables"], "an earlier declaration", docs[scene_id], issues)
        if isinstance(scene, dict):
            _collect_actions(scene, ctx)
    ctx.declared = declared
    for position, (scene_id, scene) in enumerate(project.scenes.items()):
        doc = docs[scene_id]
        issues.extend(schema_issues("scene", scene, doc))
        if not isinstance(scene, dict):
            continue
        if not SCENE_ID.match(scene_id):
            issues.append(
                Issue(
                    pointer("scenes", position),
                    f"scene id {scene_id!r} is not a valid file name",
                    "invalid_scene_id",
                    document=PROJECT_FILE,
                )
            )
        if scene.get("id") != scene_id:
            issues.append(
                Issue(
                    "/id",
                    f"scene file {doc} has id {scene.get('id')!r}, expected {scene_id!r}",
                    "scene_id_mismatch",
                    document=doc,
                )
            )
        issues.extend(_scene_semantics(scene, scene_id, ctx, doc))
    issues.extend(_project_semantics(project, ctx, docs))
    return ValidationReport.of(issues)


def _project_semantics(project: Project, ctx: _Context, docs: Mapping[str, str]) -> list[Issue]:
    issues: list[Issue] = []
    pov_ids: dict[str, int] = {}
    for p, pov in enumerate(project.povs):
        pov_id = _str(pov.get("id"))
        if pov_id in pov_ids:
            issues.append(
                Issue(pointer("povs", p, "id"), f"duplicate POV id {pov_id!r}", "duplicate_pov", document=PROJECT_FILE)
            )
        elif pov_id is not None:
            pov_ids[pov_id] = p
        character = pov.get("character")
        if isinstance(character, str) and character not in ctx.characters:
            issues.append(
                Issue(
                    pointer("povs", p, "character"),
                    f"unknown character {character!r}",
                    "unknown_character",
                    document=PROJECT_FILE,
                )
            )
    default_pov = project.meta.get("default_pov")
    if isinstance(default_pov, str) and pov_ids and default_pov not in pov_ids:
        issues.append(
            Issue(
                "/default_pov", f"default POV {default_pov!r} is not among povs", "unknown_pov", document=PROJECT_FILE
            )
        )
    for char_id, character in ctx.characters.items():
        if not isinstance(character, dict):
            continue
        expression = character.get("default_expression")
        sprites = character.get("sprites")
        if isinstance(expression, str) and isinstance(sprites, dict) and expression not in sprites:
            issues.append(
                Issue(
                    pointer("characters", char_id, "default_expression"),
                    f"{expression!r} is not one of the character's sprites",
                    "unknown_expression",
                    document=PROJECT_FILE,
                )
            )
    scene_id, node_id = project.start_pointer()
    if not isinstance(project.meta.get("start"), str):
        return issues  # the schema already reported the missing start
    if scene_id not in ctx.scenes:
        issues.append(
            Issue("/start", f"start scene {scene_id!r} is not in the project", "missing_start", document=PROJECT_FILE)
        )
        return issues
    if node_id is not None and node_id not in ctx.scenes[scene_id]:
        issues.append(
            Issue("/start", f"scene {scene_id!r} has no node {node_id!r}", "missing_start", document=PROJECT_FILE)
        )
        return issues
    start_scene = project.scenes[scene_id]
    start_node = node_id or (_str(start_scene.get("start")) if isinstance(start_scene, dict) else None)
    if start_node not in ctx.scenes[scene_id]:
        return issues  # reported as the scene's missing start
    dict_scenes = {s: sc for s, sc in project.scenes.items() if isinstance(sc, dict)}
    edges = _edges(ctx, dict_scenes)
    edges_seen = reachable([(scene_id, start_node)], edges)
    reached = {key[0] for key in edges_seen}
    unreached = {s for s in ctx.scenes if s not in reached}
    for position, s in enumerate(project.scenes):
        if s in unreached:
            issues.append(
                Issue(
                    pointer("scenes", position),
                    f"scene {s!r} is unreachable from the start",
                    "unreachable_scene",
                    "warning",
                    PROJECT_FILE,
                )
            )
    issues.extend(_graph_warnings(ctx, edges, edges_seen, docs, unreached))
    return issues


def validate_project_dir(path: str | os.PathLike[str]) -> tuple[Project, ValidationReport]:
    """Load and validate a project folder; also warns about scene files project.json does not list and
    about files the documents name that the folder does not hold (`files.missing_files`)."""
    project = load_project(path)
    report = validate_project(project)
    extra: list[Issue] = []
    scenes_dir = project.root / SCENES_DIR if project.root else None
    if scenes_dir is not None and scenes_dir.is_dir():
        for file in sorted(scenes_dir.glob("*.json")):
            if file.stem not in project.scenes:
                extra.append(
                    Issue(
                        "/scenes",
                        f"{SCENES_DIR}/{file.name} is not listed in project.json scenes",
                        "unlisted_scene_file",
                        "warning",
                        PROJECT_FILE,
                    )
                )
    for document, parts, message in missing_files(project):
        extra.append(Issue(pointer(*parts) if parts else "/", message, "missing_file", "warning", document))
    if extra:
        report = ValidationReport(report.errors, report.warnings + tuple(extra))
    return project, report
