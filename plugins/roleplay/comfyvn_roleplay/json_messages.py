"""Streaming parser for JSON message arrays (``[{name|speaker|role, text|mes|content}, …]``).

Covers OpenAI-style ``role``/``content`` (content may be a list of parts), SillyTavern-shaped
objects inside an array, and a wrapper object ``{"messages": [...]}``. The array is read element
by element with :meth:`json.JSONDecoder.raw_decode` over a sliding buffer, so a large export is
never held as one Python structure.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import IO, Any

from .models import ChatHeader, Kind, Message, ParseIssue
from .st_chat import classify, coerce_flag, coerce_text, header_from_object, is_header, message_from_object

__all__ = ["iter_json_array", "iter_json_messages", "message_from_generic"]

_CHUNK = 1 << 16
_WRAPPER_KEYS = ("messages", "chat", "conversation", "turns", "log")
_ROLE_KIND = {
    "user": Kind.USER,
    "human": Kind.USER,
    "assistant": Kind.CHARACTER,
    "model": Kind.CHARACTER,
    "bot": Kind.CHARACTER,
    "char": Kind.CHARACTER,
    "character": Kind.CHARACTER,
    "narrator": Kind.NARRATOR,
    "system": Kind.SYSTEM,
    "developer": Kind.SYSTEM,
    "tool": Kind.SYSTEM,
}
_WS = " \t\r\n"


class _Reader:
    """A text buffer over a file-like object or an iterable of chunks, refilled on demand."""

    def __init__(self, source: IO[str] | IO[bytes] | Iterable[str | bytes]) -> None:
        if hasattr(source, "read"):
            reader = source
            self._chunks: Iterator[str | bytes] = iter(lambda: reader.read(_CHUNK), reader.read(0))
        else:
            self._chunks = iter(source)
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.consumed = 0  # characters dropped from the front, for offsets in reports
        self._pending = b""

    def fill(self) -> bool:
        if self.eof:
            return False
        for chunk in self._chunks:
            if isinstance(chunk, bytes):
                data = self._pending + chunk
                try:
                    text = data.decode("utf-8")
                    self._pending = b""
                except UnicodeDecodeError as exc:
                    # A multi-byte character may straddle two chunks; keep its head for later.
                    if exc.start >= len(data) - 3 and exc.reason == "unexpected end of data":
                        text, self._pending = data[: exc.start].decode("utf-8", "replace"), data[exc.start :]
                    else:
                        text, self._pending = data.decode("utf-8", "replace"), b""
            else:
                text = chunk
            if not text:
                continue
            self.consumed += self.pos
            self.buf = self.buf[self.pos :] + text
            self.pos = 0
            return True
        if self._pending:
            self.buf = self.buf[self.pos :] + self._pending.decode("utf-8", "replace")
            self.consumed += self.pos
            self.pos, self._pending = 0, b""
            return True
        self.eof = True
        return False

    def skip_ws(self) -> str:
        """The next non-blank character (not consumed), or "" at the end."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WS:
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return ""


def iter_json_array(source: IO[str] | IO[bytes] | Iterable[str | bytes]) -> Iterator[tuple[int, Any] | ParseIssue]:
    """Yield ``(element_index, value)`` for each element of a top-level JSON array.

    A top-level object is yielded whole as element 0 (callers unwrap ``{"messages": […]}``).
    Syntax errors yield one :class:`ParseIssue` (``line`` is the element index + 1) and stop.
    """
    decoder = json.JSONDecoder()
    reader = _Reader(source)
    head = reader.skip_ws()
    if head == "\ufeff":
        reader.pos += 1
        head = reader.skip_ws()
    if head == "{":
        while reader.fill():
            pass
        try:
            yield 0, json.loads(reader.buf[reader.pos :])
        except (ValueError, RecursionError) as exc:
            yield ParseIssue(1, f"not valid JSON: {exc}")
        return
    if head != "[":
        yield ParseIssue(1, "expected a JSON array or object" if head else "empty input")
        return
    reader.pos += 1
    index = 0
    while True:
        nxt = reader.skip_ws()
        if nxt == "]":
            return
        if index and nxt == ",":
            reader.pos += 1
            nxt = reader.skip_ws()
        if not nxt:
            yield ParseIssue(index + 1, "unexpected end of input inside the array")
            return
        while True:
            try:
                value, end = decoder.raw_decode(reader.buf, reader.pos)
            except json.JSONDecodeError as exc:
                # Either the element is cut by the buffer edge (read more) or it is really broken.
                if reader.fill():
                    continue
                yield ParseIssue(index + 1, f"not valid JSON at element {index}: {exc.msg}")
                return
            except RecursionError:
                yield ParseIssue(index + 1, f"element {index} nests too deeply")
                return
            # A number at the buffer edge may continue in the next chunk.
            if end >= len(reader.buf) and not reader.eof and isinstance(value, int | float) and reader.fill():
                continue
            break
        reader.pos = end
        yield index, value
        index += 1
        if reader.skip_ws() not in (",", "]"):
            yield ParseIssue(index + 1, "expected ',' or ']' after an array element")
            return


def _content_text(value: Any) -> str:
    if isinstance(value, list):
        parts = []
        for part in value:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "\n".join(parts)
    return coerce_text(value)


def message_from_generic(
    obj: dict[str, Any], *, index: int, line: int, user_name: str, character_name: str
) -> tuple[Message, list[ParseIssue]]:
    """Build a message from ``{name|speaker|role, text|mes|content}`` (SillyTavern shape delegated)."""
    if "mes" in obj or "is_user" in obj:
        return message_from_object(obj, index=index, line=line)
    name = next(
        (coerce_text(obj[k]) for k in ("name", "speaker", "author", "character") if isinstance(obj.get(k), str)), ""
    )
    role = obj.get("role")
    kind = _ROLE_KIND.get(role.strip().lower(), Kind.CHARACTER) if isinstance(role, str) else Kind.CHARACTER
    if coerce_flag(obj.get("is_narrator")):
        kind = Kind.NARRATOR
    if not name:
        name = {Kind.USER: user_name, Kind.CHARACTER: character_name}.get(kind, "")
        if not name and isinstance(role, str) and kind is Kind.CHARACTER:
            name = role
    elif kind is Kind.CHARACTER and role is None:
        kind, _ = classify(name, False, False, {})
    text = next((_content_text(obj[k]) for k in ("text", "mes", "content", "message") if k in obj), "")
    issues = (
        []
        if any(k in obj for k in ("text", "mes", "content", "message"))
        else [ParseIssue(line, "message has no text/mes/content; taken as empty", "warning")]
    )
    extra = {k: v for k, v in obj.items() if k not in ("name", "speaker", "role", "text", "mes", "content")}
    return Message(index=index, line=line, name=name.strip(), text=text, kind=kind, extra=extra), issues


def iter_json_messages(
    source: IO[str] | IO[bytes] | Iterable[str | bytes],
    *,
    user_name: str = "User",
    character_name: str = "Assistant",
) -> Iterator[ChatHeader | Message | ParseIssue]:
    """Yield messages of a JSON message array (or ``{"messages": [...]}``); issues for bad elements."""
    position = 0
    for item in iter_json_array(source):
        if isinstance(item, ParseIssue):
            yield item
            continue
        element, value = item
        values: Iterable[Any] = [value]
        wrapped = False
        if isinstance(value, dict) and element == 0:
            inner = next((value[k] for k in _WRAPPER_KEYS if isinstance(value.get(k), list)), None)
            if inner is not None:
                values, wrapped = inner, True
        for offset, obj in enumerate(values):
            line = (offset if wrapped else element) + 1
            if not isinstance(obj, dict):
                yield ParseIssue(line, f"element {line - 1} is not an object", "skipped", str(obj)[:80])
                continue
            if position == 0 and is_header(obj) and ("user_name" in obj or "chat_metadata" in obj):
                yield header_from_object(obj, line)
                continue
            message, issues = message_from_generic(
                obj, index=position, line=line, user_name=user_name, character_name=character_name
            )
            yield from issues
            yield message
            position += 1
