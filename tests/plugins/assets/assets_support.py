"""Helpers for the assets plugin's tests: real image and audio bytes, and a registry on a kernel."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

from PIL import Image


def png(width: int = 32, height: int = 24, colour: tuple[int, int, int, int] = (200, 30, 60, 255)) -> bytes:
    """A real RGBA PNG made by Pillow."""
    buffer = io.BytesIO()
    Image.new("RGBA", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(width: int = 40, height: int = 30) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


def wav(frames: int = 800) -> bytes:
    """A real (silent) 8 kHz mono 16-bit WAV."""
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * frames)
    return buffer.getvalue()


def png_header_claiming(width: int, height: int) -> bytes:
    """A PNG signature and a valid IHDR chunk claiming a size, with no pixel data (a decompression bomb's head)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
