"""Scoped API tokens (stored hashed) and the request guard (Host/Origin checks, scopes).

A token reads ``cvn_<id>_<secret>``; only ``sha256(token)`` is written to
``<config>/server_tokens.json``, so the file alone cannot be replayed. Tokens carry scopes such as
``scenario.write`` or ``admin``. A write needs ``<plugin>.write`` (or ``admin``) for the plugin that owns
the route it reaches, whichever of the route's paths it uses (``/api/scenario/save/x`` and its alias
``/api/save/x`` both need ``scenario.write``); the server's own routes need ``<area>.write`` for their
``/api/<area>/…`` (``flags.write``, ``modder.write``); a path no route answers needs ``admin``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
from comfyvn.errors import ComfyVNError, NotFound, OperationFailed
from comfyvn.paths import atomic_write_json
from starlette.routing import BaseRoute, Match

from .settings import ServerSettings, is_loopback

__all__ = ["Denied", "Principal", "RouteScopes", "TokenStore", "area_scope", "authorize", "required_scope"]

_SCOPE = re.compile(r"^[a-z][a-z0-9_-]{0,63}(\.[a-z][a-z0-9_-]{0,63})?$")
_TOKEN = re.compile(r"^cvn_([a-f0-9]{12})_[A-Za-z0-9_-]{20,128}$")
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Probes stay open off-loopback so load balancers and `curl $BASE_URL/health` work without a token.
OPEN_PATHS = frozenset({"/health", "/healthz"})


@attrs.frozen
class TokenRecord:
    id: str
    name: str
    scopes: tuple[str, ...]
    hash: str
    created: float

    def public(self) -> dict[str, Any]:
        """What listings show: never the hash."""
        return {"id": self.id, "name": self.name, "scopes": list(self.scopes), "created": self.created}


@attrs.frozen
class Principal:
    """Who is calling: a token's id and scopes, or ``None`` for an anonymous loopback caller."""

    token_id: str | None
    scopes: frozenset[str]


@attrs.frozen
class Denied:
    status: int
    code: str
    message: str
    field: str | None = None

    def body(self, request_id: str) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "field": self.field, "request_id": request_id}}


def _hash(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenStore:
    """The token file; re-read when it changes on disk (so `comfyvn tokens revoke` takes effect live)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._cache: tuple[float, int, dict[str, TokenRecord]] | None = None

    def _load(self) -> dict[str, TokenRecord]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return {}
        if self._cache and self._cache[:2] == (stat.st_mtime, stat.st_size):
            return self._cache[2]
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            records = {
                row["id"]: TokenRecord(
                    row["id"], row.get("name", ""), tuple(row["scopes"]), row["hash"], float(row.get("created", 0))
                )
                for row in document["tokens"]
            }
        except (ValueError, KeyError, TypeError) as exc:
            raise OperationFailed(
                f"the token file {self.path.name} is damaged: {exc}", field=self.path.name, code="tokens_unreadable"
            ) from None
        self._cache = (stat.st_mtime, stat.st_size, records)
        return records

    def _save(self, records: dict[str, TokenRecord]) -> None:
        rows = [
            {"id": r.id, "name": r.name, "scopes": list(r.scopes), "hash": r.hash, "created": r.created}
            for r in sorted(records.values(), key=lambda r: r.created)
        ]
        atomic_write_json(self.path, {"version": 1, "tokens": rows}, mode=0o600)
        self._cache = None

    def create(self, scopes: list[str] | tuple[str, ...], name: str = "") -> tuple[str, TokenRecord]:
        """Make a token; returns ``(token, record)``. The token itself is never stored."""
        if not scopes:
            raise ComfyVNError(
                "a token needs at least one scope (e.g. --scope admin)", field="scope", code="invalid_scope"
            )
        for scope in scopes:
            if not isinstance(scope, str) or not _SCOPE.match(scope):
                raise ComfyVNError(
                    f"invalid scope {scope!r}: use 'admin' or '<area>.<action>' like 'assets.write'",
                    field="scope",
                    code="invalid_scope",
                )
        with self._lock:
            records = dict(self._load())
            token_id = secrets.token_hex(6)
            token = f"cvn_{token_id}_{secrets.token_urlsafe(32)}"
            record = TokenRecord(token_id, name, tuple(dict.fromkeys(scopes)), _hash(token), time.time())
            records[token_id] = record
            self._save(records)
        return token, record

    def list(self) -> list[TokenRecord]:
        return sorted(self._load().values(), key=lambda r: r.created)

    def revoke(self, token_id: str) -> TokenRecord:
        with self._lock:
            records = dict(self._load())
            record = records.pop(token_id, None)
            if record is None:
                raise NotFound(f"no token with id {token_id!r}", field="id", code="unknown_token")
            self._save(records)
        return record

    def verify(self, token: str) -> TokenRecord | None:
        """The record of a valid token, else ``None`` (constant-time hash comparison)."""
        match = _TOKEN.match(token)
        if not match:
            return None
        record = self._load().get(match.group(1))
        if record is None or not hmac.compare_digest(record.hash, _hash(token)):
            return None
        return record


def required_scope(path: str) -> str:
    """The scope a write to ``path`` needs by its area: ``/api/<area>/…`` -> ``<area>.write``, else ``admin``.
    Used for the server's own routes, and by `authorize` when it is given no route table."""
    parts = path.split("/")
    if len(parts) >= 3 and parts[1] == "api" and re.fullmatch(r"[a-z][a-z0-9_-]{0,63}", parts[2]):
        return f"{parts[2]}.write"
    return "admin"


class RouteScopes:
    """The write scope of a request from the route that will answer it: ``<owner>.write`` for a plugin's
    route (so every alias of a route needs the same scope), `required_scope` for the server's own routes,
    ``admin`` when no route matches. ``routes`` are ``(route, owner)`` pairs in the application's order."""

    def __init__(self, routes: Sequence[tuple[BaseRoute, str]], server: str) -> None:
        self.routes = list(routes)
        self.server = server

    def owner(self, method: str, path: str) -> str | None:
        """The plugin owning the route Starlette would pick for ``method path`` (a path-only match counts)."""
        scope = {"type": "http", "method": method, "path": path, "root_path": ""}
        partial = None
        for route, owner in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return owner
            if match is Match.PARTIAL and partial is None:
                partial = owner
        return partial

    def __call__(self, method: str, path: str) -> str:
        owner = self.owner(method, path)
        if owner is None:
            return "admin"
        return required_scope(path) if owner == self.server else f"{owner}.write"


def area_scope(method: str, path: str) -> str:
    """`required_scope` as a ``scope_for`` (no route table: the path's area decides)."""
    return required_scope(path)


def _host_name(host_header: str) -> str:
    """The host part of a Host header (``[::1]:8001`` -> ``::1``), lower-cased."""
    value = host_header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


@functools.lru_cache(maxsize=256)
def _is_local_host(host_header: str) -> bool:
    """Cached: a Host header naming this machine (checked on every request)."""
    return is_loopback(_host_name(host_header))


def _origin_authority(origin: str) -> str | None:
    try:
        parts = urlsplit(origin)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return parts.netloc.lower()


ANONYMOUS = Principal(None, frozenset())


def authorize(
    method: str,
    path: str,
    host: str | None,
    origin: str | None,
    token: str | None,
    server_host: str | None,
    settings: ServerSettings,
    tokens: TokenStore,
    scope_for: Callable[[str, str], str] = area_scope,
    open_prefixes: tuple[str, ...] = (),
) -> Denied | Principal:
    """Decide whether a request may proceed.

    Loopback mode: Host must name this machine (blocks DNS rebinding) and a browser Origin must be
    the same origin as Host or listed in ``allowed_origins`` (blocks CSRF and cross-site WebSockets);
    no token is needed. Other modes: the same Origin rule, a valid token for everything but the
    probes, and the route's write scope (``scope_for(method, path)``, e.g. a `RouteScopes`; or
    ``admin``) for anything that is not a read. Requests under ``open_prefixes`` (routes that check a
    credential of their own, such as a signed share link) need no token unless they send one.
    """
    if host and settings.loopback and not _is_local_host(host):
        name = _host_name(host)
        if not (
            is_loopback(name)
            or name in settings.allowed_hosts
            or (server_host is not None and name == server_host.lower())
        ):
            return Denied(
                403,
                "host_refused",
                f"Host {host!r} is not this server (DNS rebinding guard); "
                "add it to server.allowed_hosts if it is yours",
                "Host",
            )
    if origin is not None:
        authority = _origin_authority(origin)
        same_origin = authority is not None and host is not None and authority == host.strip().lower()
        if not same_origin and origin.lower().rstrip("/") not in settings.allowed_origins:
            return Denied(
                403,
                "origin_refused",
                f"Origin {origin!r} may not call this server "
                "(cross-site request guard); add it to server.allowed_origins if it is yours",
                "Origin",
            )
    principal = ANONYMOUS
    if token is not None:
        record = tokens.verify(token)
        if record is None:
            return Denied(401, "invalid_token", "the bearer token is unknown or revoked", "Authorization")
        principal = Principal(record.id, frozenset(record.scopes))
    if settings.loopback or path in OPEN_PATHS:
        return principal
    if principal.token_id is None and path.startswith(open_prefixes):
        return principal
    if principal.token_id is None:
        return Denied(
            401,
            "auth_required",
            "this server is reachable off-loopback: send "
            "'Authorization: Bearer <token>' (create one with `comfyvn tokens create`)",
            "Authorization",
        )
    if method not in _READ_METHODS:
        scope = scope_for(method, path)
        if scope not in principal.scopes and "admin" not in principal.scopes:
            return Denied(403, "insufficient_scope", f"this write needs the {scope!r} or 'admin' scope", "scope")
    return principal
