"""Extension points the advisory plugin publishes (added to the kernel's manager via ``add_hookspecs``)."""

from __future__ import annotations

from typing import Any

from comfyvn.hookspecs import hookspec


@hookspec
def advisory_scan(action: str, project: Any, bundle: dict[str, Any], kernel: Any) -> list[dict[str, Any]] | None:
    """Scan what an action is about to import, export or publish; return findings (or None for none).

    Runs for ``POST /api/policy/enforce``, ``comfyvn policy check`` and every Ren'Py export (``action`` is
    ``export.renpy``, or ``publish.renpy`` with a publish zip). ``project`` is a `comfyvn_scenario.Project`
    (``meta``, ``scenes``, ``characters``, ``root``) or None when the caller named none; ``bundle`` is the
    caller's free-form description (``{}`` when none). Every scanner runs; their findings are merged.

    A finding is ``{"level": "info"|"warn"|"block", "code": str, "message": str, "where": str | None}``.
    ``block`` stops the action (HTTP 423, CLI exit 3) and is recorded in the audit log; ``warn`` and
    ``info`` are reported and recorded. A scanner that raises, or returns something that is not a list of
    findings, blocks (fails closed) with a ``scanner_failed`` finding naming it.
    """
