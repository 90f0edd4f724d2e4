"""Hook implementations of the advisory plugin (wiring only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from comfyvn import hookimpl
from comfyvn_rating import RatingService

from . import hookspecs, routes
from .cli import policy_group
from .enforcer import FLAG, export_gate
from .scanners import builtin_findings

if TYPE_CHECKING:
    import click
    import pluggy
    from comfyvn import Kernel

_FINDINGS = {"type": "array", "items": {"type": "object", "required": ["level", "code", "message", "where"]}}
ENFORCED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["action", "allow", "counts", "blocked", "warnings", "log_path", "timestamp"],
    "properties": {
        "action": {"type": "string"},
        "allow": {"type": "boolean"},
        "counts": {"type": "object", "required": ["info", "warn", "block"]},
        "blocked": _FINDINGS,
        "warnings": _FINDINGS,
        "log_path": {"type": "string"},
        "timestamp": {"type": "number"},
    },
}


@hookimpl
def add_hookspecs(pm: pluggy.PluginManager) -> None:
    pm.add_hookspecs(hookspecs)


@hookimpl
def register_events(register: Any) -> None:
    register(
        "on_policy_enforced",
        "The policy enforcer decided an action (enforce, policy check, an export): counts and the findings.",
        ENFORCED_SCHEMA,
    )


@hookimpl
def register_flags(register: Any) -> None:
    register(FLAG, True, "Policy enforcement: advisory scanners on exports, POST /api/policy/enforce, the audit log.")


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(policy_group)


@hookimpl
def register_routes(kernel: Kernel) -> list[Any]:
    return routes.make_routes(kernel)


@hookimpl
def advisory_scan(project: Any, kernel: Kernel) -> list[dict[str, Any]]:
    """The built-in scanners (rating above target, licences, provenance, credits, secrets)."""
    service = RatingService(kernel)
    return builtin_findings(project, lambda p: service.classify_project(p).result.to_wire())


# optionalhook: the advisory plugin works without the Ren'Py exporter installed.
@hookimpl(optionalhook=True)
def renpy_export_gate(project: Any, options: dict[str, Any], kernel: Kernel) -> dict[str, Any] | None:
    """Enforce the policy before an export (blocks on a blocking finding, or a publish before the ack)."""
    return export_gate(kernel, project, options)
