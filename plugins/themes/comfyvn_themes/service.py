"""The themes use case shared by HTTP and CLI: find, apply, emit ``on_theme_applied``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from comfyvn.wire import converter

from .planner import apply_theme, find_template
from .templates import TEMPLATES
from .wire import ApplyRequest, parse_characters

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["apply", "list_templates"]


def list_templates() -> list[dict[str, Any]]:
    """Every template as JSON, in a stable order."""
    return [converter.unstructure(TEMPLATES[key]) for key in sorted(TEMPLATES)]


def apply(kernel: Kernel, req: ApplyRequest) -> dict[str, Any]:
    """``{theme, label, plan_delta, renders_triggered: false, scene_id?}``; emits ``on_theme_applied``."""
    template = find_template(req.theme)
    delta = apply_theme(template, parse_characters(req.characters), req.current).as_dict()
    response: dict[str, Any] = {
        "theme": template.id,
        "label": template.label,
        "plan_delta": delta,
        "renders_triggered": False,
    }
    if req.scene_id is not None:
        response["scene_id"] = req.scene_id
    kernel.events.emit(
        "on_theme_applied",
        {
            "theme": template.id,
            "checksum": delta["checksum"],
            "mutations": len(delta["mutations"]),
            "scene_id": req.scene_id,
        },
    )
    return response
