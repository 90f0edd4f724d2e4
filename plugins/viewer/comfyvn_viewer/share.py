"""Shareable read-only player links: ``/api/viewer/web/{token}/`` with an expiring HMAC token.

A token is ``<payload>.<signature>``, both base64url without padding: the payload is the compact JSON
``{"p": project id, "e": expiry (unix seconds)}``, the signature HMAC-SHA256 of the payload under a
random key kept in ``<data>/plugins/viewer/share.key`` (made on first use, mode 0600). Nothing is stored
per link: a link works until it expires; deleting the key file ends every link at once. A link only
reads: it plays the project, it cannot change it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from comfyvn.errors import ComfyVNError, NotFound
from comfyvn.paths import atomic_write_bytes

__all__ = ["DEFAULT_TTL", "MAX_TTL", "MIN_TTL", "ShareLinks"]

DEFAULT_TTL = 24 * 3600
MIN_TTL = 60
MAX_TTL = 30 * 24 * 3600
_MAX_TOKEN = 512  # a real token is ~100 characters; anything far longer is not one


def _now() -> float:
    """Unix seconds (a module function so tests can move the clock of links made inside routes)."""
    return time.time()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ShareLinks:
    """Issues and checks share tokens. ``clock`` gives unix seconds (default: the system clock)."""

    def __init__(self, key_file: Path, *, clock: Callable[[], float] | None = None) -> None:
        self.key_file = key_file
        self.clock = clock
        self._lock = threading.Lock()
        self._key: bytes | None = None

    def _time(self) -> float:
        return self.clock() if self.clock is not None else _now()  # looked up per call: tests move it

    def _secret(self) -> bytes:
        with self._lock:
            if self._key is None:
                try:
                    key = self.key_file.read_bytes()
                except FileNotFoundError:
                    key = b""
                if len(key) < 32:
                    key = secrets.token_bytes(32)
                    atomic_write_bytes(self.key_file, key, mode=0o600)
                self._key = key
            return self._key

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret(), payload.encode("utf-8"), hashlib.sha256).digest())

    def issue(self, project_id: str, ttl: Any = None) -> dict[str, Any]:
        """A token for ``project_id`` valid ``ttl`` seconds (default a day; 60 s to 30 days)."""
        if ttl is None:
            ttl = DEFAULT_TTL
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not MIN_TTL <= ttl <= MAX_TTL:
            raise ComfyVNError(
                f"ttl is a whole number of seconds from {MIN_TTL} to {MAX_TTL}", field="ttl", code="invalid_ttl"
            )
        expires = int(self._time()) + ttl
        payload = _b64(json.dumps({"p": project_id, "e": expires}, separators=(",", ":")).encode("utf-8"))
        return {"token": f"{payload}.{self._sign(payload)}", "expires_at": expires, "ttl": ttl}

    def check(self, token: str) -> str:
        """The project id a valid, unexpired token names; 404 ``share_link_invalid``/``share_link_expired``
        otherwise (the same answer for a forged token as for a typo: nothing to learn from it)."""
        invalid = NotFound("this share link is not valid", field="token", code="share_link_invalid")
        if not isinstance(token, str) or len(token) > _MAX_TOKEN or token.count(".") != 1:
            raise invalid
        payload, signature = token.split(".")
        if not hmac.compare_digest(signature.encode("utf-8"), self._sign(payload).encode("utf-8")):
            raise invalid
        try:
            claims = json.loads(_unb64(payload))
        except (ValueError, binascii.Error):
            raise invalid from None
        if not isinstance(claims, dict) or not isinstance(claims.get("p"), str) or not isinstance(claims.get("e"), int):
            raise invalid
        if claims["e"] <= self._time():
            raise NotFound("this share link has expired; ask for a new one", field="token", code="share_link_expired")
        return str(claims["p"])
