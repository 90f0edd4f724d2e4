"""``comfyvn demo``: the bundled example through the whole pipeline — validate, playtest, export to
Ren'Py, lint with the real engine when one is installed — then where the game is and how to play it."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from comfyvn import Kernel
from comfyvn.errors import NotFound
from comfyvn_scenario import validate_project_dir
from comfyvn_scenario.playtest import explore, run_playtest

from .engine import find_engine
from .export import ExportOptions
from .service import ExportRequest, run_export

__all__ = ["find_demo_project", "run_demo"]


def find_demo_project(env: dict[str, str] | None = None) -> Path:
    """The example project: ``COMFYVN_DEMO_PROJECT``, else ``examples/demo`` of the source tree this
    package sits in, else ``examples/demo`` below the working folder."""
    env = dict(os.environ) if env is None else env
    candidates = [Path(env["COMFYVN_DEMO_PROJECT"])] if env.get("COMFYVN_DEMO_PROJECT") else []
    here = Path(__file__).resolve()
    candidates += [parent / "examples" / "demo" for parent in here.parents[:4]]
    candidates.append(Path.cwd() / "examples" / "demo")
    for candidate in candidates:
        if (candidate / "project.json").is_file():
            return candidate
    raise NotFound(
        "the example project was not found; pass --project DIR or set COMFYVN_DEMO_PROJECT",
        field="project",
        code="demo_not_found",
    )


def run_demo(
    kernel: Kernel,
    *,
    out: Path | None = None,
    project: Path | None = None,
    renpy: str | None = None,
    echo: Callable[[str], Any] | None = None,
    play: bool = False,
) -> dict[str, Any]:
    """Run every step, printing one line each through ``echo``; returns ``{ok, steps, out, play}``."""
    say = echo or (lambda _line: None)
    source = project or find_demo_project()
    steps: dict[str, Any] = {}
    loaded, report = validate_project_dir(source)
    steps["validate"] = {"ok": report.valid, "errors": len(report.errors), "warnings": len(report.warnings)}
    say(
        f"1/4 validate  {source}: {'valid' if report.valid else 'INVALID'}, {len(report.errors)} error(s), "
        f"{len(report.warnings)} warning(s)"
    )
    if not report.valid:
        for issue in report.errors:
            say(f"    {issue.document or ''} {issue.path}: {issue.message}")
        return {"ok": False, "steps": steps, "out": None, "play": None}

    tour = explore(loaded)
    trace = run_playtest(loaded, seed=7)
    steps["playtest"] = {
        "ok": not tour.unvisited,
        "endings": len(tour.data["endings"]),
        "states": tour.data["states"],
        "unvisited": tour.unvisited,
        "seed": 7,
        "outcome": trace.data["outcome"],
        "digest": trace.digest,
    }
    say(
        f"2/4 playtest  {len(tour.data['endings'])} endings over {len(tour.data['povs'])} POV(s), "
        f"{'every node visited' if not tour.unvisited else 'unvisited: ' + ', '.join(tour.unvisited)}; "
        f"seed 7 run: {trace.data['outcome']} after {trace.data['final']['steps']} steps ({trace.digest[:12]})"
    )

    target = (out or kernel.paths.plugin_dir("renpy") / "demo" / (loaded.id or "demo")).resolve()
    result = run_export(
        kernel,
        ExportRequest(project=source, out=target, options=ExportOptions(testcases=True), check=True, renpy=renpy),
    )
    steps["export"] = {
        "ok": True,
        "out": str(target),
        "files": result["files"],
        "seconds": result["seconds"],
        "warnings": result["warnings"],
        "testcases": result["testcases"],
    }
    forks = ", ".join(f["path"] for f in result["pov"]["forks"]) or "none"
    say(f"3/4 export    {result['files']} files to {target} in {result['seconds']} s (POV forks: {forks})")

    check = result["check"]
    steps["lint"] = check
    if not check["configured"]:
        say(f"4/4 lint      skipped: {check['message']}")
    else:
        for build, lint in check["builds"].items():
            where = target.name if build == "." else f"{target.name}/{build}"  # "." is the main game
            say(
                f"4/4 lint      {where}: {'clean' if lint['ok'] else 'PROBLEMS'} "
                f"({check['engine']} Ren'Py, {lint['seconds']} s)"
            )
            for problem in lint["problems"]:
                say(f"    {problem}")
    engine = find_engine(renpy)
    how = None
    if engine is not None:
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in engine.env.items())
        how = " ".join(filter(None, [env, *map(shlex.quote, engine.command(str(target)))]))
    ok = all(step.get("ok") is not False for step in steps.values())
    say("")
    say(f"Your game is in {target}")
    if how:
        say(f"Play it:        {how}")
        say(f"Test it:        {how} test {result['testcases'][0]}" if result["testcases"] else "")
    else:
        say(
            "Play it with Ren'Py 8 (https://www.renpy.org): open that folder in the launcher, or "
            "`sudo apt-get install renpy` and run `comfyvn demo` again"
        )
    if play and ok and engine is not None:
        subprocess.run(
            engine.command(str(target)), env=engine.environment(os.environ.get("SDL_VIDEODRIVER", "x11")), check=False
        )
    return {"ok": ok, "steps": steps, "out": str(target), "play": how}
