"""``comfyvn import sillytavern|text|card``: parse options, call the service, print a summary or JSON.

With ``--out DIR`` the project is written to that folder; without it the project goes to the project
store (``<data>/projects/<id>``) and its id, which every other command accepts, is printed."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from comfyvn.errors import Invalid

from .importer import FORMATS, ImportResult
from .lorebook import read_lorebook
from .serialize import options_from_payload
from .service import StoredImport, read_inputs, run_card_import, run_import

__all__ = ["import_group"]

_PROGRESS_EVERY = 2000  # lines between progress-bar updates; keeps the bar off the hot path


def _count_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            count += chunk.count(b"\n")
    return count + 1


@contextmanager
def _progress(path: Path, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    if not enabled:
        yield None
        return
    total = _count_lines(path)
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


def _report(result: ImportResult, as_json: bool) -> None:
    body = result.to_dict()
    if as_json:
        click.echo(json.dumps(body, indent=2, ensure_ascii=False))
        return
    stats = result.stats
    where = (
        f"store project {result.import_id} (version {result.version})"
        if isinstance(result, StoredImport)
        else str(result.project_dir)
    )
    click.echo(
        f"imported {stats['messages']} messages into {stats['scenes']} scenes ({stats['nodes']} nodes) -> {where}"
    )
    click.echo(f"read as {body['source_format_label']}")
    click.echo(f"project id {result.project_id}; raw upload kept at {result.raw.path}")
    skipped = body["skipped"]
    if skipped:
        click.echo(f"skipped {len(skipped)} line(s):")
        for issue in skipped[:20]:
            click.echo(f"  line {issue['line']}: {issue['message']}")
        if len(skipped) > 20:
            click.echo(f"  … {len(skipped) - 20} more (see {result.project_dir / 'roleplay_import.json'})")
    for warning in body["warnings"][:10]:
        text = warning if isinstance(warning, str) else f"line {warning['line']}: {warning['message']}"
        click.echo(f"warning: {text}")


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


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        _OUT_OPTION,
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
@click.option("--swipes-as-choices", is_flag=True, help="Turn swipes into a choice point.")
@click.option("--display-text", "use_display_text", is_flag=True, help="Use translated display_text when present.")
@_common
@click.pass_obj
def sillytavern_cmd(
    kernel: Any,
    /,
    chat: Path,
    cards: tuple[Path, ...],
    world: Path | None,
    sprites: Path | None,
    out: Path | None,
    as_json: bool,
    progress: bool,
    **opts: Any,
) -> None:
    """Import a SillyTavern chat (.jsonl, or the .txt export) with its cards and lorebook."""
    options = _options(**opts)
    card_data, world_bytes = read_inputs(list(cards), world)
    # A lorebook keeps its own name: its `name` field, else the file's name.
    book = read_lorebook(world_bytes, name=world.stem) if world is not None and world_bytes is not None else None
    with chat.open("rb") as fh, _progress(chat, progress and not as_json) as update:
        result = run_import(
            kernel,
            fh,
            chat.name,
            options,
            out_dir=out,
            hint="sillytavern",
            cards=card_data,
            world=book,
            sprites_dir=sprites,
            progress=update,
        )
    _report(result, as_json)


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
    kernel: Any, /, log: Path, fmt: str | None, out: Path | None, as_json: bool, progress: bool, **opts: Any
) -> None:
    """Import a generic chat log (Name: text, [time] Name: text, Name - text) or a JSON message array."""
    options = _options(**opts)
    with log.open("rb") as fh, _progress(log, progress and not as_json) as update:
        result = run_import(kernel, fh, log.name, options, out_dir=out, fmt=fmt or "", progress=update)
    _report(result, as_json)


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
    as_json: bool,
) -> None:
    """Start a project from a character card alone: its scenario, description and greetings."""
    options = _options(user_name=user_name, title=title)
    card_files, world_bytes = read_inputs([card], world)
    card_data, filename = card_files[0]
    book = read_lorebook(world_bytes, name=world.stem) if world is not None and world_bytes is not None else None
    result = run_card_import(kernel, card_data, filename, options, out_dir=out, world=book, sprites_dir=sprites)
    _report(result, as_json)
