"""``comfyvn scenario validate|playtest``: parse options -> domain/service -> print.

Exit codes: 0 fine; 1 the scenario is invalid or the trace differs from the golden one; 2 bad input
(the root group turns a `ComfyVNError` into one line). With the jobs plugin loaded, ``playtest --policy
explore`` runs as a ``scenario.explore`` job on the embedded cluster (``--no-job``: in this process).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from comfyvn.paths import atomic_write_text
from comfyvn.wire import loads

from .jobs import KIND, load_story, playtest_story
from .playtest import compare_traces
from .project import dump_json
from .service import golden_from
from .store import ProjectStore
from .validation import Issue, ValidationReport

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["load_story", "scenario_group", "story_path"]


def story_path(kernel: Kernel, ref: str) -> Path:
    """What the user named: a file or folder on disk (a scene file, a project folder or its project.json),
    else the id of a project in the store (its folder). A path on disk wins, as the shell reads it."""
    path = Path(ref)
    if path.exists():
        return path
    return ProjectStore.for_kernel(kernel).resolve(ref, field="path")


def _print_report(report: ValidationReport, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_wire(), indent=2, ensure_ascii=False))
        return
    for issue in (*report.errors, *report.warnings):
        where = f"{issue.document} " if issue.document else ""
        click.echo(f"{issue.severity}: {where}{issue.path or '/'}: {issue.message} [{issue.code}]")
    click.echo(
        f"{'valid' if report.valid else 'invalid'}: {len(report.errors)} error(s), {len(report.warnings)} warning(s)"
    )


@click.group("scenario")
def scenario_group() -> None:
    """Scenarios: validate projects and scenes, run headless playtests."""


@scenario_group.command("validate")
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print {valid, errors, warnings} as JSON.")
@click.pass_obj
def validate_cmd(kernel: Kernel, path: str, as_json: bool) -> None:
    """Validate PATH: a project folder, its project.json, a scene file, or a store project's id. Exit 1 when
    invalid."""
    _, report = load_story(story_path(kernel, path))
    _print_report(report, as_json)
    if not report.valid:
        raise click.exceptions.Exit(1)


@scenario_group.command("playtest")
@click.argument("path")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--pov", help="POV to play (default: the project's or scene's default).")
@click.option(
    "--policy",
    type=click.Choice(["random", "first", "scripted", "explore"]),
    default="random",
    show_default=True,
    help="random = the runner's seeded weighted pick.",
)
@click.option("--choice", "choices", multiple=True, help="Scripted choice id (repeatable, in order).")
@click.option("--variables", help="JSON object deep-merged over the variable defaults.")
@click.option("--max-steps", type=int, default=500, show_default=True)
@click.option("--max-depth", type=int, default=200, show_default=True, help="explore only")
@click.option(
    "--golden", type=click.Path(path_type=Path), help="Compare with this golden trace; exit 1 on a difference."
)
@click.option("--out", type=click.Path(path_type=Path), help="Write the trace (or explore report) JSON here.")
@click.option("--persist", is_flag=True, help="Also write the trace and a .log under <logs>/playtest/.")
@click.option("--no-job", is_flag=True, help="With --policy explore: run in this process, not as a job.")
@click.option("--json", "as_json", is_flag=True, help="Print the full response JSON (with the job record under job).")
@click.pass_obj
def playtest_cmd(
    kernel: Kernel,
    path: str,
    seed: int,
    pov: str | None,
    policy: str,
    choices: tuple[str, ...],
    variables: str | None,
    max_steps: int,
    max_depth: int,
    golden: Path | None,
    out: Path | None,
    persist: bool,
    no_job: bool,
    as_json: bool,
) -> None:
    """Play PATH (a project folder, its project.json, a scene file, or a store project's id) headless with a
    seed and a policy; print the digest (and the diff against --golden)."""
    target = story_path(kernel, path)
    options: dict[str, Any] = {
        "seed": seed,
        "policy": policy,
        "choices": list(choices),
        "max_steps": max_steps,
        "max_depth": max_depth,
        "persist": persist,
    }
    if pov is not None:
        options["pov"] = pov
    if variables is not None:
        options["variables"] = loads(variables, field="variables")
    record: dict[str, Any] | None = None
    outcome: dict[str, Any] | None = None
    if policy == "explore" and not no_job and _jobs_published(kernel):
        from comfyvn_jobs.cli import local_jobs, run_with_progress
        from comfyvn_jobs.results import full_result

        with local_jobs(kernel) as jobs:
            if jobs is not None:
                params = {"path": os.path.abspath(target), "playtest": options}
                record = run_with_progress(jobs, KIND, params, label="explore", show=not as_json)
                outcome = full_result(record)
    if outcome is None:
        outcome = playtest_story(kernel, target, options)
    if not outcome["valid"]:
        wire = outcome["validation"]
        _print_report(ValidationReport.of(Issue(**issue) for issue in (*wire["errors"], *wire["warnings"])), False)
        raise click.exceptions.Exit(1)
    response: dict[str, Any] = outcome["response"]
    result: dict[str, Any] = response.get("trace") or response["report"]
    if out is not None:
        atomic_write_text(out, dump_json(result))
    differs = False
    if golden is not None:
        comparison = compare_traces(result, golden_from(golden))
        response["comparison"] = comparison.to_wire()
        differs = not comparison.equal
    if as_json:
        # The response as before, plus the job's record (its result is the top level, not repeated).
        shown = response if record is None else {**response, "job": {k: v for k, v in record.items() if k != "result"}}
        click.echo(json.dumps(shown, indent=2, ensure_ascii=False))
    else:
        _summary(response, kernel.paths.logs)
        if record is not None:
            click.echo(f"job {record['id']} {record['status']} ({record['duration_sec'] or 0:.2f} s on its worker)")
    if differs:
        raise click.exceptions.Exit(1)


def _jobs_published(kernel: Kernel) -> bool:
    """Whether the jobs plugin published its hook: asked before importing it, which brings in Dask."""
    caller = getattr(kernel.plugins.pm.hook, "register_job_kinds", None)
    return caller is not None and caller.spec is not None


def _summary(response: dict[str, Any], logs: Path) -> None:
    if "report" in response:
        report = response["report"]
        click.echo(
            f"explored {report['states']} state(s) over POVs {', '.join(report['povs'])}"
            f"{' (truncated)' if report['truncated'] else ''}"
        )
        click.echo(f"visited {len(report['visited'])} node(s); unvisited: {', '.join(report['unvisited']) or 'none'}")
        for ending in report["endings"]:
            path = " > ".join(ending["path"])
            click.echo(f"  ending {ending['scene_id']}:{ending['node']} [{ending['pov']}] via {path}")
    else:
        trace = response["trace"]
        final = trace["final"]
        click.echo(
            f"{trace['outcome']} at {final['scene_id']}:{final['node']} after {final['steps']} step(s) "
            f"(seed {trace['seed']}, pov {trace['pov']}, policy {trace['policy']['kind']})"
        )
        # Every step's choice key, single "continue" links included: the path the run took.
        click.echo(f"path: {' > '.join(s['choice'] for s in trace['steps']) or '-'}")
    click.echo(f"digest: {response['digest']}")
    for key in ("trace_path", "log_path"):
        if key in response:
            # The service names them under the logs root (its answer also goes over HTTP); here, on
            # the user's own machine, the whole path is what they can open.
            click.echo(f"{key}: {logs / response[key]}")
    comparison = response.get("comparison")
    if comparison is not None:
        click.echo("golden: equal" if comparison["equal"] else comparison["text"])
