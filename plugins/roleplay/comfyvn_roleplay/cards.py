"""Character cards V1, V2 and V3 from PNG, JSON and CHARX (zip), normalised to :class:`Card`.

PNG cards carry base64 UTF-8 JSON in a ``tEXt`` chunk named ``chara`` (V1/V2) or ``ccv3`` (V3;
wins when both exist). The chunk walker below reads only chunk headers and text chunks, so a card
with a huge or damaged image still yields its data; Pillow writes cards (:func:`embed_card_png`),
which also makes the round-trip tests exercise two independent implementations.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import struct
import zipfile
import zlib
from pathlib import PurePath
from typing import Any

import attrs
from comfyvn.errors import TooLarge, Unprocessable

from .lorebook import parse_lorebook
from .models import Asset, Card
from .st_chat import coerce_float, coerce_text

__all__ = [
    "NoCharacterData",
    "card_from_object",
    "embed_card_png",
    "parse_mes_example",
    "png_text_chunks",
    "read_card",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MAX_TEXT = 64 * 1024 * 1024  # decompressed text budget per card: far above any real card
# CHARX (zip) limits. A zip states its members' sizes, but only inflating proves them, so members are
# read as streams with a running count; a member that inflates far more than images and JSON do is a
# zip bomb (zeros compress about 1000:1, images about 1:1, card JSON about 4:1).
MAX_CHARX_MEMBER = 64 * 2**20
MAX_CHARX_TOTAL = 128 * 2**20
MAX_CHARX_ENTRIES = 4096
MAX_CHARX_RATIO = 100
_RATIO_FLOOR = 2**20  # small members may compress well without harm


class NoCharacterData(Unprocessable):
    """The file is readable but holds no character card."""

    code = "no_character_data"

    def __init__(self, message: str = "no character data found", *, field: str = "card") -> None:
        super().__init__(message, field=field)


def png_text_chunks(data: bytes) -> dict[str, str]:
    """Text chunks (``tEXt``, ``zTXt``, ``iTXt``) of a PNG, keyword lower-cased; first wins.

    Stops quietly at a truncated or corrupt chunk: whatever text came before it is returned.
    """
    if not data.startswith(PNG_SIGNATURE):
        raise Unprocessable("not a PNG file", field="card", code="not_png")
    found: dict[str, str] = {}
    pos, budget = len(PNG_SIGNATURE), _MAX_TEXT
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if len(body) < length or ctype == b"IEND":
            break
        if ctype not in (b"tEXt", b"zTXt", b"iTXt"):
            continue
        keyword, sep, rest = body.partition(b"\0")
        if not sep:
            continue
        try:
            if ctype == b"tEXt":
                text = rest.decode("latin-1")
            elif ctype == b"zTXt":
                text = _inflate(rest[1:], budget).decode("latin-1")
            else:
                flag, _method, tail = rest[0:1], rest[1:2], rest[2:]
                _lang, _, tail = tail.partition(b"\0")
                _translated, _, tail = tail.partition(b"\0")
                text = (_inflate(tail, budget) if flag == b"\x01" else tail).decode("utf-8")
        except (zlib.error, UnicodeDecodeError, ValueError):
            continue
        budget -= len(text)
        if budget < 0:
            break
        found.setdefault(keyword.decode("latin-1").strip().lower(), text)
    return found


def _inflate(data: bytes, budget: int) -> bytes:
    d = zlib.decompressobj()
    out = d.decompress(data, max(budget, 1))
    if d.unconsumed_tail:
        raise ValueError("text chunk too large")
    return out


def _decode_payload(value: str) -> Any:
    value = value.strip()
    if value.startswith("{"):
        raw = value.encode("utf-8")  # some tools store the JSON unencoded
    else:
        compact = "".join(value.split())
        compact += "=" * (-len(compact) % 4)
        try:
            raw = base64.b64decode(compact, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise NoCharacterData(f"card data is not base64: {exc}") from exc
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise NoCharacterData(f"card data is not UTF-8 JSON: {exc}") from exc


def _texts(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(coerce_text(v) for v in value if isinstance(v, str))
    if isinstance(value, str) and value:
        return tuple(t.strip() for t in value.split(",") if t.strip())
    return ()


def _data_url(uri: str) -> bytes | None:
    head, sep, payload = uri.partition(",")
    if not sep:
        return None
    try:
        return base64.b64decode(payload) if head.endswith(";base64") else payload.encode("utf-8")
    except (binascii.Error, ValueError):
        return None


def _assets(value: Any, members: dict[str, bytes] | None) -> tuple[Asset, ...]:
    out: list[Asset] = []
    if not isinstance(value, list):
        return ()
    for a in value:
        if not isinstance(a, dict) or not isinstance(a.get("uri"), str):
            continue
        uri = a["uri"]
        data = None
        if uri.startswith("data:"):
            data = _data_url(uri)
        elif uri.startswith(("embeded://", "embedded://")) and members is not None:
            data = members.get(uri.split("://", 1)[1].lstrip("/"))
        out.append(
            Asset(
                type=coerce_text(a.get("type")) or "other",
                name=coerce_text(a.get("name")),
                uri=uri,
                ext=coerce_text(a.get("ext")).lstrip(".").lower(),
                data=data,
            )
        )
    return tuple(out)


def card_from_object(
    obj: Any, *, source: str = "json", filename: str = "", members: dict[str, bytes] | None = None
) -> Card:
    """Normalise a decoded card (V1 flat, V2, V3, Pygmalion) to :class:`Card`."""
    if not isinstance(obj, dict):
        raise NoCharacterData("card JSON is not an object")
    spec = obj.get("spec")
    data: dict[str, Any]
    if spec in ("chara_card_v2", "chara_card_v3") or (isinstance(obj.get("data"), dict) and "name" in obj["data"]):
        data = obj["data"] if isinstance(obj.get("data"), dict) else {}
        spec = spec if isinstance(spec, str) else "chara_card_v2"
        version = coerce_text(obj.get("spec_version")) or ("3.0" if spec == "chara_card_v3" else "2.0")
    elif "char_name" in obj:
        data = {
            "name": obj.get("char_name"),
            "description": obj.get("char_persona"),
            "first_mes": obj.get("char_greeting"),
            "scenario": obj.get("world_scenario"),
            "mes_example": obj.get("example_dialogue"),
        }
        spec, version = "pygmalion", "1.0"
    elif any(k in obj for k in ("name", "first_mes", "description")):
        data, spec, version = obj, "chara_card_v1", "1.0"
    else:
        raise NoCharacterData("JSON has no character fields (name/first_mes/description)")
    if spec == "chara_card_v3":
        try:
            float(version)
        except ValueError:
            version = "3.0"
    name = coerce_text(data.get("name")).strip() or coerce_text(obj.get("name")).strip()
    if not name:
        raise NoCharacterData("character card has no name")
    book = data.get("character_book")
    extensions: dict[str, Any] = data["extensions"] if isinstance(data.get("extensions"), dict) else {}
    return Card(
        name=name,
        spec=spec,
        spec_version=version,
        description=coerce_text(data.get("description")),
        personality=coerce_text(data.get("personality")),
        scenario=coerce_text(data.get("scenario")),
        first_mes=coerce_text(data.get("first_mes")),
        mes_example=coerce_text(data.get("mes_example")),
        creator_notes=coerce_text(data.get("creator_notes") or obj.get("creatorcomment")),
        system_prompt=coerce_text(data.get("system_prompt")),
        post_history_instructions=coerce_text(data.get("post_history_instructions")),
        alternate_greetings=_texts(data.get("alternate_greetings")),
        group_only_greetings=_texts(data.get("group_only_greetings")),
        tags=_texts(data.get("tags")),
        creator=coerce_text(data.get("creator")),
        character_version=coerce_text(data.get("character_version")),
        nickname=coerce_text(data.get("nickname")),
        talkativeness=coerce_float(extensions.get("talkativeness", obj.get("talkativeness"))),
        character_book=parse_lorebook(book, name=f"{name} lore") if isinstance(book, dict) else None,
        assets=_assets(data.get("assets"), members),
        extensions=dict(extensions),
        raw=obj,
        source=source,
        filename=filename,
    )


def _charx_entries(data: bytes) -> int:
    """The entry count from the zip's end record, read before `zipfile` builds an object per entry."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if end < 0 or end + 12 > len(data):
        return 0  # not a zip end record: zipfile says what is wrong
    (count,) = struct.unpack("<H", data[end + 10 : end + 12])
    return int(count)


class _Budget:
    """Bytes inflated so far across one CHARX, with the per-member and ratio checks."""

    def __init__(self) -> None:
        self.total = 0

    def check_header(self, info: zipfile.ZipInfo) -> None:
        if info.file_size > MAX_CHARX_MEMBER or self.total + info.file_size > MAX_CHARX_TOTAL:
            raise TooLarge(
                f"CHARX member {info.filename[:80]!r} is too large (members at most {MAX_CHARX_MEMBER // 2**20} MiB, "
                f"{MAX_CHARX_TOTAL // 2**20} MiB in all)",
                field="card",
                code="charx_too_large",
            )
        self._ratio(info, info.file_size)

    def _ratio(self, info: zipfile.ZipInfo, size: int) -> None:
        if size > _RATIO_FLOOR and size > MAX_CHARX_RATIO * max(info.compress_size, 1):
            raise Unprocessable(
                f"CHARX member {info.filename[:80]!r} inflates more than {MAX_CHARX_RATIO}:1 (a zip bomb?)",
                field="card",
                code="charx_ratio",
            )

    def read(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
        self.check_header(info)
        chunks: list[bytes] = []
        size = 0
        with archive.open(info) as stream:
            while chunk := stream.read(1 << 16):
                size += len(chunk)
                if size > MAX_CHARX_MEMBER or self.total + size > MAX_CHARX_TOTAL:
                    raise TooLarge(
                        f"CHARX member {info.filename[:80]!r} inflates past its limit",
                        field="card",
                        code="charx_too_large",
                    )
                self._ratio(info, size)
                chunks.append(chunk)
        self.total += size
        return b"".join(chunks)


def _read_charx(data: bytes, filename: str) -> Card:
    """A CHARX card: ``card.json`` plus ``assets/…`` members, within the limits above."""
    if _charx_entries(data) > MAX_CHARX_ENTRIES:
        raise TooLarge(f"CHARX has more than {MAX_CHARX_ENTRIES} entries", field="card", code="charx_too_large")
    budget = _Budget()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_CHARX_ENTRIES:
                raise TooLarge(f"CHARX has more than {MAX_CHARX_ENTRIES} entries", field="card", code="charx_too_large")
            members: dict[str, bytes] = {}
            card_obj: Any = None
            for info in infos:
                if info.is_dir():
                    continue
                if info.filename == "card.json":
                    card_obj = json.loads(budget.read(zf, info).decode("utf-8-sig"))
                elif info.filename.startswith("assets/"):
                    members[info.filename] = budget.read(zf, info)
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        OSError,
        EOFError,
        ValueError,
        RecursionError,
        UnicodeDecodeError,
        NotImplementedError,
    ) as exc:
        raise Unprocessable(f"not a readable CHARX zip: {exc}", field="card", code="bad_charx") from exc
    if card_obj is None:
        raise NoCharacterData("no character data found (CHARX without card.json)")
    return card_from_object(card_obj, source="charx", filename=filename, members=members)


def read_card(data: bytes, *, filename: str = "") -> Card:
    """Read a card from PNG, CHARX (zip) or JSON bytes.

    Raises :class:`NoCharacterData` (422) for a PNG without card chunks and a 422 ComfyVNError for
    bytes that are none of the three formats; the message names ``filename`` when there is one.
    """
    name = PurePath(filename).name[:80]
    try:
        return _read_card(data, filename)
    except NoCharacterData as exc:
        if not name or exc.message.startswith(name):
            raise
        raise NoCharacterData(f"{name}: {exc.message}", field=exc.field or "card") from None


def _read_card(data: bytes, filename: str) -> Card:
    if data.startswith(PNG_SIGNATURE):
        chunks = png_text_chunks(data)
        for key, source in (("ccv3", "png:ccv3"), ("chara", "png:chara")):
            if key in chunks:
                card = card_from_object(_decode_payload(chunks[key]), source=source, filename=filename)
                return attrs.evolve(card, image=data)  # the card's picture is the character's portrait
        name = PurePath(filename).name[:80] or "the PNG"
        raise NoCharacterData(f"{name} has no character card data (no chara/ccv3 chunk): it is a plain image")
    if data.startswith(b"PK\x03\x04"):
        return _read_charx(data, filename)
    try:
        obj = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise NoCharacterData(f"no character data found: not PNG, CHARX or JSON ({exc})") from exc
    return card_from_object(obj, source="json", filename=filename)


def embed_card_png(
    image: bytes | None, *, chara: dict[str, Any] | None = None, ccv3: dict[str, Any] | None = None
) -> bytes:
    """Write card JSON into a PNG (``chara`` and/or ``ccv3`` tEXt chunks) with Pillow.

    ``image`` is existing PNG bytes (its other text chunks are kept) or None for a 1x1 placeholder
    portrait. Used to build examples and test fixtures the way SillyTavern saves cards.
    """
    from PIL import Image, PngImagePlugin

    if image is None:
        img = Image.new("RGBA", (1, 1), (0, 0, 0, 0))
        keep: dict[str, str] = {}
    else:
        img = Image.open(io.BytesIO(image))
        keep = {k: v for k, v in getattr(img, "text", {}).items() if k.lower() not in ("chara", "ccv3")}
    info = PngImagePlugin.PngInfo()
    for key, value in keep.items():
        info.add_text(key, value)
    for key, payload in (("chara", chara), ("ccv3", ccv3)):
        if payload is not None:
            encoded = base64.b64encode(json.dumps(payload, ensure_ascii=False).encode("utf-8")).decode("ascii")
            info.add_text(key, encoded)
    out = io.BytesIO()
    img.save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def parse_mes_example(text: str, *, char_name: str = "", user_name: str = "") -> list[list[dict[str, str]]]:
    """Split ``mes_example`` into dialogues (``<START>`` blocks) of ``{role, speaker, text}`` lines.

    Lines starting ``{{user}}:``/``{{char}}:`` (any case, also ``<USER>``/``<BOT>``) start a turn;
    other lines continue the previous one.
    """
    blocks: list[list[dict[str, str]]] = []
    starts = re.compile(r"^\s*(\{\{user\}\}|\{\{char\}\}|<user>|<bot>)\s*:\s?(.*)$", re.IGNORECASE)
    for block in re.split(r"<START>", text.replace("\r\n", "\n"), flags=re.IGNORECASE):
        turns: list[dict[str, str]] = []
        for line in block.split("\n"):
            m = starts.match(line)
            if m:
                role = "user" if m.group(1).lower() in ("{{user}}", "<user>") else "char"
                turns.append({"role": role, "speaker": user_name if role == "user" else char_name, "text": m.group(2)})
            elif turns:
                turns[-1]["text"] += "\n" + line
            elif line.strip():
                turns.append({"role": "char", "speaker": char_name, "text": line})
        for t in turns:
            t["text"] = t["text"].strip()
        if turns:
            blocks.append(turns)
    return blocks
