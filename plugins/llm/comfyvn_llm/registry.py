"""The provider registry: shipped defaults, ``<config>/llm_registry.json``, runtime adapters, environment overrides.

API keys never live in the registry: they come from the vault (``comfyvn secrets set <provider> api_key``) or
``COMFYVN_LLM_<PROVIDER>_API_KEY``, and are read only when a call is made. `Provider.to_wire` has no key in it.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs
from comfyvn.errors import Conflict, Invalid, NotFound
from comfyvn.secrets import VaultError
from comfyvn.wire import loads

__all__ = [
    "ADAPTERS",
    "DEFAULT_TIMEOUT",
    "TAGS",
    "Provider",
    "Registry",
    "check_base_url",
    "default_providers",
    "env_name",
    "parse_provider",
]

ADAPTERS = ("offline", "openai", "ollama", "anthropic")
TAGS = ("chat", "translate", "worldbuild", "json", "long-context")
DEFAULT_TIMEOUT = 60.0
MAX_PROVIDERS = 200
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_SECRET_KEYS = {"api_key", "apikey", "key", "token", "secret", "authorization"}
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}
# Query (or fragment) parameter names that carry a credential: ``key``, ``api_key``, ``x-goog-api-key``,
# ``access_token``, ``client_secret``, ``password``, ``sig``, ``X-Amz-Signature``... A base URL is listed by
# /api/llm/registry and /api/llm/health and printed by ``comfyvn llm list``, so none may ride in it.
_SECRET_PARAM = re.compile(
    r"(?:^|[_.-])(?:key|apikey|token|accesstoken|secret|password|passwd|pwd|pass|sig|signature|auth|"
    r"authorization|credentials?|session)$"
)
_PLAIN_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,31}$")


def env_name(provider: str, what: str) -> str:
    """``COMFYVN_LLM_<PROVIDER>_<WHAT>`` with every character outside A-Z0-9 as ``_``."""
    return re.sub(r"[^A-Z0-9]", "_", f"COMFYVN_LLM_{provider}_{what}".upper())


def is_loopback(url: str) -> bool:
    """Whether ``url`` names this machine (127.0.0.0/8, ::1, localhost)."""
    host = (urlsplit(url).hostname or "").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@attrs.frozen
class Provider:
    """One configured provider. ``external``: its server is not this machine (needs the external flag)."""

    id: str
    adapter: str
    base_url: str = ""
    models: tuple[str, ...] = ()
    tags: tuple[str, ...] = ("chat",)
    defaults: Mapping[str, Any] = attrs.field(factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = 2
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    source: str = "default"
    description: str = ""
    # A hosted API that answers nothing without a key: a call with none is refused before any network use.
    # Pointed at this machine (a local proxy or test server) it needs none: see `needs_key`.
    requires_key: bool = False

    @property
    def external(self) -> bool:
        return self.adapter != "offline" and not is_loopback(self.base_url)

    @property
    def needs_key(self) -> bool:
        """A call needs a key: the provider requires one and its server is not this machine."""
        return self.requires_key and self.external

    @property
    def default_model(self) -> str | None:
        return self.models[0] if self.models else None

    def to_wire(self) -> dict[str, Any]:
        """The provider as listed by ``GET /api/llm/registry``: header names only, never values or keys."""
        return {
            "id": self.id,
            "adapter": self.adapter,
            "base_url": self.base_url,
            "models": list(self.models),
            "tags": list(self.tags),
            "defaults": dict(self.defaults),
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "headers": sorted(self.headers),
            "external": self.external,
            "requires_key": self.needs_key,
            "source": self.source,
            "description": self.description,
        }


def default_providers() -> list[Provider]:
    """The shipped providers; only ``offline`` works with nothing installed."""
    chat = {"temperature": 0.7, "top_p": 0.95, "max_tokens": 512}
    return [
        Provider(
            "offline",
            "offline",
            "",
            ("codex/offline-narrator",),
            TAGS,
            {"temperature": 0.0, "max_tokens": 256},
            description="Deterministic templates over the request's context; no network.",
        ),
        Provider(
            "lmstudio_local",
            "openai",
            "http://127.0.0.1:1234/v1",
            (),
            ("chat", "translate", "worldbuild"),
            chat,
            description="LM Studio's OpenAI-compatible server.",
        ),
        Provider(
            "ollama_local",
            "ollama",
            "http://127.0.0.1:11434",
            (),
            ("chat", "translate", "worldbuild", "json"),
            chat,
            description="Ollama's native /api/chat (NDJSON).",
        ),
        Provider(
            "llamacpp_local",
            "openai",
            "http://127.0.0.1:8080/v1",
            (),
            ("chat", "json"),
            chat,
            description="llama.cpp's llama-server (OpenAI-compatible).",
        ),
        Provider(
            "openai",
            "openai",
            "https://api.openai.com/v1",
            ("gpt-4o-mini", "gpt-4o"),
            ("chat", "translate", "worldbuild", "json", "long-context"),
            chat,
            description="OpenAI (key: comfyvn secrets set openai api_key).",
            requires_key=True,
        ),
        Provider(
            "openrouter",
            "openai",
            "https://openrouter.ai/api/v1",
            ("openrouter/auto",),
            ("chat", "translate", "worldbuild", "long-context"),
            chat,
            description="OpenRouter (key: comfyvn secrets set openrouter api_key).",
            requires_key=True,
        ),
        Provider(
            "anthropic",
            "anthropic",
            "https://api.anthropic.com",
            ("claude-3-5-haiku-latest", "claude-3-5-sonnet-latest"),
            ("chat", "translate", "worldbuild", "long-context"),
            {"temperature": 0.7, "max_tokens": 1024},
            description="Anthropic messages (key: comfyvn secrets set anthropic api_key).",
            requires_key=True,
        ),
    ]


def _bad(field: str, message: str) -> Invalid:
    return Invalid(f"{field}: {message}", field=field, code="invalid_provider")


def _strings(value: Any, field: str, limit: int = 100) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= 200 for v in value):
        raise _bad(field, "must be a list of non-empty strings")
    if len(value) > limit:
        raise _bad(field, f"at most {limit} entries")
    return tuple(value)


def _timeout(value: Any, field: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise _bad(field, "must be a number of seconds") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
        raise _bad(field, "must be a number of seconds in (0, 3600]")
    return float(value)


def _headers(value: Any, field: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _bad(field, "must be an object of string header values")
    return dict(value)


def check_base_url(url: Any, field: str) -> str:
    """``url`` without a trailing slash, if an http(s) URL that carries no credential.

    Refuses ``user:password@`` and secret-looking query or fragment parameters (``?key=``, ``?token=``...)
    as 400 ``secret_in_registry`` naming ``field`` and the parameter, never the value: the registry is
    listed over HTTP and printed by the CLI, and keys belong in the vault.
    """
    if not isinstance(url, str) or len(url) > 500:
        raise _bad(field, "must be an http(s) URL")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- a malformed port raises here, not later in an adapter
    except ValueError:
        raise _bad(field, "must be an http(s) URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _bad(field, "must be an http(s) URL")
    if "@" in parts.netloc:
        raise Invalid(
            f"{field}: credentials (user:password@) do not belong in the registry; "
            "use `comfyvn secrets set <provider> api_key`",
            field=field,
            code="secret_in_registry",
        )
    for where, text in (("query", parts.query), ("fragment", parts.fragment)):
        for name, _value in parse_qsl(text, keep_blank_values=True):
            name = name.strip()
            if _SECRET_PARAM.search(name.lower()):
                # Named only when it is plainly a name (a pasted value in the name's place stays unsaid).
                which = repr(name) if _PLAIN_NAME.match(name) else "a"
                raise Invalid(
                    f"{field}: {which} {where} parameter looks like a credential; keys do not "
                    "belong in the registry; use `comfyvn secrets set <provider> api_key`",
                    field=field,
                    code="secret_in_registry",
                )
    return url.rstrip("/")


def parse_provider(data: Any, *, source: str, base: Provider | None = None, field: str = "provider") -> Provider:
    """A `Provider` from registry JSON (over ``base`` when the id is a known one). Refuses keys: they belong in
    the vault, and a registry file is easy to commit or share."""
    if not isinstance(data, dict):
        raise _bad(field, "must be an object")
    secret = sorted(k for k in data if str(k).lower() in _SECRET_KEYS)
    if secret:
        raise Invalid(
            f"{field}.{secret[0]}: keys do not belong in the registry; use `comfyvn secrets set <provider> api_key`",
            field=f"{field}.{secret[0]}",
            code="secret_in_registry",
        )
    known = {"id", "adapter", "base_url", "models", "tags", "defaults", "timeout", "max_retries", "headers"}
    known.add("requires_key")
    unknown = sorted(set(data) - known - {"description"})
    if unknown:
        raise _bad(f"{field}.{unknown[0]}", "unknown field")
    ident = data.get("id", base.id if base else None)
    if not isinstance(ident, str) or not _ID.match(ident):
        raise _bad(f"{field}.id", "must be 1-64 of a-z, 0-9, '_', '.', '-'")
    changes: dict[str, Any] = {"id": ident, "source": source}
    if "adapter" in data or base is None:
        if data.get("adapter") not in ADAPTERS:
            raise _bad(f"{field}.adapter", f"must be one of {', '.join(ADAPTERS)}")
        changes["adapter"] = data["adapter"]
    if "base_url" in data:
        changes["base_url"] = check_base_url(data["base_url"], f"{field}.base_url")
    elif base is None and changes["adapter"] != "offline":
        raise _bad(f"{field}.base_url", "is required")
    if "models" in data:
        changes["models"] = _strings(data["models"], f"{field}.models", 500)
    if "tags" in data:
        changes["tags"] = _strings(data["tags"], f"{field}.tags", 20)
    if "defaults" in data:
        defaults = data["defaults"]
        if not isinstance(defaults, dict) or not set(defaults) <= {"temperature", "top_p", "max_tokens"}:
            raise _bad(f"{field}.defaults", "allows temperature, top_p, max_tokens")
        changes["defaults"] = dict(defaults)
    if "timeout" in data:
        changes["timeout"] = _timeout(data["timeout"], f"{field}.timeout")
    if "max_retries" in data:
        retries = data["max_retries"]
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
            raise _bad(f"{field}.max_retries", "must be an integer 0-10")
        changes["max_retries"] = retries
    if "headers" in data:
        headers = _headers(data["headers"], f"{field}.headers")
        if any(k.lower() in ("authorization", "x-api-key", "api-key") for k in headers):
            raise Invalid(
                f"{field}.headers: keys do not belong in the registry; use the vault",
                field=f"{field}.headers",
                code="secret_in_registry",
            )
        changes["headers"] = headers
    if "requires_key" in data:
        if not isinstance(data["requires_key"], bool):
            raise _bad(f"{field}.requires_key", "must be true or false")
        changes["requires_key"] = data["requires_key"]
    if isinstance(data.get("description"), str):
        changes["description"] = data["description"][:300]
    if base is not None:
        return attrs.evolve(base, **changes)
    return Provider(**changes)


class Registry:
    """Providers by id: defaults, then the config file, then runtime adapters, each with env overrides applied.

    The file is re-read when it changes (``mtime``), so a CLI edit reaches a running server.
    """

    def __init__(self, config_file: Any, env: Mapping[str, str]) -> None:
        self.path, self.env = config_file, env
        self._runtime: dict[str, Provider] = {}
        self._lock = threading.Lock()
        self._cache: tuple[float, dict[str, Provider]] | None = None

    def _from_file(self) -> dict[str, Provider]:
        providers = {p.id: p for p in default_providers()}
        try:
            stamp = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return providers
        if self._cache is not None and self._cache[0] == stamp:
            return dict(self._cache[1])
        document = loads(self.path.read_bytes(), field="llm_registry.json")
        entries = document.get("providers") if isinstance(document, dict) else document
        if not isinstance(entries, list) or len(entries) > MAX_PROVIDERS:
            raise Invalid(
                f"llm_registry.json: expected {{'providers': [...]}} with at most {MAX_PROVIDERS} entries",
                field="llm_registry.json",
                code="invalid_registry",
            )
        for index, entry in enumerate(entries):
            ident = entry.get("id") if isinstance(entry, dict) else None
            base = providers.get(ident) if isinstance(ident, str) else None
            provider = parse_provider(entry, source="file", base=base, field=f"llm_registry.json.providers[{index}]")
            providers[provider.id] = provider
        self._cache = (stamp, dict(providers))
        return providers

    def _env(self, provider: Provider) -> Provider:
        changes: dict[str, Any] = {}
        url = self.env.get(env_name(provider.id, "BASE_URL"))
        if url:
            changes["base_url"] = check_base_url(url, env_name(provider.id, "BASE_URL"))
        timeout = self.env.get(env_name(provider.id, "TIMEOUT"))
        if timeout:
            changes["timeout"] = _timeout(timeout, env_name(provider.id, "TIMEOUT"))
        elif provider.source == "default" and self.env.get("COMFYVN_LLM_DEFAULT_TIMEOUT"):
            changes["timeout"] = _timeout(self.env["COMFYVN_LLM_DEFAULT_TIMEOUT"], "COMFYVN_LLM_DEFAULT_TIMEOUT")
        headers = self.env.get(env_name(provider.id, "HEADERS"))
        if headers:
            name = env_name(provider.id, "HEADERS")
            changes["headers"] = {**provider.headers, **_headers(loads(headers, field=name), name)}
        return attrs.evolve(provider, **changes) if changes else provider

    def all(self) -> list[Provider]:
        """Every provider, sorted by id (``offline`` first)."""
        with self._lock:
            merged = {**self._from_file(), **self._runtime}
        return sorted((self._env(p) for p in merged.values()), key=lambda p: (p.id != "offline", p.id))

    def get(self, ident: str) -> Provider:
        """The provider ``ident``; `NotFound` (naming the field ``registry_id``) if none."""
        for provider in self.all():
            if provider.id == ident:
                return provider
        raise NotFound(f"no LLM provider {ident[:64]!r}", field="registry_id", code="provider_not_found")

    def add_runtime(self, data: Any) -> Provider:
        """Register a temporary adapter (kept in memory until removed or the process ends)."""
        provider = parse_provider(data, source="runtime", field="body")
        with self._lock:
            if provider.id in self._from_file() or provider.id in self._runtime:
                raise Conflict(f"provider {provider.id!r} already exists", field="id", code="provider_exists")
            self._runtime[provider.id] = provider
        return self._env(provider)

    def remove_runtime(self, ident: str) -> Provider:
        """Remove a runtime adapter; `NotFound` if ``ident`` is not one."""
        with self._lock:
            provider = self._runtime.pop(ident, None)
        if provider is None:
            raise NotFound(f"no runtime LLM provider {ident[:64]!r}", field="id", code="provider_not_found")
        return provider

    def api_key(self, provider: Provider, vault: Any) -> str | None:
        """The provider's key: ``COMFYVN_LLM_<P>_API_KEY``, else the vault's ``<provider>.api_key``."""
        key = self.env.get(env_name(provider.id, "API_KEY"))
        if key:
            return key
        value = vault.get(provider.id, "api_key")
        return value if isinstance(value, str) and value else None

    def key_configured(self, provider: Provider, vault: Any) -> bool | None:
        """Whether a key is set for ``provider`` (environment or vault), never the key; None when the vault
        cannot be opened (locked or damaged), so a listing still answers."""
        try:
            return self.api_key(provider, vault) is not None
        except VaultError:
            return None

    def key_hint(self, provider: Provider) -> str:
        """How to set ``provider``'s key."""
        return f"`comfyvn secrets set {provider.id} api_key` (or {env_name(provider.id, 'API_KEY')})"
