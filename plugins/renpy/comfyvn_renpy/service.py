"""The export pipeline with the kernel: flags, the gate and contribution hooks, events, then
build → write / preview / zip → lint / distribute. CLI, HTTP routes and ``comfyvn demo`` all call
`run_export`; they only parse input and print or serialise the result."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
from comfyvn import Kernel
from comfyvn.errors import Blocked, ComfyVNError
from comfyvn.paths import atomic_write_bytes
from comfyvn.plugins import HookFailure
from comfyvn_scenario import Project, StoredProject, load_project

from .engine import Engine, find_engine
from .export import Bundle, ExportOptions, build_bundle, digest
from .output import preview_bundle, publish_zip, write_bundle
from .script import Extras

__all__ = ["BAKE_FLAG", "ExportRequest", "check_gates", "collect_contributions", "run_export"]

BAKE_FLAG = "enable_export_bake"
PLUGIN = "renpy"
DEFAULT_PLATFORMS = ("linux", "mac", "windows")


@attrs.frozen
class ExportRequest:
    """One export: source project folder, output folder, options and the optional steps after writing.

    ``source`` is the project as the store loaded it (its validation stamp spares validating it again);
    without it ``project`` is read from disk. ``relative_to`` set, the result names ``out`` and the publish
    zip relative to that folder (a store project's own), so an HTTP answer shows no server path."""

    project: Path
    out: Path
    options: ExportOptions = attrs.Factory(ExportOptions)
    dry_run: bool = False
    publish_out: Path | None = None
    platforms: tuple[str, ...] = DEFAULT_PLATFORMS
    check: bool = False
    renpy: str | None = None
    invoke_sdk: bool = False
    renpy_sdk: str | None = None
    source: StoredProject | None = None
    relative_to: Path | None = None
    #: An acknowledgement for the rating gate (the rating plugin): the token and the caller's "I acknowledge".
    rating_ack_token: str | None = None
    rating_acknowledged: bool = False

    def shown(self, path: Path) -> str:
        """``path`` as the result names it (relative to ``relative_to`` when set and below it)."""
        if self.relative_to is not None and path.is_relative_to(self.relative_to):
            return path.relative_to(self.relative_to).as_posix()
        return str(path)


def check_gates(kernel: Kernel, project: Project, options: dict[str, Any]) -> dict[str, Any]:
    """Ask every ``renpy_export_gate``; raise 423 ``export_blocked`` (CLI exit 3) when any blocks.

    A gate that crashes blocks the export (fails closed): a broken rating or policy plugin must not
    let everything through. Its error is logged with the plugin's name and listed under ``blocked_by``;
    a `ComfyVNError` it raises reaches the caller as it is. Allowing answers (``{"allow": True, ...}``)
    are kept under ``notes``; their ``warnings`` are gathered under ``warnings`` and a ``rating`` under
    ``rating`` (the export manifest's).
    """
    answers = kernel.plugins.call_each(
        "renpy_export_gate",
        on_error="report",
        propagate=(ComfyVNError,),
        project=project,
        options=options,
        kernel=kernel,
    )
    blocked = []
    notes: list[dict[str, Any]] = []
    for plugin, answer in answers:
        if answer is None:
            continue
        if isinstance(answer, HookFailure):
            blocked.append({"plugin": plugin, "reason": f"the gate failed ({type(answer.error).__name__})"})
            continue
        if isinstance(answer, dict) and answer.get("allow") is True:
            notes.append({"plugin": plugin, **{k: v for k, v in answer.items() if k != "allow"}})
            continue
        reason = answer.get("reason") if isinstance(answer, dict) else str(answer)
        blocked.append(
            {**(answer if isinstance(answer, dict) else {}), "plugin": plugin, "reason": str(reason or "blocked")}
        )
    if blocked:
        reasons = "; ".join(f"{b['plugin']}: {b['reason']}" for b in blocked)
        raise Blocked(
            f"export blocked by {reasons}",
            field="project",
            code="export_blocked",
            details={"blocked_by": blocked},
        )
    gate: dict[str, Any] = {"allowed": True, "checked": len(answers)}
    if notes:
        gate["notes"] = notes
        warnings = [str(w) for note in notes for w in note.get("warnings") or () if isinstance(w, str)]
        if warnings:
            gate["warnings"] = warnings
        rating = next((note["rating"] for note in notes if isinstance(note.get("rating"), dict)), None)
        if rating is not None:
            gate["rating"] = rating
    return gate


def collect_contributions(
    kernel: Kernel, project: Project, options: dict[str, Any]
) -> tuple[Extras, dict[str, bytes], list[str]]:
    """Merge every ``renpy_export_contributions`` answer, in hook call order (the last-registered plugin
    first). A contributor that crashes is logged with its name and left out, the others still contribute;
    one that raises `ComfyVNError` (the project is wrong) fails the export naming the field."""
    scene_lines: dict[str, list[str]] = {}
    node_lines: dict[str, list[str]] = {}
    files: dict[str, bytes] = {}
    contributors: list[str] = []
    for plugin, answer in kernel.plugins.call_each(
        "renpy_export_contributions", on_error="log", propagate=(ComfyVNError,), project=project, options=options
    ):
        if answer is None:
            continue
        if not isinstance(answer, dict):
            raise ComfyVNError(
                f"plugin {plugin!r} contributed {type(answer).__name__}, not an object",
                field="contributions",
                code="invalid_contribution",
            )
        contributors.append(plugin)
        for key, target in (("scene_lines", scene_lines), ("node_lines", node_lines)):
            for where, lines in (answer.get(key) or {}).items():
                if not isinstance(lines, list) or not all(isinstance(x, str) and "\n" not in x for x in lines):
                    raise ComfyVNError(
                        f"plugin {plugin!r}: {key}[{where!r}] must be a list of one-line strings",
                        field=f"contributions.{key}",
                        code="invalid_contribution",
                    )
                target.setdefault(str(where), []).extend(lines)
        for path, data in (answer.get("files") or {}).items():
            files[str(path)] = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return Extras(scene_lines, node_lines), files, contributors


def _generated_at() -> str | None:
    # Reproducible by default: a timestamp only when the build asks for one (SOURCE_DATE_EPOCH convention).
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return None


def _lint_all(engine: Engine, out: Path, bundle: Bundle) -> dict[str, Any]:
    builds = ["."] + [fork["path"] for fork in bundle.export_manifest["pov"]["forks"]]
    results = {build: engine.lint(out / build) for build in builds}
    return {
        "engine": engine.source,
        "command": list(engine.argv),
        "configured": True,
        "ok": all(r.ok for r in results.values()),
        "builds": {build: r.to_wire() for build, r in results.items()},
    }


def event_out(kernel: Kernel, out: Path) -> str:
    """``out`` as export events name it: relative to the data root when below it (a store project's
    ``projects/<id>/exports/renpy``), else only the folder's name.

    Events reach webhooks and other machines; the server's own layout is none of their business.
    """
    where = out.resolve()
    data = kernel.paths.data.resolve()
    if where.is_relative_to(data):
        return where.relative_to(data).as_posix()
    return where.name


def resolve_asset(kernel: Kernel, ref: str) -> dict[str, Any] | None:
    """The first ``renpy_resolve_asset`` answer for ``ref`` (an ``asset:<uid>`` reference), or None."""
    for _plugin, answer in kernel.plugins.call_each("renpy_resolve_asset", on_error="log", ref=ref, kernel=kernel):
        if isinstance(answer, dict):
            return answer
    return None


def run_export(kernel: Kernel, request: ExportRequest, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run one export end to end and return its JSON-ready result (see docs/renpy.md)."""
    note = progress or (lambda _step: None)
    options = request.options
    if options.bake_weather:
        kernel.flags.require(BAKE_FLAG)
    note("load")
    project = request.source.project if request.source is not None else load_project(request.project)
    hook_options = {
        **options.to_wire(),
        "dry_run": request.dry_run,
        "publish": request.publish_out is not None,
        "rating_ack_token": request.rating_ack_token,
        "rating_acknowledged": request.rating_acknowledged,
    }
    gate = check_gates(kernel, project, hook_options)
    extras, extra_files, contributors = collect_contributions(kernel, project, hook_options)
    kernel.events.emit(
        "on_export_started",
        {
            "project": project.id,
            "out": event_out(kernel, request.out),
            "dry_run": request.dry_run,
            "pov_mode": options.pov_mode,
        },
    )
    started = time.perf_counter()
    note("build")
    bundle = build_bundle(
        project,
        options,
        extras=extras,
        extra_files=extra_files,
        generated_at=_generated_at(),
        gate=gate,
        weather_bake={"requested": options.bake_weather, "contributors": contributors},
        report=request.source.report if request.source is not None else None,
        resolve_asset=lambda ref: resolve_asset(kernel, ref),
    )
    result: dict[str, Any] = {
        "ok": True,
        "project": project.id,
        "out": request.shown(request.out),
        "dry_run": request.dry_run,
        "options": options.to_wire(),
        "warnings": [*gate.get("warnings", ()), *bundle.warnings],
        "missing_assets": bundle.export_manifest["missing_assets"],
        "pov": bundle.export_manifest["pov"],
        "files": len(bundle.files),
        "testcases": [c.name for c in bundle.testcases],
    }
    if request.dry_run:
        note("preview")
        result["preview"] = preview_bundle(bundle, request.out)
    else:
        note("write")
        result["write"] = write_bundle(bundle, request.out)
    if request.publish_out is not None:
        note("publish")
        data, manifest = publish_zip(bundle, request.platforms, version=str(project.meta.get("version") or "1.0"))
        if not request.dry_run:
            atomic_write_bytes(request.publish_out, data, mode=0o644)
        result["publish"] = {
            "path": request.shown(request.publish_out),
            "sha256": digest(data),
            "bytes": len(data),
            "written": not request.dry_run,
            "platforms": manifest["platforms"],
            "entries": len(manifest["files"]) + 1,
        }
    result["seconds"] = round(time.perf_counter() - started, 3)
    if request.check and not request.dry_run:
        note("lint")
        engine = find_engine(request.renpy)
        result["check"] = (
            _lint_all(engine, request.out, bundle)
            if engine is not None
            else {
                "configured": False,
                "ok": None,
                "message": "no Ren'Py engine found (--renpy, COMFYVN_RENPY_SDK, /usr/games/renpy): lint skipped",
            }
        )
    if request.invoke_sdk and not request.dry_run:
        note("distribute")
        engine = find_engine(request.renpy_sdk or request.renpy)
        result["sdk"] = (
            engine.distribute(request.out, request.out.parent / f"{request.out.name}-dists").to_wire()
            if engine is not None
            else {"configured": False, "message": "no Ren'Py SDK found"}
        )
    kernel.events.emit(
        "on_export_completed",
        {
            "project": project.id,
            "out": event_out(kernel, request.out),
            "dry_run": request.dry_run,
            "files": len(bundle.files),
            "warnings": len(bundle.warnings),
            "missing_assets": sum(len(v) for v in bundle.export_manifest["missing_assets"].values()),
            "published": request.publish_out is not None,
        },
    )
    return result
