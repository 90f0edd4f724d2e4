"""Turn a stream of parsed messages into scenario-schema scenes, one closed scene at a time.

The builder keeps only the scene being filled and the one before it (whose last nodes still need
their jump to the next scene), so memory stays flat however long the chat is. Each message
becomes dialogue and/or narration nodes linked in order by single choices; swipes optionally
become a choice point whose branches meet again at the next message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any
from urllib.parse import unquote

import attrs
from comfyvn.errors import ComfyVNError

from .cast import Cast
from .dates import to_comparable
from .markup import plain_text, render
from .models import Kind, Message, ParseIssue, SceneBreak
from .textproc import guess_expression, resolve_macros, split_ooc, tidy

__all__ = ["DETAIL_LEVELS", "Detail", "ImportOptions", "SceneBuilder", "background_path", "choice_label"]

# Captions of the menus made from swipes (--swipes-as-choices).
SWIPES_OPENING = "How does the story begin?"
SWIPES_LATER = "What happens next?"


@attrs.frozen
class Detail:
    """What a detail level does (spec: Low/Medium/High drive cleanup and segmentation)."""

    actions_as_narration: bool
    max_scene_nodes: int
    time_gap_hours: float | None
    split_paragraphs: bool
    unquote: bool
    expression_cues: bool


DETAIL_LEVELS = {
    # low: keep messages whole, split scenes only at explicit breaks, backgrounds and a high cap.
    "low": Detail(False, 400, None, False, False, False),
    "medium": Detail(True, 150, 6.0, False, False, True),
    # high: one node per paragraph, quotes dropped, tighter scenes.
    "high": Detail(True, 60, 2.0, True, True, True),
}


def _level(_: Any, __: Any, value: str) -> None:
    if value not in DETAIL_LEVELS:
        raise ComfyVNError(f"detail_level must be one of low, medium, high (got {value!r})", field="detail_level")


def _choice(allowed: tuple[str, ...]) -> Callable[[Any, Any, str], None]:
    def check(_: Any, attribute: Any, value: str) -> None:
        if value not in allowed:
            raise ComfyVNError(
                f"{attribute.name} must be one of {', '.join(allowed)} (got {value!r})", field=attribute.name
            )

    return check


def _positive(_: Any, attribute: Any, value: float | None) -> None:
    # Also bounds the value: timedelta(hours=inf) would overflow mid-import.
    if value is not None and not 0 < value <= 1_000_000:
        raise ComfyVNError(f"{attribute.name} must be between 0 and 1000000", field=attribute.name)


@attrs.frozen
class ImportOptions:
    """Conversion options; ``None`` fields take the detail level's default."""

    title: str = ""
    detail_level: str = attrs.field(default="medium", validator=_level)
    actions_as_narration: bool | None = None
    ooc: str = attrs.field(default="drop", validator=_choice(("keep", "drop")))
    hidden: str = attrs.field(default="keep", validator=_choice(("keep", "drop")))
    swipes_as_choices: bool = False
    max_scene_nodes: int | None = attrs.field(default=None, validator=_positive)
    time_gap_hours: float | None = attrs.field(default=None, validator=_positive)
    user_name: str | None = None
    use_display_text: bool = False
    strict: bool = False

    @property
    def detail(self) -> Detail:
        """The detail level with this import's overrides applied."""
        base = DETAIL_LEVELS[self.detail_level]
        return attrs.evolve(
            base,
            actions_as_narration=base.actions_as_narration
            if self.actions_as_narration is None
            else self.actions_as_narration,
            max_scene_nodes=self.max_scene_nodes or base.max_scene_nodes,
            time_gap_hours=self.time_gap_hours if self.time_gap_hours is not None else base.time_gap_hours,
        )


_CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)]*?))\s*\)""")
_BREAK_RUNS = frozenset({"---", "***", "==="})
Classifier = Callable[[str, str, Sequence[str]], "str | None"]
_NO_ENTRY: dict[str, Any] = {}  # read-only default for a character id not in the cast


def choice_label(text: str, limit: int = 60) -> str:
    """The start of ``text`` as a menu button's label: whole words up to ``limit`` characters, then "…"
    (a word longer than half the limit is cut inside, rather than leaving a label of one short fragment)."""
    if len(text) <= limit:
        return text
    space = text.rfind(" ", 0, limit + 1)
    head = text[:space] if space >= limit // 2 else text[:limit]
    return head.rstrip(" ,;:-\u2014\u2013") + "…"  # no trailing comma, colon or dash before the ellipsis


def is_scene_break(text: str) -> bool:
    """Whether a message is only a scene-break rule: three or more of one of ``-``, ``*``, ``=``
    (whitespace around allowed)."""
    # The regex ^\s*(?:-{3,}|\*{3,}|={3,})\s*$ without the regex machinery (str.strip drops what \s matches).
    rule = text.strip()
    return rule[:3] in _BREAK_RUNS and not rule.strip(rule[0])


def background_path(value: Any) -> str | None:
    """``custom_background`` (CSS ``url("backgrounds/x.jpg")`` or a bare path) → ``backgrounds/x.jpg``."""
    if not isinstance(value, str) or not value.strip():
        return None
    m = _CSS_URL.search(value)
    path = (next(g for g in m.groups() if g is not None) if m else value).strip().replace("\\", "/")
    path = unquote(path).lstrip("/")
    return path or None


@attrs.define
class _Scene:
    id: str
    number: int
    nodes: list[dict[str, Any]] = attrs.field(factory=list)
    background: str | None = None
    reason: str = "start"
    first_line: int | None = None
    last_line: int | None = None


class SceneBuilder:
    """Feed messages and breaks with :meth:`add`; closed scenes come back ready to write."""

    def __init__(
        self,
        options: ImportOptions,
        cast: Cast,
        *,
        main_character: str = "",
        background: str | None = None,
        classify: Classifier | None = None,
        narrator_name: str | None = None,
    ) -> None:
        self.options = options
        self.detail = options.detail
        self.cast = cast
        self.main_character = main_character
        self.classify = classify
        self.stats: dict[str, int] = {
            "messages": 0,
            "nodes": 0,
            "scenes": 0,
            "hidden": 0,
            "hidden_dropped": 0,
            "system": 0,
            "empty": 0,
            "ooc_dropped": 0,
            "ooc_messages": 0,
            "swipe_choices": 0,
            "narrator_messages": 0,
        }
        # Speakers whose messages are narration, not a character (sillytavern.md: narrator_name).
        self.narrator_names = {"narrator", "system"} | ({narrator_name.strip().lower()} if narrator_name else set())
        #: out-of-character asides kept out of the story: ``{line, message, speaker, text}``.
        self.ooc: list[dict[str, Any]] = []
        #: warnings about text dropped on the way (HTML-like tags, macros that cannot be evaluated).
        self.issues: list[ParseIssue] = []
        self._scene_count = 0
        self._scene: _Scene | None = None
        self._held: _Scene | None = None
        self._pending: list[dict[str, Any]] = []
        self._break: str | None = None
        self._background = background
        self._last_date: datetime | None = None
        self.scene_ids: list[str] = []
        # The options as the per-message path reads them (it runs once per line of a long chat).
        detail = self.detail
        self._cap = detail.max_scene_nodes
        self._gap = timedelta(hours=detail.time_gap_hours) if detail.time_gap_hours else None
        self._drop_ooc = options.ooc == "drop"
        self._drop_hidden = options.hidden == "drop"
        self._swipe_choices = options.swipes_as_choices
        self._use_display = options.use_display_text
        self._node_ids: list[str] = []  # "n0001", "n0002"… made once
        self._narrator_of: dict[str, bool] = {}  # speaker name → whether it names the narrator

    # -- scene bookkeeping -------------------------------------------------------------------
    def _new_scene(self, reason: str) -> None:
        if self._scene is not None and not self._scene.nodes:
            # Nothing was written to the open scene (a break right after a break): reuse it.
            self._scene.reason, self._scene.background = reason, self._background
            return
        if self._scene is not None:
            self._held = self._scene
        self._scene_count += 1
        sid = f"scene_{self._scene_count:04d}"
        self._scene = _Scene(id=sid, number=self._scene_count, background=self._background, reason=reason)

    def _append(self, nodes: list[dict[str, Any]], line: int) -> dict[str, Any] | None:
        """Link ``nodes`` (a chain) after the pending tails; the first node releases a held scene,
        which is returned (ready to write)."""
        scene = self._scene
        assert scene is not None
        scene_nodes = scene.nodes
        ids = self._node_ids
        if len(scene_nodes) + len(nodes) > len(ids):
            ids.extend(f"n{n:04d}" for n in range(len(ids) + 1, len(scene_nodes) + len(nodes) + 1))
        for node in nodes:
            node["id"] = ids[len(scene_nodes)]
            scene_nodes.append(node)
        target = nodes[0]["id"]
        held = self._held
        if held is not None:
            target = f"{scene.id}:{target}"
        for tail in self._pending:
            tail["choices"] = [{"target": target}]
        closed = None
        if held is not None:
            closed = self._render(held)
            self._held = None
        if len(nodes) > 1:
            for a, b in pairwise(nodes):
                a["choices"] = [{"target": b["id"]}]
        self._pending = [nodes[-1]]
        scene.first_line = scene.first_line or line
        scene.last_line = line
        return closed

    def _place(self, nodes: list[dict[str, Any]], line: int) -> list[dict[str, Any]]:
        """Append a chain of nodes, continuing in a new scene wherever the node cap would be passed;
        return the scenes this closed."""
        cap = self._cap
        if len(nodes) <= cap:  # the usual case: the loop below, once, without its lists
            scene = self._scene
            assert scene is not None
            if scene.nodes and len(scene.nodes) + len(nodes) > cap:
                self._new_scene("max_length")
            released = self._append(nodes, line)
            return [] if released is None else [released]
        closed: list[dict[str, Any]] = []
        for start in range(0, len(nodes), cap):
            chunk = nodes[start : start + cap]
            scene = self._scene
            assert scene is not None
            if scene.nodes and len(scene.nodes) + len(chunk) > cap:
                self._new_scene("max_length")
            released = self._append(chunk, line)
            if released is not None:
                closed.append(released)
        return closed

    def _render(self, scene: _Scene) -> dict[str, Any]:
        self.stats["scenes"] += 1
        self.stats["nodes"] += len(scene.nodes)
        self.scene_ids.append(scene.id)
        title = self.options.title or "Imported chat"
        out: dict[str, Any] = {
            "id": scene.id,
            "title": f"{title} — {scene.number}",
            "start": scene.nodes[0]["id"],
            "nodes": scene.nodes,
            "metadata": {
                "roleplay": {"reason": scene.reason, "first_line": scene.first_line, "last_line": scene.last_line}
            },
        }
        if scene.background:
            out["background"] = scene.background
        return out

    # -- messages ----------------------------------------------------------------------------
    def _text_of(self, message: Message, speaker: str | None) -> str:
        text = message.display_text if self._use_display and message.display_text else message.text
        return self._macros(text, speaker, message)

    def _story_text(self, message: Message, speaker: str | None) -> tuple[str, list[str]]:
        """The text a message's nodes are made of, and the OOC asides cut out of it (kept)."""
        # _text_of, _without_ooc and _keep_ooc in one call, each skipped when it has nothing to do.
        text = message.display_text if self._use_display and message.display_text else message.text
        if "{" in text or "<" in text:
            text = self._macros(text, speaker, message)
        if not self._drop_ooc or ("((" not in text and "ooc" not in text.lower()):
            return text, []
        text, asides = split_ooc(text)
        if asides:
            self._keep_ooc(message, asides)
        return text, asides

    def _macros(self, text: str, speaker: str | None, message: Message) -> str:
        if "{" not in text and "<" not in text:
            return text  # no macro: what resolve_macros returns at once
        char = self.cast.characters[speaker]["name"] if speaker and message.kind is Kind.CHARACTER else None
        unknown: list[str] = []
        text = resolve_macros(text, self.cast.user_name, char or self.main_character or "", unknown=unknown)
        if unknown:
            names = ", ".join(sorted({"{{" + u + "}}" for u in unknown}))
            self.issues.append(ParseIssue(message.line, f"removed macros that cannot be evaluated: {names}", "warning"))
        return text

    def _keep_ooc(self, message: Message, asides: Sequence[str]) -> None:
        for aside in asides:
            self.ooc.append({"line": message.line, "message": message.index, "speaker": message.name, "text": aside})
        self.stats["ooc_dropped"] += len(asides)

    def _without_ooc(self, text: str) -> tuple[str, list[str]]:
        return split_ooc(text) if self._drop_ooc else (text, [])

    def _nodes_for_text(
        self, text: str, speaker: str | None, message: Message, asides: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        line, index = message.line, message.index
        extra_data: dict[str, Any] = {}
        if message.hidden:
            extra_data["hidden"] = True
        if asides:
            extra_data["ooc"] = list(asides)
        detail = self.detail
        segments, dropped_tags = render(text, split_actions=detail.actions_as_narration)
        if dropped_tags:
            tags = ", ".join(dropped_tags[:8])
            self.issues.append(ParseIssue(line, f"dropped HTML-like tags: {tags}", "warning"))
        # Speech runs of one block are joined (of all blocks, unless paragraphs are split).
        parts: list[list[str]] = []
        last_block = -1
        split_paragraphs = detail.split_paragraphs
        for kind, seg_text, block in segments:
            if (
                parts
                and kind == "speech"
                and parts[-1][0] == "speech"
                and not (split_paragraphs and block != last_block)
            ):
                parts[-1][1] += ("\n\n" if block != last_block else " ") + seg_text
            else:
                parts.append([kind, seg_text])
            last_block = block
        nodes: list[dict[str, Any]] = []
        unquote_speech = detail.unquote
        for kind, part in parts:
            # Segment texts are tidy and not empty (markup.Segment), and so is a blank line or a
            # space between two: only unquoting has work left to do.
            clean = tidy(part, unquote=True) if unquote_speech and kind == "speech" else part
            if not clean:
                continue
            # "id" first so the written JSON reads top-down; _append fills it in.
            if speaker is None or kind == "action":
                node: dict[str, Any] = {"id": "", "type": "narration", "text": clean}
            else:
                node = {"id": "", "type": "dialogue", "speaker": speaker, "text": clean}
            node["data"] = (
                {"line": line, "message": index, **extra_data} if extra_data else {"line": line, "message": index}
            )
            nodes.append(node)
        if speaker is not None and self.cast.characters.get(speaker, _NO_ENTRY).get("sprites"):
            self._stage(nodes, speaker, text)
        return nodes

    def message_nodes(self, message: Message) -> list[dict[str, Any]]:
        """The nodes one message becomes, not placed in any scene (a card's texts use this)."""
        speaker = self.cast.speaker(message)
        text, asides = self._without_ooc(self._text_of(message, speaker))
        self._keep_ooc(message, asides)
        return self._nodes_for_text(text, speaker, message, asides)

    def _stage(self, nodes: list[dict[str, Any]], speaker: str, text: str) -> None:
        """Show the speaker's sprite on its dialogue nodes (for a speaker that has sprites)."""
        labels = self.cast.labels(speaker)
        expression = None
        if self.classify is not None:
            expression = self.classify(speaker, text, labels)
        if expression is None and self.detail.expression_cues:
            expression = guess_expression(text, labels)
        if expression not in labels:
            expression = self.cast.characters[speaker].get("default_expression")
        for node in nodes:
            if node["type"] == "dialogue":
                node["characters"] = [{"id": speaker, "expression": expression}]

    def _segment(self, message: Message) -> str | None:
        if self._scene is None:
            return "start"
        if self._break:
            reason, self._break = self._break, None
            return reason
        extra = message.extra.get("extra")
        if extra and isinstance(extra, dict):
            # background_path of a false value is None: only a set value can change the background.
            value = extra.get("background") or extra.get("bg")
            bg = background_path(value) if value else None
            if bg and bg != self._background:
                self._background = bg
                return "background"
        return self._later(message.send_date)

    def _later(self, moment: datetime | None) -> str | None:
        """The rest of :meth:`_segment`: a time gap since the last dated message, or a full scene."""
        gap = self._gap
        if gap is not None and moment is not None:
            if moment.tzinfo is not None:
                moment = to_comparable(moment)
            if self._last_date is not None and moment - self._last_date >= gap:
                self._last_date = moment
                return "time_gap"
            self._last_date = moment
        scene = self._scene
        if scene is not None and len(scene.nodes) >= self._cap:
            return "max_length"
        return None

    def add(self, record: Message | SceneBreak) -> list[dict[str, Any]]:
        """Consume one record; return the scenes that this closed (ready to write), usually none."""
        if isinstance(record, SceneBreak):
            self._break = "break"
            return []
        message = record
        stats = self.stats
        stats["messages"] += 1
        kind = message.kind
        if kind is Kind.SYSTEM:
            stats["system"] += 1
            return []
        if message.hidden:
            stats["hidden"] += 1
            if self._drop_hidden:
                stats["hidden_dropped"] += 1
                return []
        if is_scene_break(message.text):
            self._break = "break"
            return []
        if kind is Kind.CHARACTER and self._names_narrator(message.name):
            # "Narrator"/"System" (or the chat's narrator_name) tells the story; it is no character.
            stats["narrator_messages"] += 1
            message = attrs.evolve(message, kind=Kind.NARRATOR)
        if self._drop_ooc and message.extra.get("ooc") is True:
            # A message flagged out-of-character as a whole (Agnaistic's `ooc`).
            self._keep_ooc(message, [message.text.strip()] if message.text.strip() else [])
            stats["ooc_messages"] += 1
            return []
        speaker = self.cast.speaker(message)
        groups: list[tuple[int, list[dict[str, Any]], str]] | None = None
        if self._swipe_choices and len({s for s in message.swipes if s.strip()}) >= 2:
            groups = self._swipe_groups(message, speaker)
            if len(groups) < 2:
                groups = None
        if groups is not None and 1 + sum(len(g[1]) for g in groups) > self.detail.max_scene_nodes:
            self.issues.append(
                ParseIssue(message.line, "swipes too long for one scene; kept the chosen swipe only", "warning")
            )
            groups = None
        nodes: list[dict[str, Any]] = []
        if groups is None:
            text, asides = self._story_text(message, speaker)
            nodes = self._nodes_for_text(text, speaker, message, asides)
            if not nodes:
                if not message.image:
                    stats["ooc_messages" if asides else "empty"] += 1
                    return []
                data = {"line": message.line, "message": message.index}
                nodes = [{"id": "", "type": "narration", "text": "", "data": data}]
        if message.image and groups is None:
            nodes[0].setdefault("data", {})["image"] = message.image
        reason = self._segment(message)
        if reason is not None:
            self._new_scene(reason)
        if groups is None:
            return self._place(nodes, message.line)
        scene = self._scene
        assert scene is not None
        if scene.nodes and len(scene.nodes) + 1 + sum(len(g[1]) for g in groups) > self.detail.max_scene_nodes:
            self._new_scene("max_length")
        return self._append_swipes(groups, message)

    def _names_narrator(self, name: str) -> bool:
        found = self._narrator_of.get(name)
        if found is None:
            found = name.strip().lower() in self.narrator_names
            if len(self._narrator_of) < 4096:  # a chat has few speakers; the bound is for odd ones
                self._narrator_of[name] = found
        return found

    def _swipe_groups(self, message: Message, speaker: str | None) -> list[tuple[int, list[dict[str, Any]], str]]:
        groups = []
        seen: set[str] = set()
        for i, swipe in enumerate(message.swipes):
            if not swipe.strip() or swipe in seen:
                continue
            seen.add(swipe)
            text, asides = self._without_ooc(self._macros(swipe, speaker, message))
            nodes = self._nodes_for_text(text, speaker, message, asides)
            if nodes:
                groups.append((i, nodes, text))
        return groups

    def _append_swipes(
        self, groups: list[tuple[int, list[dict[str, Any]], str]], message: Message
    ) -> list[dict[str, Any]]:
        self.stats["swipe_choices"] += 1
        selected = message.swipe_id if message.swipe_id is not None else 0
        groups.sort(key=lambda g: g[0] != selected)  # the swipe the user kept comes first
        # The menu's caption, so that the player knows what the choices are: other takes of one message.
        opening = self._scene_count == 1 and self._scene is not None and not self._scene.nodes
        menu: dict[str, Any] = {
            "id": "",
            "type": "choice",
            "text": SWIPES_OPENING if opening else SWIPES_LATER,
            "data": {"line": message.line, "message": message.index, "swipes": True},
        }
        if message.image:
            # The picture belongs to the message, whichever swipe is read: it goes on the menu.
            menu["data"]["image"] = message.image
        released = self._append([menu], message.line)
        scene = self._scene
        assert scene is not None
        tails: list[dict[str, Any]] = []
        menu["choices"] = []
        for i, nodes, _source in groups:
            for node in nodes:
                node["id"] = f"n{len(scene.nodes) + 1:04d}"
                scene.nodes.append(node)
            for a, b in pairwise(nodes):
                a["choices"] = [{"target": b["id"]}]
            label = " ".join(plain_text("\n".join(n["text"] for n in nodes)).split())
            menu["choices"].append(
                {
                    "id": f"swipe{i}",
                    "target": nodes[0]["id"],
                    "label": choice_label(label),
                    "metadata": {"swipe_id": i, "selected": i == selected},
                }
            )
            tails.append(nodes[-1])
        self._pending = tails
        return [] if released is None else [released]

    def finish(self) -> Iterator[dict[str, Any]]:
        """Close the last scene: its final nodes end the story."""
        for tail in self._pending:
            tail["end"] = True
        self._pending = []
        if self._held is not None:
            yield self._render(self._held)
            self._held = None
        if self._scene is not None and self._scene.nodes:
            yield self._render(self._scene)
        self._scene = None
