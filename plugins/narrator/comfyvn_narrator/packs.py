"""Prompt packs: a Jinja2 template that renders the chat messages and a JSON Schema for the model's answer.

A pack ``NAME`` is two files: ``NAME.j2`` with the blocks ``system`` and ``user`` (each renders one message),
and ``NAME.schema.json``, a Draft 2020-12 schema of the answer whose ``x-pack`` object declares the pack's
inputs (``{"inputs": {name: "required" | "optional"}, "description", "max_tokens"}``) and whose standard
``examples`` (if any) must validate. Shipped packs are package data (``comfyvn_narrator/packs/``); a user may
replace a shipped template by name from ``<config>/narrator/packs/`` — the answer schema of a shipped pack is the
code's contract and is never replaced — or add packs of new names (both files).

Templates render in a sandbox with `StrictUndefined` and no autoescaping (the text is for a model, not a browser):
an input a template uses but the pack does not declare is a lint problem, and a missing required input is
`Invalid` at render time rather than an empty string in a prompt.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import jinja2
from comfyvn.errors import Invalid, NotFound, Unprocessable
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = [
    "BLOCKS",
    "Pack",
    "check_answer",
    "lint",
    "lint_text",
    "list_packs",
    "load_pack",
    "render",
    "user_pack_dir",
    "validate",
]

BLOCKS = ("system", "user")
NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
MAX_TEMPLATE = 64_000
MAX_SCHEMA = 64_000
MAX_PROBLEMS = 20
_RESERVED = ("answer_schema",)  # what render() itself provides to every template
_SUFFIX_TEMPLATE, _SUFFIX_SCHEMA = ".j2", ".schema.json"


@attrs.frozen
class Pack:
    """A loaded, linted pack. ``source``: ``shipped`` or ``user`` (the template came from the config folder)."""

    name: str
    template: str
    schema: Mapping[str, Any]
    source: str = "shipped"

    @property
    def inputs(self) -> dict[str, str]:
        """``{name: "required" | "optional"}`` as the schema's ``x-pack.inputs`` declares."""
        declared = self.schema.get("x-pack", {}).get("inputs", {})
        return {str(k): str(v) for k, v in declared.items()}

    @property
    def description(self) -> str:
        return str(self.schema.get("x-pack", {}).get("description", ""))

    @property
    def max_tokens(self) -> int | None:
        value = self.schema.get("x-pack", {}).get("max_tokens")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def to_wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "description": self.description,
            "inputs": self.inputs,
            "max_tokens": self.max_tokens,
            "schema": dict(self.schema),
            "template": self.template,
        }


def _to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


@functools.cache
def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # The shipped ``tojson`` escapes <, >, & and ' for HTML; a model should see the text as written.
    env.filters["tojson"] = _to_json
    env.filters["json"] = _to_json
    return env


def _shipped_dir() -> Any:
    return resources.files("comfyvn_narrator").joinpath("packs")


def user_pack_dir(kernel: Kernel | None) -> Path | None:
    """``<config>/narrator/packs`` of ``kernel`` (None without a kernel)."""
    return None if kernel is None else Path(kernel.paths.config) / "narrator" / "packs"


def _shipped_names() -> list[str]:
    return sorted(
        entry.name[: -len(_SUFFIX_TEMPLATE)]
        for entry in _shipped_dir().iterdir()
        if entry.name.endswith(_SUFFIX_TEMPLATE) and NAME.match(entry.name[: -len(_SUFFIX_TEMPLATE)])
    )


def _user_names(folder: Path | None) -> list[str]:
    if folder is None or not folder.is_dir():
        return []
    return sorted(
        p.name[: -len(_SUFFIX_TEMPLATE)]
        for p in folder.iterdir()
        if p.name.endswith(_SUFFIX_TEMPLATE) and NAME.match(p.name[: -len(_SUFFIX_TEMPLATE)])
    )


def list_packs(kernel: Kernel | None = None) -> list[dict[str, Any]]:
    """Every pack by name: ``{name, source, description, inputs, problems}`` (a broken user pack is listed with
    its problems rather than hiding the others)."""
    names = sorted(set(_shipped_names()) | set(_user_names(user_pack_dir(kernel))))
    listed: list[dict[str, Any]] = []
    for name in names:
        try:
            pack = load_pack(name, kernel=kernel)
        except Unprocessable as exc:
            problems = exc.details.get("problems") or [exc.message]
            listed.append({"name": name, "source": "user", "description": "", "inputs": {}, "problems": problems})
            continue
        entry = pack.to_wire()
        listed.append({k: entry[k] for k in ("name", "source", "description", "inputs")} | {"problems": []})
    return listed


def _read_text(path: Path, limit: int, field: str) -> str:
    if path.stat().st_size > limit:
        raise Unprocessable(f"{field}: over {limit} bytes", field=field, code="invalid_pack")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        # A user's file: a broken pack to report (listed as such, 422 when used), never a crash.
        raise Unprocessable(f"{field}: not UTF-8 text", field=field, code="invalid_pack") from None


def _parse_schema(text: str) -> tuple[dict[str, Any] | None, list[str]]:
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, [f"schema: not JSON ({exc.msg} at line {exc.lineno})"]
    except RecursionError:
        return None, ["schema: nested too deeply"]
    if not isinstance(schema, dict):
        return None, ["schema: must be a JSON object"]
    return schema, []


@functools.cache
def _shipped(name: str) -> Pack:
    folder = _shipped_dir()
    template = folder.joinpath(name + _SUFFIX_TEMPLATE).read_text(encoding="utf-8")
    schema = json.loads(folder.joinpath(name + _SUFFIX_SCHEMA).read_text(encoding="utf-8"))
    return Pack(name, template, schema, "shipped")


def load_pack(name: str, *, kernel: Kernel | None = None) -> Pack:
    """The pack ``name``: a user template from ``<config>/narrator/packs`` when present, else the shipped one.

    `NotFound` for an unknown name; `Unprocessable` ``invalid_pack`` (with ``details.problems``) for a user pack
    that does not lint."""
    if not isinstance(name, str) or not NAME.match(name):
        raise Invalid("pack: must be an upper-case name such as NARRATOR_TURN", field="pack", code="invalid_pack")
    shipped = _shipped(name) if name in _shipped_names() else None
    folder = user_pack_dir(kernel)
    user_template = folder / (name + _SUFFIX_TEMPLATE) if folder is not None else None
    if user_template is None or not user_template.is_file():
        if shipped is None:
            raise NotFound(f"pack {name!r} does not exist", field="pack", code="pack_not_found")
        return shipped
    assert folder is not None
    template = _read_text(user_template, MAX_TEMPLATE, f"{name}{_SUFFIX_TEMPLATE}")
    user_schema = folder / (name + _SUFFIX_SCHEMA)
    problems: list[str] = []
    if shipped is not None:
        if user_schema.exists():
            problems.append(f"{name}{_SUFFIX_SCHEMA}: the answer schema of a shipped pack cannot be replaced")
        schema: dict[str, Any] | None = dict(shipped.schema)
    elif user_schema.is_file():
        schema, problems = _parse_schema(_read_text(user_schema, MAX_SCHEMA, f"{name}{_SUFFIX_SCHEMA}"))
    else:
        schema, problems = None, [f"{name}{_SUFFIX_SCHEMA}: missing (a new pack needs its answer schema)"]
    if schema is not None:
        problems += lint_text(template, schema)
    if problems:
        raise Unprocessable(
            f"user pack {name!r} is broken: {problems[0]}",
            field="pack",
            code="invalid_pack",
            details={"problems": problems[:MAX_PROBLEMS]},
        )
    assert schema is not None
    return Pack(name, template, schema, "user")


def _template_problems(template: str, declared: Mapping[str, Any]) -> list[str]:
    env = _environment()
    try:
        parsed = env.parse(template)
    except jinja2.TemplateSyntaxError as exc:
        return [f"template: line {exc.lineno}: {exc.message}"]
    problems: list[str] = []
    compiled = env.from_string(template)
    for block in BLOCKS:
        if block not in compiled.blocks:
            problems.append(f"template: no {{% block {block} %}}")
    used = meta.find_undeclared_variables(parsed) - set(_RESERVED)
    for variable in sorted(used - set(declared)):
        problems.append(f"template: uses {variable!r}, which x-pack.inputs does not declare")
    return problems


def _schema_problems(schema: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        return [f"schema: not a valid Draft 2020-12 schema at {where}: {exc.message}"]
    dialect = schema.get("$schema")
    if dialect is not None and dialect != "https://json-schema.org/draft/2020-12/schema":
        problems.append("schema: $schema must be https://json-schema.org/draft/2020-12/schema")
    pack = schema.get("x-pack")
    if not isinstance(pack, dict):
        return [*problems, "schema: x-pack must be an object declaring the inputs"]
    inputs = pack.get("inputs")
    if not isinstance(inputs, dict) or not all(v in ("required", "optional") for v in inputs.values()):
        problems.append("schema: x-pack.inputs must map each input name to required or optional")
    max_tokens = pack.get("max_tokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        problems.append("schema: x-pack.max_tokens must be a positive integer")
    problems += [
        f"schema: $ref {ref[:80]!r} points outside the schema (only '#…' references)" for ref in _remote_refs(schema)
    ]
    for index, example in enumerate(schema.get("examples") or []):
        problems += [f"examples[{index}]: {p}" for p in validate_against(schema, example)]
    return problems


def _remote_refs(value: Any) -> list[str]:
    """Every ``$ref``/``$dynamicRef`` of a schema that points outside it (not ``#…``)."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, child in value.items():
            if key in ("$ref", "$dynamicRef") and isinstance(child, str) and not child.startswith("#"):
                found.append(child)
            else:
                found += _remote_refs(child)
    elif isinstance(value, list):
        for child in value:
            found += _remote_refs(child)
    return found


def lint_text(template: str, schema: Mapping[str, Any]) -> list[str]:
    """Problems of a pack given as text: the template parses and has both blocks, every variable it uses is
    declared, the schema is a valid Draft 2020-12 schema, and its examples validate."""
    problems = _schema_problems(schema)
    declared = schema.get("x-pack", {}).get("inputs") if isinstance(schema.get("x-pack"), dict) else None
    problems += _template_problems(template, declared if isinstance(declared, dict) else {})
    return problems[:MAX_PROBLEMS]


def lint(path: str | Path) -> list[str]:
    """Problems of the pack file at ``path`` (``NAME.j2`` or ``NAME.schema.json``; the other file sits next to
    it). A template that has no schema beside it is checked against the shipped pack of the same name."""
    path = Path(path)
    if path.name.endswith(_SUFFIX_SCHEMA):
        name = path.name[: -len(_SUFFIX_SCHEMA)]
    elif path.name.endswith(_SUFFIX_TEMPLATE):
        name = path.name[: -len(_SUFFIX_TEMPLATE)]
    else:
        return [f"{path.name}: a pack file is NAME{_SUFFIX_TEMPLATE} or NAME{_SUFFIX_SCHEMA}"]
    if not NAME.match(name):
        return [f"{path.name}: the pack name must be upper-case letters, digits and _ (such as NARRATOR_TURN)"]
    template_path = path.with_name(name + _SUFFIX_TEMPLATE)
    schema_path = path.with_name(name + _SUFFIX_SCHEMA)
    if not template_path.is_file():
        return [f"{template_path.name}: missing"]
    try:
        template = _read_text(template_path, MAX_TEMPLATE, template_path.name)
        if schema_path.is_file():
            schema, problems = _parse_schema(_read_text(schema_path, MAX_SCHEMA, schema_path.name))
        elif name in _shipped_names():
            schema, problems = dict(_shipped(name).schema), []
        else:
            return [f"{schema_path.name}: missing"]
    except Unprocessable as exc:
        return [exc.message]
    except UnicodeDecodeError:
        return [f"{path.name}: not UTF-8 text"]
    if schema is None:
        return problems
    return lint_text(template, schema)


def render(pack: Pack, inputs: Mapping[str, Any]) -> list[dict[str, str]]:
    """The chat messages ``[{role: system, content}, {role: user, content}]`` for ``inputs``.

    Optional inputs not given are None; an unknown or missing required input is `Invalid` naming it."""
    declared = pack.inputs
    unknown = sorted(set(inputs) - set(declared))
    if unknown:
        raise Invalid(f"{pack.name}: unknown input {unknown[0]!r}", field=f"inputs.{unknown[0]}", code="invalid_inputs")
    missing = sorted(k for k, v in declared.items() if v == "required" and k not in inputs)
    if missing:
        raise Invalid(f"{pack.name}: input {missing[0]!r} is required", field=f"inputs.{missing[0]}")
    context = {name: inputs.get(name) for name in declared}
    answer = {k: v for k, v in pack.schema.items() if k not in ("x-pack", "examples", "$schema", "$id")}
    context["answer_schema"] = _to_json(answer)
    template = _environment().from_string(pack.template)
    bound = template.new_context(context)
    messages: list[dict[str, str]] = []
    try:
        for role in BLOCKS:
            text = "".join(template.blocks[role](bound)).strip()
            messages.append({"role": role, "content": text})
    except jinja2.UndefinedError as exc:
        raise Invalid(f"{pack.name}: {exc.message}", field="inputs", code="invalid_inputs") from exc
    except jinja2.exceptions.SecurityError as exc:
        raise Unprocessable(f"{pack.name}: the template did something unsafe", field="pack") from exc
    return messages


def validate_against(schema: Mapping[str, Any], answer: Any) -> list[str]:
    """Problems of ``answer`` under ``schema``: ``"<path>: <message>"``, in a stable order, at most 20."""
    validator = Draft202012Validator(schema, registry=_LOCAL_ONLY)
    problems = []
    try:
        errors = sorted(validator.iter_errors(answer), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    except Unresolvable as exc:
        return [f"schema: $ref {str(exc.ref)[:80]!r} cannot be resolved (only references inside the schema)"]
    for error in errors:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        problems.append(f"{where}: {_message(error.validator, error.validator_value, error.message)}")
    return problems[:MAX_PROBLEMS]


def _no_retrieval(uri: str) -> Resource[Any]:
    # jsonschema's default registry fetches a remote $ref over HTTP: a pack file must never make the server (or a
    # lint) reach out to an address it names, so anything outside the schema is simply unresolvable.
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]  # attrs class through referencing's own decorator


_LOCAL_ONLY: Registry[Any] = Registry(retrieve=_no_retrieval)  # type: ignore[call-arg]  # as above


_SHORT = {
    "minItems": "needs at least {} items",
    "maxItems": "allows at most {} items",
    "minLength": "needs at least {} characters",
    "maxLength": "allows at most {} characters",
    "minProperties": "needs at least {} entries",
    "maxProperties": "allows at most {} entries",
}


def _message(keyword: Any, expected: Any, message: str) -> str:
    # jsonschema quotes the whole instance first ("[...] is too short"); a long instance would push the point of
    # the message past any sensible length, so size and count limits are said without quoting it.
    if keyword in _SHORT:
        return _SHORT[keyword].format(expected)
    return message if len(message) <= 200 else message[:199] + "…"


def validate(pack: Pack, answer: Any) -> list[str]:
    """Problems of a model's ``answer`` under the pack's schema (empty when valid)."""
    return validate_against(pack.schema, answer)


def _unknown_ids(answered: Any, allowed: list[str], field: str, what: str) -> list[str]:
    extra = [key for key in answered if key not in allowed] if isinstance(answered, Mapping) else []
    return [f"{field}/{key[:80]}: not {what} you were given" for key in extra[:MAX_PROBLEMS]]


def _line_ids(inputs: Mapping[str, Any], *, rewrite_only: bool = False) -> list[str]:
    lines = [line for line in inputs.get("lines") or [] if isinstance(line, Mapping)]
    return [str(line.get("id")) for line in lines if not rewrite_only or line.get("rewrite")]


def _check_narrator_turn(inputs: Mapping[str, Any], value: Mapping[str, Any]) -> list[str]:
    choice = value.get("choice_id")
    offered = [str(c.get("id")) for c in inputs.get("choices") or [] if isinstance(c, Mapping)]
    if choice is not None and choice not in offered:
        listed = ", ".join(offered) or "none"
        return [f"choice_id: {str(choice)[:80]!r} is not an offered choice (offered: {listed}); use one or null"]
    return []


def _check_battle(inputs: Mapping[str, Any], value: Mapping[str, Any]) -> list[str]:
    beats = [b for b in value.get("beats") or [] if isinstance(b, Mapping)]
    problems: list[str] = []
    total = sum(len(str(b.get("text") or "")) for b in beats)
    if total >= 800:
        problems.append(f"beats: the texts total {total} characters; keep them under 800")
    fighters = [str(f.get("id")) for f in inputs.get("fighters") or [] if isinstance(f, Mapping)]
    speakers = {"narrator", str(inputs.get("pov") or "narrator"), *fighters}
    for index, beat in enumerate(beats):
        if beat.get("speaker") not in speakers:
            allowed = ", ".join(sorted(speakers))
            problems.append(f"beats/{index}/speaker: must be one of {allowed}")
    return problems


def _check_cleanup(inputs: Mapping[str, Any], value: Mapping[str, Any]) -> list[str]:
    return _unknown_ids(value.get("nodes"), _line_ids(inputs), "nodes", "a line id")


def _check_pov(inputs: Mapping[str, Any], value: Mapping[str, Any]) -> list[str]:
    return _unknown_ids(value.get("narration"), _line_ids(inputs, rewrite_only=True), "narration", "a rewrite line id")


_CHECKS: dict[str, Callable[[Mapping[str, Any], Mapping[str, Any]], list[str]]] = {
    "NARRATOR_TURN": _check_narrator_turn,
    "BATTLE_NARRATION": _check_battle,
    "ROLEPLAY_CLEANUP": _check_cleanup,
    "POV_REWRITE": _check_pov,
}


def check_answer(pack: Pack, inputs: Mapping[str, Any], answer: Mapping[str, Any]) -> list[str]:
    """Problems of a schema-valid answer that depend on the inputs (a choice that was not offered, a line id
    that was not sent, beats over the battle's character budget). Shipped pack names only."""
    check = _CHECKS.get(pack.name)
    return [] if check is None else check(inputs, answer)[:MAX_PROBLEMS]
