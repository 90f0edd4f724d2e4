"""The import's fast lane: the commonest SillyTavern message, from its decoded line to placed nodes.

Most lines of a chat are a user or character message of prose, ``*actions*`` and blank lines, with
SillyTavern's own date, no flag set and nothing in ``extra`` that changes the story. For those,
:meth:`FastLane.take` does in one call what ``message_from_object``, ``SceneBuilder.add`` and
``markup.render`` do together, without making the :class:`~comfyvn_roleplay.models.Message`, the
segments or the lists in between. A message it is not sure of — a flag, a quote, a macro, an OOC
marker, markup beyond paired asterisks, another date format, sprites to stage — it declines before
changing anything, and the caller takes the general way. The tests import generated chats both
ways and compare the files byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ._inline_scan import _BLOCK_FIRST, _BULLET_OR_RULE, _flanks
from .convert import SceneBuilder, is_scene_break
from .dates import parse_send_date
from .models import Kind, Message
from .st_chat import UI_SYSTEM_NAME, avatar_file

__all__ = ["FastLane"]

# Beyond ASCII, what needs the general renderer: quote characters (speech inside an action) and
# the noncharacters it strips.
_NOT_PLAIN = re.compile('["\u201c\u201d\u00ab\u00bb\u300c\u300d\u300e\u300f\u201e\ufdd0-\ufdef\ufffe\uffff]')
# Keys of `extra` that change the story (kind, shown text, picture, background).
_EXTRA_DECLINED = frozenset({"type", "display_text", "image", "background", "bg"})
# A paragraph's first character that may open a block construct (or is whitespace markdown-it
# versions trim differently); past ASCII, decimal digits and spaces are tested by method.
_RISKY_FIRST = frozenset(_BLOCK_FIRST | set("0123456789 \t\n\v\f\r\x1c\x1d\x1e\x1f"))
_NOT_A_DAY = (0, 0, 0)
Sink = Callable[[dict[str, Any]], None]
Progress = Callable[[int], None]


def _day(text: str) -> tuple[int, int, int]:
    """The (year, month, day) of ``"2024-7-12"`` as `parse_send_date` reads it before a clock, or
    `_NOT_A_DAY` (asked once per day of a chat)."""
    moment = parse_send_date(f"{text}@00h00m00s")
    return _NOT_A_DAY if moment is None else (moment.year, moment.month, moment.day)


class FastLane:
    """Adds plain messages straight from their decoded lines to a :class:`SceneBuilder`.

    It takes nothing until :meth:`bind` names the builder and where closed scenes go.
    """

    def __init__(self) -> None:
        self.builder: SceneBuilder | None = None
        self._sink: Sink | None = None
        self._progress: Progress | None = None
        # (is_user, name, avatar) → (character id, whether it has sprites): a chat has few speakers.
        self._speakers: dict[tuple[bool, str, str | None], tuple[str, bool]] = {}
        self._days: dict[str, tuple[int, int, int]] = {}
        self._narrators: dict[str, bool] = {}  # SceneBuilder._names_narrator's answers
        # before → after → (can open, can close) of an asterisk between them (_inline_scan._flanks)
        self._flanks: dict[str, dict[str, tuple[bool, bool]]] = {}

    def bind(self, builder: SceneBuilder, sink: Sink, progress: Progress | None = None) -> bool:
        """Take messages for ``builder`` from now on, passing each scene they close to ``sink`` and
        each message's line to ``progress``; False (and nothing is taken) for options the lane does
        not cover: unquoted speech, actions kept in speech, swipes as choices."""
        detail = builder.detail
        if not detail.actions_as_narration or detail.unquote or builder._swipe_choices:
            return False
        self.builder, self._sink, self._progress = builder, sink, progress
        self._split_paragraphs = detail.split_paragraphs
        self._ooc = builder._drop_ooc
        self._cap = builder._cap
        return True

    def take(self, obj: dict[str, Any], index: int, line: int) -> bool:
        """Add the message decoded (by orjson: it holds no lone surrogate) as ``obj``, as the general
        way would, and return True; or return False having changed nothing that way would not."""
        builder = self.builder
        if builder is None:
            return False
        # Written for Cython, which compiles this module where it can (see the package's setup.py):
        # dict and str methods called on the objects themselves, the substring tests spelled out.
        name = obj.get("name")
        mes = obj.get("mes")
        if type(name) is not str or type(mes) is not str or not mes or "ooc" in obj:
            return False
        is_user = obj.get("is_user")
        if is_user is not True and is_user is not False and is_user is not None:
            return False
        hidden = obj.get("is_system")
        if hidden is not False and hidden is not None:
            return False
        extra = obj.get("extra")
        if extra is not None and (type(extra) is not dict or not _EXTRA_DECLINED.isdisjoint(extra)):
            return False
        swipe_id = obj.get("swipe_id")
        if swipe_id is not None:
            swipes = obj.get("swipes")
            if type(swipe_id) is not int or not 0 <= swipe_id < (len(swipes) if type(swipes) is list else 0):
                return False
        speaker_name: str = name.strip()
        if not speaker_name or speaker_name == UI_SYSTEM_NAME:
            return False
        readable, moment = self._moment(obj.get("send_date"))
        if not readable:
            return False  # the general way warns about it
        text: str = mes
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if (
            "\\" in text
            or "`" in text
            or "_" in text
            or "~" in text
            or "&" in text
            or "**" in text
            or "\0" in text
            or "{" in text
            or "<" in text
            or '"' in text
        ):
            return False  # inline syntax but lone asterisks, a NUL, a macro, a tag, a quote
        if not text.isascii() and _NOT_PLAIN.search(text):
            return False
        if self._ooc and ("((" in text or "ooc" in text.lower()):
            return False
        first = text[0]
        if (first.isspace() or first in "-*=") and is_scene_break(text):
            return False
        if not is_user:
            narrator = self._narrators.get(speaker_name)
            if narrator is None:
                narrator = builder._names_narrator(speaker_name)
                if len(self._narrators) < 4096:  # a chat has few speakers; the bound is for odd ones
                    self._narrators[speaker_name] = narrator
            if narrator:
                return False
        nodes = self._nodes(text, line, index)
        if not nodes:
            return False
        # All the general way does before naming the speaker is done; from here on it does the same,
        # so a speaker met here first joins the cast at the same place.
        if "original_avatar" in obj or "force_avatar" in obj:
            key = (bool(is_user), speaker_name, self._avatar(obj))
        else:
            key = (bool(is_user), speaker_name, None)
        found = self._speakers.get(key)
        if found is None:
            found = self._speaker(key, line, index, text)
        if found[1]:
            return False  # sprites to stage: the general way
        speaker = found[0]
        for node in nodes:
            if node["type"] == "dialogue":
                node["speaker"] = speaker
        builder.stats["messages"] += 1
        scene = builder._scene
        if scene is None:
            reason: str | None = "start"
        elif builder._break:
            reason, builder._break = builder._break, None
        else:
            reason = builder._later(moment)
        if reason is not None:
            builder._new_scene(reason)
            scene = builder._scene
        assert scene is not None
        scene_nodes = scene.nodes
        count = len(scene_nodes)
        if builder._held is not None or not count or count + len(nodes) > self._cap:
            for closed in builder._place(nodes, line):
                self._sink(closed)  # type: ignore[misc]  # bound with the builder
        else:
            # SceneBuilder._append for the usual case: the open scene has room and none is held.
            ids = builder._node_ids
            for number in range(len(ids) + 1, count + len(nodes) + 1):
                ids.append(f"n{number:04d}")
            for tail in builder._pending:
                tail["choices"] = [{"target": ids[count]}]
            previous = None
            for node in nodes:
                node_id = node["id"] = ids[count]
                count += 1
                if previous is not None:
                    previous["choices"] = [{"target": node_id}]
                previous = node
            scene_nodes.extend(nodes)
            builder._pending = [nodes[-1]]
            scene.last_line = line
        if self._progress is not None:
            self._progress(line)
        return True

    def _moment(self, value: Any) -> tuple[bool, datetime | None]:
        """Whether ``value`` is no date or a readable one, and ``parse_send_date(value)``; SillyTavern's
        own format ("2024-7-12@01h31m37s") is read character by character."""
        if type(value) is str:
            stamp: str = value
            at = stamp.find("@")
            if at > 0 and len(stamp) - at == 10:
                day = self._days.get(stamp[:at])
                if day is None:
                    day = self._days[stamp[:at]] = _day(stamp[:at]) if len(self._days) < 4096 else _NOT_A_DAY
                h1, h2, m1, m2, s1, s2 = (
                    stamp[at + 1],
                    stamp[at + 2],
                    stamp[at + 4],
                    stamp[at + 5],
                    stamp[-3],
                    stamp[-2],
                )
                if (
                    day is not _NOT_A_DAY
                    and stamp[at + 3] == "h"
                    and stamp[at + 6] == "m"
                    and stamp[-1] == "s"
                    and "0" <= h1 <= "2"
                    and "0" <= h2 <= "9"
                    and "0" <= m1 <= "5"
                    and "0" <= m2 <= "9"
                    and "0" <= s1 <= "5"
                    and "0" <= s2 <= "9"
                    and (h1 < "2" or h2 < "4")
                ):
                    hour = (ord(h1) - 48) * 10 + ord(h2) - 48
                    minute = (ord(m1) - 48) * 10 + ord(m2) - 48
                    second = (ord(s1) - 48) * 10 + ord(s2) - 48
                    return True, datetime(day[0], day[1], day[2], hour, minute, second)
        moment = parse_send_date(value)
        return moment is not None or value is None or value == "", moment

    @staticmethod
    def _avatar(obj: dict[str, Any]) -> str | None:
        raw = obj.get("original_avatar")
        avatar = avatar_file(raw) if raw is not None else None
        if avatar is None:
            raw = obj.get("force_avatar")
            avatar = avatar_file(raw) if raw is not None else None
        return avatar

    def _speaker(self, key: tuple[bool, str, str | None], line: int, index: int, text: str) -> tuple[str, bool]:
        """Name the speaker as ``Cast.speaker`` does (it may join the cast) and remember it."""
        builder = self.builder
        assert builder is not None
        is_user, name, avatar = key
        message = Message(index, line, name, text, Kind.USER if is_user else Kind.CHARACTER, avatar=avatar)
        cid = builder.cast.speaker(message)
        assert cid is not None  # users and characters always have one
        found = (cid, bool(builder.cast.characters[cid].get("sprites")))
        if len(self._speakers) < 4096:
            self._speakers[key] = found
        return found

    def _nodes(self, text: str, line: int, index: int) -> list[dict[str, Any]]:
        """The message's nodes (dialogue ones without their speaker yet); none when its text is not
        paragraphs of in-order ``*action*`` pairs, which markup._render_simple reads at once."""
        nodes: list[dict[str, Any]] = []
        speech: dict[str, Any] | None = None  # the last node, while it is speech
        block = speech_block = -1
        split_paragraphs = self._split_paragraphs
        for paragraph in text.split("\n\n") if "\n" in text else (text,):
            if not paragraph:
                continue
            first = paragraph[0]
            if (first in _RISKY_FIRST or (first > "\x7f" and (first.isdecimal() or first.isspace()))) and (
                first != "*" or paragraph[1:2] in _BULLET_OR_RULE
            ):
                return []  # may open a block construct
            if "\n" in paragraph:
                return []  # lines within a paragraph
            last = paragraph[-1]
            if last == " " or last == "\t":
                paragraph = paragraph.rstrip(" \t")
                last = paragraph[-1]
            if last.isspace():
                return []
            block += 1
            if "*" in paragraph:
                pieces = paragraph.split("*")
                if not len(pieces) % 2:
                    return []  # an unpaired asterisk
                for j in range(1, len(pieces)):
                    # The characters around the asterisk (a paragraph's ends count as spaces): one-
                    # character strings are shared by the interpreter, so the look-up makes none.
                    before = pieces[j - 1][-1] if pieces[j - 1] else " "
                    row = self._flanks.get(before)
                    if row is None:
                        row = self._flanks[before] = {}
                    after = pieces[j][0] if pieces[j] else " "
                    flanks = row.get(after)
                    if flanks is None:
                        flanks = _flanks(before + after)
                        if len(row) < 256:
                            row[after] = flanks
                    if not flanks[0 if j % 2 else 1]:
                        return []
            else:
                pieces = [paragraph]
            action = False
            for piece in pieces:
                story = piece.strip()
                if story:
                    if action:
                        speech = None
                        nodes.append(
                            {"id": "", "type": "narration", "text": story, "data": {"line": line, "message": index}}
                        )
                    elif speech is not None and not (split_paragraphs and speech_block != block):
                        speech["text"] += ("\n\n" if speech_block != block else " ") + story
                        speech_block = block
                    else:
                        speech = {
                            "id": "",
                            "type": "dialogue",
                            "speaker": "",
                            "text": story,
                            "data": {"line": line, "message": index},
                        }
                        nodes.append(speech)
                        speech_block = block
                action = not action
        return nodes
