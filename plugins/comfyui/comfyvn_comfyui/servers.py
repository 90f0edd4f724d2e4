"""The ComfyUI servers this installation renders on, and which one a render goes to next.

Servers come from ``COMFYVN_COMFYUI_URL`` (comma-separated URLs, named ``env-1``, ``env-2``…) and from
``<config>/comfyui_servers.json`` (``comfyvn comfyui add URL``: ``{"servers": [{"name", "url"}]}``).
A server behind an auth proxy has a token in the vault (provider ``comfyui``, field = the server's
name; ``COMFYVN_SECRET_COMFYUI_<NAME>`` overrides it); it is sent as a bearer token and never shown.
With none configured every route and command says ``configured: false`` and how to add one.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
from comfyvn.errors import Conflict, Invalid, NotFound, Unprocessable
from comfyvn.paths import atomic_write_text

__all__ = ["SERVERS_ENV", "SETUP_HINT", "Server", "ServerPool", "ServerSettings", "check_url"]

SERVERS_ENV = "COMFYVN_COMFYUI_URL"
SERVERS_FILE = "comfyui_servers.json"
VAULT_PROVIDER = "comfyui"
SETUP_HINT = (
    "no ComfyUI server is configured: run `comfyvn comfyui add http://HOST:8188` "
    f"or set {SERVERS_ENV}=http://HOST:8188 (comma-separated for several)"
)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_TOKEN = re.compile(r"^[\x21-\x7e]{1,4096}\Z")
_MAX_SERVERS = 64
#: how long a server that failed a render is tried last (seconds)
COOL_DOWN = 30.0


@attrs.frozen
class Server:
    """One ComfyUI server: its name, base URL (no credentials), where it was configured."""

    name: str
    url: str
    source: str  # "env" | "config"

    def to_wire(self, *, has_token: bool = False) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "source": self.source, "token": has_token}


def check_url(value: Any, field: str = "url") -> str:
    """An http(s) base URL without credentials, query or fragment, normalised without a trailing slash."""
    if not isinstance(value, str) or not value.strip() or len(value) > 2048:
        raise Invalid("a ComfyUI URL is http://host:port (at most 2048 characters)", field=field)
    text = value.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise Invalid("not a valid URL", field=field, code="invalid_url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("a ComfyUI URL starts with http:// or https:// and names a host", field=field, code="invalid_url")
    if parts.username or parts.password:
        # A password in a URL ends up in logs and listings: tokens go to the vault.
        raise Invalid(
            "put no credentials in the URL; use `comfyvn comfyui add URL --token-stdin`",
            field=field,
            code="invalid_url",
        )
    if parts.query or parts.fragment:
        raise Invalid("a ComfyUI URL has no query or fragment", field=field, code="invalid_url")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = f"{host}:{port}" if port is not None else host
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


@attrs.define
class ServerSettings:
    """Reads and edits the configured servers of one kernel (environment, then the config file)."""

    kernel: Any

    @property
    def file(self) -> Path:
        return Path(self.kernel.paths.config) / SERVERS_FILE

    def servers(self) -> list[Server]:
        found = [Server(f"env-{n}", check_url(url, SERVERS_ENV), "env") for n, url in enumerate(self._env_urls(), 1)]
        seen = {s.url for s in found}
        for row in self._read()["servers"]:
            if row["url"] not in seen:
                found.append(Server(row["name"], row["url"], "config"))
                seen.add(row["url"])
        return found

    def get(self, name: str) -> Server:
        for server in self.servers():
            if server.name == name:
                return server
        raise NotFound(f"no ComfyUI server named {name[:40]!r}", field="name", code="server_not_found")

    def token(self, server: Server) -> str | None:
        value = self.kernel.secrets.get(VAULT_PROVIDER, server.name)
        return value if isinstance(value, str) and value else None

    def add(self, url: str, *, name: str | None = None, token: str | None = None) -> Server:
        clean = check_url(url)
        if token is not None and not _TOKEN.match(token):
            # It goes into an HTTP header: a space, a line break or a non-ASCII letter would fail every
            # request (and could split the header). Never quoted back.
            raise Invalid("a token is 1-4096 printable ASCII characters without spaces", field="token")
        data = self._read()
        rows: list[dict[str, str]] = data["servers"]
        if any(r["url"] == clean for r in rows):
            raise Conflict(f"{clean} is already configured", field="url", code="server_exists")
        if name is None:
            taken = {r["name"] for r in rows}
            name = next(f"comfyui-{n}" for n in range(1, _MAX_SERVERS + 2) if f"comfyui-{n}" not in taken)
        if not isinstance(name, str) or not _NAME.match(name) or name.startswith("env-"):
            raise Invalid("a server name is 1-32 of a-z, 0-9, _ and - (not env-N)", field="name")
        if any(r["name"] == name for r in rows):
            raise Conflict(f"a server named {name!r} exists", field="name", code="server_exists")
        if len(rows) >= _MAX_SERVERS:
            raise Invalid(f"at most {_MAX_SERVERS} servers", field="url")
        rows.append({"name": name, "url": clean})
        self._write(data)
        if token:
            self.kernel.secrets.set(VAULT_PROVIDER, name, token)
        return Server(name, clean, "config")

    def remove(self, name: str) -> None:
        data = self._read()
        rows = [r for r in data["servers"] if r["name"] != name]
        if len(rows) == len(data["servers"]):
            raise NotFound(f"no configured ComfyUI server named {name[:40]!r}", field="name", code="server_not_found")
        self._write({"servers": rows})
        self.kernel.secrets.delete(VAULT_PROVIDER, name)

    def _env_urls(self) -> list[str]:
        raw = self.kernel.env.get(SERVERS_ENV, "")
        return [u.strip() for u in raw.split(",") if u.strip()][:_MAX_SERVERS]

    def _read(self) -> dict[str, Any]:
        try:
            text = self.file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"servers": []}
        except OSError as exc:
            raise Unprocessable(f"cannot read {SERVERS_FILE}: {exc.strerror}", field=SERVERS_FILE) from None
        try:
            data = json.loads(text)
        except ValueError:
            raise Unprocessable(f"{SERVERS_FILE} is not JSON; fix or remove it", field=SERVERS_FILE) from None
        rows = data.get("servers") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise Unprocessable(f'{SERVERS_FILE} needs {{"servers": [...]}}', field=SERVERS_FILE)
        clean = []
        for n, row in enumerate(rows):
            if not isinstance(row, dict) or not isinstance(row.get("name"), str) or not _NAME.match(row["name"]):
                raise Unprocessable(f"{SERVERS_FILE}: server {n} needs a name", field=f"servers[{n}].name")
            try:
                url = check_url(row.get("url"), f"servers[{n}].url")
            except Invalid as exc:
                # The file is the installation's, not the request's: its mistake is no client's 400.
                raise Unprocessable(f"{SERVERS_FILE}: server {n}: {exc.message}", field=exc.field) from None
            clean.append({"name": row["name"], "url": url})
        return {"servers": clean}

    def _write(self, data: Mapping[str, Any]) -> None:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.file, json.dumps(data, indent=2) + "\n")


class ServerPool:
    """Which server a render tries first: the least busy, skipping servers that failed lately.

    One pool per process (render jobs of the embedded cluster share it), so parallel renders spread
    over the servers and a server that just died is tried last until it has cooled down.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy: dict[str, int] = {}
        self._failed_at: dict[str, float] = {}
        self._turn = 0

    def order(self, servers: Iterable[Server]) -> list[Server]:
        """Servers in the order to try: healthy before recently failed, least busy first, then round robin."""
        listed = list(servers)
        now = time.monotonic()
        with self._lock:
            self._turn += 1
            turn = self._turn

            def rank(item: tuple[int, Server]) -> tuple[bool, int, int]:
                index, server = item
                failed = now - self._failed_at.get(server.url, -COOL_DOWN) < COOL_DOWN
                return failed, self._busy.get(server.url, 0), (index - turn) % max(len(listed), 1)

            return [server for _, server in sorted(enumerate(listed), key=rank)]

    def acquire(self, server: Server) -> None:
        with self._lock:
            self._busy[server.url] = self._busy.get(server.url, 0) + 1

    def release(self, server: Server, *, failed: bool = False) -> None:
        with self._lock:
            self._busy[server.url] = max(0, self._busy.get(server.url, 0) - 1)
            if failed:
                self._failed_at[server.url] = time.monotonic()
            else:
                self._failed_at.pop(server.url, None)


#: The pool of this process.
POOL = ServerPool()
