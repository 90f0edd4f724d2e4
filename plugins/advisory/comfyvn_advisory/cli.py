"""``comfyvn policy check|ack|audit``: parse options → `service` → print.

``check`` prints the findings as a table (or JSON) and exits 3 when a finding blocks, like an export would.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from comfyvn.errors import Invalid

from . import service
from .audit import Liability
from .enforcer import FLAG, enforce

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["policy_group"]


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))


def _table(findings: list[dict[str, Any]]) -> None:
    if not findings:
        click.echo("no findings")
        return
    width = max(len(f["code"]) for f in findings)
    for f in findings:
        click.echo(f"{f['level']:<5}  {f['code']:<{width}}  {f['where'] or '-'}")
        click.echo(f"       {f['message']}")


@click.group("policy")
def policy_group() -> None:
    """Policy and advisory: scan projects, the audit trail, the liability acknowledgement."""


@policy_group.command("check")
@click.argument("project")
@click.option(
    "--action", default="export.renpy", show_default=True, help="The action to check (publish.* needs the ack)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@click.pass_obj
def check_command(kernel: Kernel, project: str, action: str, as_json: bool) -> None:
    """Scan PROJECT (a folder or a store id) as ACTION would; exit 3 when a finding blocks."""
    from comfyvn_scenario import ProjectStore, load_project

    kernel.flags.require(FLAG)
    if not action.strip() or len(action) > 200:
        raise Invalid("--action must be 1 to 200 characters", field="action", code="invalid_request")
    store = ProjectStore.for_kernel(kernel)
    folder = store.resolve(project)
    loaded = store.load(folder.name).project if not Path(project).exists() else load_project(folder)
    result = enforce(kernel, action, project=loaded, source="cli")
    if as_json:
        _echo_json(result)
    else:
        _table(result["findings"])
        tally = result["counts"]
        click.echo(
            f"{tally['block']} block, {tally['warn']} warn, {tally['info']} info; logged to {result['log_path']}"
        )
    service.raise_if_blocked(result)


@policy_group.command("ack")
@click.option("--user", help="Who accepts (default: your login name).")
@click.option("--notes", help="Anything to record with the acknowledgement.")
@click.option("--yes", is_flag=True, help="Accept without the prompt (scripts).")
@click.pass_obj
def ack_command(kernel: Kernel, user: str | None, notes: str | None, yes: bool) -> None:
    """Acknowledge the liability terms once for this installation (needed before the first publish)."""
    status = Liability(kernel.paths.config).status()
    if status["acknowledged"]:
        click.echo(f"already acknowledged by {status['user']} at {status['acknowledged_at']}")
        return
    click.echo(status["terms"])
    if not yes and not click.confirm("Do you accept these terms?", default=False):
        raise Invalid("the terms were not accepted; nothing was recorded", field="accept", code="not_accepted")
    who = user if user is not None else getpass.getuser()
    if not who.strip() or len(who) > 200 or (notes is not None and len(notes) > 2000):
        raise Invalid("--user must be 1 to 200 characters, --notes at most 2000", field="user", code="invalid_request")
    recorded = service.acknowledge(kernel, who, notes)
    click.echo(f"acknowledged by {recorded['user']} at {recorded['acknowledged_at']}")


@policy_group.command("audit")
@click.option("--limit", type=click.IntRange(1, service.MAX_AUDIT_LIMIT), default=25, show_default=True)
@click.option("--export", "export_report", is_flag=True, help="Also write logs/policy/policy_audit_<time>.json.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def audit_command(kernel: Kernel, limit: int, export_report: bool, as_json: bool) -> None:
    """The latest enforcement decisions, newest first."""
    result = service.audit(kernel, limit, export_report)
    if as_json:
        _echo_json(result)
        return
    for event in result["events"]:
        verdict = "allow" if event.get("allow") else "BLOCK"
        c = event.get("counts") or {}
        click.echo(
            f"{event.get('ts')}  {verdict:<5} {event.get('action')}  {event.get('project') or '-'}  "
            f"block {c.get('block', 0)} warn {c.get('warn', 0)} info {c.get('info', 0)}"
        )
    s = result["summary"]
    click.echo(f"{s['total']} decisions: {s['allowed']} allowed, {s['blocked']} blocked")
    if "report_path" in result:
        click.echo(f"report: {result['report_path']}")
