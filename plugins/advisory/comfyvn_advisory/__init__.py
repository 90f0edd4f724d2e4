"""ComfyVN policy and advisory: scanners (a published hook) report findings, the enforcer decides, every
decision lands in the audit log; the one-time liability acknowledgement is recorded before publishing.

The domain lives in `findings`, `scanners` (the built-in ones), `audit` (log, liability) and `enforcer`;
`service`, `routes` and `cli` are the edges.
"""

from __future__ import annotations

from .enforcer import enforce, export_gate, is_publish
from .scanners import asset_findings, credit_findings, project_assets, rating_findings, secret_findings

__all__ = [
    "asset_findings",
    "credit_findings",
    "enforce",
    "export_gate",
    "is_publish",
    "project_assets",
    "rating_findings",
    "secret_findings",
]
