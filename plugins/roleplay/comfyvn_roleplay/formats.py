"""What an upload is, before any parser touches it, and two more chat formats.

:func:`sniff_binary` names files that are not text (images, archives, UTF-16 without a byte-order
mark, random bytes) so the importer can refuse them with a useful sentence instead of importing
garbage. :func:`iter_tavernai` reads TavernAI's legacy ``.json`` chat — the array of ``"Name: text"``
strings that SillyTavern inherited (``public/characters/<name>/chats/<time>.json``); the first
message is the character's greeting, so its speaker names the character, and a line without a
known name prefix belongs to the character (TavernAI saved model replies without one).
:func:`iter_agnai` reads Agnaistic's chat export (``{name, greeting, scenario, sampleChat,
messages: [{msg, characterId | userId, handle, name, createdAt, ooc}]}``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .dates import parse_send_date
from .models import ChatHeader, Kind, Message, ParseIssue
from .st_chat import coerce_flag, coerce_text

__all__ = ["FORMAT_LABELS", "iter_agnai", "iter_tavernai", "sniff_binary", "sniff_json_shape"]

#: What each format is called in reports and CLI output.
FORMAT_LABELS = {
    "st_jsonl": "SillyTavern chat (.jsonl)",
    "st_txt": "SillyTavern text export (.txt)",
    "json": "JSON message array",
    "text": "plain-text chat log",
    "tavernai_json": "TavernAI legacy chat (.json array of 'Name: text')",
    "agnai_json": "Agnaistic chat export (.json)",
    "card": "character card (no chat): an opening made from the card",
}

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"PK\x03\x04", "a zip archive"),
    (b"PK\x05\x06", "a zip archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"%PDF", "a PDF document"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"\x7fELF", "an executable (ELF)"),
    (b"MZ", "a Windows executable"),
    (b"OggS", "an Ogg audio file"),
    (b"ID3", "an MP3 audio file"),
    (b"\x1aE\xdf\xa3", "a Matroska/WebM video"),
    (b"SQLite format 3\x00", "an SQLite database"),
)
_TEXT_CONTROLS = frozenset(b"\t\n\r\f\v\x1b")
_MAX_BAD_FRACTION = 0.05  # Latin-1 prose has a few invalid bytes; random bytes about half


_HINTS = {
    "a PNG image": "a PNG image — pass a card with --card, sprites with --sprites",
    "a JPEG image": "a JPEG image — pass sprites with --sprites",
    "a zip archive": "a zip archive (a CHARX card? pass it with --card)",
}


def sniff_binary(head: bytes, *, hints: bool = True) -> str | None:
    """A description of ``head`` (a file's first bytes) when it is not a UTF-8 text chat; else None.

    UTF-16/32 with a byte-order mark is reported as such too: the caller may transcode it. ``hints``
    adds which import option takes an image or archive instead (for a file given as the chat).
    """
    for magic, what in _SIGNATURES:
        if head.startswith(magic):
            return _HINTS.get(what, what) if hints else what
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image — pass sprites with --sprites" if hints else "a WebP image"
    if head[4:8] == b"ftyp":
        return "an MP4/AVIF media file"
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "UTF-32 text — save it as UTF-8"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16 text — save it as UTF-8"
    if not head:
        return None
    sample = head[:8192]
    if b"\x00" in sample:
        # NULs in every other byte of ASCII are UTF-16 without a byte-order mark.
        evens, odds = sample[0::2].count(0), sample[1::2].count(0)
        if max(evens, odds) > len(sample) // 4 and min(evens, odds) < len(sample) // 50:
            return "UTF-16 text without a byte-order mark — save it as UTF-8"
        return "binary data"
    controls = sum(1 for b in sample if b < 0x20 and b not in _TEXT_CONTROLS)
    invalid = len(sample) - len(sample.decode("utf-8", "ignore").encode("utf-8"))
    if controls > len(sample) * _MAX_BAD_FRACTION or invalid > len(sample) * _MAX_BAD_FRACTION:
        return "binary data"
    return None


def sniff_json_shape(head: str) -> str | None:
    """``tavernai_json`` or ``agnai_json`` from the start of a JSON file; None for other shapes."""
    text = head.lstrip("\ufeff \t\r\n")
    if text.startswith("["):
        return "tavernai_json" if re.match(r'\[\s*"', text) else None
    if not text.startswith("{"):
        return None
    if re.search(r'"(?:messages|chat)"\s*:\s*\[\s*"', text):
        return "tavernai_json"
    m = re.search(r'"messages"\s*:\s*\[\s*\{', text)
    if m and re.search(r'"msg"\s*:', text[m.end() :]):
        return "agnai_json"
    return None


def _load(path: Path) -> tuple[Any, ParseIssue | None]:
    try:
        return json.loads(path.read_bytes().decode("utf-8-sig", "replace")), None
    except (ValueError, RecursionError) as exc:
        return None, ParseIssue(1, f"not valid JSON: {exc}")


_PREFIX = re.compile(r"^\s*([^\W][^:\n]{0,39}?)\s*:[ \t]?", re.UNICODE)


def iter_tavernai(
    path: Path, *, user_name: str | None, character_names: list[str]
) -> Iterator[ChatHeader | Message | ParseIssue]:
    """Messages of a TavernAI legacy chat: ``["Aqua: Hi!\\n", "You: Hello\\n", …]``.

    Also accepts ``{"messages"|"chat": [...]}`` around the array.
    """
    data, issue = _load(path)
    if issue is not None:
        yield issue
        return
    if isinstance(data, dict):
        data = next((data[k] for k in ("messages", "chat") if isinstance(data.get(k), list)), None)
    if not isinstance(data, list):
        yield ParseIssue(1, "expected an array of 'Name: text' strings")
        return
    prefixes = [m.group(1) for item in data if isinstance(item, str) and (m := _PREFIX.match(item))]
    # The greeting comes first, so the first speaker is the character; the user is the named
    # speaker most often seen besides the character ("You" unless renamed).
    character = character_names[0] if character_names else (prefixes[0] if prefixes else "Character")
    counts = Counter(p for p in prefixes if p != character)
    user = user_name or ("You" if "You" in counts or not counts else counts.most_common(1)[0][0])
    known = {character: Kind.CHARACTER, user: Kind.USER}
    for name in character_names[1:]:
        known.setdefault(name, Kind.CHARACTER)
    yield ChatHeader(user_name=user, character_name=character)
    index = 0
    for line, item in enumerate(data, start=1):
        if not isinstance(item, str):
            yield ParseIssue(line, f"element {line - 1} is not a string", "skipped", str(item)[:80])
            continue
        m = _PREFIX.match(item)
        name = m.group(1) if m else ""
        if name in known:
            text, kind = item[m.end() :] if m else item, known[name]
        else:
            text, kind, name = item, Kind.CHARACTER, character
        yield Message(index=index, line=line, name=name, text=coerce_text(text).strip("\n"), kind=kind)
        index += 1


def iter_agnai(
    path: Path, *, user_name: str | None, character_names: list[str]
) -> Iterator[ChatHeader | Message | ParseIssue]:
    """Messages of an Agnaistic chat export; its greeting, scenario and sample chat become metadata."""
    data, issue = _load(path)
    if issue is not None:
        yield issue
        return
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        yield ParseIssue(1, "expected an object with a `messages` array")
        return
    messages = data["messages"]
    first_char = next(
        (coerce_text(m.get("name")) for m in messages if isinstance(m, dict) and m.get("characterId")), ""
    )
    first_user = next(
        (coerce_text(m.get("handle") or m.get("name")) for m in messages if isinstance(m, dict) and m.get("userId")),
        "",
    )
    character = character_names[0] if character_names else first_char or "Character"
    user = user_name or first_user or "You"
    meta = {k: data[k] for k in ("name", "greeting", "scenario", "sampleChat") if isinstance(data.get(k), str)}
    yield ChatHeader(user_name=user, character_name=character, metadata={"agnai": meta} if meta else {})
    index = 0
    for line, obj in enumerate(messages, start=1):
        if not isinstance(obj, dict):
            yield ParseIssue(line, f"message {line - 1} is not an object", "skipped", str(obj)[:80])
            continue
        if "msg" not in obj:
            yield ParseIssue(line, "message has no `msg`; taken as empty", "warning")
        if obj.get("userId"):
            kind, name = Kind.USER, user if user_name else coerce_text(obj.get("handle") or obj.get("name")) or user
        elif obj.get("characterId"):
            # "imported" is the chat's own character; other ids are group members named in `name`.
            own = obj.get("characterId") == "imported"
            kind, name = Kind.CHARACTER, character if own else coerce_text(obj.get("name")) or character
        else:
            kind, name = Kind.NARRATOR, "System"
        raw_date = obj.get("createdAt")
        extra = {k: v for k, v in obj.items() if k not in ("msg", "name", "handle", "createdAt")}
        extra["ooc"] = coerce_flag(obj.get("ooc"))
        yield Message(
            index=index,
            line=line,
            name=name.strip(),
            text=coerce_text(obj.get("msg")),
            kind=kind,
            send_date=parse_send_date(raw_date),
            send_date_raw=raw_date,
            extra=extra,
        )
        index += 1
