"""Streaming parser for SillyTavern chat files (``.jsonl``, single and group chats).

One line in, at most one record out: memory stays at one line plus what the caller keeps, so a
50 MB chat is parsed in constant space. Malformed lines become :class:`ParseIssue` records with
their line number; ``strict=True`` turns the first one into an error instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote

from comfyvn.errors import Unprocessable

from .dates import parse_send_date
from .models import ChatHeader, Kind, Message, ParseIssue

__all__ = [
    "UI_SYSTEM_NAME",
    "UI_SYSTEM_TYPES",
    "ChatRecord",
    "avatar_file",
    "classify",
    "coerce_flag",
    "coerce_float",
    "coerce_text",
    "header_from_object",
    "is_header",
    "iter_st_chat",
    "message_from_object",
]

ChatRecord = ChatHeader | Message | ParseIssue

_SURROGATE = re.compile("[\ud800-\udfff]")
UI_SYSTEM_NAME = "SillyTavern System"
UI_SYSTEM_TYPES = frozenset({"welcome", "group", "empty", "generic", "help"})
_PLACEHOLDER_NAMES = frozenset({"", "unused"})
_MESSAGE_KEYS = ("mes", "is_user", "is_system")
_KNOWN_KEYS = frozenset(
    {
        "name",
        "mes",
        "is_user",
        "is_system",
        "send_date",
        "extra",
        "swipes",
        "swipe_id",
        "force_avatar",
        "original_avatar",
        "title",
    }
)


def coerce_flag(value: Any) -> bool:
    """A lenient boolean: ``true``, ``1``, ``"true"``, ``"yes"`` are true; anything else false."""
    # Hand-edited chats carry "true"/"false" strings or 0/1; only clear truths count.
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value == 1
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return False


def coerce_float(value: Any) -> float | None:
    """A float from a number or numeric string; None for booleans, NaN and anything else."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return result if result == result else None


def coerce_text(value: Any) -> str:
    """Message text from any JSON value: strings with normalised newlines, numbers as text, else "".

    Lone surrogates (``"\\ud800"`` escapes decode to them) become U+FFFD: they cannot be written as UTF-8.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        text = _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value
        return text.replace("\r\n", "\n").replace("\r", "\n")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def avatar_file(value: Any) -> str | None:
    """The card file name in ``original_avatar``/``force_avatar`` (a path or thumbnail URL)."""
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    if "file=" in value:
        value = value.split("file=", 1)[1].split("&", 1)[0]
    value = value.replace("\\", "/").rsplit("/", 1)[-1]
    return unquote(value) or None


def is_header(obj: dict[str, Any]) -> bool:
    """A header is an object with none of ``mes``, ``is_user``, ``is_system`` (sillytavern.md)."""
    return not any(k in obj for k in _MESSAGE_KEYS)


def header_from_object(obj: dict[str, Any], line: int = 1) -> ChatHeader:
    """Normalise any of the header variants (2023 epoch, 1.12 humanized date, newer ``unused``)."""
    meta = obj.get("chat_metadata")
    user = obj.get("user_name")
    char = obj.get("character_name")
    raw_date = obj.get("create_date")
    return ChatHeader(
        user_name=user if isinstance(user, str) and user.strip().lower() not in _PLACEHOLDER_NAMES else None,
        character_name=char if isinstance(char, str) and char.strip().lower() not in _PLACEHOLDER_NAMES else None,
        create_date=parse_send_date(raw_date),
        create_date_raw=raw_date,
        metadata=dict(meta) if isinstance(meta, dict) else {},
        line=line,
    )


def classify(name: str, is_user: bool, is_system: bool, extra: dict[str, Any]) -> tuple[Kind, bool]:
    """Untangle SillyTavern's flags into (kind, hidden).

    ``is_system`` means UI chatter for the "SillyTavern System" speaker (or a UI ``extra.type``) and
    "hidden from the prompt by the user" for anyone else.
    """
    etype = extra.get("type")
    if name == UI_SYSTEM_NAME or (is_system and etype in UI_SYSTEM_TYPES):
        return Kind.SYSTEM, False
    if etype == "narrator":
        return Kind.NARRATOR, is_system
    if is_user:
        return Kind.USER, is_system
    return Kind.CHARACTER, is_system


def message_from_object(
    obj: dict[str, Any], *, index: int, line: int, narrator_name: str = "System"
) -> tuple[Message, list[ParseIssue]]:
    """Build a :class:`Message` from one decoded chat line; return it with its warnings."""
    issues: list[ParseIssue] = []
    extra = obj.get("extra")
    if not isinstance(extra, dict):
        if extra is not None:
            issues.append(ParseIssue(line, "`extra` is not an object; ignored", "warning"))
        extra = {}
    raw_name = obj.get("name")
    name = _SURROGATE.sub("\ufffd", raw_name).strip() if isinstance(raw_name, str) else ""
    is_user = coerce_flag(obj.get("is_user"))
    kind, hidden = classify(name, is_user, coerce_flag(obj.get("is_system")), extra)
    if not name:
        name = narrator_name if kind is Kind.NARRATOR else ""
    mes = obj.get("mes")
    if mes is not None and not isinstance(mes, str | int | float):
        issues.append(ParseIssue(line, "`mes` is not text; taken as empty", "warning"))
    text = coerce_text(mes)

    swipes: tuple[str, ...] = ()
    raw_swipes = obj.get("swipes")
    if isinstance(raw_swipes, list):
        swipes = tuple(coerce_text(s) for s in raw_swipes)
    swipe_id = obj.get("swipe_id")
    if not isinstance(swipe_id, int) or isinstance(swipe_id, bool) or not 0 <= swipe_id < len(swipes):
        if swipe_id is not None and swipes:
            issues.append(ParseIssue(line, f"swipe_id {swipe_id!r} out of range; using `mes`", "warning"))
        swipe_id = None
    if not text and swipe_id is not None:
        text = swipes[swipe_id]

    raw_date = obj.get("send_date")
    send_date = parse_send_date(raw_date)
    if raw_date not in (None, "") and send_date is None:
        issues.append(ParseIssue(line, f"unrecognised send_date {str(raw_date)[:40]!r}", "warning"))
    display = extra.get("display_text")
    image = extra.get("image")
    title = obj.get("title")
    kept = {k: v for k, v in obj.items() if k not in _KNOWN_KEYS}
    if extra:
        kept["extra"] = extra
    message = Message(
        index=index,
        line=line,
        name=name,
        text=text,
        kind=kind,
        hidden=hidden,
        send_date=send_date,
        send_date_raw=raw_date,
        swipes=swipes,
        swipe_id=swipe_id,
        avatar=avatar_file(obj.get("original_avatar")) or avatar_file(obj.get("force_avatar")),
        display_text=coerce_text(display) or None,
        image=image if isinstance(image, str) and image else None,
        title=title if isinstance(title, str) and title else None,
        extra=kept,
    )
    return message, issues


def _decode(raw: bytes | str, line: int) -> tuple[str, ParseIssue | None]:
    if isinstance(raw, str):
        return raw, None
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        issue = ParseIssue(line, f"invalid UTF-8 at byte {exc.start}; replaced", "warning")
        return raw.decode("utf-8", errors="replace"), issue


def iter_st_chat(lines: Iterable[bytes | str], *, strict: bool = False) -> Iterator[ChatRecord]:
    """Yield the header (when present), each message and each issue, in file order.

    ``lines`` is any iterable of lines (an open binary file works). Blank lines are ignored; every
    other line that cannot be used yields a :class:`ParseIssue` naming its 1-based line number.
    """
    index = 0
    narrator_name = "System"
    first = True
    for lineno, raw in enumerate(lines, start=1):
        text, issue = _decode(raw, lineno)
        if lineno == 1 and text.startswith("\ufeff"):
            text = text[1:]
        stripped = text.strip()
        if not stripped:
            continue
        found: list[ParseIssue] = [issue] if issue else []
        try:
            obj = json.loads(stripped)
        except (ValueError, RecursionError) as exc:
            obj = None
            found.append(ParseIssue(lineno, f"not valid JSON: {exc}", "skipped", stripped[:80]))
        record: ChatHeader | Message | None = None
        if obj is not None and not isinstance(obj, dict):
            found.append(ParseIssue(lineno, f"expected an object, got {type(obj).__name__}", "skipped", stripped[:80]))
        elif isinstance(obj, dict):
            if is_header(obj):
                if first:
                    record = header_from_object(obj, lineno)
                    name = record.metadata.get("narrator_name")
                    if isinstance(name, str) and name.strip():
                        narrator_name = name.strip()
                else:
                    found.append(
                        ParseIssue(
                            lineno, "object without mes/is_user/is_system after line 1", "skipped", stripped[:80]
                        )
                    )
            else:
                record, warnings = message_from_object(obj, index=index, line=lineno, narrator_name=narrator_name)
                found.extend(warnings)
                index += 1
        first = False
        for item in found:
            if strict and item.severity == "skipped":
                raise Unprocessable(
                    f"line {item.line}: {item.message}", field=f"line {item.line}", code="malformed_chat"
                )
            yield item
        if record is not None:
            yield record
