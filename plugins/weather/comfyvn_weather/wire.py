"""The JSON boundary of the weather plugin: the plugin's cattrs converter and request parsing.

Plans leave as the original wire shape; optional keys (a layer's ``blend``/``tint``, a particle's
``size``/``noise``/``density``, ``sfx.one_shots``) are omitted when absent rather than sent as null.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cattrs
from cattrs.gen import make_dict_unstructure_fn
from comfyvn.errors import ComfyVNError

from .planner import Layer, Particles, Sfx, WeatherPlan
from .presets import FIELDS

__all__ = ["converter", "parse_state_update", "plan_to_dict"]

converter = cattrs.Converter()
for _cls in (Layer, Particles, Sfx):
    converter.register_unstructure_hook(_cls, make_dict_unstructure_fn(_cls, converter, _cattrs_omit_if_default=True))


def plan_to_dict(plan: WeatherPlan) -> dict[str, Any]:
    """The wire shape ``{state, scene, transition, particles, sfx, meta}``."""
    data: dict[str, Any] = converter.unstructure(plan)
    # Tuples become lists so equal plans compare equal after a JSON round trip too.
    data["meta"]["warnings"] = list(data["meta"]["warnings"])
    data["sfx"]["tags"] = list(data["sfx"]["tags"])
    if data["particles"] is not None and "size" in data["particles"]:
        data["particles"]["size"] = list(data["particles"]["size"])
    return data


def parse_state_update(body: Any) -> Mapping[str, Any]:
    """``{time_of_day?, weather?, ambience?}`` or ``{state: {...}}`` → the partial state.

    Raises `ComfyVNError` naming the field for a non-object body, a non-object ``state``, a mix of
    ``state`` with top-level values, and unknown keys.
    """
    if not isinstance(body, dict):
        raise ComfyVNError("the request body must be a JSON object", field="body", code="invalid_request")
    if "state" in body:
        others = sorted(k for k in body if k != "state")
        if others:
            raise ComfyVNError(
                f"send either {{state: {{...}}}} or top-level values, not both ({others[0]})",
                field=others[0],
                code="invalid_request",
            )
        inner = body["state"]
        if not isinstance(inner, dict):
            raise ComfyVNError("state must be an object", field="state", code="invalid_request")
        prefix, body = "state.", inner
    else:
        prefix = ""
    for key, value in body.items():
        if key not in FIELDS:
            raise ComfyVNError(
                f"unknown field {key!r}; expected one of {list(FIELDS)}", field=f"{prefix}{key}", code="invalid_request"
            )
        if value is not None and not isinstance(value, str):
            raise ComfyVNError(
                f"{prefix}{key} must be a string, got {type(value).__name__}",
                field=f"{prefix}{key}",
                code="invalid_request",
            )
    return {str(key): value for key, value in body.items()}
