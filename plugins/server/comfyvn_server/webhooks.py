"""Webhook registrations and their delivery: signed, asynchronous, retried with backoff.

Registrations live in ``<config>/plugins/server/webhooks.json`` (URL, events, whether a legacy
HMAC secret exists — never the secret, which is kept in the vault). Each webhook gets its own
bounded bus stream and worker, so deliveries keep event order per webhook, a slow receiver never
slows the emitter or another webhook, and overflow is counted as ``dropped`` in its status. Any error
in one delivery is that webhook's recorded failure: it never stops its worker or the others, and a
damaged stored registration is skipped with a warning. Where a webhook may point is `egress`'s rule.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import attrs
import cattrs
import httpx
import structlog
from comfyvn.errors import ComfyVNError, Conflict, Invalid, NotFound
from comfyvn.events import Envelope, EventBus, EventStream
from comfyvn.paths import atomic_write_json
from comfyvn.secrets import Vault

from .egress import DestinationRefused, EgressPolicy, UnresolvableHost, parse_webhook_url, pinned
from .settings import ServerSettings
from .signing import Signer, hmac_signature

__all__ = ["Webhook", "WebhookDispatcher", "WebhookRegistry", "WebhookSpec", "converter", "envelope_json"]

log = structlog.get_logger("comfyvn.server.webhooks")
VAULT_PROVIDER = "comfyvn-server"
RETRYABLE = frozenset({408, 425, 429})
_HOOK_ID = re.compile(r"^wh_[0-9a-f]{12}$")


def envelope_json(envelope: Envelope, **first: str) -> str:
    """An envelope as JSON text, reusing the payload the bus encoded (strictly, once) at emit, so a
    payload object changed after the emit cannot make it unsendable; ``first`` puts fields in front."""
    head = "".join(f"{json.dumps(k)}:{json.dumps(v)}," for k, v in first.items())
    event, ts = json.dumps(envelope.event), repr(envelope.ts)
    return f'{{{head}"event":{event},"payload":{envelope.data},"ts":{ts},"seq":{envelope.seq}}}'


@attrs.frozen
class WebhookSpec:
    """A registration request (``POST /api/modder/hooks/webhooks``)."""

    url: str
    events: tuple[str, ...] = ()
    secret: str | None = None
    description: str = ""


@attrs.frozen
class Webhook:
    id: str
    url: str
    events: tuple[str, ...]
    hmac: bool
    description: str
    created: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "events": list(self.events),
            "hmac": self.hmac,
            "description": self.description,
            "created": self.created,
        }


@attrs.define
class DeliveryStatus:
    """The last known state of one webhook's deliveries (what ``GET …/webhooks`` shows)."""

    state: str = "idle"  # idle | ok | retrying | failing | unsigned
    attempts: int = 0
    delivered: int = 0
    failed: int = 0
    dropped: int = 0
    last_status: int | None = None
    last_error: str | None = None
    last_attempt_at: float | None = None
    last_success_at: float | None = None
    last_seq: int | None = None
    next_retry_at: float | None = None


def _strict_str(value: Any, _type: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def _str_tuple(value: Any, _type: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list of event names, got {type(value).__name__}")
    return tuple(_strict_str(v, str) for v in value)


def _optional_str(value: Any, _type: Any) -> str | None:
    return None if value is None else _strict_str(value, str)


converter = cattrs.Converter(forbid_extra_keys=True)
converter.register_structure_hook(str, _strict_str)
converter.register_structure_hook_func(lambda t: t == tuple[str, ...], _str_tuple)
converter.register_structure_hook_func(lambda t: t == (str | None), _optional_str)


def _check_text(value: str, field: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(f"{field} is not valid Unicode (a lone surrogate)", field=field, code="invalid_text") from None


def validate_spec(spec: WebhookSpec, bus: EventBus) -> None:
    """The URL follows `egress.parse_webhook_url`; events must be declared; a legacy secret must be long
    enough; every string must be valid Unicode (it is stored as UTF-8 and shown again)."""
    parse_webhook_url(spec.url)
    for index, name in enumerate(spec.events):
        _check_text(name, f"events[{index}]")
        if bus.spec(name) is None:
            raise ComfyVNError(
                f"unknown event {name[:80]!r} (see GET /api/modder/hooks)",
                field=f"events[{index}]",
                code="unknown_event",
            )
    if spec.secret is not None:
        _check_text(spec.secret, "secret")
        if not 16 <= len(spec.secret) <= 256:
            raise Invalid("a legacy HMAC secret must be 16 to 256 characters", field="secret", code="invalid_secret")
    _check_text(spec.description, "description")
    if len(spec.description) > 500:
        raise ComfyVNError("description is limited to 500 characters", field="description", code="too_long")


def _from_row(row: Any) -> Webhook:
    """A stored registration, checked as strictly as a new one (a bad row must not break the others)."""
    hook = Webhook(
        row["id"], row["url"], tuple(row["events"]), row["hmac"], row.get("description", ""), float(row["created"])
    )
    texts = [hook.id, hook.url, hook.description, *hook.events]
    if not all(isinstance(t, str) for t in texts) or not isinstance(row["events"], list) or hook.hmac not in (0, 1):
        raise ValueError("a field has the wrong type")
    if not _HOOK_ID.match(hook.id):
        raise ValueError("the id is not a webhook id")
    for text in texts:
        _check_text(text, "registration")
    parse_webhook_url(hook.url)
    if not math.isfinite(hook.created):
        raise ValueError("created is not a finite number")
    return hook


class WebhookRegistry:
    """Persistent registrations; HMAC secrets go to the vault and are cached in memory once read."""

    def __init__(self, path: Path, vault: Vault) -> None:
        self.path = Path(path)
        self._vault = vault
        self._lock = threading.Lock()
        self._hooks: dict[str, Webhook] = self._read()
        self._secrets: dict[str, str] = {}

    def _read(self) -> dict[str, Webhook]:
        try:
            rows = json.loads(self.path.read_text(encoding="utf-8"))["webhooks"]
            rows = list(rows)
        except FileNotFoundError:
            return {}
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            log.error("webhook registrations unreadable; starting with none", path=str(self.path), error=str(exc))
            return {}
        hooks: dict[str, Webhook] = {}
        for index, row in enumerate(rows):
            try:
                hook = _from_row(row)
            except (ComfyVNError, ValueError, KeyError, TypeError, AttributeError) as exc:
                reason = exc.message if isinstance(exc, ComfyVNError) else type(exc).__name__
                log.warning("skipping a damaged webhook registration", path=str(self.path), index=index, error=reason)
                continue
            hooks[hook.id] = hook
        return hooks

    def _write(self, hooks: dict[str, Webhook]) -> None:
        rows = [h.as_dict() for h in sorted(hooks.values(), key=lambda h: h.created)]
        atomic_write_json(self.path, {"version": 1, "webhooks": rows})

    def list(self) -> list[Webhook]:
        return sorted(self._hooks.values(), key=lambda h: h.created)

    def get(self, hook_id: str) -> Webhook:
        hook = self._hooks.get(hook_id)
        if hook is None:
            raise NotFound(f"no webhook {hook_id[:40]!r}", field="id", code="unknown_webhook")
        return hook

    def find_url(self, url: str) -> Webhook:
        for hook in self._hooks.values():
            if hook.url == url:
                return hook
        raise NotFound("no webhook is registered for that url", field="url", code="unknown_webhook")

    def add(self, spec: WebhookSpec) -> Webhook:
        with self._lock:
            for hook in self._hooks.values():
                if hook.url == spec.url and set(hook.events) == set(spec.events):
                    raise Conflict(
                        f"{spec.url} is already registered for these events as {hook.id}",
                        field="url",
                        code="duplicate_webhook",
                    )
            hook = Webhook(
                f"wh_{secrets.token_hex(6)}",
                spec.url,
                tuple(dict.fromkeys(spec.events)),
                spec.secret is not None,
                spec.description,
                time.time(),
            )
            # Stored first, kept in memory only once written: a failed write leaves the registry as it was.
            if spec.secret is not None:
                self._vault.set(VAULT_PROVIDER, _secret_field(hook.id), spec.secret)
            try:
                self._write({**self._hooks, hook.id: hook})
            except BaseException:
                if spec.secret is not None:
                    self._vault.delete(VAULT_PROVIDER, _secret_field(hook.id))
                raise
            if spec.secret is not None:
                self._secrets[hook.id] = spec.secret
            self._hooks[hook.id] = hook
        return hook

    def remove(self, hook_id: str) -> Webhook:
        with self._lock:
            hook = self.get(hook_id)
            self._write({k: v for k, v in self._hooks.items() if k != hook_id})
            del self._hooks[hook_id]
            if hook.hmac:
                self._vault.delete(VAULT_PROVIDER, _secret_field(hook_id))
                self._secrets.pop(hook_id, None)
        return hook

    def secret(self, hook: Webhook) -> str | None:
        if not hook.hmac:
            return None
        if hook.id not in self._secrets:
            value = self._vault.get(VAULT_PROVIDER, _secret_field(hook.id))
            if value is None:
                return None
            self._secrets[hook.id] = value
        return self._secrets[hook.id]


def _secret_field(hook_id: str) -> str:
    return f"webhook-{hook_id}-hmac"


class WebhookDispatcher:
    """Runs one worker per webhook inside the app's lifespan task group."""

    def __init__(self, bus: EventBus, registry: WebhookRegistry, signer: Signer, settings: ServerSettings) -> None:
        self.bus = bus
        self.registry = registry
        self.signer = signer
        self.settings = settings
        self.policy = EgressPolicy.from_settings(settings)
        self.status: dict[str, DeliveryStatus] = {h.id: DeliveryStatus() for h in registry.list()}
        self._scopes: dict[str, anyio.CancelScope] = {}
        self._group: anyio.abc.TaskGroup | None = None
        self._client: httpx.AsyncClient | None = None

    @property
    def running(self) -> bool:
        return self._group is not None

    def attach(self, group: anyio.abc.TaskGroup, client: httpx.AsyncClient) -> None:
        """Start delivering (called from the lifespan, inside the event loop)."""
        self._group, self._client = group, client
        for hook in self.registry.list():
            self.start(hook)

    def detach(self) -> None:
        for scope in self._scopes.values():
            scope.cancel()
        self._scopes.clear()
        self._group = self._client = None

    def start(self, hook: Webhook) -> None:
        """Subscribe now (so nothing emitted after registration is missed) and start its worker."""
        self.status.setdefault(hook.id, DeliveryStatus())
        if self._group is None:
            return
        stream = self.bus.stream(hook.events or None, max_buffer=self.settings.webhook_queue)
        scope = anyio.CancelScope()
        self._scopes[hook.id] = scope
        self._group.start_soon(self._worker, hook, stream, scope)

    def stop(self, hook_id: str) -> None:
        scope = self._scopes.pop(hook_id, None)
        if scope is not None:
            scope.cancel()
        self.status.pop(hook_id, None)

    async def _worker(self, hook: Webhook, stream: EventStream, scope: anyio.CancelScope) -> None:
        with scope:
            async with stream:
                async for envelope in stream:
                    status = self.status.get(hook.id)
                    if status is None:
                        return
                    status.dropped += stream.take_dropped()
                    try:
                        await self.deliver(hook, envelope, status)
                    except Exception as exc:
                        # Our own bug in one delivery: recorded here, because escaping would end this
                        # worker and, through the shared task group, every other webhook's too.
                        status.state, status.next_retry_at = "failing", None
                        status.last_error = f"internal error ({type(exc).__name__}); see the server log"
                        status.failed += 1
                        log.exception("webhook delivery crashed", webhook=hook.id, seq=envelope.seq)

    def backoff(self, attempt: int) -> float:
        """Seconds before retry ``attempt`` (0-based): exponential, capped."""
        return min(self.settings.webhook_backoff * math.pow(2, attempt), self.settings.webhook_backoff_max)

    async def deliver(self, hook: Webhook, envelope: Envelope, status: DeliveryStatus) -> bool:
        """POST one envelope, retrying transport errors, 408/425/429 and 5xx; record the outcome."""
        assert self._client is not None
        body = envelope_json(envelope, topic=f"modder.{envelope.event}", webhook_id=hook.id).encode("utf-8")
        delivery = uuid.uuid4().hex
        status.last_seq = envelope.seq
        for attempt in range(self.settings.webhook_retries + 1):
            timestamp = str(int(time.time()))
            try:
                headers = {
                    "Content-Type": "application/json",
                    "User-Agent": "comfyvn-server",
                    "X-ComfyVN-Event": envelope.event,
                    "X-ComfyVN-Delivery": delivery,
                    "X-ComfyVN-Webhook-Id": hook.id,
                    "X-ComfyVN-Timestamp": timestamp,
                    "X-ComfyVN-Signature": self.signer.sign(timestamp, body),
                }
                secret = self.registry.secret(hook)
            except ComfyVNError as exc:
                # Never send unsigned: a receiver must be able to trust every delivery it accepts.
                status.state, status.last_error, status.last_status = "unsigned", exc.message, None
                status.failed += 1
                log.error("webhook not delivered: signing key unavailable", webhook=hook.id, error=exc.message)
                return False
            if secret is not None:
                headers["X-ComfyVN-Signature-HMAC"] = hmac_signature(secret, timestamp, body)
            status.attempts += 1
            status.last_attempt_at = time.time()
            code: int | None = None
            retry = True
            try:
                response = await self._post(hook, body, headers)
                code = response.status_code
                error = None if 200 <= code < 300 else f"receiver answered HTTP {code}"
                retry = code >= 500 or code in RETRYABLE
            except DestinationRefused as exc:
                # Policy, not a network condition: nothing was sent, and retrying would not change it.
                error, retry = exc.message, False
            except UnresolvableHost as exc:
                error = exc.message
            except httpx.TransportError as exc:
                # The class only (ConnectError, ReadTimeout…): the OS's words add nothing a receiver's
                # owner needs and would describe the network around this server in more detail.
                error = type(exc).__name__
            except Exception as exc:  # an invalid URL, a TLS setup error…: this webhook's failure only
                error, retry = f"delivery failed ({type(exc).__name__})", False
            status.last_status, status.last_error = code, error
            if error is None:
                status.state, status.last_success_at, status.next_retry_at = "ok", time.time(), None
                status.delivered += 1
                return True
            if not retry:
                break
            if attempt < self.settings.webhook_retries:
                delay = self.backoff(attempt)
                status.state, status.next_retry_at = "retrying", time.time() + delay
                log.info("webhook delivery failed; retrying", webhook=hook.id, error=error, delay=delay)
                await anyio.sleep(delay)
        status.state, status.next_retry_at = "failing", None
        status.failed += 1
        log.warning(
            "webhook delivery gave up",
            webhook=hook.id,
            url=hook.url,
            seq=envelope.seq,
            error=status.last_error,
            attempts=attempt + 1,
        )
        return False

    async def _post(self, hook: Webhook, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """POST to the address the policy checked just now (the name is not resolved again by httpx)."""
        assert self._client is not None
        url = parse_webhook_url(hook.url)
        addresses = await self.policy.addresses(url)
        target, host_header, extensions = pinned(url, addresses[0])
        return await self._client.post(target, content=body, headers={**headers, **host_header}, extensions=extensions)
