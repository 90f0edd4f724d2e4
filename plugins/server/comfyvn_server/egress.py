"""Where webhooks may be delivered: strict URL rules, and an address policy against SSRF.

A webhook URL is absolute ``http``/``https``, at most 2,048 characters, with no control characters or
whitespace anywhere, no ``user:password@`` credentials, a port in 1..65535 and a valid host name or IP
literal. Its host is resolved and every address checked, at registration and again before every
delivery attempt, and the attempt then connects to the address that was checked (a name cannot
resolve to something else in between). Refused unless ``server.webhooks.allow_hosts`` opens them:
addresses that are not globally routable (loopback, private, link-local, shared, reserved,
documentation, unspecified) and multicast, also when embedded in IPv6 (mapped, 6to4, Teredo, NAT64).
The server's own host and port are refused even then.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
from comfyvn.errors import Invalid

from .settings import ServerSettings

__all__ = ["DestinationRefused", "EgressPolicy", "UnresolvableHost", "is_public", "parse_webhook_url", "pinned"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
MAX_URL_LENGTH = 2048
RESOLVE_TIMEOUT = 10.0
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp", "Zs"})  # controls, format, surrogates, spaces
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class DestinationRefused(Invalid):
    """The host resolves to an address webhooks may not reach (see the module docstring)."""

    code = "destination_refused"


class UnresolvableHost(Invalid):
    code = "unresolvable_host"


def _invalid(message: str) -> Invalid:
    return Invalid(message, field="url", code="invalid_url")


def valid_host_name(name: str) -> bool:
    """A DNS name of letter/digit/``-``/``_`` labels whose last label is not all digits (``1.2.3`` and
    ``2130706433`` are IPv4 spellings that resolvers accept: they must be written as proper IPs)."""
    labels = name.rstrip(".").split(".")
    return len(name) <= 253 and all(_LABEL.match(label) for label in labels) and not labels[-1].isdigit()


def parse_webhook_url(url: str) -> httpx.URL:
    """The parsed URL, or `Invalid` (field ``url``) naming the rule it breaks, never echoing the URL."""
    if not isinstance(url, str) or not url:
        raise _invalid("url must be a non-empty string")
    if len(url) > MAX_URL_LENGTH:
        raise _invalid(f"url is limited to {MAX_URL_LENGTH} characters")
    if not url.isascii() and any(unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in url):
        raise _invalid("url must not contain control characters, whitespace or invalid Unicode")
    if any(ch <= " " or ch == "\x7f" for ch in url):
        raise _invalid("url must not contain control characters or whitespace")
    try:
        parsed = httpx.URL(url)
        host, port = parsed.raw_host.decode("ascii"), parsed.port
    except (httpx.InvalidURL, ValueError):  # idna's errors are UnicodeErrors, so ValueErrors
        raise _invalid("url is not a valid URL") from None
    if parsed.scheme not in ("http", "https"):
        raise _invalid("url must be an absolute http:// or https:// URL")
    if parsed.userinfo:
        raise _invalid("url must not contain credentials (user:password@); receivers check the signature instead")
    if "%" in host or not (_ip(host) or valid_host_name(host)):  # a zone id (fe80::1%eth0) names no host
        raise _invalid("url must name a valid host name or IP address")
    if port is not None and not 1 <= port <= 65535:
        raise _invalid("url has a port outside 1..65535")
    return parsed


def _ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast, judging an IPv4 address embedded in IPv6 by itself."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
    return address.is_global and not address.is_multicast


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to for a TCP connection (``getaddrinfo``, off the event loop)."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class EgressPolicy:
    """Decides which addresses a webhook may reach; ``resolver`` is replaceable (tests use fake DNS)."""

    def __init__(self, allow_hosts: tuple[str, ...], own_host: str, own_port: int) -> None:
        self.allow_names = frozenset(h.rstrip(".") for h in allow_hosts if _network(h) is None)
        self.allow_networks = tuple(n for n in map(_network, allow_hosts) if n is not None)
        self.own_host, self.own_port = own_host.strip("[]"), own_port
        self._wildcard = self.own_host in ("", "0.0.0.0", "::")
        self.resolver: Resolver = system_resolver
        self._own: frozenset[IPAddress] | None = None

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> EgressPolicy:
        return cls(settings.webhook_allow_hosts, settings.host, settings.port)

    async def addresses(self, url: httpx.URL) -> list[IPAddress]:
        """Every address ``url``'s host resolves to, once all of them pass; else `DestinationRefused`,
        or `UnresolvableHost`. The messages never say which rule refused an address or what it was."""
        host, port = url.raw_host.decode("ascii"), url.port or (443 if url.scheme == "https" else 80)
        try:
            with anyio.fail_after(RESOLVE_TIMEOUT):
                found = await self.resolver(host, port)
        except (OSError, TimeoutError):  # socket.gaierror is an OSError
            found = []
        addresses = list(dict.fromkeys(a for a in map(_ip, found) if a is not None))
        if not addresses:
            raise UnresolvableHost("the url's host does not resolve", field="url")
        own = await self._own_addresses() if port == self.own_port else frozenset()
        opened = host.rstrip(".") in self.allow_names
        for address in addresses:
            plain = (address.ipv4_mapped or address) if isinstance(address, ipaddress.IPv6Address) else address
            if plain in own or (own and self._wildcard and plain.is_loopback):
                raise DestinationRefused("webhooks cannot call this server itself", field="url")
            if not (opened or is_public(address) or any(plain in net for net in self.allow_networks)):
                raise DestinationRefused(
                    "the url's host resolves to an address webhooks may not reach (loopback, private, link-local, "
                    "multicast or reserved); add it to server.webhooks.allow_hosts in comfyvn.json to allow it",
                    field="url",
                )
        return addresses

    async def _own_addresses(self) -> frozenset[IPAddress]:
        # A wildcard bind listens on every address of the machine: loopback and the host name's addresses.
        if self._own is None:
            names = [socket.gethostname(), "localhost"] if self._wildcard else [self.own_host]
            found: set[IPAddress] = {ipaddress.ip_address("127.0.0.1")} if self._wildcard else set()
            for name in names:
                try:
                    found.update(a for a in map(_ip, await system_resolver(name, self.own_port)) if a is not None)
                except OSError:
                    pass
            self._own = frozenset(found)
        return self._own


def _network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(entry.strip("[]"), strict=False)
    except ValueError:
        return None


def pinned(url: httpx.URL, address: IPAddress) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """``url`` rewritten to connect to ``address``, with the ``Host`` header and TLS server name (SNI,
    which the certificate is checked against) of the original host."""
    if _ip(url.host) is not None:
        return url, {}, {}
    extensions: dict[str, Any] = {"sni_hostname": url.host} if url.scheme == "https" else {}
    return url.copy_with(host=str(address)), {"Host": url.netloc.decode("ascii")}, extensions
