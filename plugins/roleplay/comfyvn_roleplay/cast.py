"""The cast of an imported chat: user persona, card characters, speakers met on the way.

Maps message speakers to project character ids (group chats by ``original_avatar`` first, then by
name), and turns cards and sprite folders into project ``characters`` entries.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from .cards import parse_mes_example
from .models import Card, Kind, Message
from .textproc import resolve_macros

__all__ = ["AssetFile", "Cast", "character_id", "scan_sprite_folder"]

PALETTE = (
    "#e06c75",
    "#61afef",
    "#98c379",
    "#c678dd",
    "#e5c07b",
    "#56b6c2",
    "#d19a66",
    "#ff79c6",
    "#8be9fd",
    "#50fa7b",
    "#bd93f9",
    "#f1fa8c",
)
USER_COLOR = "#abb2bf"
IMAGE_EXTS = frozenset({"png", "webp", "jpg", "jpeg", "gif", "avif"})


@attrs.frozen
class AssetFile:
    """A file the project needs: ``path`` relative to the project folder, bytes or a source file."""

    path: str
    data: bytes | None = attrs.field(default=None, repr=False)
    source: Path | None = None


def character_id(name: str, taken: Iterable[str] = ()) -> str:
    """A project character id (``^[A-Za-z_][A-Za-z0-9_]*$``, ≤64) from a display name, unique."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    base = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")[:48] or "character"
    if base[0].isdigit():
        base = f"c_{base}"
    taken = set(taken)
    cid, n = base, 2
    while cid in taken:
        cid, n = f"{base}_{n}", n + 1
    return cid


def scan_sprite_folder(folder: Path, names: Sequence[str]) -> dict[str, dict[str, Path]]:
    """Sprites in SillyTavern's layout: ``<folder>/<display name>/<expression>.<ext>``.

    When ``folder`` itself holds images it is taken as the sprites of the first of ``names``.
    Returns ``{display name: {expression: file}}``; names are matched case-insensitively.
    """

    def images(d: Path) -> dict[str, Path]:
        return {p.stem: p for p in sorted(d.iterdir()) if p.is_file() and p.suffix.lower().lstrip(".") in IMAGE_EXTS}

    found: dict[str, dict[str, Path]] = {}
    if not folder.is_dir():
        return found
    direct = images(folder)
    if direct and names:
        found[names[0]] = direct
    lowered = {n.lower(): n for n in names}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        name = lowered.get(sub.name.lower(), sub.name)
        sprites = images(sub)
        if sprites:
            found.setdefault(name, sprites)
    return found


def _image_ext(data: bytes) -> str:
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    return "png"


def _stem(filename: str) -> str:
    return filename.rsplit("/", 1)[-1].rsplit(".", 1)[0].lower()


@attrs.define
class Cast:
    """Characters of the project being built, keyed by id, with lookup tables for speakers."""

    user_name: str
    cards: Sequence[Card] = ()
    sprite_files: Mapping[str, Mapping[str, Path]] = attrs.field(factory=dict)
    characters: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    assets: list[AssetFile] = attrs.field(factory=list)
    warnings: list[str] = attrs.field(factory=list)
    user_id: str = ""
    _by_avatar: dict[str, str] = attrs.field(factory=dict)
    _by_name: dict[str, str] = attrs.field(factory=dict)
    #: lower-cased card names and nicknames: chats write "aqua" for a card named "Aqua".
    _by_card_name: dict[str, str] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        self.user_id = self._add(self.user_name, {"color": USER_COLOR, "metadata": {"role": "user"}})
        for card in self.cards:
            cid = self._add_card(card)
            if card.filename:
                self._by_avatar[_stem(card.filename)] = cid
        for name, files in self.sprite_files.items():
            cid = self._by_name.get(name) or self._by_card_name.get(name.lower()) or self._add(name, {})
            self._attach_sprites(
                cid, {label: AssetFile(self._sprite_path(cid, label, p.suffix), source=p) for label, p in files.items()}
            )

    def _add(self, name: str, fields: dict[str, Any]) -> str:
        cid = character_id(name, self.characters)
        color = PALETTE[zlib.crc32(name.encode("utf-8")) % len(PALETTE)]
        entry: dict[str, Any] = {"name": name or cid, "color": color}
        entry.update(fields)
        entry.setdefault("metadata", {}).setdefault("role", "character")
        self.characters[cid] = entry
        self._by_name.setdefault(name, cid)
        return cid

    @staticmethod
    def _sprite_path(cid: str, label: str, ext: str) -> str:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", label) or "sprite"
        return f"assets/characters/{cid}/{safe}.{ext.lstrip('.').lower() or 'png'}"

    def _attach_sprites(self, cid: str, files: Mapping[str, AssetFile]) -> None:
        entry = self.characters[cid]
        sprites = entry.setdefault("sprites", {})
        for label, asset in files.items():
            if label in sprites:
                continue
            sprites[label] = asset.path
            self.assets.append(asset)
        if sprites and "default_expression" not in entry:
            entry["default_expression"] = "neutral" if "neutral" in sprites else next(iter(sprites))

    def _add_card(self, card: Card) -> str:
        def expand(text: str) -> str:
            return resolve_macros(text, self.user_name, card.name)

        meta: dict[str, Any] = {
            "role": "character",
            "card": {
                "spec": card.spec,
                "spec_version": card.spec_version,
                "source": card.source,
                "filename": card.filename,
                "personality": expand(card.personality),
                "scenario": expand(card.scenario),
                "greeting": expand(card.first_mes),
                "alternate_greetings": [expand(g) for g in card.alternate_greetings],
                "example_dialogue": [
                    [{**turn, "text": expand(turn["text"])} for turn in block]
                    for block in parse_mes_example(card.mes_example, char_name=card.name, user_name=self.user_name)
                ],
                "creator": card.creator,
                "creator_notes": card.creator_notes,
                "character_version": card.character_version,
                "tags": list(card.tags),
                "nickname": card.nickname,
                "talkativeness": card.talkativeness,
                "extensions": card.extensions,
            },
        }
        cid = self._add(card.name, {"description": expand(card.description), "metadata": meta})
        portrait = card.image or next(
            (a.data for a in card.assets if a.type == "icon" and a.data is not None and a.name in ("main", "")), None
        )
        if portrait is not None:
            portrait_file = AssetFile(f"assets/characters/{cid}/portrait.{_image_ext(portrait)}", data=portrait)
            self.characters[cid]["portrait"] = portrait_file.path
            self.assets.append(portrait_file)
        for alias in (card.name, card.nickname):
            if alias:
                self._by_card_name.setdefault(alias.lower(), cid)
        sprites: dict[str, AssetFile] = {}
        for asset in card.assets:
            if asset.type != "emotion":
                continue
            if asset.data is None:
                self.warnings.append(
                    f"{card.name}: emotion asset {asset.name!r} ({asset.uri[:60]}) not embedded; not fetched"
                )
                continue
            label = asset.name or f"emotion_{len(sprites)}"
            sprites[label] = AssetFile(self._sprite_path(cid, label, asset.ext or "png"), data=asset.data)
        self._attach_sprites(cid, sprites)
        return cid

    def background_assets(self) -> list[AssetFile]:
        """Embedded V3 ``background`` assets of the cards, as project files."""
        out = []
        for card in self.cards:
            for asset in card.assets:
                if asset.type == "background" and asset.data is not None:
                    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", asset.name or "background")
                    out.append(AssetFile(f"assets/backgrounds/{name}.{asset.ext or 'png'}", data=asset.data))
        return out

    def speaker(self, message: Message) -> str | None:
        """The character id speaking ``message``; None for narration. Unknown names join the cast."""
        if message.kind is Kind.NARRATOR or message.kind is Kind.SYSTEM:
            return None
        if message.kind is Kind.USER:
            if message.name and message.name != self.user_name:
                return self._by_name.get(message.name) or self._add(
                    message.name, {"color": USER_COLOR, "metadata": {"role": "user"}}
                )
            return self.user_id
        if message.avatar:
            cid = self._by_avatar.get(_stem(message.avatar))
            if cid:
                return cid
        name = message.name or "Unknown"
        return self._by_name.get(name) or self._by_card_name.get(name.lower()) or self._add(name, {})

    def labels(self, cid: str) -> list[str]:
        """The sprite expression labels a character has (empty when it has no sprites)."""
        return list(self.characters.get(cid, {}).get("sprites", {}))
