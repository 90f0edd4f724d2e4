"""``comfyvn export renpy`` and ``comfyvn demo``: parse options -> service -> print.

Exit codes: 0 fine; 1 the real engine's lint (``--check``) or a demo step failed; 2 bad input;
3 an export gate blocked the export (the root group turns `ComfyVNError` into one line and its code).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .demo import run_demo
from .export import POV_MODES, ExportOptions
from .service import DEFAULT_PLATFORMS, ExportRequest, run_export

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["demo_command", "export_group"]
STEPS = ("load", "build", "preview", "write", "publish", "lint", "distribute")


@click.group("export")
def export_group() -> None:
    """Export projects to other engines."""


def _print_result(result: dict[str, Any]) -> None:
    for warning in result["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    if "preview" in result:
        for entry in result["preview"]["files"]:
            if entry["status"] != "unchanged":
                click.echo(f"{entry['status']:<9} {entry['path']}")
                if entry.get("diff"):
                    click.echo(entry["diff"])
        summary = result["preview"]["summary"]
        click.echo(
            f"dry run: {summary['new']} new, {summary['modified']} modified, "
            f"{summary['unchanged']} unchanged, {summary['removed']} removed (nothing written)"
        )
    else:
        write = result["write"]
        click.echo(
            f"exported {result['project']} to {result['out']}: {result['files']} files "
            f"({write['written']} written, {write['unchanged']} unchanged) in {result['seconds']} s"
        )
    if result["testcases"]:
        click.echo(f"testcases: {', '.join(result['testcases'])} (renpy <dir> test <name>)")
    if "publish" in result:
        click.echo(f"publish zip: {result['publish']['path']} sha256 {result['publish']['sha256']}")
    check = result.get("check")
    if check is not None:
        if not check["configured"]:
            click.echo(f"check: {check['message']}")
        for build, lint in (check.get("builds") or {}).items():
            state = "clean" if lint["ok"] else f"{len(lint['problems'])} problem(s)"
            click.echo(f"lint {build}: {state} ({lint['seconds']} s)")
            for problem in lint["problems"]:
                click.echo(f"  {problem}")
    if "sdk" in result:
        click.echo(f"sdk distribute: exit {result['sdk'].get('returncode')}")


@export_group.command("renpy")
@click.argument("project", type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Ren'Py project folder to write.")
@click.option("--pov-mode", type=click.Choice(POV_MODES), default="auto", show_default=True)
@click.option("--no-pov-switch", is_flag=True, help="No in-game Switch POV menu in the master build.")
@click.option("--no-per-scene", is_flag=True, help="All scenes in game/script.rpy instead of one file each.")
@click.option("--testcases", is_flag=True, help="Emit game/tests.rpy derived from playtest traces.")
@click.option("--bake-weather", is_flag=True, help="Ask contribution plugins (weather) to bake their lines.")
@click.option("--dry-run", is_flag=True, help="Show new/modified/unchanged files with diffs; write nothing.")
@click.option("--publish", is_flag=True, help="Also write a deterministic zip (needs --publish-out).")
@click.option("--publish-out", type=click.Path(path_type=Path), help="Where the publish zip goes.")
@click.option("--platform", "platforms", multiple=True, help="Platform folder in the zip (repeatable).")
@click.option("--check", is_flag=True, help="Lint the result with the real Ren'Py engine when one is found.")
@click.option("--renpy", "renpy_path", help="Ren'Py launcher or SDK folder for --check.")
@click.option("--invoke-sdk", is_flag=True, help="Run the SDK's distribute step after exporting.")
@click.option("--renpy-sdk", help="Ren'Py SDK folder for --invoke-sdk.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def export_renpy(
    kernel: Kernel,
    project: Path,
    out: Path,
    pov_mode: str,
    no_pov_switch: bool,
    no_per_scene: bool,
    testcases: bool,
    bake_weather: bool,
    dry_run: bool,
    publish: bool,
    publish_out: Path | None,
    platforms: tuple[str, ...],
    check: bool,
    renpy_path: str | None,
    invoke_sdk: bool,
    renpy_sdk: str | None,
    as_json: bool,
) -> None:
    """Export PROJECT (a project folder) to a Ren'Py 8 project under --out."""
    from comfyvn.errors import ComfyVNError

    if publish and publish_out is None:
        raise ComfyVNError("--publish needs --publish-out FILE.zip", field="publish_out", code="missing_option")
    request = ExportRequest(
        project=project,
        out=out.resolve(),
        options=ExportOptions(
            pov_mode=pov_mode,
            pov_switch=not no_pov_switch,
            per_scene=not no_per_scene,
            testcases=testcases,
            bake_weather=bake_weather,
        ),
        dry_run=dry_run,
        publish_out=publish_out.resolve() if publish and publish_out else None,
        platforms=platforms or DEFAULT_PLATFORMS,
        check=check,
        renpy=renpy_path,
        invoke_sdk=invoke_sdk,
        renpy_sdk=renpy_sdk,
    )
    if as_json:
        result = run_export(kernel, request)
        click.echo(json.dumps(result, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        with click.progressbar(length=len(STEPS), label="export", file=sys.stderr) as bar:
            result = run_export(kernel, request, progress=lambda _step: bar.update(1))
        _print_result(result)
    if result.get("check", {}).get("ok") is False:
        raise SystemExit(1)


@click.command("demo")
@click.option("--out", type=click.Path(path_type=Path), help="Where the game goes (default: the data folder).")
@click.option(
    "--project",
    "project",
    type=click.Path(exists=True, path_type=Path),
    help="Another project instead of the bundled example.",
)
@click.option("--renpy", "renpy_path", help="Ren'Py launcher or SDK folder.")
@click.option("--play", is_flag=True, help="Start the game when the pipeline succeeds.")
@click.option("--json", "as_json", is_flag=True, help="Print the step results as JSON.")
@click.pass_obj
def demo_command(
    kernel: Kernel, out: Path | None, project: Path | None, renpy_path: str | None, play: bool, as_json: bool
) -> None:
    """Take the bundled example through the pipeline: validate, playtest, export to Ren'Py, lint, play."""
    report = run_demo(
        kernel, out=out, project=project, renpy=renpy_path, echo=None if as_json else click.echo, play=play
    )
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False))
    if not report["ok"]:
        raise SystemExit(1)
