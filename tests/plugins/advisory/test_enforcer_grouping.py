"""The export gate reports every kind of finding: many of one kind are grouped ("29 findings … and N more"),
never allowed to push another kind (a missing card credit) out of the warnings."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from advisory_fixtures import make_project
from click.testing import CliRunner
from comfyvn import Kernel, hookimpl
from comfyvn.cli import make_cli
from comfyvn_advisory.enforcer import grouped_warnings

CREDIT = "the card of 'seraphina' is by 'OtisAlejandro', who is not in the project's credits"


def _unlicensed(count: int, level: str = "warn") -> list[dict[str, Any]]:
    return [
        {
            "level": level,
            "code": "asset_unlicensed",
            "message": f"assets/a{i:02}.png has no licence; record one in metadata.assets before distributing it",
            "where": f"assets/a{i:02}.png",
        }
        for i in range(count)
    ]


class ManyWarnings:
    """29 unlicensed assets (sorted before the credit) and one missing card credit."""

    @hookimpl
    def advisory_scan(self, project: Any) -> list[dict[str, Any]]:
        if project is None:
            return []
        credit = {"level": "warn", "code": "card_credit_missing", "message": CREDIT, "where": "project.json"}
        return [*_unlicensed(29), credit]


class ManyBlocks:
    @hookimpl
    def advisory_scan(self, project: Any) -> list[dict[str, Any]]:
        if project is None:
            return []
        rule = {"level": "block", "code": "zz_house_rule", "message": "not on Fridays", "where": "project.json"}
        return [*_unlicensed(25, "block"), rule]


def test_export_warnings_keep_every_kind(advisory_kernel: Callable[..., Kernel]) -> None:
    kernel = advisory_kernel(ManyWarnings())
    make_project(kernel)
    folder = kernel.paths.data / "projects" / "tea"
    cli = make_cli(kernel)
    out = kernel.paths.data.parent / "game"
    shown = CliRunner().invoke(cli, ["export", "renpy", str(folder), "--out", str(out), "--dry-run", "--json"])
    assert shown.exit_code == 0, shown.output
    policy = [w for w in json.loads(shown.stdout)["warnings"] if w.startswith("policy: ")]
    codes = [w.split(":")[1].split()[0] for w in policy]
    # The project's own room.png is unlicensed too (the shipped scanner): 30 asset_unlicensed in all.
    assert sorted(codes) == ["asset_unlicensed", "card_credit_missing"]
    (assets,) = [w for w in policy if "asset_unlicensed" in w]
    assert "(30 findings)" in assets and "… and 26 more" in assets
    assert f"policy: card_credit_missing: {CREDIT}" in policy
    printed = CliRunner().invoke(cli, ["export", "renpy", str(folder), "--out", str(out), "--dry-run"])
    assert printed.exit_code == 0, printed.output
    assert f"warning: policy: card_credit_missing: {CREDIT}" in printed.stderr.splitlines()
    assert sum("asset_unlicensed" in line for line in printed.stderr.splitlines()) == 1


def test_blocking_findings_keep_every_kind(
    advisory_kernel: Callable[..., Kernel], http_for: Callable[..., Any]
) -> None:
    kernel = advisory_kernel(ManyBlocks())
    make_project(kernel)
    refused = http_for(kernel).post("/api/export/renpy", json={"project": "tea", "dry_run": True})
    assert refused.status_code == 423, refused.text
    (gate,) = [b for b in refused.json()["error"]["blocked_by"] if b["plugin"] == "comfyvn_advisory"]
    assert gate["reason"].startswith("policy: 26 blocking finding(s): asset_unlicensed at ")
    assert "… and 22 more; zz_house_rule at project.json" in gate["reason"]
    assert len(gate["findings"]) == 20
    assert [f["code"] for f in gate["findings"]].count("zz_house_rule") == 1


def test_grouped_warnings_one_line_per_kind() -> None:
    findings = [{**f, "scanner": "s"} for f in _unlicensed(5)]
    alone = {"level": "warn", "code": "b", "message": "only one", "where": None, "scanner": "s"}
    lines = grouped_warnings([*findings, alone])
    assert lines == [
        "policy: asset_unlicensed (5 findings): assets/a00.png has no licence; record one in metadata.assets "
        "before distributing it; also assets/a01.png, assets/a02.png, assets/a03.png … and 1 more",
        "policy: b: only one",
    ]
    assert grouped_warnings([]) == []
