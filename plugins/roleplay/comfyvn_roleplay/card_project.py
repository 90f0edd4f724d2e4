"""A playable opening made from a character card alone (``comfyvn import card``).

The card's scenario and description are told as narration; the greeting (``first_mes``) is the
first scene. When the card has alternate greetings the opening ends on a menu, "How does it
begin?", with one choice per greeting, each leading to its own scene. Macros are expanded with the
chosen user name, the card's picture is the character's portrait, ``--sprites`` are expressions
and lorebooks (``--world`` and the card's own) are kept in the project metadata, once each.

The description is written for the language model; parts of it that a reader should not see —
bracketed attribute lists (W++, PLists) and ``<START>`` example dialogues — are left out and the
report says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import attrs
from comfyvn.errors import Unprocessable

from .cast import Cast, scan_sprite_folder
from .convert import ImportOptions, SceneBuilder
from .importer import (
    ImportResult,
    RawUpload,
    SceneFiles,
    participants,
    project_slug,
    write_assets,
    write_project,
    write_report,
)
from .lorebook import expand_macros, lorebook_to_dict, unique_books
from .markup import plain_text
from .models import Card, Kind, Lorebook, Message, ParseIssue

__all__ = ["MENU_PROMPT", "import_card", "readable_description"]

MENU_PROMPT = "How does it begin?"
_LABEL_CHARS = 60
_START = re.compile(r"<START>", re.IGNORECASE)


def _bracket_blocks(text: str) -> tuple[str, int]:
    """Remove ``[…]`` blocks that start a line (balanced, may span lines); count them."""
    out: list[str] = []
    removed = 0
    i = 0
    while i < len(text):
        at_line_start = i == 0 or text[i - 1] == "\n"
        if at_line_start and text[i] == "[":
            depth, j = 0, i
            while j < len(text):
                depth += (text[j] == "[") - (text[j] == "]")
                j += 1
                if depth == 0:
                    break
            if depth == 0:
                removed += 1
                i = j
                continue
        out.append(text[i])
        i += 1
    return "".join(out), removed


def readable_description(description: str) -> tuple[str, list[str]]:
    """The part of a card description a reader should see, and notes on what was left out."""
    notes: list[str] = []
    text = description.replace("\r\n", "\n")
    parts = _START.split(text, maxsplit=1)
    if len(parts) > 1:
        notes.append("description: left out its <START> example dialogues")
    text, removed = _bracket_blocks(parts[0])
    if removed:
        notes.append(f"description: left out {removed} bracketed attribute list(s) written for the model")
    return re.sub(r"\n{3,}", "\n\n", text).strip(), notes


def _label(nodes: Sequence[dict[str, Any]]) -> str:
    text = " ".join(plain_text("\n".join(n["text"] for n in nodes if n.get("text"))).split())
    return text[:_LABEL_CHARS] + ("…" if len(text) > _LABEL_CHARS else "")


def _chain(prefix: str, nodes: list[dict[str, Any]], cap: int, title: str) -> list[dict[str, Any]]:
    """Scenes holding ``nodes`` in order, at most ``cap`` nodes each, linked by jumps.

    The last node ends the story unless it is a choice (whose targets are already set).
    """
    scenes: list[dict[str, Any]] = []
    chunks = [nodes[i : i + cap] for i in range(0, len(nodes), cap)]
    ids = [prefix if k == 0 else f"{prefix}_{k + 1}" for k in range(len(chunks))]
    for k, chunk in enumerate(chunks):
        for n, node in enumerate(chunk, start=1):
            node["id"] = f"n{n:04d}"
        for a, b in pairwise(chunk):
            a["choices"] = [{"target": b["id"]}]
        last = chunk[-1]
        if k + 1 < len(chunks):
            last["choices"] = [{"target": f"{ids[k + 1]}:n0001"}]
        elif last["type"] != "choice":
            last["end"] = True
        number = f" ({k + 1})" if len(chunks) > 1 else ""
        scenes.append({"id": ids[k], "title": f"{title}{number}", "start": "n0001", "nodes": chunk})
    return scenes


@attrs.define
class _Opening:
    builder: SceneBuilder
    card: Card
    line: int = 0

    def nodes(self, text: str, kind: Kind, source: str) -> list[dict[str, Any]]:
        self.line += 1
        message = Message(index=self.line - 1, line=self.line, name=self.card.name, text=text, kind=kind)
        nodes = self.builder.message_nodes(message)
        for node in nodes:
            node["data"]["card"] = source
        return nodes


def import_card(
    raw: RawUpload,
    card: Card,
    out_dir: Path,
    *,
    options: ImportOptions,
    world: Lorebook | None = None,
    sprites_dir: Path | None = None,
) -> ImportResult:
    """Write a project at ``out_dir`` that opens the story of ``card`` (see the module docstring)."""
    user_name = options.user_name or "You"
    title = options.title or card.name
    options = attrs.evolve(options, title=title, user_name=user_name)
    sprites = scan_sprite_folder(sprites_dir, [card.name]) if sprites_dir else {}
    if sprites_dir and not sprites:
        raise Unprocessable(f"no sprite images found in {sprites_dir.name}", field="sprites")
    cast = Cast(user_name=user_name, cards=[card], sprite_files=sprites)
    bg_assets = cast.background_assets()
    background = bg_assets[0].path if bg_assets else None
    builder = SceneBuilder(options, cast, main_character=card.name, background=background)
    opening = _Opening(builder, card)
    notes: list[str] = []

    intro: list[dict[str, Any]] = []
    if card.scenario.strip():
        intro += opening.nodes(card.scenario, Kind.NARRATOR, "scenario")
    description, left_out = readable_description(card.description)
    notes += left_out
    if description:
        intro += opening.nodes(description, Kind.NARRATOR, "description")
    greetings = [(i, g) for i, g in enumerate([card.first_mes, *card.alternate_greetings]) if g.strip()]
    openings = [
        (i, opening.nodes(g, Kind.CHARACTER, "greeting" if i == 0 else f"alternate_greeting:{i}")) for i, g in greetings
    ]
    openings = [(i, nodes) for i, nodes in openings if nodes]
    if not intro and not openings:
        raise Unprocessable(
            f"card {card.name!r} has no greeting, scenario or description to make an opening from",
            field="card",
            code="empty_card",
        )

    cap = options.detail.max_scene_nodes
    scenes: list[dict[str, Any]] = []
    if len(openings) <= 1:
        scenes += _chain("opening", intro + (openings[0][1] if openings else []), cap, title)
    else:
        menu = {
            "id": "",
            "type": "choice",
            "text": MENU_PROMPT,
            "choices": [
                {"id": f"greeting{i}", "label": _label(nodes), "target": f"greeting_{i + 1}:n0001"}
                for i, nodes in openings
            ],
            "data": {"card": "greetings"},
        }
        scenes += _chain("opening", [*intro, menu], cap, title)
        for i, nodes in openings:
            scenes += _chain(f"greeting_{i + 1}", nodes, cap, f"{title} — opening {i + 1}")
    for scene in scenes:
        if background:
            scene["background"] = background
        scene["metadata"] = {"roleplay": {"reason": "card"}}

    out_dir.mkdir(parents=True, exist_ok=True)
    with SceneFiles(out_dir) as files:
        for scene in scenes:
            files.write(scene)
    write_assets(out_dir, [*cast.assets, *bg_assets])
    books, book_notes = unique_books([b for b in (world, card.character_book) if b is not None])
    notes += book_notes
    import_id = f"{project_slug(title)}-{raw.sha256[:10]}"
    roleplay_meta: dict[str, Any] = {
        "import_id": import_id,
        "source_format": "card",
        "raw_sha256": raw.sha256,
        "raw_filename": raw.filename,
        "detail_level": options.detail_level,
        "participants": participants(cast),
    }
    if books:
        roleplay_meta["world"] = [lorebook_to_dict(expand_macros(b, user_name, card.name)) for b in books]
    if builder.ooc:
        roleplay_meta["ooc"] = builder.ooc
    document = {
        "id": import_id,
        "title": title,
        "start": scenes[0]["id"],
        "characters": cast.characters,
        "metadata": {"roleplay": roleplay_meta},
    }
    write_project(out_dir, document, [s["id"] for s in scenes])
    issues: tuple[ParseIssue, ...] = tuple(builder.issues)
    result = ImportResult(
        import_id=import_id,
        project_id=import_id,
        title=title,
        project_dir=out_dir,
        raw=raw,
        source_format="card",
        scene_ids=tuple(s["id"] for s in scenes),
        stats={
            "messages": len(greetings),
            "scenes": len(scenes),
            "nodes": sum(len(s["nodes"]) for s in scenes),
            "openings": len(openings),
            "issues": len(issues),
        },
        issues=issues,
        issues_total=len(issues),
        warnings=(*cast.warnings, *notes),
    )
    write_report(out_dir, result)
    return result
