"""What a file's bytes are: images checked with Pillow (format, size, integrity), audio by its signature, and
the provenance iTXt chunk of PNG files (inserted at the byte level, so the pixels stay byte-identical)."""

from __future__ import annotations

import io
import struct
import zlib

import attrs
from comfyvn.digest import canonical_json
from comfyvn.errors import TooLarge, Unprocessable
from PIL import Image, UnidentifiedImageError

from .model import AUDIO_TYPES, IMAGE_TYPES

__all__ = [
    "MAX_PIXELS",
    "PNG_SIGNATURE",
    "PROVENANCE_KEY",
    "Media",
    "embed_png_text",
    "inspect_media",
    "read_png_text",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PROVENANCE_KEY = "comfyvn:provenance"
# Below Pillow's decompression-bomb warning (89 Mpx), so a huge image is our clear 413, never a warning.
MAX_PIXELS = 64_000_000
IMAGE_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}
_AUDIO_SIGNATURES = ((b"OggS", ".ogg"), (b"fLaC", ".flac"), (b"ID3", ".mp3"))


@attrs.frozen
class Media:
    """A file's kind as read from its bytes: the extension it deserves and, for images, format and size."""

    extension: str
    format: str | None = None
    width: int | None = None
    height: int | None = None


def inspect_media(data: bytes, asset_type: str, fallback_extension: str = "") -> Media:
    """Check ``data`` fits ``asset_type``: image types must be a PNG, JPEG or WebP Pillow can fully decode
    (`Unprocessable` ``not_an_image`` otherwise), audio types an Ogg, FLAC, MP3 or WAV file (``not_audio``)."""
    if asset_type in IMAGE_TYPES:
        return _image(data)
    if asset_type in AUDIO_TYPES:
        return Media(_audio_extension(data))
    return Media(fallback_extension or ".bin")


def _image(data: bytes) -> Media:
    if data.startswith(PNG_SIGNATURE) and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])  # IHDR, read before Pillow sizes a bomb
        _check_pixels(width, height)
    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt = image.format or ""
            width, height = image.size
            if fmt not in IMAGE_FORMATS:
                raise Unprocessable(
                    f"{fmt or 'this'} images are not supported; use PNG, JPEG or WebP",
                    field="file",
                    code="unsupported_image_format",
                )
            _check_pixels(width, height)
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # verify() misses truncated JPEG/WebP data; decoding does not
    except Image.DecompressionBombError:
        raise TooLarge(f"the image has more than {MAX_PIXELS} pixels", field="file", code="image_too_large") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error, EOFError):
        raise Unprocessable("the file is not a readable image", field="file", code="not_an_image") from None
    return Media(IMAGE_FORMATS[fmt], fmt, width, height)


def _check_pixels(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise TooLarge(f"the image has more than {MAX_PIXELS} pixels", field="file", code="image_too_large")


def _audio_extension(data: bytes) -> str:
    for signature, extension in _AUDIO_SIGNATURES:
        if data.startswith(signature):
            return extension
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return ".wav"
    if len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0:  # an MPEG audio frame header
        return ".mp3"
    raise Unprocessable("the file is not Ogg, FLAC, MP3 or WAV audio", field="file", code="not_audio")


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """``(type, data)`` of each chunk of a PNG Pillow already accepted (so the framing is sound)."""
    chunks, offset = [], len(PNG_SIGNATURE)
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        chunks.append((kind, data[offset + 8 : offset + 8 + length]))
        offset += 12 + length
        if kind == b"IEND":
            break
    return chunks


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _itxt_keyword(body: bytes) -> str:
    return body.split(b"\x00", 1)[0].decode("latin-1")


def embed_png_text(data: bytes, key: str, value: dict[str, object]) -> bytes:
    """``data`` with one uncompressed iTXt chunk ``key`` holding ``value`` as canonical JSON, just before
    IEND; an older chunk of the same key is replaced. Deterministic: equal input, equal bytes."""
    text = canonical_json(value).encode("utf-8")
    itxt = _chunk(b"iTXt", key.encode("latin-1") + b"\x00\x00\x00" + b"\x00" + b"\x00" + text)
    out = [PNG_SIGNATURE]
    for kind, body in _chunks(data):
        if kind == b"iTXt" and _itxt_keyword(body) == key:
            continue
        if kind == b"IEND":
            out.append(itxt)
        out.append(_chunk(kind, body))
    return b"".join(out)


def read_png_text(data: bytes, key: str) -> str | None:
    """The text of the uncompressed iTXt chunk ``key`` of a PNG, or None."""
    if not data.startswith(PNG_SIGNATURE):
        return None
    for kind, body in _chunks(data):
        if kind == b"iTXt" and _itxt_keyword(body) == key:
            # keyword \0 flag method lang \0 translated \0 text
            rest = body[len(key) + 3 :]
            _lang, _, rest = rest.partition(b"\x00")
            _translated, _, text = rest.partition(b"\x00")
            return text.decode("utf-8", "replace")
    return None
