"""``renpy.export`` as a job of the jobs plugin: JSON params in, the export's result out, progress from the
steps of `run_export`.

A *local* kind: its params name files of this machine (the project folder, ``out``, the font) as the CLI
was given them, so the jobs plugin runs it only on the embedded cluster and refuses it over HTTP (the HTTP
export is ``POST /api/export/renpy``, which names store projects only). ``comfyvn export renpy`` builds
the params and submits them; ``--no-job`` runs the very same params in-process through `request_from_params`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from comfyvn.errors import Invalid, OperationFailed
from comfyvn.wire import parse_request
from comfyvn_scenario import ProjectStore

from .export import ExportOptions
from .service import DEFAULT_PLATFORMS, ExportRequest, run_export

if TYPE_CHECKING:
    from comfyvn import Kernel
    from comfyvn_jobs import JobContext, KindRegistrar

__all__ = [
    "KIND",
    "ExportJobParams",
    "check_export_params",
    "export_or_fail",
    "register_kinds",
    "request_from_params",
    "run_export_job",
]

KIND = "renpy.export"
# Rough shares of an export's time per step, for the progress bar (building and linting dominate).
STEP_WEIGHTS = {"load": 1, "build": 5, "preview": 2, "write": 3, "publish": 2, "lint": 6, "distribute": 6}
_PATHS = ("out", "project_dir", "publish_out", "font")


@attrs.frozen
class ExportJobParams:
    """The params of a ``renpy.export`` job: the `ExportRequest` as JSON. Exactly one of ``project_id`` (a
    store project) and ``project_dir`` (a folder); every path absolute."""

    out: str
    project_id: str | None = None
    project_dir: str | None = None
    publish_out: str | None = None
    pov_mode: str = "auto"
    pov_switch: bool = True
    per_scene: bool = True
    testcases: bool = False
    bake_weather: bool = False
    font: str | None = None
    resolution: str = "1920x1080"
    dry_run: bool = False
    platforms: tuple[str, ...] = DEFAULT_PLATFORMS
    check: bool = False
    renpy: str | None = None
    invoke_sdk: bool = False
    renpy_sdk: str | None = None
    # Job params whose keys say "token" are refused as credentials; the gate's acknowledgement is not one
    # (the gate answers it in its refusal), so it travels under this name.
    rating_ack: str | None = None
    rating_acknowledged: bool = False

    def options(self) -> ExportOptions:
        return ExportOptions(
            pov_mode=self.pov_mode,
            pov_switch=self.pov_switch,
            per_scene=self.per_scene,
            testcases=self.testcases,
            bake_weather=self.bake_weather,
            font=self.font,
            resolution=self.resolution,
        )


def _parse(params: Mapping[str, Any]) -> ExportJobParams:
    parsed = parse_request(dict(params), ExportJobParams, code="invalid_params")
    if (parsed.project_id is None) == (parsed.project_dir is None):
        raise Invalid("name the project: project_id (a store project) or project_dir (a folder)", field="project_id")
    for name in _PATHS:
        value = getattr(parsed, name)
        if value is not None and not os.path.isabs(value):
            raise Invalid(f"{name} must be an absolute path", field=name, code="invalid_params")
    if not all(p.isidentifier() for p in parsed.platforms):
        raise Invalid('platforms must be names like "linux"', field="platforms", code="invalid_params")
    parsed.options()  # the POV mode and the resolution: `ComfyVNError` naming the field
    return parsed


def check_export_params(params: dict[str, Any]) -> dict[str, Any]:
    """The jobs plugin's ``check``: the params as they are stored and sent, or `Invalid` naming the field."""
    return attrs.asdict(_parse(params))


def request_from_params(kernel: Kernel, params: Mapping[str, Any]) -> ExportRequest:
    """The `ExportRequest` the params describe; a store project is loaded through the store (404 when gone,
    422 when invalid), so its validation stamp spares validating it again."""
    parsed = _parse(params)
    if parsed.project_id is not None:
        stored = ProjectStore.for_kernel(kernel).load(parsed.project_id)
        project, source = stored.path, stored
    else:
        project, source = Path(str(parsed.project_dir)), None
    return ExportRequest(
        project=project,
        source=source,
        out=Path(parsed.out),
        options=parsed.options(),
        dry_run=parsed.dry_run,
        publish_out=None if parsed.publish_out is None else Path(parsed.publish_out),
        platforms=parsed.platforms,
        check=parsed.check,
        renpy=parsed.renpy,
        invoke_sdk=parsed.invoke_sdk,
        renpy_sdk=parsed.renpy_sdk,
        rating_ack_token=parsed.rating_ack,
        rating_acknowledged=parsed.rating_acknowledged,
    )


def export_or_fail(
    kernel: Kernel, request: ExportRequest, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """`run_export`, with an output the machine refused (unwritable ``out``, a full disk) as `OperationFailed`."""
    try:
        return run_export(kernel, request, progress=progress)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        raise OperationFailed(f"cannot write {where}{exc.strerror or exc}", field="out", code="write_failed") from None


def planned_steps(request: ExportRequest) -> list[str]:
    """The steps `run_export` will report for ``request``, in order."""
    steps = ["load", "build", "preview" if request.dry_run else "write"]
    if request.publish_out is not None:
        steps.append("publish")
    if request.check and not request.dry_run:
        steps.append("lint")
    if request.invoke_sdk and not request.dry_run:
        steps.append("distribute")
    return steps


def step_progress(request: ExportRequest, report: Callable[[float, str], None]) -> Callable[[str], None]:
    """A ``progress`` callback for `run_export` that reports the share of the work done before each step."""
    steps = planned_steps(request)
    total = sum(STEP_WEIGHTS[s] for s in steps)
    starts, done = {}, 0
    for step in steps:
        starts[step] = done / total
        done += STEP_WEIGHTS[step]
    last = [0.0]

    def note(step: str) -> None:
        # A step the plan does not know (a newer run_export) keeps the bar where it is.
        last[0] = max(last[0], starts.get(step, last[0]))
        report(last[0], step)

    return note


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    """What the record keeps of a result too big for it (a dry run's diffs, a long lint report)."""
    check = result.get("check")
    return {
        "ok": result["ok"],
        "project": result["project"],
        "out": result["out"],
        "dry_run": result["dry_run"],
        "files": result["files"],
        "warning_count": len(result["warnings"]),
        "seconds": result["seconds"],
        "check_ok": check.get("ok") if isinstance(check, dict) else None,
    }


def run_export_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """The body of a ``renpy.export`` job: the export, reporting progress per step. Idempotent: an export
    writes the same files again (atomically), so a rerun after a lost worker does no harm."""
    from comfyvn_jobs.results import bounded_result  # runs only where the jobs plugin is (it brings Dask)

    request = request_from_params(ctx.kernel, params)
    result = export_or_fail(ctx.kernel, request, progress=step_progress(request, ctx.report))
    ctx.report(1.0, "done")
    return bounded_result(ctx, result, _summary)


def register_kinds(register: KindRegistrar) -> None:
    """The renpy plugin's job kinds."""
    register(
        KIND,
        run_export_job,
        "Export a project (a store id or a folder of this machine) to a Ren'Py game, as `comfyvn export renpy`.",
        check=check_export_params,
        local=True,
    )
