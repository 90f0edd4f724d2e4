"""``comfyvn export renpy``, ``comfyvn demo`` and ``comfyvn renpy play-check``: parse options -> service -> print.

Exit codes: 0 fine; 1 the real engine's lint (``--check``) or a demo step failed; 2 bad input;
3 an export gate blocked the export (the root group turns `ComfyVNError` into one line and its code).
With the jobs plugin loaded, ``export renpy`` runs as a ``renpy.export`` job on the embedded cluster (its
progress bar fed by the job's progress); ``--no-job`` runs it in this process.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .demo import run_demo
from .export import POV_MODES
from .fonts import configured_font
from .jobs import KIND, check_export_params, export_or_fail, request_from_params
from .service import DEFAULT_PLATFORMS

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["demo_command", "export_group", "renpy_group"]
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
        game = Path(result["out"]).name
        for build, lint in (check.get("builds") or {}).items():
            state = "clean" if lint["ok"] else f"{len(lint['problems'])} problem(s)"
            # Builds are keyed by their folder under out ("." the main game): named here by the game folder.
            where = game if build == "." else f"{game}/{build}"
            click.echo(f"lint {where}: {state} ({lint['seconds']} s)")
            for problem in lint["problems"]:
                click.echo(f"  {problem}")
    if "sdk" in result:
        click.echo(f"sdk distribute: exit {result['sdk'].get('returncode')}")


def _resolution_option(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[int, int]:
    """``--resolution WxH`` checked before anything runs: a bad value is a usage error (exit 2)."""
    from comfyvn.errors import ComfyVNError

    from .gui import parse_resolution

    try:
        return parse_resolution(value)
    except ComfyVNError as exc:
        raise click.BadParameter(str(exc)) from None


def _source(kernel: Kernel, ref: str, out: Path | None, publish_out: Path | None, publish: bool) -> dict[str, Any]:
    """What PROJECT names, as job params: a project folder (or its project.json) on disk (``project_dir``),
    else the id of a store project (``project_id``; the export loads it through the store). A store project's
    outputs default to its own exports/ (the game in exports/renpy, the publish zip in exports/<id>.zip)."""
    from comfyvn.errors import ComfyVNError
    from comfyvn_scenario import ProjectStore

    from .routes import RENPY_EXPORT

    store = ProjectStore.for_kernel(kernel)
    folder = store.resolve(ref)  # a folder on disk wins over a store id, as the shell reads it
    if Path(ref).is_dir() or Path(ref).name == "project.json":
        if out is None:
            raise ComfyVNError(
                "--out is required when PROJECT is a folder (a store project's default is its exports/renpy)",
                field="out",
                code="missing_option",
            )
        if publish and publish_out is None:
            raise ComfyVNError("--publish needs --publish-out FILE.zip", field="publish_out", code="missing_option")
        return {"project_dir": os.path.abspath(folder), "out": out, "publish_out": publish_out}
    project_id = folder.name  # the store resolved an id to its own folder
    return {
        "project_id": project_id,
        "out": out if out is not None else store.exports_dir(project_id, RENPY_EXPORT),
        "publish_out": publish_out if publish_out is not None else store.exports_dir(project_id, f"{project_id}.zip"),
    }


def _jobs_published(kernel: Kernel) -> bool:
    """Whether the jobs plugin published its hook: asked before importing it, which brings in Dask."""
    caller = getattr(kernel.plugins.pm.hook, "register_job_kinds", None)
    return caller is not None and caller.spec is not None


@export_group.command("renpy")
@click.argument("project")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Ren'Py project folder to write (default for a store project: its exports/renpy).",
)
@click.option("--pov-mode", type=click.Choice(POV_MODES), default="auto", show_default=True)
@click.option("--no-pov-switch", is_flag=True, help="No in-game Switch POV menu in the master build.")
@click.option("--no-per-scene", is_flag=True, help="All scenes in game/script.rpy instead of one file each.")
@click.option("--testcases", is_flag=True, help="Emit game/tests.rpy derived from playtest traces.")
@click.option("--bake-weather", is_flag=True, help="Ask contribution plugins (weather) to bake their lines.")
@click.option(
    "--font",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A font for characters Ren'Py's default font lacks (CJK, Thai...); else renpy.font in comfyvn.json, "
    "else an installed font.",
)
@click.option(
    "--resolution",
    default="1920x1080",
    show_default=True,
    callback=_resolution_option,
    help="The game's window, WxH (1280x720 at least).",
)
@click.option("--dry-run", is_flag=True, help="Show new/modified/unchanged files with diffs; write nothing.")
@click.option(
    "--publish",
    is_flag=True,
    help="Also write a deterministic zip (--publish-out; a store project's exports/<id>.zip).",
)
@click.option("--publish-out", type=click.Path(path_type=Path), help="Where the publish zip goes.")
@click.option("--platform", "platforms", multiple=True, help="Platform folder in the zip (repeatable).")
@click.option("--check", is_flag=True, help="Lint the result with the real Ren'Py engine when one is found.")
@click.option("--renpy", "renpy_path", help="Ren'Py launcher or SDK folder for --check.")
@click.option("--invoke-sdk", is_flag=True, help="Run the SDK's distribute step after exporting.")
@click.option("--renpy-sdk", help="Ren'Py SDK folder for --invoke-sdk.")
@click.option(
    "--rating-ack-token", help="An acknowledged rating token (`comfyvn rating ack TOKEN`) for the rating gate."
)
@click.option("--rating-acknowledged", is_flag=True, help="With --rating-ack-token: pass the rating gate.")
@click.option("--no-job", is_flag=True, help="Run in this process, not as a renpy.export job.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (with the job record under job).")
@click.pass_obj
def export_renpy(
    kernel: Kernel,
    project: str,
    out: Path | None,
    pov_mode: str,
    no_pov_switch: bool,
    no_per_scene: bool,
    testcases: bool,
    bake_weather: bool,
    font: Path | None,
    resolution: tuple[int, int],
    dry_run: bool,
    publish: bool,
    publish_out: Path | None,
    platforms: tuple[str, ...],
    check: bool,
    renpy_path: str | None,
    invoke_sdk: bool,
    renpy_sdk: str | None,
    rating_ack_token: str | None,
    rating_acknowledged: bool,
    no_job: bool,
    as_json: bool,
) -> None:
    """Export PROJECT (a project folder, or the id of a project in the store) to a Ren'Py 8 project under --out."""
    source = _source(kernel, project, out, publish_out, publish)
    publish_to: Path | None = source["publish_out"]
    font_file = str(font) if font is not None else configured_font(kernel.config)
    params: dict[str, Any] = {
        **{key: source[key] for key in ("project_id", "project_dir") if key in source},
        "out": str(Path(source["out"]).resolve()),
        "publish_out": str(publish_to.resolve()) if publish and publish_to is not None else None,
        "pov_mode": pov_mode,
        "pov_switch": not no_pov_switch,
        "per_scene": not no_per_scene,
        "testcases": testcases,
        "bake_weather": bake_weather,
        "font": os.path.abspath(font_file) if font_file is not None else None,
        "resolution": f"{resolution[0]}x{resolution[1]}",
        "dry_run": dry_run,
        "platforms": list(platforms or DEFAULT_PLATFORMS),
        "check": check,
        "renpy": renpy_path,
        "invoke_sdk": invoke_sdk,
        "renpy_sdk": renpy_sdk,
        "rating_ack": rating_ack_token,
        "rating_acknowledged": rating_acknowledged,
    }
    record: dict[str, Any] | None = None
    if no_job or not _jobs_published(kernel):
        result = _export_here(kernel, params, as_json)
    else:
        from comfyvn_jobs.cli import local_jobs, run_with_progress
        from comfyvn_jobs.results import full_result

        with local_jobs(kernel) as jobs:
            if jobs is None:
                result = _export_here(kernel, params, as_json)
            else:
                record = run_with_progress(jobs, KIND, params, label=_progress_label(params), show=not as_json)
                result = full_result(record)
    if as_json:
        # The result as before, plus the job's record (its result is the top level, not repeated).
        shown = result if record is None else {**result, "job": {k: v for k, v in record.items() if k != "result"}}
        click.echo(json.dumps(shown, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        _print_result(result)
        if record is not None:
            click.echo(f"job {record['id']} {record['status']} ({record['duration_sec'] or 0:.2f} s on its worker)")
    _fail_loudly(result)


def _export_here(kernel: Kernel, params: dict[str, Any], as_json: bool) -> dict[str, Any]:
    """The export in this process (no jobs plugin, a configured scheduler, or ``--no-job``)."""
    request = request_from_params(kernel, check_export_params(params))
    if as_json:
        return export_or_fail(kernel, request)
    with click.progressbar(length=len(STEPS), label=_progress_label(params), file=sys.stderr) as bar:
        return export_or_fail(kernel, request, progress=lambda _step: bar.update(1))


def _progress_label(params: dict[str, Any]) -> str:
    """The progress bar's label, which is all a non-terminal stderr shows of it: what goes where."""
    name = params.get("project_id") or Path(str(params.get("project_dir") or "")).name or "project"
    verb = "previewing the export of" if params.get("dry_run") else "exporting"
    return f"{verb} {name} to {Path(params['out']).name}/"


def _fail_loudly(result: dict[str, Any]) -> None:
    """Exit 1 with one line when an asked-for engine step did not run or did not succeed."""
    from comfyvn.errors import OperationFailed

    check, sdk = result.get("check"), result.get("sdk")
    if check is not None and not check.get("configured", True):
        raise OperationFailed(
            "no Ren'Py engine found (--renpy, COMFYVN_RENPY_SDK, /usr/games/renpy): --check could not lint",
            field="renpy",
            code="engine_missing",
        )
    if check is not None and check.get("ok") is False:
        problems = sum(len(lint["problems"]) for lint in (check.get("builds") or {}).values())
        raise OperationFailed(f"Ren'Py lint failed ({problems} problem(s))", field="check", code="lint_failed")
    if sdk is not None and not sdk.get("configured", True):
        raise OperationFailed(
            "no Ren'Py SDK found (--renpy-sdk, --renpy, COMFYVN_RENPY_SDK)", field="renpy_sdk", code="sdk_missing"
        )
    if sdk is not None and sdk.get("returncode") != 0:
        why = "timed out" if sdk.get("timed_out") else f"exit {sdk.get('returncode')}"
        last = (sdk.get("stderr") or "").strip().splitlines()[-1:]
        raise OperationFailed(
            f"the Ren'Py SDK's distribute step failed ({why})" + (f": {last[0][:200]}" if last else ""),
            field="renpy_sdk",
            code="distribute_failed",
        )


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


@click.group("renpy")
def renpy_group() -> None:
    """Ren'Py games: check an exported game as a player plays it."""


def _choice(value: str) -> int | str:
    return int(value) if value.isdigit() else value


@renpy_group.command("play-check")
@click.argument("game_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--screenshots", type=click.Path(file_okay=False, path_type=Path), help="Save screenshots here.")
@click.option("--line-shots", type=click.IntRange(0, 500), default=0, help="Also screenshot the first N lines.")
@click.option("--explore", is_flag=True, help="Play again from the title until every choice was taken once.")
@click.option("--choose", "path", multiple=True, help="Choice for the next menu: index (0-based) or text; repeatable.")
@click.option("--timeout", type=click.IntRange(20, 3600), default=180, show_default=True, help="Seconds per run.")
@click.option("--records", type=click.Path(dir_okay=False, path_type=Path), help="Keep the raw JSON-lines records.")
@click.option(
    "--settle",
    type=click.FloatRange(0, 60),
    default=0.0,
    help="Seconds each interaction stays on screen before it is checked (animations finish first).",
)
@click.option("--renpy", "renpy_path", help="Ren'Py launcher or SDK folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def play_check_command(
    game_dir: Path,
    screenshots: Path | None,
    line_shots: int,
    explore: bool,
    path: tuple[str, ...],
    timeout: int,
    records: Path | None,
    settle: float,
    renpy_path: str | None,
    as_json: bool,
) -> None:
    """Play GAME_DIR (a Ren'Py project) offscreen in the real engine and check what a player sees.

    Exit 0 when every check passes, 1 when one fails, 2 for bad input.
    """
    from .engine import find_engine
    from .playcheck import CHECKS, run_play_check

    report = run_play_check(
        game_dir,
        engine=find_engine(renpy_path),
        screenshots=screenshots,
        line_shots=line_shots,
        mode="explore" if explore else "first",
        path=[_choice(p) for p in path],
        timeout=timeout,
        keep_records=records,
        settle=settle,
    )
    wire = report.to_wire()
    if as_json:
        click.echo(json.dumps(wire, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        click.echo(
            f"played {wire['lines']} line(s), {wire['menus']} menu(s) in {wire['playthroughs']} playthrough(s); "
            f"ended: {wire['finish'] or 'no end'} ({wire['seconds']} s)"
        )
        for name in CHECKS:
            check = wire["checks"][name]
            click.echo(
                f"{'ok  ' if check['ok'] else 'FAIL'} {name}" + ("" if check["ok"] else f" ({check['findings']})")
            )
        for finding in wire["findings"][:40]:
            where = f"{finding['where']} " if finding["where"] else ""
            text = f": {finding['text']!r}" if finding["text"] else ""
            click.echo(f"  {finding['check']}: {where}{finding['message']}{text}")
        if wire["findings_total"] > 40:
            click.echo(f"  … {wire['findings_total'] - 40} more (--json lists {len(wire['findings'])})")
        for name, shot in wire["screenshots"].items():
            click.echo(f"screenshot {name}: {shot}")
        if wire["output"]:
            click.echo(wire["output"], err=True)
    if not report.ok:
        raise SystemExit(1)
