"""Per-character LoRA stacks: ``<data>/characters/<id>/lora.json`` = ``{"loras": [{name, strength_model,
strength_clip, sha256?}]}``.

The renderer inserts one ``LoraLoader`` per entry, in order, so a character keeps its look across every
render. Entries are validated on the way in and on the way out (the file is user-editable): a LoRA is
named by its file name in ComfyUI's ``models/loras`` folder (never a path), strengths are finite numbers
in [-4, 4], and a file that cannot be read or does not validate is reported naming the character, not
as a traceback.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
from comfyvn.errors import ComfyVNError, Invalid, TooLarge, Unprocessable
from comfyvn.paths import atomic_write_text, safe_join
from comfyvn.wire import loads

__all__ = [
    "CHARACTER_ID",
    "MAX_ENTRIES",
    "LoraEntry",
    "LoraStore",
    "check_character_id",
    "parse_entries",
]

CHARACTER_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
#: A LoRA stack longer than this is a mistake, not a look (each entry is one more node and model patch).
MAX_ENTRIES = 16
MAX_NAME = 255
MAX_STRENGTH = 4.0
#: lora.json files past this size are not read (a stack of 16 entries is a few kilobytes).
MAX_FILE_BYTES = 64 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")
_ENTRY_KEYS = frozenset({"name", "strength_model", "strength_clip", "sha256"})


@attrs.frozen
class LoraEntry:
    """One LoRA applied to a character's renders, with its model and CLIP strengths."""

    name: str
    strength_model: float = 1.0
    strength_clip: float = 1.0
    sha256: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The JSON object (``sha256`` only when known); also the shape `workflows.bind` takes."""
        out: dict[str, Any] = {
            "name": self.name,
            "strength_model": self.strength_model,
            "strength_clip": self.strength_clip,
        }
        if self.sha256 is not None:
            out["sha256"] = self.sha256
        return out


def check_character_id(character_id: object) -> str:
    """``character_id`` when it is a slug (``[a-z0-9][a-z0-9_.-]{0,63}``), else `Invalid` (field ``character_id``)."""
    if not isinstance(character_id, str) or not CHARACTER_ID.fullmatch(character_id):
        shown = repr(character_id)[:80] if isinstance(character_id, str) else type(character_id).__name__
        raise Invalid(
            f"character id {shown} must be lowercase letters, digits, '_', '.' or '-' (at most 64, "
            "starting with a letter or digit)",
            field="character_id",
            code="invalid_character_id",
        )
    return character_id


def _strength(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"{field} must be a number", field=field, code="invalid_lora")
    number = float(value)
    if not math.isfinite(number) or not -MAX_STRENGTH <= number <= MAX_STRENGTH:
        raise Invalid(f"{field} must be a finite number from -4 to 4", field=field, code="invalid_lora")
    return number


def _name(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{field} must be a non-empty LoRA file name", field=field, code="invalid_lora")
    if len(value) > MAX_NAME:
        raise Invalid(f"{field} is longer than {MAX_NAME} characters", field=field, code="invalid_lora")
    if value in (".", "..") or any(c in "/\\" or ord(c) < 32 or ord(c) == 127 for c in value):
        raise Invalid(
            f"{field} must be a file name in ComfyUI's loras folder, without path separators or control characters",
            field=field,
            code="invalid_lora",
        )
    return value


def _entry(value: object, field: str) -> LoraEntry:
    if isinstance(value, LoraEntry):
        value = value.to_wire()
    if not isinstance(value, Mapping):
        raise Invalid(
            f"{field} must be an object {{name, strength_model, strength_clip}}", field=field, code="invalid_lora"
        )
    unknown = sorted(str(k) for k in value if k not in _ENTRY_KEYS)
    if unknown:
        raise Invalid(
            f"{field}: unknown field {unknown[0][:40]!r}; expected {sorted(_ENTRY_KEYS)}",
            field=f"{field}.{unknown[0][:40]}",
            code="invalid_lora",
        )
    sha = value.get("sha256")
    if sha is not None and (not isinstance(sha, str) or not _SHA256.fullmatch(sha)):
        raise Invalid(f"{field}.sha256 must be 64 lowercase hex digits", field=f"{field}.sha256", code="invalid_lora")
    return LoraEntry(
        name=_name(value.get("name"), f"{field}.name"),
        strength_model=_strength(value.get("strength_model", 1.0), f"{field}.strength_model"),
        strength_clip=_strength(value.get("strength_clip", 1.0), f"{field}.strength_clip"),
        sha256=sha,
    )


def parse_entries(value: object, *, field: str = "loras") -> list[LoraEntry]:
    """A validated LoRA stack from JSON-shaped input (a list of objects or `LoraEntry` values).

    Raises `Invalid` naming the field (``loras.1.strength_clip``) or `TooLarge` past `MAX_ENTRIES`.
    """
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise Invalid(f"{field} must be a list of LoRA entries", field=field, code="invalid_lora")
    if len(value) > MAX_ENTRIES:
        raise TooLarge(f"{field} has {len(value)} entries; at most {MAX_ENTRIES}", field=field, code="too_many_loras")
    return [_entry(item, f"{field}.{index}") for index, item in enumerate(value)]


class LoraStore:
    """The LoRA stacks of every character below one data root (``<data>/characters/<id>/lora.json``)."""

    FILE = "lora.json"

    def __init__(self, data_root: Path) -> None:
        self.data_root = Path(data_root)

    def path(self, character_id: str) -> Path:
        """Where the character's stack lives (the id is checked; the path never leaves the data root)."""
        check_character_id(character_id)
        return safe_join(self.data_root, "characters", character_id, self.FILE, field="character_id")

    def get(self, character_id: str) -> list[LoraEntry]:
        """The character's stack; empty when it has none. A file that cannot be read, is not JSON or does
        not validate raises `Unprocessable` naming the character and what is wrong."""
        path = self.path(character_id)
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise self._unreadable(character_id, exc.strerror or type(exc).__name__) from None
        if len(data) > MAX_FILE_BYTES:
            raise self._unreadable(character_id, f"larger than {MAX_FILE_BYTES} bytes")
        try:
            document = loads(data, field=self.FILE)
            if not isinstance(document, Mapping) or "loras" not in document:
                raise Invalid('expected an object {"loras": [...]}', field=self.FILE)
            return parse_entries(document["loras"])
        except ComfyVNError as exc:
            raise self._unreadable(character_id, exc.message) from None

    def set(self, character_id: str, entries: Sequence[LoraEntry | Mapping[str, Any]]) -> list[LoraEntry]:
        """Validate and store the character's stack (atomically; an empty list keeps an empty file).
        Returns the stored entries. Raises `Invalid`/`TooLarge` naming the field of a bad entry."""
        path = self.path(character_id)
        parsed = parse_entries(entries)
        document = {"loras": [entry.to_wire() for entry in parsed]}
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        return parsed

    @staticmethod
    def _unreadable(character_id: str, why: str) -> Unprocessable:
        return Unprocessable(
            f"the LoRA stack of character {character_id!r} (characters/{character_id}/lora.json) is unusable: {why}",
            field="character_id",
            code="invalid_lora_file",
        )
