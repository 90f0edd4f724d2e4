"""A compiled yes/no check for the plugin's JSON Schemas: the quick accept before jsonschema's report.

jsonschema builds a child validator for every keyword of every subschema it descends into; on a
10,000-node project that was nearly all of the validation time, even though a valid document needs
no error list. `compile_check` turns a schema into Python source (one function per ``$defs`` entry,
straight-line tests inside) that only answers "valid?". Validation runs it first and asks jsonschema
for the detailed, ordered error list only when it says no, so reports are unchanged.

The contract is one-sided: the check must never accept what jsonschema rejects. Where jsonschema's
rules are subtle (which values count as numbers, equality in ``enum`` and ``uniqueItems``) the check
is stricter and rejects, which only costs the detailed pass. A keyword it does not know makes
`compile_check` raise `Unsupported`, so the caller falls back to jsonschema for the whole schema.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Check", "Unsupported", "compile_check"]

Check = Callable[[Any], bool]


class Unsupported(ValueError):
    """The schema uses a keyword or form the quick check does not implement."""


# Keywords that never make a document invalid (2020-12 annotations; ``format`` only annotates unless
# a format checker is configured, and the plugin's validators configure none).
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$defs", "$comment", "title", "description", "default", "examples", "deprecated", "format"}
    | {"readOnly", "writeOnly"}
)
_STRING = ("minLength", "maxLength", "pattern")
_NUMBER = ("minimum", "maximum")
_ARRAY = ("items", "minItems", "maxItems", "uniqueItems")
_OBJECT = ("properties", "required", "additionalProperties", "propertyNames")
_KEYWORDS = frozenset(
    {"type", "$ref", "enum", "const", "allOf", "anyOf", "oneOf", "not", *_STRING, *_NUMBER, *_ARRAY, *_OBJECT}
)

# jsonschema's Draft 2020-12 types, as Python tests of the value in ``{v}``. "number" is narrower
# than jsonschema's (any numbers.Number but bool): JSON yields int and float, and a Decimal is only
# sent to the detailed pass.
_TYPES = {
    "array": "isinstance({v}, list)",
    "boolean": "isinstance({v}, bool)",
    "integer": (
        "((isinstance({v}, int) and not isinstance({v}, bool)) or (isinstance({v}, float) and {v}.is_integer()))"
    ),
    "null": "{v} is None",
    "number": "(isinstance({v}, (int, float)) and not isinstance({v}, bool))",
    "object": "isinstance({v}, dict)",
    "string": "isinstance({v}, str)",
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _literals(values: Any) -> Check:
    """Membership in ``enum``/``const`` values (strings, None, bools and numbers), with jsonschema's
    equality: a bool equals only a bool, 1 equals 1.0."""
    if not isinstance(values, list) or not values:
        raise Unsupported("enum must be a non-empty list")
    strings = frozenset(v for v in values if isinstance(v, str))
    bools = tuple(v for v in values if isinstance(v, bool))
    nums = tuple(v for v in values if _is_number(v))
    null = any(v is None for v in values)
    if any(not isinstance(v, (str, bool, int, float)) and v is not None for v in values):
        raise Unsupported("enum or const with a list or object value")

    def check(value: Any) -> bool:
        if isinstance(value, str):
            return value in strings
        if isinstance(value, bool):
            return any(value is b for b in bools)
        if value is None:
            return null
        return _is_number(value) and any(value == n for n in nums)

    return check


class _Generator:
    """Writes the source of the check functions; ``self.names`` holds the objects the source uses."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        defs = root.get("$defs", {})
        if not isinstance(defs, dict):
            raise Unsupported("$defs must be an object")
        self.defs: dict[str, Any] = defs
        self.functions: dict[str, list[str]] = {}  # function name -> its source lines
        self.names: dict[str, Any] = {"_Number": numbers.Number}
        self.counter = 0

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}{self.counter}"

    def constant(self, value: Any) -> str:
        name = self.fresh("_c")
        self.names[name] = value
        return name

    def function(self, schema: Any, name: str | None = None) -> str:
        """A function ``name(v) -> bool`` for ``schema``; returns its name."""
        name = name or self.fresh("_s")
        self.functions[name] = []  # reserved first, so a recursive reference finds it
        body: list[str] = []
        self.emit(schema, "v", body, 1)
        self.functions[name] = [f"def {name}(v):", *body, "    return True"]
        return name

    def ref(self, ref: Any) -> str:
        if not isinstance(ref, str) or not ref.startswith("#/$defs/") or ref[8:] not in self.defs:
            raise Unsupported(f"$ref {ref!r}")
        name = "_d_" + re.sub(r"\W", "_", ref[8:]) + f"_{list(self.defs).index(ref[8:])}"
        if name not in self.functions:
            self.function(self.defs[ref[8:]], name)
        return name

    def emit(self, schema: Any, v: str, out: list[str], depth: int) -> None:
        """Append statements that ``return False`` when the value in variable ``v`` fails ``schema``."""
        pad = "    " * depth
        if schema is True:
            return
        if schema is False:
            out.append(f"{pad}return False")
            return
        if not isinstance(schema, dict):
            raise Unsupported(f"schema {schema!r}")
        unknown = set(schema) - _ANNOTATIONS - _KEYWORDS
        if unknown:
            raise Unsupported(f"keyword(s) {', '.join(sorted(unknown))}")
        known: str | None = None  # the one type the value is known to have past the type test
        if "type" in schema:
            types = [schema["type"]] if isinstance(schema["type"], str) else schema["type"]
            if not isinstance(types, list) or not types or any(t not in _TYPES for t in types):
                raise Unsupported(f"type {schema['type']!r}")
            test = " or ".join(_TYPES[t].format(v=v) for t in types)
            out.append(f"{pad}if not ({test}):")
            out.append(f"{pad}    return False")
            known = types[0] if len(types) == 1 else None
        if "$ref" in schema:  # 2020-12: a reference applies alongside its sibling keywords
            out.append(f"{pad}if not {self.ref(schema['$ref'])}({v}):")
            out.append(f"{pad}    return False")
        for key in ("enum", "const"):
            if key in schema:
                check = self.constant(_literals(schema[key] if key == "enum" else [schema[key]]))
                out.append(f"{pad}if not {check}({v}):")
                out.append(f"{pad}    return False")
        if "allOf" in schema:
            for sub in self.subschemas(schema, "allOf"):
                self.emit(sub, v, out, depth)
        for key, test in (("anyOf", "any"), ("oneOf", "one")):
            if key in schema:
                calls = ", ".join(f"{self.function(sub)}({v})" for sub in self.subschemas(schema, key))
                count = f"[{calls}].count(True)"
                out.append(f"{pad}if {count} {'== 0' if test == 'any' else '!= 1'}:")
                out.append(f"{pad}    return False")
        if "not" in schema:
            out.append(f"{pad}if {self.function(schema['not'])}({v}):")
            out.append(f"{pad}    return False")
        for kind, keys, method in (
            ("string", _STRING, self.string),
            ("number", _NUMBER, self.number),
            ("array", _ARRAY, self.array),
            ("object", _OBJECT, self.object),
        ):
            if not any(k in schema for k in keys):
                continue
            block: list[str] = []
            guarded = known == kind
            method(schema, v, block, depth if guarded else depth + 1)
            if not block:
                continue
            if not guarded:
                out.append(f"{pad}if {_TYPES[kind].format(v=v)}:")
            out.extend(block)
            if kind == "number" and not guarded:
                # The guard lets int and float through; any other number goes to the detailed pass.
                out.append(f"{pad}elif not isinstance({v}, bool) and isinstance({v}, _Number):")
                out.append(f"{pad}    return False")

    def subschemas(self, schema: Mapping[str, Any], key: str) -> list[Any]:
        subs = schema[key]
        if not isinstance(subs, list) or not subs:
            raise Unsupported(f"{key} must be a non-empty list")
        return subs

    def string(self, schema: Mapping[str, Any], v: str, out: list[str], depth: int) -> None:
        pad = "    " * depth
        for key, op in (("minLength", "<"), ("maxLength", ">")):
            if key in schema:
                bound = schema[key]
                if not isinstance(bound, int) or isinstance(bound, bool):
                    raise Unsupported(f"{key} must be an integer")
                out.append(f"{pad}if len({v}) {op} {bound}:")
                out.append(f"{pad}    return False")
        if "pattern" in schema:
            if not isinstance(schema["pattern"], str):
                raise Unsupported("pattern must be a string")
            search = self.constant(re.compile(schema["pattern"]).search)  # jsonschema uses re.search too
            out.append(f"{pad}if {search}({v}) is None:")
            out.append(f"{pad}    return False")

    def number(self, schema: Mapping[str, Any], v: str, out: list[str], depth: int) -> None:
        pad = "    " * depth
        for key, op in (("minimum", "<"), ("maximum", ">")):
            if key in schema:
                if not _is_number(schema[key]):
                    raise Unsupported(f"{key} must be a number")
                out.append(f"{pad}if {v} {op} {schema[key]!r}:")
                out.append(f"{pad}    return False")

    def array(self, schema: Mapping[str, Any], v: str, out: list[str], depth: int) -> None:
        pad = "    " * depth
        for key, op in (("minItems", "<"), ("maxItems", ">")):
            if key in schema:
                bound = schema[key]
                if not isinstance(bound, int) or isinstance(bound, bool):
                    raise Unsupported(f"{key} must be an integer")
                out.append(f"{pad}if len({v}) {op} {bound}:")
                out.append(f"{pad}    return False")
        unique = schema.get("uniqueItems", False)
        if not isinstance(unique, bool):
            raise Unsupported("uniqueItems must be a boolean")
        if unique:
            # jsonschema's equality of mixed or nested items has its own rules: only strings pass here.
            out.append(f"{pad}if not all(isinstance(i, str) for i in {v}) or len(set({v})) != len({v}):")
            out.append(f"{pad}    return False")
        if "items" in schema:
            items = schema["items"]
            if not isinstance(items, (dict, bool)):
                raise Unsupported("items must be a schema")
            item = self.fresh("x")
            body: list[str] = []
            self.emit(items, item, body, depth + 1)
            if body:
                out.append(f"{pad}for {item} in {v}:")
                out.extend(body)

    def object(self, schema: Mapping[str, Any], v: str, out: list[str], depth: int) -> None:
        pad = "    " * depth
        required = schema.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise Unsupported("required must be a list of strings")
        for key in required:
            out.append(f"{pad}if {key!r} not in {v}:")
            out.append(f"{pad}    return False")
        properties = schema.get("properties", {})
        if not isinstance(properties, dict) or not all(isinstance(k, str) for k in properties):
            raise Unsupported("properties must be an object")
        for key, sub in properties.items():
            item = self.fresh("x")
            body: list[str] = []
            self.emit(sub, item, body, depth + 1)
            if body:  # a membership test is cheaper than .get for the many properties a document omits
                out.append(f"{pad}if {key!r} in {v}:")
                out.append(f"{pad}    {item} = {v}[{key!r}]")
                out.extend(body)
        extra, names = schema.get("additionalProperties", True), schema.get("propertyNames", True)
        if extra is True and names is True:
            return
        key_var, item = self.fresh("k"), self.fresh("x")
        body = []
        self.emit(names, key_var, body, depth + 1)
        extra_body: list[str] = []
        self.emit(extra, item, extra_body, depth + 2)
        if extra_body:
            body.append(f"{pad}    if {key_var} not in {self.constant(frozenset(properties))}:")
            body.extend(extra_body)
        if body:
            out.append(f"{pad}for {key_var}, {item} in {v}.items():")
            out.extend(body)


def compile_check(schema: Mapping[str, Any]) -> Check:
    """A function telling whether a document is valid against ``schema`` (never True where jsonschema
    would report an error). Raises `Unsupported` for schemas using keywords it does not implement."""
    generator = _Generator(schema)
    entry = generator.function(dict(schema))
    source = "\n".join(line for lines in generator.functions.values() for line in lines)
    namespace = dict(generator.names)
    try:
        exec(
            compile(source, "<comfyvn quick schema check>", "exec"), namespace
        )  # our own source, from the shipped schemas
    except (SyntaxError, RecursionError) as error:  # e.g. a schema nested past Python's block limit
        raise Unsupported(f"schema too deeply nested to compile: {error}") from error
    check: Check = namespace[entry]
    return check
