"""Validation as it was before the fast paths (commit 281fc3d^), kept verbatim as the reference the
optimised `comfyvn_scenario.validation` is checked against (test_validation_equivalence.py).

It is the project's own earlier code, copied so that a change to the real validation cannot also
change the reference; only the imports were made absolute and its docstring replaced. It uses
jsonschema alone for the schema (no quick check). Do not "optimise" this file.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import jsonschema
from comfyvn.errors import Unprocessable
from comfyvn_scenario.graph import reachable, trapped_cycles
from comfyvn_scenario.project import PROJECT_FILE, SCENE_ID, SCENES_DIR, Project, load_project, split_target
from comfyvn_scenario.rules import MISSING, get_path, is_number, split_key
from comfyvn_scenario.schemas import validator

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


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dicts(value: Any) -> Iterable[tuple[int, dict[str, Any]]]:
    return ((i, v) for i, v in enumerate(_list(value)) if isinstance(v, dict))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class _Context:
    """What scene checks need to know about the project they belong to (or its absence)."""

    def __init__(self, project: Project | None) -> None:
        self.project = project
        self.scenes: dict[str, dict[str, int]] = {}  # scene id -> node id -> index (first occurrence)
        self.declared: dict[str, Any] = {}
        self.action_keys: set[tuple[str, ...]] = set()
        self.characters: dict[str, Any] = project.characters if project else {}
        self.povs = {p["id"] for p in project.povs if isinstance(p.get("id"), str)} if project else set()


def _index_scene(scene: dict[str, Any]) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, node in _dicts(scene.get("nodes")):
        node_id = _str(node.get("id"))
        if node_id is not None and node_id not in index:
            index[node_id] = i
    return index


def _collect_actions(scene: dict[str, Any], into: set[tuple[str, ...]]) -> None:
    for _, node in _dicts(scene.get("nodes")):
        actions = list(_dicts(node.get("actions")))
        for _, choice in _dicts(node.get("choices")):
            actions.extend(_dicts(choice.get("actions")))
        for _, action in actions:
            key = _str(action.get("key"))
            if key and action.get("type") != "clear":
                into.add(split_key(key))


def _declared(ctx: _Context, parts: tuple[str, ...]) -> bool:
    return bool(parts) and get_path(ctx.declared, parts) is not MISSING


def _set_by_action(ctx: _Context, parts: tuple[str, ...]) -> bool:
    # A key is written by an action on it or on one of its ancestors (set a = {...}).
    return any(parts[: len(k)] == k for k in ctx.action_keys)


def _check_actions(actions: Any, base: tuple[str | int, ...], ctx: _Context, doc: str | None) -> list[Issue]:
    issues = []
    for a, action in _dicts(actions):
        key = _str(action.get("key"))
        if key is None or action.get("type") not in ("set", "increment", "decrement", "clear"):
            continue
        here = (*base, a)
        parts = split_key(key)
        if not parts:
            issues.append(Issue(pointer(*here, "key"), "action key has no path segment", "empty_key", document=doc))
            continue
        if action["type"] in ("increment", "decrement"):
            amount_field = "amount" if action.get("amount") is not None else "value"
            amount = action.get(amount_field)
            if amount is not None and not is_number(amount):
                issues.append(
                    Issue(
                        pointer(*here, amount_field),
                        f"{action['type']} needs a number",
                        "non_numeric_amount",
                        document=doc,
                    )
                )
            default = get_path(ctx.declared, parts)
            if default is not MISSING and not is_number(default):
                issues.append(
                    Issue(
                        pointer(*here, "key"),
                        f"cannot {action['type']} {key!r}: its declared default is not a number",
                        "non_numeric_variable",
                        document=doc,
                    )
                )
        if action["type"] != "clear" and not _declared(ctx, parts):
            issues.append(
                Issue(
                    pointer(*here, "key"),
                    f"variable {key!r} is set here but has no declared default",
                    "undeclared_variable",
                    "warning",
                    doc,
                )
            )
    return issues


def _check_node(scene_id: str, i: int, node: dict[str, Any], ctx: _Context, doc: str | None) -> list[Issue]:
    issues = []
    local = ctx.scenes.get(scene_id, {})
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
    if node_type == "jump" and not _list(node.get("choices")) and not node.get("end"):
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
        for k, actor in _dicts(node.get("characters")):
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
    issues.extend(_check_actions(node.get("actions"), ("nodes", i, "actions"), ctx, doc))
    seen_keys: dict[str, int] = {}
    for c, choice in _dicts(node.get("choices")):
        target = _str(choice.get("target"))
        if target is not None:
            other, node_id = split_target(target, local)
            if other is None and node_id not in local:
                issues.append(
                    Issue(
                        pointer("nodes", i, "choices", c, "target"),
                        f"unknown target node {target!r}",
                        "unknown_target",
                        document=doc,
                    )
                )
            elif other is not None and ctx.project is None:
                issues.append(
                    Issue(
                        pointer("nodes", i, "choices", c, "target"),
                        f"target {target!r} names another scene: cross-scene targets need a project",
                        "unknown_target",
                        document=doc,
                    )
                )
            elif other is not None and other not in ctx.scenes:
                issues.append(
                    Issue(
                        pointer("nodes", i, "choices", c, "target"),
                        f"unknown scene {other!r} in target",
                        "unknown_target",
                        document=doc,
                    )
                )
            elif other is not None and node_id not in ctx.scenes[other]:
                issues.append(
                    Issue(
                        pointer("nodes", i, "choices", c, "target"),
                        f"scene {other!r} has no node {node_id!r}",
                        "unknown_target",
                        document=doc,
                    )
                )
        key = _str(choice.get("id")) or target
        if key is not None:
            if key in seen_keys:
                field = "id" if _str(choice.get("id")) else "target"
                issues.append(
                    Issue(
                        pointer("nodes", i, "choices", c, field),
                        f"duplicate choice key {key!r} (also choice {seen_keys[key]}); give each an `id`",
                        "duplicate_choice",
                        document=doc,
                    )
                )
            else:
                seen_keys[key] = c
        for k, cond in _dicts(choice.get("conditions")):
            key_path = _str(cond.get("key"))
            if key_path is None:
                continue
            parts = split_key(key_path)
            if not _declared(ctx, parts) and not _set_by_action(ctx, parts):
                issues.append(
                    Issue(
                        pointer("nodes", i, "choices", c, "conditions", k, "key"),
                        f"condition on undeclared variable {key_path!r}",
                        "undeclared_variable",
                        document=doc,
                    )
                )
        issues.extend(_check_actions(choice.get("actions"), ("nodes", i, "choices", c, "actions"), ctx, doc))
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


def _scene_semantics(scene: dict[str, Any], scene_id: str, ctx: _Context, doc: str | None) -> list[Issue]:
    issues = []
    seen: dict[str, int] = {}
    for i, node in _dicts(scene.get("nodes")):
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
    for i, node in _dicts(scene.get("nodes")):
        issues.extend(_check_node(scene_id, i, node, ctx, doc))
    return issues


def _edges(ctx: _Context, scenes: Mapping[str, dict[str, Any]]) -> dict[tuple[str, str], list[tuple[str, str]]]:
    edges: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for scene_id, scene in scenes.items():
        local = ctx.scenes[scene_id]
        for _, node in _dicts(scene.get("nodes")):
            node_id = _str(node.get("id"))
            if node_id is None or node.get("end") is True:
                continue
            out = edges.setdefault((scene_id, node_id), [])
            for _, choice in _dicts(node.get("choices")):
                target = _str(choice.get("target"))
                if target is None:
                    continue
                other, target_node = split_target(target, local)
                key = (other or scene_id, target_node)
                if key[0] in ctx.scenes and key[1] in ctx.scenes[key[0]]:
                    out.append(key)
    return edges


def _graph_warnings(
    ctx: _Context,
    scenes: Mapping[str, dict[str, Any]],
    starts: list[tuple[str, str]],
    docs: Mapping[str, str | None],
    skip_scenes: set[str],
) -> list[Issue]:
    issues = []
    edges = _edges(ctx, scenes)
    seen = reachable(starts, edges)
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
    _collect_actions(scene, ctx.action_keys)
    issues.extend(_scene_semantics(scene, scene_id, ctx, None))
    start = _str(scene.get("start"))
    if start in ctx.scenes[scene_id]:
        issues.extend(_graph_warnings(ctx, {scene_id: scene}, [(scene_id, start)], {scene_id: None}, set()))
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
            _collect_actions(scene, ctx.action_keys)
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
    start_node = node_id or _str(project.scenes[scene_id].get("start"))
    if start_node not in ctx.scenes[scene_id]:
        return issues  # reported as the scene's missing start
    dict_scenes = {s: sc for s, sc in project.scenes.items() if isinstance(sc, dict)}
    edges_seen = reachable([(scene_id, start_node)], _edges(ctx, dict_scenes))
    unreached = {s for s in ctx.scenes if not any(key[0] == s for key in edges_seen)}
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
    issues.extend(_graph_warnings(ctx, dict_scenes, [(scene_id, start_node)], docs, unreached))
    return issues


def validate_project_dir(path: str | os.PathLike[str]) -> tuple[Project, ValidationReport]:
    """Load and validate a project folder; also warns about scene files project.json does not list."""
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
    if extra:
        report = ValidationReport(report.errors, report.warnings + tuple(extra))
    return project, report
