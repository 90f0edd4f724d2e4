"""``comfyvn projects list|show|add|remove|export-zip``: the project store (``<data>/projects``) from a shell.

Exit codes: 0 fine; 2 bad input, an unknown project, a stale ``--if-match`` or an invalid project (the root
group turns a `ComfyVNError` into one line).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from comfyvn.errors import Invalid, NotFound, TooLarge
from comfyvn.paths import atomic_write_bytes

from .archive import MAX_ZIP_BYTES
from .project import PROJECT_FILE
from .store import ProjectStore, StoredProject, parse_if_match

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["projects_group"]

_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _out(as_json: bool, data: Any, lines: Iterable[str]) -> None:
    """``data`` as JSON for scripts, or ``lines`` for people."""
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) if as_json else "\n".join(lines)
    if text:
        click.echo(text)


def _described(stored: StoredProject) -> dict[str, Any]:
    return {**stored.summary(), "validated": stored.validated}


def _one_line(summary: dict[str, Any]) -> str:
    scenes = len(summary["scenes"])
    return f"{summary['id']} (version {summary['version']}, {scenes} scene(s), {summary['nodes']} node(s))"


@click.group("projects")
def projects_group() -> None:
    """The project store: every project under <data>/projects, with versions and scene history."""


@projects_group.command("list")
@_json_option
@click.pass_obj
def list_cmd(kernel: Kernel, as_json: bool) -> None:
    """List the stored projects: id, version, scenes, nodes and title."""
    rows = ProjectStore.for_kernel(kernel).list_projects()
    width = max([len(r["id"]) for r in rows] + [2])
    header = f"{'ID':<{width}}  {'VERSION':>7}  {'SCENES':>6}  {'NODES':>6}  TITLE"
    _out(
        as_json,
        {"projects": rows},
        [
            header,
            *(
                f"{r['id']:<{width}}  {r['version']:>7}  {len(r['scenes']):>6}  {r['nodes']:>6}  {r['title']}"
                for r in rows
            ),
        ]
        if rows
        else ["no projects in the store (add one with `comfyvn projects add DIR_OR_ZIP`)"],
    )


@projects_group.command("show")
@click.argument("project_id", metavar="ID")
@_json_option
@click.pass_obj
def show_cmd(kernel: Kernel, project_id: str, as_json: bool) -> None:
    """Show one project: versions, scenes, whether its files are the validated ones, and its exports."""
    store = ProjectStore.for_kernel(kernel)
    stored = store.load(project_id)
    exports = store.exports(project_id)
    summary = _described(stored)
    lines = [
        f"{stored.id}: {stored.project.title or '(untitled)'}",
        f"version   {stored.version}",
        f"validated {'yes' if stored.validated else 'no (edited outside the store, or a newer validator)'}",
        f"updated   {stored.updated_at or '-'}",
        f"scenes    {len(stored.project.scenes)}",
        *(f"  {s['id']:<24} v{s['version']:<5} {s['nodes']} node(s)" for s in summary["scenes"]),
        f"exports   {len(exports)}",
        *(f"  {e['name']:<24} {e['kind']:<6} {e['files']} file(s), {e['bytes']} bytes" for e in exports),
    ]
    _out(as_json, {**summary, "project": stored.project.document(), "exports": exports}, lines)


@projects_group.command("add")
@click.argument("source", metavar="DIR_OR_ZIP", type=click.Path(path_type=Path))
@click.option("--id", "project_id", help="The id to add it under (default: from the project; taken ids get -2, -3…).")
@_json_option
@click.pass_obj
def add_cmd(kernel: Kernel, source: Path, project_id: str | None, as_json: bool) -> None:
    """Add a project folder (or its project.json) or a project zip to the store; it is validated first."""
    store = ProjectStore.for_kernel(kernel)
    if source.is_dir() or source.name == PROJECT_FILE:
        stored = store.create_from_folder(source, project_id=project_id)
    elif source.is_file():
        if source.stat().st_size > MAX_ZIP_BYTES:
            raise TooLarge(f"the zip is larger than {MAX_ZIP_BYTES // 2**20} MiB", field="source", code="zip_too_large")
        stored = store.create_from_zip(source.read_bytes(), project_id=project_id)
    else:
        raise NotFound(f"no project folder or zip at {source}", field="source", code="not_found")
    _out(as_json, _described(stored), [f"added {_one_line(stored.summary())}"])


@projects_group.command("remove")
@click.argument("project_id", metavar="ID")
@click.option("--if-match", "if_match", metavar="VERSION", help="Remove only while the project is at this version.")
@_json_option
@click.pass_obj
def remove_cmd(kernel: Kernel, project_id: str, if_match: str | None, as_json: bool) -> None:
    """Delete a project with its history and exports."""
    expect = parse_if_match(if_match, field="--if-match")
    version = ProjectStore.for_kernel(kernel).delete(project_id, if_match=expect)
    _out(
        as_json,
        {"id": project_id, "deleted": True, "version": version},
        [f"removed {project_id} (it was at version {version})"],
    )


@projects_group.command("export-zip")
@click.argument("project_id", metavar="ID")
@click.option(
    "-o",
    "--out",
    "--output",
    "output",
    type=click.Path(),  # kept as typed: Path() would drop the trailing slash that marks a folder
    help="Where to write the zip: a file, a folder (existing, or ending in / below an existing one) for ID.zip "
    "in it, or - for stdout (default ./ID.zip).",
)
@click.option("--force", is_flag=True, help="Replace an existing file at the destination.")
@_json_option
@click.pass_obj
def export_zip_cmd(kernel: Kernel, project_id: str, output: str | None, force: bool, as_json: bool) -> None:
    """Write the project as a zip (what `projects add` and POST /api/projects take back)."""
    data, version = ProjectStore.for_kernel(kernel).export_zip_versioned(project_id)
    if output == "-":
        if as_json:
            raise Invalid("--json cannot go with -o - (the zip is the output)", field="--json", code="invalid_option")
        stdout = sys.stdout.buffer  # the zip's bytes, not text (click's get_binary_stream is deprecated)
        stdout.write(data)
        stdout.flush()
        return
    target = _zip_target(project_id, output, force)
    atomic_write_bytes(target, data)
    _out(
        as_json,
        {"id": project_id, "version": version, "path": str(target), "bytes": len(data)},
        [f"wrote {target} ({len(data)} bytes, version {version})"],
    )


def _zip_target(project_id: str, output: str | None, force: bool) -> Path:
    """Where the zip goes; refuses (exit 2) a destination whose folder is missing, or an existing file
    without ``--force``: a typo must not build a directory tree, nor replace an unrelated file."""
    target = Path(output) if output is not None else Path(f"{project_id}.zip")
    if target.is_dir() or (output is not None and output.endswith(("/", os.sep))):
        folder = target
        target = target / f"{project_id}.zip"
        if not folder.is_dir():
            # A trailing slash names one new folder; its parent must already be there.
            if not folder.parent.is_dir():
                raise Invalid(f"no folder {folder.parent} to create {folder.name}/ in", field="--out")
            folder.mkdir()
    elif not target.parent.is_dir():
        raise Invalid(f"no folder {target.parent} for {target.name}", field="--out")
    if target.is_dir():
        raise Invalid(f"{target} is a folder", field="--out")
    if target.exists() and not force:
        raise Invalid(f"{target} already exists (--force replaces it)", field="--out", code="output_exists")
    return target
