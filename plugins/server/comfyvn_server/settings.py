"""Server settings: where it binds and how it treats clients, from arguments, environment and config.

Resolution: explicit arguments, then ``COMFYVN_SERVER_HOST``/``COMFYVN_SERVER_PORT``, then the
``server`` section of ``comfyvn.json``, then the defaults below. ``server.webhooks.allow_hosts`` (or
the flat ``server.webhook_allow_hosts``) lists the host names, IP addresses and networks (CIDR) that
webhooks may reach although they are not public (see `comfyvn_server.egress`).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Mapping
from typing import Any

import attrs
from comfyvn.errors import ComfyVNError

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ServerSettings", "connectable_host", "is_loopback"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8001
_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_.-]{0,251}[a-z0-9_.])?$")


@functools.lru_cache(maxsize=512)
def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address or a Host-header name) only reaches this machine."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def connectable_host(host: str) -> str:
    """The address a local client should dial for a bind address (``0.0.0.0`` -> ``127.0.0.1``)."""
    name = host.strip("[]")
    if name in ("", "0.0.0.0"):
        return "127.0.0.1"
    if name == "::":
        return "::1"
    return name


@attrs.frozen
class ServerSettings:
    """How the app behaves. ``host`` decides the auth mode: loopback (no token) or not (tokens)."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    ws_queue: int = 256
    ws_heartbeat: float = 15.0
    webhook_queue: int = 1024
    webhook_retries: int = 4
    webhook_backoff: float = 0.5
    webhook_backoff_max: float = 30.0
    webhook_timeout: float = 10.0
    webhook_allow_hosts: tuple[str, ...] = ()
    max_body_size: int = 64 * 2**20

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    @property
    def base_url(self) -> str:
        host = connectable_host(self.host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @classmethod
    def resolve(
        cls, *, env: Mapping[str, str] | None = None, config: Mapping[str, Any] | None = None, **explicit: Any
    ) -> ServerSettings:
        """Settings from explicit values (``None`` means unset), the environment, then config."""
        env = env or {}
        section = (config or {}).get("server") or {}
        if not isinstance(section, Mapping):
            raise ComfyVNError(
                "the 'server' section of comfyvn.json must be an object", field="server", code="invalid_config"
            )
        values: dict[str, Any] = {}
        for field in attrs.fields(cls):
            if field.name in section:
                values[field.name] = section[field.name]
        webhooks = section.get("webhooks") or {}
        if not isinstance(webhooks, Mapping):
            raise ComfyVNError("server.webhooks must be an object", field="server.webhooks", code="invalid_config")
        if "allow_hosts" in webhooks:
            values["webhook_allow_hosts"] = webhooks["allow_hosts"]
        if env.get("COMFYVN_SERVER_HOST"):
            values["host"] = env["COMFYVN_SERVER_HOST"]
        if env.get("COMFYVN_SERVER_PORT"):
            values["port"] = env["COMFYVN_SERVER_PORT"]
        values.update({k: v for k, v in explicit.items() if v is not None})
        return cls(**_coerce(values))


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in values.items():
        field = f"server.{name}"
        if name in ("host",):
            if not isinstance(value, str) or not value.strip():
                raise ComfyVNError("host must be a non-empty string", field=field, code="invalid_setting")
            out[name] = value.strip()
        elif name in ("port", "ws_queue", "webhook_queue", "webhook_retries", "max_body_size"):
            try:
                number = int(value)
            except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf), e.g. 1e400 in the file
                raise ComfyVNError(
                    f"{name} must be an integer, got {value!r}", field=field, code="invalid_setting"
                ) from None
            low, high = (0, 65535) if name == "port" else (0 if name == "webhook_retries" else 1, 2**31)
            if not low <= number <= high:
                raise ComfyVNError(f"{name} must be between {low} and {high}", field=field, code="invalid_setting")
            out[name] = number
        elif name in ("ws_heartbeat", "webhook_backoff", "webhook_backoff_max", "webhook_timeout"):
            try:
                number_f = float(value)
            except (TypeError, ValueError, OverflowError):
                raise ComfyVNError(f"{name} must be a number", field=field, code="invalid_setting") from None
            if not number_f > 0:
                raise ComfyVNError(f"{name} must be positive", field=field, code="invalid_setting")
            out[name] = number_f
        elif name in ("allowed_hosts", "allowed_origins"):
            if isinstance(value, str):
                value = [part.strip() for part in value.split(",") if part.strip()]
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise ComfyVNError(f"{name} must be a list of strings", field=field, code="invalid_setting")
            out[name] = tuple(v.lower().rstrip("/") for v in value)
        elif name == "webhook_allow_hosts":
            out[name] = _allow_hosts(value)
    return out


def _allow_hosts(value: Any) -> tuple[str, ...]:
    field = "server.webhooks.allow_hosts"
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ComfyVNError("allow_hosts must be a list of strings", field=field, code="invalid_setting")
    entries = []
    for raw in value:
        entry = raw.strip().lower().rstrip(".")
        try:
            ipaddress.ip_network(entry.strip("[]"), strict=False)
        except ValueError:
            if not _HOST_NAME.match(entry):
                raise ComfyVNError(
                    "allow_hosts entries are host names, IP addresses or CIDR networks",
                    field=field,
                    code="invalid_setting",
                ) from None
        entries.append(entry)
    return tuple(entries)
