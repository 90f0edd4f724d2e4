"""The advisory use cases shared by HTTP and CLI: enforce against a store project, audit, liability."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from comfyvn.errors import Blocked
from comfyvn_scenario import ProjectStore

from .audit import AuditLog, Liability
from .enforcer import FLAG, enforce

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["MAX_AUDIT_LIMIT", "acknowledge", "audit", "enforce_action", "raise_if_blocked"]

MAX_AUDIT_LIMIT = 1000


def enforce_action(
    kernel: Kernel, action: str, project_id: str | None, bundle: dict[str, Any], override: bool, source: str
) -> dict[str, Any]:
    """Enforce ``action`` on the store project ``project_id`` (or on the bundle alone); needs the flag."""
    kernel.flags.require(FLAG)
    project = ProjectStore.for_kernel(kernel).load(project_id).project if project_id is not None else None
    return enforce(kernel, action, project=project, bundle=bundle, override=override, source=source)


def raise_if_blocked(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` when it allows; else `Blocked` (HTTP 423 ``policy_blocked``, CLI exit 3) carrying it."""
    if result["allow"]:
        return result
    if not result["gate"]["allow"]:
        why = result["gate"]["warnings"][0]
    else:
        first = result["blocked"][0]
        why = f"{result['counts']['block']} blocking finding(s), first {first['code']} at {first['where'] or '-'}"
    raise Blocked(
        f"policy blocked {result['action']}: {why}", field="action", code="policy_blocked", details={"result": result}
    )


def audit(kernel: Kernel, limit: int, export: bool) -> dict[str, Any]:
    """``GET /api/policy/audit``."""
    return AuditLog(kernel.paths.logs).audit(limit, export=export)


def acknowledge(kernel: Kernel, user: str, notes: str | None) -> dict[str, Any]:
    """Record the liability acknowledgement (``POST /api/advisory/ack``, ``comfyvn policy ack``)."""
    return {"ok": True, **Liability(kernel.paths.config).acknowledge(user, notes)}
