"""``roleplay.import`` as a job of the jobs plugin: ``comfyvn import sillytavern`` on the embedded Dask
cluster, its progress the share of the chat's lines read.

A *local* kind: its params name files of this machine (the chat, cards, lorebook, sprites, ``--out``) as
the CLI was given them, so the jobs plugin runs it only on the embedded cluster and refuses it over HTTP
(HTTP imports are uploads to ``POST /api/roleplay/import``). ``--no-job`` runs the same import in-process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import attrs
from comfyvn.errors import Invalid
from comfyvn.wire import parse_request

from .importer import ImportResult
from .lorebook import read_lorebook
from .serialize import OPTION_FIELDS, options_from_payload
from .service import read_inputs, run_import

if TYPE_CHECKING:
    from comfyvn import Kernel
    from comfyvn_jobs import JobContext, KindRegistrar

__all__ = ["KIND", "ImportJobParams", "check_import_params", "count_lines", "import_chat_file", "register_kinds"]

KIND = "roleplay.import"
PROGRESS_EVERY = 2000  # lines between progress reports: keeps reporting off the parser's hot path
# Reading the chat is most of an import; installing the project (validation, the store) is the rest.
READ_SHARE = 0.9


@attrs.frozen
class ImportJobParams:
    """The params of a ``roleplay.import`` job: absolute paths and the import options (`ImportOptions` keys)."""

    chat: str
    hint: str = ""
    cards: tuple[str, ...] = ()
    world: str | None = None
    sprites: str | None = None
    #: SillyTavern's backgrounds folder, where the chat's background is looked up.
    backgrounds: str | None = None
    out: str | None = None
    #: Replace an ``out`` folder holding another import or files changed since its import.
    force: bool = False
    options: dict[str, Any] = attrs.Factory(dict)


def _parse(params: Mapping[str, Any]) -> ImportJobParams:
    parsed = parse_request(dict(params), ImportJobParams, code="invalid_params")
    named = [("chat", parsed.chat), ("world", parsed.world), ("sprites", parsed.sprites), ("out", parsed.out)]
    named.append(("backgrounds", parsed.backgrounds))
    named += [(f"cards[{i}]", card) for i, card in enumerate(parsed.cards)]
    for field, value in named:
        if value is not None and not os.path.isabs(value):
            raise Invalid(f"{field} must be an absolute path", field=field, code="invalid_params")
    if parsed.hint not in ("", "sillytavern"):
        raise Invalid("hint is empty or sillytavern", field="hint", code="invalid_params")
    unknown = sorted(set(parsed.options) - set(OPTION_FIELDS))
    if unknown:
        raise Invalid(f"unknown import option {unknown[0]!r}", field=f"options.{unknown[0]}", code="invalid_option")
    options_from_payload(parsed.options)  # the option values: `Invalid` naming the option
    return parsed


def check_import_params(params: dict[str, Any]) -> dict[str, Any]:
    """The jobs plugin's ``check``: the params as they are stored and sent, or `Invalid` naming the field."""
    return attrs.asdict(_parse(params))


def count_lines(path: Path) -> int:
    """Lines in ``path`` (newlines + 1), read in 1 MiB chunks: the total a progress bar counts towards."""
    count = 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            count += chunk.count(b"\n")
    return count + 1


def import_chat_file(
    kernel: Kernel, params: Mapping[str, Any], progress: Callable[[int], None] | None = None
) -> ImportResult:
    """The import the params describe (in a job or in-process): cards and lorebook read, the chat streamed,
    ``progress(line)`` called as lines are read."""
    parsed = _parse(params)
    world = Path(parsed.world) if parsed.world is not None else None
    card_data, world_bytes = read_inputs([Path(c) for c in parsed.cards], world)
    # A lorebook keeps its own name: its `name` field, else the file's name.
    book = (
        read_lorebook(world_bytes, name=world.stem, filename=world.name)
        if world is not None and world_bytes is not None
        else None
    )
    chat = Path(parsed.chat)
    fh: IO[bytes]
    with chat.open("rb") as fh:
        return run_import(
            kernel,
            fh,
            chat.name,
            options_from_payload(parsed.options),
            out_dir=Path(parsed.out) if parsed.out is not None else None,
            hint=parsed.hint,
            cards=card_data,
            world=book,
            sprites_dir=Path(parsed.sprites) if parsed.sprites is not None else None,
            progress=progress,
            force=parsed.force,
            backgrounds_dir=Path(parsed.backgrounds) if parsed.backgrounds is not None else None,
        )


def _summary(body: dict[str, Any]) -> dict[str, Any]:
    """What the record keeps of a report too big for it (thousands of skipped lines or scenes)."""
    return {
        "import_id": body["import_id"],
        "project": body["project"],
        "source_format": body["source_format"],
        "stats": body["stats"],
        "scene_count": len(body["scenes"]),
        "skipped_count": len(body["skipped"]),
        "warning_count": len(body["warnings"]),
        "issues_total": body["issues_total"],
    }


def run_import_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """The body of a ``roleplay.import`` job: the import, reporting the share of lines read. A rerun (a lost
    worker) imports again: a store project gets one more version, a folder is replaced whole."""
    from comfyvn_jobs.results import bounded_result  # runs only where the jobs plugin is (it brings Dask)

    total = count_lines(Path(_parse(params).chat))
    ctx.report(0.0, "reading")
    reported = [0]

    def progress(line: int) -> None:
        if line - reported[0] >= PROGRESS_EVERY:
            reported[0] = line
            ctx.report(min(line / total, 1.0) * READ_SHARE, "reading")

    result = import_chat_file(ctx.kernel, params, progress)
    ctx.report(1.0, "done")
    return bounded_result(ctx, result.to_dict(), _summary)


def register_kinds(register: KindRegistrar) -> None:
    """The roleplay plugin's job kinds."""
    register(
        KIND,
        run_import_job,
        "Import a SillyTavern chat file of this machine (with cards, lorebook, sprites), as `comfyvn import "
        "sillytavern`.",
        check=check_import_params,
        local=True,
    )
