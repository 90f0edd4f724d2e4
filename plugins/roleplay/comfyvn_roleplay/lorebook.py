"""Lorebooks: SillyTavern world info, embedded ``character_book`` (V2/V3) and ``lorebook_v3``.

All three become one :class:`Lorebook`. Real files omit "required" fields and mix types (keys as a
comma string, numbers as strings), so every field is read leniently with a sensible default.
"""

from __future__ import annotations

import json
from pathlib import PurePath
from typing import Any

import attrs
from comfyvn.errors import Unprocessable

from .formats import sniff_binary
from .models import Lorebook, LoreEntry
from .st_chat import coerce_flag, coerce_float, coerce_text
from .textproc import resolve_macros

__all__ = ["expand_macros", "lorebook_to_dict", "parse_lorebook", "read_lorebook", "unique_books"]

# SillyTavern's world-info `position` numbers, named for readers of the project file.
POSITIONS = {0: "before_char", 1: "after_char", 2: "an_top", 3: "an_bottom", 4: "at_depth", 5: "em_top", 6: "em_bottom"}
SELECTIVE_LOGIC = {0: "and_any", 1: "not_all", 2: "not_any", 3: "and_all"}

_SNIFF_BYTES = 1 << 16  # enough of the head to tell an image or archive from text


def _keys(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        # Hand-edited books write "a, b"; a regex key "/a,b/i" must survive whole.
        if value.startswith("/") and value.count("/") >= 2:
            return (value,)
        return tuple(k.strip() for k in value.split(",") if k.strip())
    if isinstance(value, list):
        return tuple(coerce_text(k).strip() for k in value if coerce_text(k).strip())
    return ()


def _int(value: Any, default: int | None) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) < 1e18:
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value))
        except (ValueError, OverflowError):
            return default
    return default


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _world_info_entry(uid: str, e: dict[str, Any]) -> LoreEntry:
    known = {
        "uid",
        "key",
        "keysecondary",
        "comment",
        "content",
        "constant",
        "selective",
        "selectiveLogic",
        "order",
        "position",
        "disable",
        "probability",
        "depth",
        "caseSensitive",
        "extensions",
    }
    extensions = _dict(e.get("extensions"))
    extensions.update({k: v for k, v in e.items() if k not in known})
    return LoreEntry(
        uid=str(e.get("uid", uid)),
        keys=_keys(e.get("key")),
        secondary_keys=_keys(e.get("keysecondary")),
        content=coerce_text(e.get("content")),
        comment=coerce_text(e.get("comment")),
        enabled=not coerce_flag(e.get("disable")),
        constant=coerce_flag(e.get("constant")),
        selective=coerce_flag(e.get("selective")),
        selective_logic=_int(e.get("selectiveLogic"), 0) or 0,
        order=_int(e.get("order"), 100) or 0,
        position=_int(e.get("position"), None),
        probability=coerce_float(e.get("probability")),
        depth=_int(e.get("depth"), None),
        case_sensitive=e["caseSensitive"] if isinstance(e.get("caseSensitive"), bool) else None,
        extensions=extensions,
    )


def _book_entry(i: int, e: dict[str, Any]) -> LoreEntry:
    known = {
        "keys",
        "content",
        "extensions",
        "enabled",
        "insertion_order",
        "case_sensitive",
        "name",
        "priority",
        "id",
        "comment",
        "selective",
        "secondary_keys",
        "constant",
        "position",
    }
    extensions = _dict(e.get("extensions"))
    extensions.update({k: v for k, v in e.items() if k not in known})
    for k in ("name", "priority"):
        if k in e:
            extensions.setdefault(k, e[k])
    enabled = e.get("enabled", True)
    return LoreEntry(
        uid=str(e.get("id", i)),
        keys=_keys(e.get("keys")),
        secondary_keys=_keys(e.get("secondary_keys")),
        content=coerce_text(e.get("content")),
        comment=coerce_text(e.get("comment")) or coerce_text(e.get("name")),
        enabled=coerce_flag(enabled) if not isinstance(enabled, bool) else enabled,
        constant=coerce_flag(e.get("constant")),
        selective=coerce_flag(e.get("selective")),
        selective_logic=_int(_dict(e.get("extensions")).get("selectiveLogic"), 0) or 0,
        order=_int(e.get("insertion_order"), 100) or 0,
        position=e.get("position") if isinstance(e.get("position"), str | int) else None,
        probability=coerce_float(_dict(e.get("extensions")).get("probability")),
        depth=_int(_dict(e.get("extensions")).get("depth"), None),
        case_sensitive=e["case_sensitive"] if isinstance(e.get("case_sensitive"), bool) else None,
        extensions=extensions,
    )


def _character_book(data: dict[str, Any], name: str, source_format: str) -> Lorebook:
    raw_entries = data.get("entries")
    entries: list[LoreEntry] = []
    if isinstance(raw_entries, list):
        entries = [_book_entry(i, e) for i, e in enumerate(raw_entries) if isinstance(e, dict)]
    elif isinstance(raw_entries, dict):
        entries = [_world_info_entry(k, e) for k, e in raw_entries.items() if isinstance(e, dict)]
    recursive = data.get("recursive_scanning")
    return Lorebook(
        name=coerce_text(data.get("name")) or name,
        description=coerce_text(data.get("description")),
        entries=tuple(entries),
        source_format=source_format,
        scan_depth=_int(data.get("scan_depth"), None),
        token_budget=_int(data.get("token_budget"), None),
        recursive_scanning=recursive if isinstance(recursive, bool) else None,
        extensions=_dict(data.get("extensions")),
    )


def parse_lorebook(obj: Any, *, name: str = "") -> Lorebook:
    """Normalise any lorebook shape; raise a 422 ComfyVNError when ``obj`` is none of them."""
    if not isinstance(obj, dict):
        raise Unprocessable("not a lorebook: expected a JSON object", field="world", code="not_a_lorebook")
    if obj.get("spec") == "lorebook_v3" and isinstance(obj.get("data"), dict):
        return _character_book(obj["data"], name, "lorebook_v3")
    entries = obj.get("entries")
    if isinstance(entries, dict):
        book = _character_book(obj, name, "world_info")
        if isinstance(obj.get("originalData"), dict):
            return attrs.evolve(book, extensions={**book.extensions, "originalData": obj["originalData"]})
        return book
    if isinstance(entries, list):
        return _character_book(obj, name, "character_book")
    raise Unprocessable("not a lorebook: no `entries`", field="world", code="not_a_lorebook")


def read_lorebook(data: bytes, *, name: str = "", filename: str = "") -> Lorebook:
    """Decode a lorebook file's bytes (UTF-8 JSON, BOM tolerated); errors name ``filename`` and say what
    a file that is not text is (an image, an archive …)."""
    label = PurePath(filename).name[:80]
    what = sniff_binary(data[:_SNIFF_BYTES], hints=False)
    if what is not None:
        raise Unprocessable(
            f"{label or 'the lorebook file'} is {what}, not a lorebook JSON", field="world", code="not_a_lorebook"
        )
    try:
        obj = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        shown = f"lorebook {label}" if label else "lorebook"
        raise Unprocessable(f"{shown} is not valid JSON: {exc}", field="world", code="not_a_lorebook") from exc
    return parse_lorebook(obj, name=name)


def lorebook_to_dict(book: Lorebook) -> dict[str, Any]:
    """The project's world entry for a lorebook (stable, JSON-ready, readable names for enums)."""
    return {
        "name": book.name,
        "description": book.description,
        "source_format": book.source_format,
        "scan_depth": book.scan_depth,
        "token_budget": book.token_budget,
        "recursive_scanning": book.recursive_scanning,
        "entries": [
            {
                "uid": e.uid,
                "keys": list(e.keys),
                "secondary_keys": list(e.secondary_keys),
                "content": e.content,
                "comment": e.comment,
                "enabled": e.enabled,
                "constant": e.constant,
                "selective": e.selective,
                "selective_logic": SELECTIVE_LOGIC.get(e.selective_logic, e.selective_logic),
                "order": e.order,
                "position": POSITIONS.get(e.position, e.position) if isinstance(e.position, int) else e.position,
                "probability": e.probability,
                "depth": e.depth,
                "case_sensitive": e.case_sensitive,
                "extensions": e.extensions,
            }
            for e in book.entries
        ],
        "extensions": book.extensions,
    }


def _signature(book: Lorebook) -> tuple[tuple[tuple[str, ...], str], ...]:
    return tuple(sorted((e.keys, e.content.replace("\r\n", "\n").strip()) for e in book.entries))


def unique_books(books: list[Lorebook]) -> tuple[list[Lorebook], list[str]]:
    """Drop repeats: a book with the same name (any case) or the same entries as an earlier one.

    SillyTavern embeds a card's linked world into the card, so a user passing both the card and
    the world file gives the same book twice; the first given (the world file) is kept.
    Returns the books to store and a note for each one dropped whose entries differed.
    """
    kept: list[Lorebook] = []
    notes: list[str] = []
    for book in books:
        name, signature = book.name.strip().lower(), _signature(book)
        same = next((k for k in kept if k.name.strip().lower() == name or _signature(k) == signature), None)
        if same is None:
            kept.append(book)
        elif _signature(same) != signature:
            notes.append(f"lorebook {book.name!r} given twice with different entries; kept the one given with --world")
    return kept, notes


def expand_macros(book: Lorebook, user: str, char: str) -> Lorebook:
    """The book with ``{{user}}``/``{{char}}`` (and the other macros) expanded in every entry's text."""
    entries = tuple(
        attrs.evolve(e, content=resolve_macros(e.content, user, char), comment=resolve_macros(e.comment, user, char))
        for e in book.entries
    )
    return attrs.evolve(book, entries=entries, description=resolve_macros(book.description, user, char))
