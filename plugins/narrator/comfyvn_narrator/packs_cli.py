"""``comfyvn narrator packs list|show NAME|lint FILE`` and ``comfyvn narrator pov-rewrite PROJECT --pov ID``.

Options → `packs` / `pov` → print. ``lint`` prints one problem a line and exits 1 when it found any (2 when the
file cannot be read); ``pov-rewrite`` needs ``enable_narrator`` unless ``--force`` (a local drill), and its
errors take the kernel CLI's exit codes (2 bad input, 1 a failed model call, 3 a gate's block).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from comfyvn.cli import gate_option, parse_gate_options

from . import packs, session
from .pov import pov_rewrite

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["packs_group", "pov_rewrite_command"]


def _dump(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))


@click.group("packs")
def packs_group() -> None:
    """The prompt packs: templates and answer schemas (shipped, or yours in <config>/narrator/packs)."""


@packs_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.pass_obj
def list_command(kernel: Kernel, as_json: bool) -> None:
    """List every pack: name, source (shipped or user) and what it is for."""
    listed = packs.list_packs(kernel)
    if as_json:
        _dump({"ok": True, "packs": listed})
        return
    for entry in listed:
        broken = f"  BROKEN: {entry['problems'][0]}" if entry["problems"] else ""
        click.echo(f"{entry['name']:<18} {entry['source']:<8} {entry['description']}{broken}")


@packs_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the pack as JSON.")
@click.pass_obj
def show_command(kernel: Kernel, name: str, as_json: bool) -> None:
    """Show the pack NAME: its inputs, template and answer schema."""
    pack = packs.load_pack(name, kernel=kernel)
    if as_json:
        _dump({"ok": True, "pack": pack.to_wire()})
        return
    inputs = ", ".join(f"{k}{'' if v == 'required' else '?'}" for k, v in pack.inputs.items())
    click.echo(f"{pack.name} ({pack.source}): {pack.description}")
    click.echo(f"inputs: {inputs}")
    click.echo("--- template ---")
    click.echo(pack.template.rstrip())
    click.echo("--- answer schema ---")
    click.echo(json.dumps(dict(pack.schema), indent=2, ensure_ascii=False))


@packs_group.command("lint")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print {ok, problems} as JSON.")
def lint_command(file: Path, as_json: bool) -> None:
    """Check a pack file (NAME.j2 or NAME.schema.json, with its pair beside it): the template parses and
    declares what it uses, the schema is Draft 2020-12, its examples validate. Exit 1 when problems are found."""
    problems = packs.lint(file)
    if as_json:
        _dump({"ok": not problems, "problems": problems})
    elif problems:
        for problem in problems:
            click.echo(problem)
    else:
        click.echo(f"{file.name}: ok")
    if problems:
        raise SystemExit(1)


@click.command("pov-rewrite")
@click.argument("project")
@click.option("--pov", required=True, help="The character (or POV) whose point of view the narration takes.")
@click.option("--scene", help="Only this scene (default: every scene).")
@gate_option
@click.option("--json", "as_json", is_flag=True, help="Print the whole answer as JSON.")
@click.option("--force", is_flag=True, help="Run although enable_narrator is off (a local drill).")
@click.pass_obj
def pov_rewrite_command(
    kernel: Kernel, project: str, pov: str, scene: str | None, gate: tuple[str, ...], as_json: bool, force: bool
) -> None:
    """Restyle the narration of PROJECT (a store id) from one character's point of view; choices, targets and
    speakers never change. The result is a new project version."""
    if not force:
        kernel.flags.require(session.FLAG)
    result = pov_rewrite(kernel, project, pov=pov, scene_id=scene, gate=parse_gate_options(gate) or None)
    if as_json:
        _dump({"ok": True, **result})
        return
    click.echo(
        f"{result['project']} v{result['version']}: {result['rewritten']} narration line(s) rewritten from "
        f"{result['pov']}'s point of view (adapter {result['adapter'] or 'none'})"
    )
    for entry in result["scenes"]:
        click.echo(f"  {entry['id']}: {entry['rewritten']}")
