"""The advisory plugin: built-in scanners, the advisory_scan hook (a blocking scanner blocks enforce and the
export, a broken one fails closed), the enforce endpoint, the audit log and its export, the liability
acknowledgement before publishing, override, flags, events and the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from advisory_fixtures import make_project
from click.testing import CliRunner
from comfyvn import Kernel, hookimpl
from comfyvn.cli import make_cli
from comfyvn_advisory import asset_findings, credit_findings, rating_findings, secret_findings
from comfyvn_scenario import Project, ProjectStore

LICENSED = {"assets": {"assets/bg/room.png": {"license": "CC-BY-4.0", "provenance": "drawn for the demo"}}}


def _log(kernel: Kernel) -> list[dict[str, Any]]:
    path = kernel.paths.logs / "policy" / "enforcer.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _project(kernel: Kernel, project_id: str) -> Project:
    return ProjectStore.for_kernel(kernel).load(project_id).project


class BlockingScanner:
    @hookimpl
    def advisory_scan(self, action: str, project: Any) -> list[dict[str, Any]]:
        if project is None:
            return []
        return [
            {"level": "block", "code": "house_rule", "message": f"{action}: not on Fridays", "where": "project.json"}
        ]


class BrokenScanner:
    @hookimpl
    def advisory_scan(self) -> list[dict[str, Any]]:
        raise RuntimeError("scanner database missing")


class SloppyScanner:
    @hookimpl
    def advisory_scan(self) -> Any:
        return [{"level": "fatal", "code": "x", "message": "y"}]


def test_an_unlicensed_asset_is_a_warning_and_a_licensed_one_is_not(advisory_kernel: Callable[..., Kernel]) -> None:
    kernel = advisory_kernel()
    bare = _project(kernel, make_project(kernel))
    assert [(f["level"], f["code"], f["where"]) for f in asset_findings(bare)] == [
        ("warn", "asset_unlicensed", "assets/bg/room.png"),
        ("info", "asset_no_provenance", "assets/bg/room.png"),
    ]
    licensed = _project(kernel, make_project(kernel, metadata=LICENSED, project_id="tea-2"))
    assert asset_findings(licensed) == []


def test_depth_planes_split_from_a_licensed_picture_carry_its_licence(
    advisory_kernel: Callable[..., Kernel],
) -> None:
    kernel = advisory_kernel()
    project = _project(kernel, make_project(kernel, metadata=LICENSED))
    assert project.root is not None
    planes = project.root / "assets" / "bg" / "room.layers"
    planes.mkdir()
    for name in ("plane0.png", "plane1.png", "layers.json"):
        (planes / name).write_bytes(b"x")
    # A folder named after no recorded picture, and a look-alike name, stay unlicensed.
    (project.root / "assets" / "bg" / "hall.layers").mkdir()
    (project.root / "assets" / "bg" / "hall.layers" / "plane0.png").write_bytes(b"x")
    (project.root / "assets" / "bg" / "room.png.layers").mkdir()
    (project.root / "assets" / "bg" / "room.png.layers" / "plane0.png").write_bytes(b"x")
    assert sorted((f["code"], f["where"]) for f in asset_findings(project)) == [
        ("asset_no_provenance", "assets/bg/hall.layers/plane0.png"),
        ("asset_no_provenance", "assets/bg/room.png.layers/plane0.png"),
        ("asset_unlicensed", "assets/bg/hall.layers/plane0.png"),
        ("asset_unlicensed", "assets/bg/room.png.layers/plane0.png"),
    ]


def test_credits_secrets_and_rating_target(advisory_kernel: Callable[..., Kernel]) -> None:
    card = {"name": "Kit", "metadata": {"card": {"creator": "VelvetQuill", "tags": []}}}
    meta: dict[str, Any] = {"id": "p", "title": "P", "scenes": ["s"], "start": "s", "characters": {"kit": card}}
    key = "sk-" + "A1b2C3d4" * 4
    scene = {"id": "s", "start": "a", "nodes": [{"id": "a", "text": f"The note says {key}", "end": True}]}
    project = Project(meta=meta, scenes={"s": scene})
    (credit,) = credit_findings(project)
    assert (credit["level"], credit["code"], credit["where"]) == (
        "warn",
        "card_credit_missing",
        "project.json#/characters/kit/metadata/card/creator",
    )
    assert credit_findings(Project(meta={**meta, "credits": [{"name": "Art by velvetquill"}]}, scenes={})) == []
    (secret,) = secret_findings(project)
    assert (secret["level"], secret["code"], secret["where"]) == (
        "block",
        "secret_in_script",
        "scenes/s.json#/nodes/0/text",
    )
    assert key not in secret["message"] and "sk-A…" in secret["message"]
    fiction = Project(meta=meta, scenes={"s": {**scene, "nodes": [{"id": "a", "text": "password: swordfish12345"}]}})
    assert [f["level"] for f in secret_findings(fiction)] == ["warn"]
    assert secret_findings(Project(meta=meta, scenes={"s": {**scene, "nodes": [{"id": "a", "text": "sk-ing"}]}})) == []
    rated = {"rating": "Adult", "reasons": ["keyword:explicit"]}
    targeted = Project(meta={**meta, "metadata": {"target_rating": "t"}}, scenes={})
    (above,) = rating_findings(targeted, lambda _p: rated)
    assert (above["level"], above["code"], above["where"]) == (
        "warn",
        "rating_above_target",
        "project.json#/metadata/target_rating",
    )
    assert "rates Adult (keyword:explicit), above its target T" in above["message"]
    assert rating_findings(Project(meta={**meta, "metadata": {"rating": "Adult"}}, scenes={}), lambda _p: rated) == []
    assert rating_findings(Project(meta=meta, scenes={}), lambda _p: rated) == []
    odd = rating_findings(Project(meta={**meta, "metadata": {"rating": "PG"}}, scenes={}), lambda _p: rated)
    assert [f["code"] for f in odd] == ["rating_target_unknown"]


def test_enforce_over_http_and_every_decision_in_the_audit_log(
    advisory_kernel: Callable[..., Kernel], http_for: Callable[..., Any]
) -> None:
    kernel = advisory_kernel()
    client = http_for(kernel)
    make_project(kernel, metadata={"target_rating": "E"}, text="A bloody knife.")
    response = client.post("/api/policy/enforce", json={"action": "export.renpy", "bundle": {"project": "tea"}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["allow"] is True and body["counts"] == {"info": 1, "warn": 2, "block": 0}
    assert [f["code"] for f in body["findings"]] == ["asset_unlicensed", "rating_above_target", "asset_no_provenance"]
    assert {f["scanner"] for f in body["findings"]} == {"comfyvn_advisory"}
    assert body["log_path"] == "logs/policy/enforcer.jsonl" and body["gate"]["requires_ack"] is False
    bare = client.post(
        "/api/advisory/enforce", json={"action": "export.bundle", "bundle": {"metadata": {"source": "x"}}}
    )
    assert bare.json()["counts"] == {"info": 0, "warn": 0, "block": 0} and bare.json()["project"] is None
    logged = _log(kernel)
    assert [(e["action"], e["project"], e["allow"], e["source"]) for e in logged] == [
        ("export.renpy", "tea", True, "api"),
        ("export.bundle", None, True, "api"),
    ]
    assert logged[0]["findings"] == body["findings"]
    events = [e.payload for e in kernel.events.history(event="on_policy_enforced")]
    assert [(e["action"], e["allow"], e["counts"]["warn"]) for e in events] == [
        ("export.renpy", True, 2),
        ("export.bundle", True, 0),
    ]
    audit = client.get("/api/policy/audit", params={"limit": 1, "export": 1}).json()
    assert [e["action"] for e in audit["events"]] == ["export.bundle"]
    assert audit["summary"] == {
        "total": 2,
        "allowed": 2,
        "blocked": 0,
        "by_action": {"export.renpy": 1, "export.bundle": 1},
        "findings": {"info": 1, "warn": 2, "block": 0},
    }
    report = kernel.paths.logs / audit["report_path"].removeprefix("logs/")
    assert (
        json.loads(report.read_text())["summary"] == audit["summary"]
        and len(json.loads(report.read_text())["events"]) == 2
    )
    for bad in ({"limit": "0"}, {"limit": "x"}, {"export": "yes"}, {"since": "1"}):
        assert client.get("/api/policy/audit", params=bad).status_code == 400, bad
    missing = client.post("/api/policy/enforce", json={"action": "export.renpy", "bundle": {"project": "nope"}})
    assert missing.status_code == 404
    assert client.post("/api/policy/enforce", json={"bundle": {}}).json()["error"]["field"] == "action"


def test_hook_advisory_scan(advisory_kernel: Callable[..., Kernel], http_for: Callable[..., Any]) -> None:
    kernel = advisory_kernel(BlockingScanner())
    client = http_for(kernel)
    make_project(kernel, metadata=LICENSED)
    refused = client.post("/api/policy/enforce", json={"action": "export.renpy", "bundle": {"project": "tea"}})
    assert refused.status_code == 423, refused.text
    error = refused.json()["error"]
    assert error["code"] == "policy_blocked" and "house_rule at project.json" in error["message"]
    assert error["result"]["blocked"] == [
        {
            "level": "block",
            "code": "house_rule",
            "message": "export.renpy: not on Fridays",
            "where": "project.json",
            "scanner": "blockingscanner",
        }
    ]
    exported = client.post("/api/export/renpy", json={"project": "tea"})
    assert exported.status_code == 423
    (gate,) = [b for b in exported.json()["error"]["blocked_by"] if b["plugin"] == "comfyvn_advisory"]
    assert gate["reason"] == "policy: 1 blocking finding(s): house_rule at project.json"
    assert not (kernel.paths.data / "projects" / "tea" / "exports" / "renpy").exists()
    logged = _log(kernel)
    assert [(e["action"], e["allow"], e["source"], e["counts"]["block"]) for e in logged] == [
        ("export.renpy", False, "api", 1),
        ("export.renpy", False, "renpy_export", 1),
    ]
    assert logged[1]["bundle"] == {"dry_run": False}


@pytest.mark.parametrize("scanner", [BrokenScanner(), SloppyScanner()])
def test_a_broken_scanner_blocks(
    advisory_kernel: Callable[..., Kernel], http_for: Callable[..., Any], scanner: Any
) -> None:
    kernel = advisory_kernel(scanner)
    make_project(kernel, metadata=LICENSED)
    refused = http_for(kernel).post("/api/policy/enforce", json={"action": "check", "bundle": {"project": "tea"}})
    assert refused.status_code == 423
    (blocked,) = refused.json()["error"]["result"]["blocked"]
    assert blocked["code"] == "scanner_failed" and blocked["scanner"] == type(scanner).__name__.lower()


def test_publishing_needs_the_liability_acknowledgement_and_override_needs_it_too(
    advisory_kernel: Callable[..., Kernel], http_for: Callable[..., Any]
) -> None:
    kernel = advisory_kernel(BlockingScanner())
    client = http_for(kernel)
    make_project(kernel, metadata=LICENSED)
    status = client.get("/api/advisory/disclaimer").json()
    assert status["acknowledged"] is False and "responsibility" in status["terms"]
    early = client.post("/api/policy/enforce", json={"action": "check", "bundle": {"project": "tea"}, "override": True})
    assert early.status_code == 423 and early.json()["error"]["result"]["overridden"] is False
    assert "override needs the liability acknowledgement" in early.json()["error"]["result"]["gate"]["warnings"][0]
    refused = client.post("/api/advisory/ack", json={"user": "ana", "accept": False})
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "accept"
    recorded = client.post("/api/advisory/ack", json={"user": "ana", "accept": True, "notes": "I am the author"}).json()
    assert recorded["acknowledged"] is True and recorded["user"] == "ana"
    assert client.post("/api/advisory/ack", json={"user": "bob", "accept": True}).json()["user"] == "ana"
    overridden = client.post(
        "/api/policy/enforce", json={"action": "check", "bundle": {"project": "tea"}, "override": True}
    )
    assert overridden.status_code == 200 and overridden.json()["overridden"] is True
    assert overridden.json()["counts"]["block"] == 1  # still counted and logged
    last = _log(kernel)[-1]
    assert (last["overridden"], last["user"], last["findings"][0]["code"]) == (True, "ana", "house_rule")


def test_a_publish_export_waits_for_the_liability_acknowledgement(
    advisory_kernel: Callable[..., Kernel], http_for: Callable[..., Any]
) -> None:
    kernel = advisory_kernel()
    client = http_for(kernel)
    make_project(kernel, metadata=LICENSED)
    assert client.post("/api/export/renpy", json={"project": "tea", "dry_run": True}).status_code == 200
    publish = client.post("/api/export/renpy", json={"project": "tea", "publish": True})
    assert publish.status_code == 423
    assert "liability acknowledgement" in publish.json()["error"]["message"]
    assert not (kernel.paths.data / "projects" / "tea" / "exports" / "tea.zip").exists()
    client.post("/api/advisory/ack", json={"user": "ana", "accept": True})
    published = client.post("/api/export/renpy", json={"project": "tea", "publish": True})
    assert published.status_code == 200, published.text
    notes = {
        n["plugin"]: n
        for n in json.loads(
            (kernel.paths.data / "projects" / "tea" / "exports" / "renpy" / "export_manifest.json").read_text()
        )["rating_gate"]["notes"]
    }
    assert notes["comfyvn_advisory"]["policy"]["action"] == "publish.renpy"
    assert [e["action"] for e in _log(kernel)] == ["export.renpy", "publish.renpy", "publish.renpy"]


def test_export_warnings_and_the_flag(advisory_kernel: Callable[..., Kernel], http_for: Callable[..., Any]) -> None:
    kernel = advisory_kernel()
    client = http_for(kernel)
    make_project(kernel)
    warned = client.post("/api/export/renpy", json={"project": "tea", "dry_run": True}).json()
    assert "policy: asset_unlicensed: assets/bg/room.png has no licence" in warned["warnings"][0]
    off = advisory_kernel(BlockingScanner(), env={"COMFYVN_FEATURE_ENABLE_POLICY_ENFORCER": "0"})
    off_client = http_for(off)
    denied = off_client.post("/api/policy/enforce", json={"action": "check"})
    assert denied.status_code == 403 and denied.json()["error"]["field"] == "enable_policy_enforcer"
    assert off_client.post("/api/export/renpy", json={"project": "tea", "dry_run": True}).status_code == 200
    assert len(_log(off)) == 1  # only the first kernel's export (same roots); the disabled one logged nothing


def test_cli_policy_check_ack_and_audit(advisory_kernel: Callable[..., Kernel]) -> None:
    kernel = advisory_kernel()
    make_project(kernel)
    cli = make_cli(kernel)
    table = CliRunner().invoke(cli, ["policy", "check", "tea"])
    assert table.exit_code == 0, table.output
    assert "warn   asset_unlicensed     assets/bg/room.png" in table.output
    assert "0 block, 1 warn, 1 info; logged to logs/policy/enforcer.jsonl" in table.output
    as_json = json.loads(CliRunner().invoke(cli, ["policy", "check", "tea", "--json"]).output)
    assert as_json["counts"] == {"info": 1, "warn": 1, "block": 0}
    publish = CliRunner().invoke(cli, ["policy", "check", "tea", "--action", "publish.renpy"])
    assert publish.exit_code == 3 and "liability acknowledgement" in publish.output
    declined = CliRunner().invoke(cli, ["policy", "ack", "--user", "ana"], input="n\n")
    assert declined.exit_code == 2 and "nothing was recorded" in declined.output
    accepted = CliRunner().invoke(cli, ["policy", "ack", "--user", "ana"], input="y\n")
    assert accepted.exit_code == 0 and "acknowledged by ana" in accepted.output
    assert CliRunner().invoke(cli, ["policy", "check", "tea", "--action", "publish.renpy"]).exit_code == 0
    audit = CliRunner().invoke(cli, ["policy", "audit", "--limit", "2"])
    assert audit.exit_code == 0 and "4 decisions: 3 allowed, 1 blocked" in audit.output
    blocked_kernel = advisory_kernel(BlockingScanner())
    blocked = CliRunner().invoke(make_cli(blocked_kernel), ["policy", "check", "tea"])
    assert blocked.exit_code == 3 and "block  house_rule" in blocked.output


def test_cli_policy_check_of_a_folder_named_by_a_relative_path(
    advisory_kernel: Callable[..., Kernel], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `comfyvn policy check examples/demo`: the project's root is relative while the files its scenes name
    # resolve to absolute paths; the asset scanner must still place them (it failed with ValueError).
    kernel = advisory_kernel()
    stored = ProjectStore.for_kernel(kernel).load(make_project(kernel))
    monkeypatch.chdir(stored.path.parent.parent)
    relative = f"{stored.path.parent.name}/{stored.path.name}"
    table = CliRunner().invoke(make_cli(kernel), ["policy", "check", relative])
    assert table.exit_code == 0, table.output
    assert "scanner_failed" not in table.output
    assert "warn   asset_unlicensed     assets/bg/room.png" in table.output
