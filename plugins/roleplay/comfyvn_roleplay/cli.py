"""``comfyvn import sillytavern|text|card``: parse options, call the service, print a summary or JSON.

With ``--out DIR`` the project is written to that folder; without it the project goes to the project
store (``<data>/projects/<id>``) and its id, which every other command accepts, is printed. With the jobs
plugin loaded, ``import sillytavern`` runs as a ``roleplay.import`` job on the embedded cluster (the bar fed
by its progress, ``--json`` adding the job record); ``--no-job`` runs it in this process."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from comfyvn.errors import Invalid

from .editing import sample_llm
from .importer import FORMATS, REPORT_FILE, ImportResult
from .jobs import KIND, count_lines, import_chat_file
from .lorebook import read_lorebook
from .serialize import options_from_payload
from .service import read_inputs, run_card_import, run_import

__all__ = ["import_group"]

_PROGRESS_EVERY = 2000  # lines between progress-bar updates; keeps the bar off the hot path


@contextmanager
def _progress(path: Path, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    if not enabled:
        yield None
        return
    total = count_lines(path)
    with click.progressbar(length=total, label=f"importing {path.name}", file=sys.stderr) as bar:
        done = [0]

        def update(line: int) -> None:
            if line - done[0] >= _PROGRESS_EVERY:
                bar.update(line - done[0])
                done[0] = line

        yield update
        bar.update(total - done[0])


def _options(**kwargs: Any) -> Any:
    return options_from_payload({k: v for k, v in kwargs.items() if v is not None})


def _count(n: int, noun: str) -> str:
    """``1 message``, ``2 messages``: every noun the report counts takes a plain -s."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _report(result: ImportResult | dict[str, Any], as_json: bool, record: dict[str, Any] | None = None) -> None:
    """Print an import's report (``ImportResult.to_dict``), with the job's record when it ran as one."""
    body = result if isinstance(result, dict) else result.to_dict()
    if as_json:
        # The report as before, plus the job's record (its result is the top level, not repeated).
        shown = body if record is None else {**body, "job": {k: v for k, v in record.items() if k != "result"}}
        click.echo(json.dumps(shown, indent=2, ensure_ascii=False))
        return
    stats, project = body["stats"], body["project"]
    where = (
        f"store project {body['import_id']} (version {project['version']})" if project.get("store") else project["path"]
    )
    counts = f"{_count(stats['messages'], 'message')} into {_count(stats['scenes'], 'scene')}"
    click.echo(f"imported {counts} ({_count(stats['nodes'], 'node')}) -> {where}")
    click.echo(f"read as {body['source_format_label']}")
    if project.get("replaced"):
        click.echo(f"replaced the earlier import of this chat in {project['path']}")
    # An --out folder is the project itself: its import id names scene uids, not a store project.
    named = (
        f"project id {project['id']}"
        if project.get("store")
        else f"import id {body['import_id']} (scene uids {body['import_id']}:<scene>)"
    )
    click.echo(f"{named}; raw upload kept at {body['raw']['path']}")
    skipped = body["skipped"]
    if skipped:
        click.echo(f"skipped {_count(len(skipped), 'line')}:")
        for issue in skipped[:20]:
            click.echo(f"  line {issue['line']}: {issue['message']}")
        if len(skipped) > 20:
            click.echo(f"  … {len(skipped) - 20} more (see {Path(project['path']) / REPORT_FILE})")
    for warning in body["warnings"][:10]:
        text = warning if isinstance(warning, str) else f"line {warning['line']}: {warning['message']}"
        click.echo(f"warning: {text}")
    cleanup = body.get("llm_cleanup")
    if cleanup is not None:
        stored = [scene for scene in cleanup["scenes"] if scene["stored"]]
        adapters = ", ".join(sorted({str(scene["adapter"]) for scene in stored})) or cleanup["llm"]
        changed = sum(scene["lines_changed"] or 0 for scene in stored)
        click.echo(
            f"clean-up ({cleanup['detail_level']}, {adapters}): {_count(len(stored), 'scene')} kept as final, "
            f"{_count(changed, 'line')} changed"
        )
    if record is not None:
        click.echo(f"job {record['id']} {record['status']} ({record['duration_sec'] or 0:.2f} s on its worker)")


def _out_folder(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Path | None:
    # An empty --out would be the working directory: refuse it rather than write there.
    if value is None:
        return None
    if not value.strip():
        raise Invalid("--out must name a folder", field="out", code="invalid_out")
    return Path(value)


# Shared by the chat and card imports: a project folder to write, never the working directory; without
# it, the project store.
_OUT_OPTION = click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    callback=_out_folder,
    help="Project folder to write (project.json + scenes/). Default: a project in the store, whose id is printed.",
)
_FORCE_OPTION = click.option(
    "--force",
    is_flag=True,
    help="Replace an --out folder holding another import, or files changed or added since its import.",
)


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        _OUT_OPTION,
        _FORCE_OPTION,
        click.option("--title", help="Project title (default: from the chat)."),
        click.option(
            "--detail-level",
            type=click.Choice(["low", "medium", "high"]),
            default="medium",
            show_default=True,
            help="How much clean-up and segmentation.",
        ),
        click.option("--user", "user_name", help="The user's persona name (default: from the chat)."),
        click.option(
            "--actions/--no-actions",
            "actions_as_narration",
            default=None,
            help="Turn *actions* into narration (default: by detail level).",
        ),
        click.option(
            "--ooc",
            type=click.Choice(["keep", "drop"]),
            default="drop",
            show_default=True,
            help="Keep or drop ((OOC)) asides.",
        ),
        click.option(
            "--hidden",
            type=click.Choice(["keep", "drop"]),
            default="keep",
            show_default=True,
            help="Keep (marked) or drop messages hidden from the prompt.",
        ),
        click.option("--max-scene-nodes", type=click.IntRange(min=1), help="Longest scene, in nodes."),
        click.option("--time-gap-hours", type=float, help="Start a new scene after this long a pause."),
        click.option("--strict", is_flag=True, help="Fail on the first malformed line instead of skipping it."),
        click.option("--json", "as_json", is_flag=True, help="Print the import report as JSON."),
        click.option("--progress/--no-progress", default=True, help="Show a progress bar on stderr."),
        click.option(
            "--llm-cleanup",
            is_flag=True,
            help="Then tidy every scene through the clean-up hook (the narrator's model) at the detail level; "
            "the cleaned scenes are kept as the final variant, the imported ones unchanged.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group("import")
def import_group() -> None:
    """Import roleplay chats and logs into ComfyVN projects."""


@import_group.command("sillytavern")
@click.argument("chat", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--card",
    "cards",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Character card (PNG, JSON or CHARX); repeat for each group member.",
)
@click.option("--world", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Lorebook JSON.")
@click.option(
    "--sprites",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Sprite folder (<name>/<expression>.png, or one character's expressions).",
)
@click.option(
    "--backgrounds",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="SillyTavern's backgrounds folder (public/backgrounds): the chat's background is copied from it.",
)
@click.option("--swipes-as-choices", is_flag=True, help="Turn swipes into a choice point.")
@click.option("--display-text", "use_display_text", is_flag=True, help="Use translated display_text when present.")
@click.option("--no-job", is_flag=True, help="Run in this process, not as a roleplay.import job.")
@_common
@click.pass_obj
def sillytavern_cmd(
    kernel: Any,
    /,
    chat: Path,
    cards: tuple[Path, ...],
    world: Path | None,
    sprites: Path | None,
    backgrounds: Path | None,
    out: Path | None,
    as_json: bool,
    progress: bool,
    no_job: bool,
    llm_cleanup: bool,
    force: bool,
    **opts: Any,
) -> None:
    """Import a SillyTavern chat (.jsonl, or the .txt export) with its cards and lorebook."""
    _options(**opts)  # bad options fail here, before any job
    params: dict[str, Any] = {
        "chat": os.path.abspath(chat),
        "hint": "sillytavern",
        "cards": [os.path.abspath(card) for card in cards],
        "world": os.path.abspath(world) if world is not None else None,
        "sprites": os.path.abspath(sprites) if sprites is not None else None,
        "backgrounds": os.path.abspath(backgrounds) if backgrounds is not None else None,
        "out": os.path.abspath(out) if out is not None else None,
        "force": force,
        "options": {k: v for k, v in opts.items() if v is not None},
    }
    if not no_job and _jobs_published(kernel):
        from comfyvn_jobs.cli import local_jobs, run_with_progress
        from comfyvn_jobs.results import full_result

        with local_jobs(kernel) as jobs:
            if jobs is not None:
                label = f"importing {chat.name}"
                record = run_with_progress(jobs, KIND, params, label=label, show=progress and not as_json)
                _report(_cleaned(kernel, full_result(record), llm_cleanup, opts), as_json, record)
                return
    with _progress(chat, progress and not as_json) as update:
        result = import_chat_file(kernel, params, update)
    _report(_cleaned(kernel, result, llm_cleanup, opts), as_json)


def _jobs_published(kernel: Any) -> bool:
    """Whether the jobs plugin published its hook: asked before importing it, which brings in Dask."""
    caller = getattr(kernel.plugins.pm.hook, "register_job_kinds", None)
    return caller is not None and caller.spec is not None


@import_group.command("text")
@click.argument("log", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(FORMATS)),
    help="Input format (default: detected).",
)
@_common
@click.pass_obj
def text_cmd(
    kernel: Any,
    /,
    log: Path,
    fmt: str | None,
    out: Path | None,
    as_json: bool,
    progress: bool,
    llm_cleanup: bool,
    force: bool,
    **opts: Any,
) -> None:
    """Import a generic chat log (Name: text, [time] Name: text, Name - text) or a JSON message array."""
    options = _options(**opts)
    with log.open("rb") as fh, _progress(log, progress and not as_json) as update:
        result = run_import(kernel, fh, log.name, options, out_dir=out, fmt=fmt or "", progress=update, force=force)
    _report(_cleaned(kernel, result, llm_cleanup, opts), as_json)


def _cleaned(
    kernel: Any, result: ImportResult | dict[str, Any], llm_cleanup: bool, opts: dict[str, Any]
) -> ImportResult | dict[str, Any]:
    """The report, with ``llm_cleanup`` (each scene's ``sample_llm`` answer) when ``--llm-cleanup`` asked for it."""
    if not llm_cleanup:
        return result
    body = result if isinstance(result, dict) else result.to_dict()
    level = opts.get("detail_level") or "medium"
    answers = [sample_llm(kernel, scene["scene_uid"], level) for scene in body["scenes"]]
    scenes = []
    for answer in answers:
        meta = answer["scene"].get("metadata") if answer["stored"] else None
        done = meta.get("llm_cleanup") if isinstance(meta, dict) else None
        scenes.append(
            {
                "scene_uid": answer["scene_uid"],
                "llm": answer["llm"],
                "stored": answer["stored"],
                "adapter": done.get("adapter") if isinstance(done, dict) else None,
                "lines_changed": done.get("lines_changed") if isinstance(done, dict) else None,
            }
        )
    served = {s["llm"] for s in scenes}
    body["llm_cleanup"] = {
        "detail_level": level,
        "llm": served.pop() if len(served) == 1 else sorted(served),
        "scenes": scenes,
    }
    return body


@import_group.command("card")
@click.argument("card", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--world", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Lorebook JSON.")
@click.option(
    "--sprites",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Sprite folder (the character's <expression>.png, or <name>/<expression>.png).",
)
@click.option("--user", "user_name", default="You", show_default=True, help="The player's name ({{user}}).")
@click.option("--title", help="Project title (default: the character's name).")
@_OUT_OPTION
@_FORCE_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the import report as JSON.")
@click.pass_obj
def card_cmd(
    kernel: Any,
    card: Path,
    world: Path | None,
    sprites: Path | None,
    user_name: str,
    title: str | None,
    out: Path | None,
    force: bool,
    as_json: bool,
) -> None:
    """Start a project from a character card alone: its scenario, description and greetings."""
    options = _options(user_name=user_name, title=title)
    card_files, world_bytes = read_inputs([card], world)
    card_data, filename = card_files[0]
    book = (
        read_lorebook(world_bytes, name=world.stem, filename=world.name)
        if world is not None and world_bytes is not None
        else None
    )
    result = run_card_import(
        kernel, card_data, filename, options, out_dir=out, world=book, sprites_dir=sprites, force=force
    )
    _report(result, as_json)
