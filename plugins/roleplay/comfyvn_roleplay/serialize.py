"""The plugin's cattrs converter: request payloads in, domain options out.

Unlike the shared strict converter it accepts ``"true"`` and ``"3"``, because options also arrive as
multipart form fields (strings). Errors go through `comfyvn.wire.parse_request` and become 400s naming
the field (``detail_level``, ``ooc`` …).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import cattrs
from comfyvn.wire import parse_request

from .convert import ImportOptions

__all__ = ["OPTION_FIELDS", "converter", "options_from_payload"]

converter = cattrs.Converter(forbid_extra_keys=True)
OPTION_FIELDS = tuple(a.name for a in attrs.fields(ImportOptions))


def _bool(value: Any, _: Any) -> bool:
    # cattrs' default is bool(value), which turns "false" into True; be explicit instead.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
        return value.strip().lower() in ("true", "1", "yes", "on")
    raise ValueError(f"expected a boolean, got {value!r}")


def _number(kind: type) -> Any:
    def structure(value: Any, _: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"expected a number, got {value!r}")
        return kind(value)

    return structure


def _str(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


converter.register_structure_hook(bool, _bool)
converter.register_structure_hook(int, _number(int))
converter.register_structure_hook(float, _number(float))
converter.register_structure_hook(str, _str)


def options_from_payload(payload: Mapping[str, Any]) -> ImportOptions:
    """Build :class:`ImportOptions` from the option keys of a request (other keys are ignored)."""
    data = {k: payload[k] for k in OPTION_FIELDS if k in payload and payload[k] is not None}
    return parse_request(data, ImportOptions, using=converter, code="invalid_option")
