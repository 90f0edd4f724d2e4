"""``comfyvn render project`` and ``comfyvn comfyui add|list|remove|health|loras``: parse → service → print.

``render project`` draws one progress line per render job on stderr (redrawn in place on a terminal,
a line per change otherwise) and ends with a summary: rendered, cached, failed, retried. Ctrl-C
keeps what finished (it is registered and written into the project); the same command picks up where
it stopped.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

import click
from comfyvn.errors import Invalid, OperationFailed
from comfyvn_jobs.service import close_jobs

from . import service
from .batch import WHAT, render_project
from .loras import LoraStore, parse_entries
from .prompts import STYLES
from .servers import SETUP_HINT, ServerSettings

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["comfyui_group", "render_group"]

_BAR = 20


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))


class _Board:
    """One progress line per job: redrawn in place on a terminal, printed on change otherwise."""

    def __init__(self, out: TextIO, names: list[str]) -> None:
        self.out, self.names = out, names
        self.tty = out.isatty()
        self.drawn = 0
        self.marks: list[tuple[str, int]] = []

    def update(self, records: list[dict[str, Any]]) -> None:
        lines = [self._line(name, record) for name, record in zip(self.names, records, strict=True)]
        if self.tty:
            if self.drawn:
                self.out.write(f"\x1b[{self.drawn}F")
            self.out.write("".join(f"\x1b[2K{line}\n" for line in lines))
            self.drawn = len(lines)
        else:
            # A log, not a screen: a line when a job's status changes or it passes a quarter.
            marks = [(r["status"], int(float(r.get("progress") or 0) * 4)) for r in records]
            for n, line in enumerate(lines):
                if n >= len(self.marks) or self.marks[n] != marks[n]:
                    self.out.write(line + "\n")
            self.marks = marks
        self.out.flush()

    @staticmethod
    def _line(name: str, record: dict[str, Any]) -> str:
        progress = 1.0 if record["status"] == "done" else float(record.get("progress") or 0.0)
        filled = int(progress * _BAR)
        message = record.get("message") or ""
        if record["status"] == "failed":
            message = (record.get("error") or {}).get("message", "failed")
        return f"[{'#' * filled}{'-' * (_BAR - filled)}] {record['status']:<9} {name}  {str(message)[:80]}"


@click.group("render")
def render_group() -> None:
    """Render the art a story lacks on ComfyUI servers (sprites, backgrounds)."""


@render_group.command("project")
@click.argument("project")
@click.option(
    "--style", type=click.Choice(sorted(STYLES)), help="Look of the art (default: the project's, else anime)."
)
@click.option("--only", type=click.Choice([w for w in WHAT if w != "all"]), help="Only sprites or only backgrounds.")
@click.option("--force", is_flag=True, help="Render again even what is cached.")
@click.option("--plan", "plan_only", is_flag=True, help="Only say what would be rendered.")
@click.option("--json", "as_json", is_flag=True, help="No progress lines; print the summary as JSON.")
@click.pass_obj
def render_project_command(
    kernel: Kernel, project: str, style: str | None, only: str | None, force: bool, plan_only: bool, as_json: bool
) -> None:
    """Render every sprite and background PROJECT (a store project id) shows and lacks, then use them.

    Each piece is a job on the configured ComfyUI servers; the next export shows the art."""
    what = only or "all"
    if os.path.isdir(project):
        # Renders are written into the project through the store (versions, history): folders go in first.
        raise Invalid(
            f"render works on store projects: add the folder with `comfyvn projects add {project}`, then render its id",
            field="project",
        )
    plan = service.render_plan(kernel, project, what=what, style=style)
    if plan_only:
        if as_json:
            _echo_json(plan)
            return
        for row in plan["render"]:
            click.echo(f"{'cached' if row['cached'] else 'render':<8} {_name(row)}")
        for row in plan["provided"]:
            click.echo(f"provided {_name(row)}")
        cached = sum(1 for row in plan["render"] if row["cached"])
        click.echo(
            f"{len(plan['render']) - cached} to render, {cached} cached,"
            f" {len(plan['provided'])} provided by the author ({plan['style']})"
        )
        return
    if plan["render"] and not plan["configured"]:
        raise OperationFailed(SETUP_HINT, field="servers", code="comfyui_not_configured")
    names = [_name(row) for row in plan["render"]]
    board = _Board(sys.stderr, names) if not as_json and names else None
    started = time.monotonic()
    try:
        summary = render_project(
            kernel, project, what=what, style=style, force=force, on_update=board.update if board else None
        )
    except KeyboardInterrupt:
        click.echo("interrupted: finished pieces are kept; run the same command to continue", err=True)
        sys.exit(130)
    finally:
        close_jobs(kernel)  # a one-shot command owns its embedded cluster
    if as_json:
        _echo_json(summary)
    else:
        click.echo(
            f"{summary['rendered']} rendered, {summary['cached']} cached, {summary['failed']} failed, "
            f"{summary['retries']} retried on another server, {summary['provided']} provided by the author "
            f"({summary['style']}, {time.monotonic() - started:.1f} s)"
        )
        if summary["version"] is not None:
            click.echo(f"project {project} is now version {summary['version']}; export it to see the art")
        for entry in summary["entries"]:
            if entry["status"] != "done":
                error = entry.get("error") or {}
                click.echo(f"failed: {_name(entry)}: {error.get('message', entry['status'])}", err=True)
    if summary["failed"]:
        sys.exit(1)


def _name(row: dict[str, Any]) -> str:
    if row["kind"] == "sprite":
        return f"sprite {row['character']}/{row['expression']}"
    return f"background {row.get('place') or row.get('key')}"


@click.group("comfyui")
def comfyui_group() -> None:
    """ComfyUI servers: add, list, remove, health; characters' LoRAs."""


@comfyui_group.command("add")
@click.argument("url")
@click.option("--name", help="A short name (a-z0-9_-; default comfyui-N).")
@click.option("--token-stdin", is_flag=True, help="Read a bearer token (auth proxy) from stdin into the vault.")
@click.pass_obj
def add_command(kernel: Kernel, url: str, name: str | None, token_stdin: bool) -> None:
    """Add the ComfyUI server at URL (http://host:8188)."""
    token = sys.stdin.readline().strip() if token_stdin else None
    if token_stdin and not token:
        raise Invalid("no token on stdin", field="token", code="invalid_option")
    server = ServerSettings(kernel).add(url, name=name, token=token)
    click.echo(f"added {server.name} {server.url}" + (" (token in the vault)" if token else ""))


@comfyui_group.command("remove")
@click.argument("name")
@click.pass_obj
def remove_command(kernel: Kernel, name: str) -> None:
    """Remove a configured server (and its token)."""
    ServerSettings(kernel).remove(name)
    click.echo(f"removed {name}")


@comfyui_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def list_command(kernel: Kernel, as_json: bool) -> None:
    """The configured servers (environment first, then the config file)."""
    settings = ServerSettings(kernel)
    rows = [s.to_wire(has_token=settings.token(s) is not None) for s in settings.servers()]
    if as_json:
        _echo_json({"configured": bool(rows), "servers": rows})
        return
    if not rows:
        click.echo(SETUP_HINT)
        return
    for row in rows:
        click.echo(f"{row['name']:<16} {row['url']:<40} {row['source']}{'  token' if row['token'] else ''}")


@comfyui_group.command("health")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def health_command(kernel: Kernel, as_json: bool) -> None:
    """Ask every server for its /system_stats."""
    report = service.health(kernel)
    if as_json:
        _echo_json(report)
    elif not report["configured"]:
        click.echo(report["hint"])
    else:
        for row in report["servers"]:
            if row["ok"]:
                devices = ", ".join(
                    f"{d['name']} ({(d.get('vram_free') or 0) / 2**30:.1f} GiB free)" for d in row["devices"]
                )
                click.echo(f"{row['name']:<16} ok    {devices or 'no devices listed'}")
            else:
                click.echo(f"{row['name']:<16} DOWN  {row['error']}")
    if report["configured"] and not report.get("healthy"):
        sys.exit(1)


@comfyui_group.group("loras")
def loras_group() -> None:
    """A character's LoRA stack (applied to its renders)."""


@loras_group.command("show")
@click.argument("character")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def loras_show(kernel: Kernel, character: str, as_json: bool) -> None:
    """The LoRAs of CHARACTER."""
    entries = [e.to_wire() for e in LoraStore(kernel.paths.data).get(character)]
    if as_json:
        _echo_json({"character_id": character, "loras": entries})
        return
    if not entries:
        click.echo(f"{character} has no LoRAs")
    for e in entries:
        click.echo(f"{e['name']}  model {e['strength_model']:g}  clip {e['strength_clip']:g}")


@loras_group.command("set")
@click.argument("character")
@click.argument("loras", nargs=-1, metavar="NAME[:MODEL[:CLIP]]...")
@click.pass_obj
def loras_set(kernel: Kernel, character: str, loras: tuple[str, ...]) -> None:
    """Replace the LoRAs of CHARACTER (none given: clear them), e.g. `mira.safetensors:0.8:0.6`."""
    entries = []
    for n, item in enumerate(loras):
        name, *strengths = item.split(":")
        if len(strengths) > 2:
            raise Invalid(f"{item[:80]!r}: NAME[:MODEL[:CLIP]]", field=f"loras[{n}]", code="invalid_option")
        try:
            numbers = [float(s) for s in strengths]
        except ValueError:
            raise Invalid(f"{item[:80]!r}: strengths are numbers", field=f"loras[{n}]", code="invalid_option") from None
        entry: dict[str, Any] = {"name": name}
        if numbers:
            entry["strength_model"] = numbers[0]
            entry["strength_clip"] = numbers[1] if len(numbers) > 1 else numbers[0]
        entries.append(entry)
    stored = LoraStore(kernel.paths.data).set(character, parse_entries(entries))
    click.echo(f"{character}: {len(stored)} LoRA(s)")
