"""The policy enforcer: run every scanner, apply the liability gate, decide, log, announce.

``enforce`` is what ``POST /api/policy/enforce``, ``comfyvn policy check`` and the Ren'Py export gate call.
A decision allows an action when no finding blocks and, for a publish action (``publish.*``), the
installation's liability acknowledgement is recorded. ``override`` lets blocking findings through only
once that acknowledgement is recorded (the creator has accepted responsibility), and the override is
written to the audit log with the findings it overrode. Every decision lands in the audit log and is
announced as ``on_policy_enforced``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import structlog
from comfyvn.plugins import HookFailure

from .audit import LOG_NAME, AuditLog, Liability, iso
from .findings import counts, failed, normalise, ordered

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["FLAG", "enforce", "export_gate", "grouped_warnings", "is_publish"]

FLAG = "enable_policy_enforcer"
MAX_EVENT_FINDINGS = 50
log = structlog.get_logger("comfyvn.policy.enforcer")


def is_publish(action: str) -> bool:
    """A publish action (``publish``, ``publish.renpy``…): it needs the liability acknowledgement first."""
    return action.split(".", 1)[0].strip().lower() == "publish"


def scan(kernel: Kernel, action: str, project: Any, bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """Every ``advisory_scan`` answer, checked and merged; a failing scanner is a blocking finding."""
    found: list[dict[str, Any]] = []
    for plugin, answer in kernel.plugins.call_each(
        "advisory_scan", on_error="report", action=action, project=project, bundle=bundle, kernel=kernel
    ):
        found.extend([failed(plugin, answer.error)] if isinstance(answer, HookFailure) else normalise(plugin, answer))
    return ordered(found)


def enforce(
    kernel: Kernel,
    action: str,
    *,
    project: Any = None,
    bundle: dict[str, Any] | None = None,
    override: bool = False,
    source: str = "api",
) -> dict[str, Any]:
    """Decide ``action`` (see the module doc); the result is ``{allow, counts, findings, log_path, gate, …}``."""
    bundle = bundle or {}
    findings = scan(kernel, action, project, bundle)
    tally = counts(findings)
    liability = Liability(kernel.paths.config).status()
    publish = is_publish(action)
    gate_warnings = []
    if publish and not liability["acknowledged"]:
        gate_warnings.append(
            "publishing needs the one-time liability acknowledgement: `comfyvn policy ack` or POST /api/advisory/ack"
        )
    if override and not liability["acknowledged"]:
        gate_warnings.append("override needs the liability acknowledgement first; it was not applied")
    gate = {
        "action": action,
        "publish": publish,
        "requires_ack": publish and not liability["acknowledged"],
        "acknowledged": liability["acknowledged"],
        "allow": not (publish and not liability["acknowledged"]),
        "override_requested": override,
        "warnings": gate_warnings,
    }
    overridden = bool(override and liability["acknowledged"] and tally["block"])
    allow = gate["allow"] and (tally["block"] == 0 or overridden)
    now = time.time()
    result: dict[str, Any] = {
        "ok": True,
        "action": action,
        "project": str(project.id) if project is not None else None,
        "allow": allow,
        "counts": tally,
        "findings": findings,
        "blocked": [f for f in findings if f["level"] == "block"],
        "warnings": [f for f in findings if f["level"] == "warn"],
        "override": override,
        "overridden": overridden,
        "gate": gate,
        "log_path": LOG_NAME,
        "timestamp": now,
    }
    AuditLog(kernel.paths.logs).append(
        {
            "ts": iso(now),
            "timestamp": now,
            "source": source,
            "user": liability["user"] if overridden else None,
            "bundle": {k: bundle[k] for k in ("dry_run", "project") if k in bundle},
            **{
                k: result[k]
                for k in ("action", "project", "allow", "counts", "findings", "override", "overridden", "gate")
            },
        }
    )
    (log.info if allow else log.warning)(
        "policy decision", action=action, project=result["project"], allow=allow, counts=tally
    )
    kernel.events.emit(
        "on_policy_enforced",
        {
            "action": action,
            "allow": allow,
            "counts": tally,
            "blocked": result["blocked"][:MAX_EVENT_FINDINGS],
            "warnings": result["warnings"][:MAX_EVENT_FINDINGS],
            "log_path": LOG_NAME,
            "timestamp": now,
        },
    )
    return result


def _by_code(findings: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for item in findings:
        groups.setdefault(item["code"], []).append(item)
    return groups


def _places(group: list[dict[str, Any]], limit: int) -> str:
    """``a, b, c … and N more``: where each finding is (its message when it names no place)."""
    names = [item["where"] or item["message"] for item in group]
    shown = ", ".join(names[:limit])
    return shown + (f" … and {len(names) - limit} more" if len(names) > limit else "")


def _summary(findings: list[dict[str, Any]], limit: int = 3) -> str:
    """Every kind of finding, each with a few of its places: no kind hides behind another's count."""
    return "; ".join(f"{code} at {_places(group, limit)}" for code, group in _by_code(findings).items())


def grouped_warnings(findings: list[dict[str, Any]], limit: int = 3) -> list[str]:
    """One line per kind of finding: its message when alone, else how many, the first message and a few
    more places (``… and N more``). Every kind keeps its line, however many of another kind there are."""
    lines = []
    for code, group in _by_code(findings).items():
        if len(group) == 1:
            lines.append(f"policy: {code}: {group[0]['message']}")
        else:
            rest = f"; also {_places(group[1:], limit)}"
            lines.append(f"policy: {code} ({len(group)} findings): {group[0]['message']}{rest}")
    return lines


def _sample(findings: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """At most ``limit`` findings, the first of every kind among them, in their order."""
    firsts = {id(group[0]) for group in _by_code(findings).values()}
    room = max(limit - len(firsts), 0)
    kept = []
    for item in findings:
        if id(item) in firsts:
            kept.append(item)
        elif room:
            kept.append(item)
            room -= 1
    return kept


def export_gate(kernel: Kernel, project: Any, options: dict[str, Any]) -> dict[str, Any] | None:
    """``renpy_export_gate``: enforce ``export.renpy`` (``publish.renpy`` with a publish zip) on the project.

    Warnings come back grouped, one line per kind (`grouped_warnings`), so a project with many unlicensed
    assets still shows its missing card credit.
    """
    if not kernel.flags.is_enabled(FLAG):
        return None
    action = "publish.renpy" if options.get("publish") else "export.renpy"
    result = enforce(
        kernel, action, project=project, bundle={"dry_run": bool(options.get("dry_run"))}, source="renpy_export"
    )
    policy = {"counts": result["counts"], "log_path": LOG_NAME, "action": action}
    if not result["allow"]:
        if not result["gate"]["allow"]:
            reason = result["gate"]["warnings"][0]
        else:
            reason = f"{result['counts']['block']} blocking finding(s): {_summary(result['blocked'])}"
        return {"reason": f"policy: {reason}", "findings": _sample(result["blocked"], 20), "policy": policy}
    warnings = grouped_warnings(result["warnings"])
    return {"allow": True, "policy": policy, **({"warnings": warnings} if warnings else {})}
