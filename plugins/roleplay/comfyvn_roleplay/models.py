"""Domain data of the roleplay importer: parsed chats, cards and lorebooks.

Everything here is a frozen attrs class (but :class:`Message`, read-only by convention) so parsers
can hand objects around without defensive copies; JSON in and out goes through :mod:`comfyvn_roleplay.serialize`.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import attrs

__all__ = [
    "Asset",
    "Card",
    "ChatHeader",
    "Kind",
    "LoreEntry",
    "Lorebook",
    "Message",
    "ParseIssue",
    "SceneBreak",
]


class Kind(enum.StrEnum):
    """Who a message belongs to, after SillyTavern's overloaded flags are untangled."""

    USER = "user"
    CHARACTER = "character"
    NARRATOR = "narrator"
    #: UI chatter (welcome screens, help, group notices); counted, never turned into story.
    SYSTEM = "system"


@attrs.frozen
class ParseIssue:
    """A line or record the parser could not use as-is; reported, never dropped silently."""

    line: int
    message: str
    #: ``skipped`` when nothing of the record was kept, ``warning`` when it was kept with a caveat.
    severity: str = "skipped"
    excerpt: str = ""


@attrs.frozen
class ChatHeader:
    """The metadata line of a SillyTavern chat (or what a generic log tells about itself)."""

    user_name: str | None = None
    character_name: str | None = None
    create_date: datetime | None = None
    create_date_raw: Any = None
    #: ``chat_metadata`` as found; unknown keys (``integrity``, ``note_*``…) are kept verbatim.
    metadata: dict[str, Any] = attrs.field(factory=dict)
    line: int = 1


@attrs.define
class Message:
    """One chat message with its alternatives (swipes) and provenance.

    Treat it as read-only like the rest (``attrs.evolve`` makes changed copies). It alone is not
    frozen: a chat makes one per line, and a frozen class's ``__init__`` costs three times as much.
    """

    index: int
    line: int
    name: str
    text: str
    kind: Kind
    hidden: bool = False
    send_date: datetime | None = None
    send_date_raw: Any = None
    swipes: tuple[str, ...] = ()
    swipe_id: int | None = None
    #: card file name of the speaker (``original_avatar``/``force_avatar``); identifies group members.
    avatar: str | None = None
    display_text: str | None = None
    image: str | None = None
    title: str | None = None
    #: unrecognised message keys, kept so a re-export loses nothing.
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class SceneBreak:
    """An explicit scene break in a text log (``---``, ``***``, ``===``)."""

    line: int
    marker: str


@attrs.frozen
class Asset:
    """A card asset (V3 ``assets[]`` or a CHARX member)."""

    type: str
    name: str
    uri: str
    ext: str = ""
    #: bytes of an embedded asset (``embeded://`` in a CHARX, ``data:`` URL); None for remote URIs.
    data: bytes | None = attrs.field(default=None, repr=False)


@attrs.frozen
class LoreEntry:
    """One lorebook entry, normalised from world-info, ``character_book`` or ``lorebook_v3``."""

    uid: str
    keys: tuple[str, ...]
    content: str
    secondary_keys: tuple[str, ...] = ()
    comment: str = ""
    enabled: bool = True
    constant: bool = False
    selective: bool = False
    selective_logic: int = 0
    order: int = 100
    position: Any = None
    probability: float | None = None
    depth: int | None = None
    case_sensitive: bool | None = None
    extensions: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Lorebook:
    """A lorebook: SillyTavern world info, an embedded ``character_book`` or ``lorebook_v3``."""

    name: str
    entries: tuple[LoreEntry, ...]
    description: str = ""
    source_format: str = "world_info"
    scan_depth: int | None = None
    token_budget: int | None = None
    recursive_scanning: bool | None = None
    extensions: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Card:
    """A character card of any version, normalised to the V3 field set."""

    name: str
    spec: str
    spec_version: str
    description: str = ""
    personality: str = ""
    scenario: str = ""
    first_mes: str = ""
    mes_example: str = ""
    creator_notes: str = ""
    system_prompt: str = ""
    post_history_instructions: str = ""
    alternate_greetings: tuple[str, ...] = ()
    group_only_greetings: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    creator: str = ""
    character_version: str = ""
    nickname: str = ""
    talkativeness: float | None = None
    character_book: Lorebook | None = None
    assets: tuple[Asset, ...] = ()
    extensions: dict[str, Any] = attrs.field(factory=dict)
    #: the card JSON exactly as decoded, so nothing a future reader needs is lost.
    raw: dict[str, Any] = attrs.field(factory=dict, repr=False)
    #: where the card came from (``png:ccv3``, ``png:chara``, ``json``, ``charx``).
    source: str = "json"
    #: the card's file name (SillyTavern's ``original_avatar`` for group matching).
    filename: str = ""
    #: the PNG a PNG card was read from: the character's portrait.
    image: bytes | None = attrs.field(default=None, repr=False)
