"""Streaming parser for SillyTavern chat files (``.jsonl``, single and group chats).

One line in, at most one record out: memory stays at one line plus what the caller keeps, so a
50 MB chat is parsed in constant space. Malformed lines become :class:`ParseIssue` records with
their line number; ``strict=True`` turns the first one into an error instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import unquote

import orjson
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
_NUMBER = (int, float)
_TEXTUAL = (str, int, float)
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
    if isinstance(value, str):
        # isascii and the substring test are C scans, far cheaper than the regex and replaces.
        text: str = value
        if not text.isascii() and _SURROGATE.search(text):
            text = _SURROGATE.sub("\ufffd", text)
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        return text
    if isinstance(value, _NUMBER) and not isinstance(value, bool):
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
    etype = extra.get("type") if extra else None
    if name == UI_SYSTEM_NAME or (is_system and isinstance(etype, str) and etype in UI_SYSTEM_TYPES):
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
    # Called once per line of chats of 100,000 lines: the usual values take the shortest branch.
    # ASCII text without "\r" is what coerce_text returns unchanged, so it is not called for it.
    issues: list[ParseIssue] = []
    get = obj.get
    extra = get("extra")
    if not isinstance(extra, dict):
        if extra is not None:
            issues.append(ParseIssue(line, "`extra` is not an object; ignored", "warning"))
        extra = {}
    raw_name = get("name")
    if isinstance(raw_name, str):
        name = (raw_name if raw_name.isascii() else _SURROGATE.sub("\ufffd", raw_name)).strip()
    else:
        name = ""
    flag = get("is_user")
    is_user = flag if flag is True or flag is False else coerce_flag(flag)
    flag = get("is_system")
    kind, hidden = classify(name, is_user, flag if flag is True or flag is False else coerce_flag(flag), extra)
    if not name:
        name = narrator_name if kind is Kind.NARRATOR else ""
    mes = get("mes")
    if mes is not None and not isinstance(mes, _TEXTUAL):
        issues.append(ParseIssue(line, "`mes` is not text; taken as empty", "warning"))
    text = mes if type(mes) is str and mes.isascii() and "\r" not in mes else coerce_text(mes)

    swipes: tuple[str, ...] = ()
    raw_swipes = get("swipes")
    if isinstance(raw_swipes, list):
        swipes = tuple([s if type(s) is str and s.isascii() and "\r" not in s else coerce_text(s) for s in raw_swipes])
    swipe_id = get("swipe_id")
    if swipe_id is not None and (
        not isinstance(swipe_id, int) or isinstance(swipe_id, bool) or not 0 <= swipe_id < len(swipes)
    ):
        if swipes:
            issues.append(ParseIssue(line, f"swipe_id {swipe_id!r} out of range; using `mes`", "warning"))
        swipe_id = None
    if not text and swipe_id is not None:
        text = swipes[swipe_id]

    raw_date = get("send_date")
    send_date = parse_send_date(raw_date)
    if send_date is None and raw_date is not None and raw_date != "":
        issues.append(ParseIssue(line, f"unrecognised send_date {str(raw_date)[:40]!r}", "warning"))
    if extra:
        display = extra.get("display_text")
        display_text = (coerce_text(display) or None) if display is not None else None
        image = extra.get("image")
        if not (isinstance(image, str) and image):
            image = None
    else:
        display_text = image = None
    title = get("title")
    kept = {} if obj.keys() <= _KNOWN_KEYS else {k: v for k, v in obj.items() if k not in _KNOWN_KEYS}
    if extra:
        kept["extra"] = extra
    avatar = get("original_avatar")
    avatar = avatar_file(avatar) if avatar is not None else None
    if avatar is None:
        forced = get("force_avatar")
        avatar = avatar_file(forced) if forced is not None else None
    message = Message(
        # index, line, name, text, kind, hidden, send_date, send_date_raw, swipes, swipe_id, avatar,
        # display_text, image, title, extra: in field order (positional arguments bind fastest).
        index,
        line,
        name,
        text,
        kind,
        hidden,
        send_date,
        raw_date,
        swipes,
        swipe_id,
        avatar,
        display_text,
        image,
        title if isinstance(title, str) and title else None,
        kept,
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


_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_INTEGER = b"0" * 19  # 19 digits in a row may be an integer beyond 64 bits


def _orjson_message(raw: bytes | str) -> dict[str, Any] | None:
    """A message line as orjson decodes it; None for a line it refuses, a header, or a str line.

    orjson decodes several times faster and agrees with the json module on every line it accepts but
    one kind: integers beyond 64 bits become floats (:func:`_exact` finds the lines that may hold
    one). What orjson refuses (blank lines, invalid UTF-8, a BOM, NaN, lone surrogates, deep
    nesting) and headers go the json module's way, which reports them as before.
    """
    if type(raw) is not bytes:
        return None
    try:
        obj = orjson.loads(raw)
    except ValueError:  # orjson.JSONDecodeError is one
        return None
    if type(obj) is dict and ("mes" in obj or "is_user" in obj or "is_system" in obj):
        return obj
    return None


def _exact(raw: bytes) -> bool:
    """Whether orjson's reading of ``raw`` is the json module's: no 19 digits in a row, which may be
    an integer beyond 64 bits."""
    return _LONG_INTEGER not in raw.translate(_DIGITS_AS_ZERO)


def iter_st_chat(
    lines: Iterable[bytes | str],
    *,
    strict: bool = False,
    take: Callable[[dict[str, Any], int, int], bool] | None = None,
) -> Iterator[ChatRecord]:
    """Yield the header (when present), each message and each issue, in file order.

    ``lines`` is any iterable of lines (an open binary file works). Blank lines are ignored; every
    other line that cannot be used yields a :class:`ParseIssue` naming its 1-based line number.
    ``take(obj, index, line)`` is offered each message line orjson decodes: when it returns true it
    has used the message, which is then not yielded (the importer's fast lane, `lane.FastLane`).
    Integers beyond 64 bits are floats in ``obj``: ``take`` must decline a message where that
    would change what it makes.
    """
    index = 0
    narrator_name = "System"
    first = True
    for lineno, raw in enumerate(lines, start=1):
        obj = _orjson_message(raw)
        if obj is not None:
            if take is not None and take(obj, index, lineno):
                index += 1
                first = False
                continue
            if not _exact(raw):  # type: ignore[arg-type]  # bytes when obj
                obj = None
        if obj is not None:
            message, warnings = message_from_object(obj, index=index, line=lineno, narrator_name=narrator_name)
            index += 1
            first = False
            yield from warnings
            yield message
            continue
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
