"""The JSON boundary every plugin shares: one decoding policy, one strict encoder, one strict cattrs converter.

`loads` refuses what could not be stored or emitted again (nesting past `MAX_DEPTH`, integers over
`MAX_INT_DIGITS` digits, NaN, Infinity, lone surrogates such as ``"\\ud800"``) with an `Invalid` naming the
field. `parse_request` structures a decoded object into a request class; cattrs errors become `Invalid` too.
`read_json` takes anything with an ``async body()`` (a Starlette request): the kernel knows no HTTP.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, TypeVar

import cattrs
from cattrs.cols import is_any_set, is_sequence
from cattrs.v import format_exception

from .errors import ComfyVNError, Invalid

__all__ = ["converter", "dumps", "loads", "parse_request", "read_json", "validation_error"]

T = TypeVar("T")
MAX_DEPTH, MAX_INT_DIGITS = 64, 40
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_AT = re.compile(r"^(?P<message>.*) @ \$(?P<path>.*)$", re.DOTALL)
_EXTRA = re.compile(r"extra fields found \((?P<names>[^)]*)\)")


class _Refused(str):
    """A number the policy refuses, left where it stood (its text says why) so the walk can say where."""


def _int(text: str) -> Any:
    digits = len(text) - text.startswith("-")
    return int(text) if digits <= MAX_INT_DIGITS else _Refused(f"integer longer than {MAX_INT_DIGITS} digits")


def _float(text: str) -> Any:
    value = float(text)
    return value if math.isfinite(value) else _Refused("number out of range")


_DECODER = json.JSONDecoder(
    parse_int=_int, parse_float=_float, parse_constant=lambda name: _Refused(f"{name} is not a JSON number")
)


def _path(link: tuple[Any, ...] | None, root: str | None) -> str:
    parts: list[str] = []
    while link is not None:
        key, link = link
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    path = "".join(reversed(parts)).lstrip(".")
    path = path.encode("utf-8", "backslashreplace").decode("utf-8")
    if root is None:
        return path or "body"
    return f"{root}.{path}" if path and path[0] != "[" else f"{root}{path}"


def _clean(value: Any, strings: bool) -> bool:
    """Whether nothing is refused, level by level: about as fast as decoding; `_problem` then says where."""
    level = [value]
    for position in range(1, MAX_DEPTH + 2):
        if not level:
            return True
        if any(type(x) is _Refused or (strings and type(x) is str and _SURROGATE.search(x)) for x in level):
            return False
        containers = [x for x in level if type(x) is dict or type(x) is list]
        if containers and position > MAX_DEPTH:
            return False
        if strings and any(_SURROGATE.search(k) for x in containers if type(x) is dict for k in x):
            return False
        level = [c for x in containers for c in (x.values() if type(x) is dict else x)]
    return True


def _problem(value: Any, strings: bool, link: Any = None, depth: int = 1) -> tuple[Any, str] | None:
    """The first refusal in document order as ``(path link, why)``; recursion stops past `MAX_DEPTH`."""
    kind = type(value)
    if kind is _Refused:
        return link, str(value)
    if kind is str and strings and _SURROGATE.search(value):
        return link, "not valid Unicode (a lone surrogate)"
    if kind is dict or kind is list:
        if depth > MAX_DEPTH:
            return link, f"nested deeper than {MAX_DEPTH} levels"
        for key, child in value.items() if kind is dict else enumerate(value):
            if strings and isinstance(key, str) and _SURROGATE.search(key):
                return (key, link), "not valid Unicode (a lone surrogate)"
            found = _problem(child, strings, (key, link), depth + 1)
            if found is not None:
                return found
    return None


def loads(data: bytes | str, *, field: str | None = None) -> Any:
    """Decode JSON under the policy above, or raise `Invalid` naming the offending field.

    ``field`` names the whole document (``stats`` for a ``--stats`` option); without it the document is the
    request ``body`` and nested fields are named from its root (``stats.hero``).
    """
    where = field or "body"
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Invalid(f"{where}: not UTF-8 (byte {exc.start})", field=where, code="invalid_json") from None
    else:
        text = data
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise Invalid(f"{where}: nested deeper than {MAX_DEPTH} levels", field=where, code="invalid_json") from None
    except json.JSONDecodeError as exc:
        message = f"{where}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        raise Invalid(message, field=where, code="invalid_json") from None
    # Depth needs a walk of the containers; strings only when an escape could have made a lone surrogate.
    # A str may also carry raw surrogates (command-line arguments decoded with surrogateescape).
    strings = _SURROGATE_ESCAPE.search(text) is not None or (data is text and _SURROGATE.search(text) is not None)
    found = None if _clean(value, strings) else _problem(value, strings)
    if found is not None:
        name = _path(found[0], field)
        raise Invalid(f"{name}: {found[1]}", field=name, code="invalid_json")
    return value


def dumps(value: Any, *, indent: int | None = None, sort_keys: bool = False) -> str:
    """JSON text that `loads` reads back (no NaN, no lone surrogates): `Invalid` rather than a file that breaks."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, indent=indent, sort_keys=sort_keys)
        text.encode("utf-8")
    except (ValueError, RecursionError) as exc:  # NaN/Infinity, a lone surrogate (UnicodeEncodeError), too deep
        raise Invalid(f"value cannot be stored as JSON ({type(exc).__name__})", code="unencodable") from None
    return text


async def read_json(request: Any, *, default: Any = None) -> Any:
    """The request body decoded by `loads`; an empty body gives ``default`` when one is given."""
    data = await request.body()
    if not data and default is not None:
        return default
    return loads(data)


def _strict(kind: type, *allowed: type) -> Any:
    def hook(value: Any, _type: Any) -> Any:
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, allowed):
            expected = "a number" if kind is float else kind.__name__
            raise ValueError(f"expected {expected}, got {type(value).__name__}")
        return kind(value)

    return hook


# Takes JSON as it is: no "3" for 3, no 1 for true, no unknown keys. `converter.copy()` to add hooks.
converter = cattrs.Converter(forbid_extra_keys=True)
converter.register_structure_hook(bool, _strict(bool, bool))
converter.register_structure_hook(int, _strict(int, int))
converter.register_structure_hook(float, _strict(float, int, float))
converter.register_structure_hook(str, _strict(str, str))
_plain = converter.copy()  # its lists and sets take any iterable: "abc" would become ["a", "b", "c"]


def _arrays_only(type_: Any) -> Any:
    base, refuse = _plain.get_structure_hook(type_), _strict(list, list, tuple)
    return lambda value, t: base(value, t) if isinstance(value, list | tuple) else refuse(value, t)


converter.register_structure_hook_factory(lambda t: is_sequence(t) or is_any_set(t), _arrays_only)


def _format(exc: BaseException, type_: type | None) -> str:
    # A hook's or validator's own ValueError says more than cattrs' generic "invalid value for type".
    return str(exc) if isinstance(exc, ValueError) and str(exc) else format_exception(exc, type_)


def _own_error(exc: BaseException) -> ComfyVNError | None:
    # A validator's ComfyVNError already names its field; cattrs wraps it in an exception group.
    if isinstance(exc, ComfyVNError):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = _own_error(inner)
        if found is not None:
            return found
    return None


def validation_error(exc: BaseException, *, code: str = "invalid_request") -> ComfyVNError:
    """The `ComfyVNError` for a cattrs failure: a validator's own, or `Invalid` naming the first bad field."""
    own = _own_error(exc)
    if own is not None:
        return own
    messages = cattrs.transform_error(exc, path="$", format_exception=_format)
    match = _AT.match(messages[0]) if messages else None
    message, path = (match["message"], match["path"].lstrip(".")) if match else (str(exc), "")
    extra = _EXTRA.match(message)
    if extra:  # name the unexpected key itself rather than the object holding it
        first = extra["names"].split(", ")[0]
        path = f"{path}.{first}" if path else first
        message = f"unknown field {first!r}"
    field = path or "body"
    return Invalid(f"{field}: {message}", field=field, code=code)


def parse_request(
    data: Any, cls: type[T], *, using: cattrs.Converter | None = None, code: str = "invalid_request"
) -> T:
    """Structure a decoded JSON object into ``cls`` (strictly, or ``using`` a plugin's converter).

    Raises `Invalid` naming the first bad field, or the `ComfyVNError` a validator of ``cls`` raised.
    """
    if not isinstance(data, dict):
        raise Invalid("the request body must be a JSON object", field="body", code=code)
    try:
        return (using or converter).structure(data, cls)
    except (cattrs.BaseValidationError, cattrs.ForbiddenExtraKeysError) as exc:
        raise validation_error(exc, code=code) from None
