"""Cost telemetry: provider rates from ``<config>/compute_providers.json`` and each job's estimate.

The file (all keys optional)::

    {"default": "local",
     "providers": {"local": {"cost_per_minute": 0},
                   "runpod": {"cost_per_minute": 0.05, "egress_per_gb": 0.09, "ingress_per_gb": 0,
                              "workers": ["gpu-*"]}}}

A job's provider is the first provider (by name) whose ``workers`` patterns (shell-style) match the
name of the worker that ran it, else ``default``; its estimate is ``minutes * cost_per_minute +
GB sent * egress_per_gb + GB received * ingress_per_gb`` (GB = 10⁹ bytes).
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import structlog
from comfyvn.errors import ComfyVNError
from comfyvn.wire import loads

__all__ = ["PROVIDERS_FILE", "Provider", "Providers", "estimate"]

PROVIDERS_FILE = "compute_providers.json"
_RATES = ("cost_per_minute", "egress_per_gb", "ingress_per_gb")
MAX_BYTES = 1 << 20
log = structlog.get_logger("comfyvn.jobs.cost")


@attrs.frozen
class Provider:
    name: str
    cost_per_minute: float = 0.0
    egress_per_gb: float = 0.0
    ingress_per_gb: float = 0.0
    workers: tuple[str, ...] = ()


def _provider(name: str, raw: Any) -> Provider:
    if not isinstance(raw, Mapping):
        raise ComfyVNError(f"provider {name} must be an object", field=f"providers.{name}", code="invalid_config")
    rates: dict[str, float] = {}
    for rate in _RATES:
        value = raw.get(rate, 0)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ComfyVNError(f"{rate} must be a number ≥ 0", field=f"providers.{name}.{rate}", code="invalid_config")
        rates[rate] = float(value)
    workers = raw.get("workers", [])
    if not isinstance(workers, list) or not all(isinstance(w, str) for w in workers):
        raise ComfyVNError(
            "workers must be a list of name patterns", field=f"providers.{name}.workers", code="invalid_config"
        )
    return Provider(name, workers=tuple(workers), **rates)


def parse_providers(document: Any) -> tuple[dict[str, Provider], str | None]:
    """The providers and the default's name from the file's JSON; `ComfyVNError` naming the bad field."""
    if not isinstance(document, Mapping):
        raise ComfyVNError("compute_providers.json must hold an object", field="(root)", code="invalid_config")
    raw = document.get("providers", {})
    if not isinstance(raw, Mapping):
        raise ComfyVNError("providers must be an object", field="providers", code="invalid_config")
    providers = {str(name): _provider(str(name), value) for name, value in sorted(raw.items())}
    default = document.get("default")
    if default is not None and default not in providers:
        raise ComfyVNError("default names no provider", field="default", code="invalid_config")
    return providers, default


class Providers:
    """``<config>/compute_providers.json``, re-read when it changes; an unreadable file means no rates."""

    def __init__(self, config_dir: Path) -> None:
        self.path = config_dir / PROVIDERS_FILE
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._providers: dict[str, Provider] = {}
        self._default: str | None = None
        self.error: str | None = None

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
        except OSError:
            self._stamp, self._providers, self._default, self.error = None, {}, None, None
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            if stat.st_size > MAX_BYTES:
                raise ComfyVNError("the file is over 1 MiB", field="(root)", code="invalid_config")
            self._providers, self._default = parse_providers(loads(self.path.read_bytes(), field="file"))
            self.error = None
        except (OSError, ComfyVNError) as exc:
            self._providers, self._default = {}, None
            field = getattr(exc, "field", None)
            self.error = f"{PROVIDERS_FILE}: {getattr(exc, 'message', str(exc))}" + (f" ({field})" if field else "")
            log.warning("compute providers unreadable; costs are 0", error=self.error)

    def all(self) -> list[Provider]:
        with self._lock:
            self._refresh()
            return list(self._providers.values())

    def for_worker(self, worker: str | None) -> Provider | None:
        """The provider billing ``worker``'s time, or None when no rates apply."""
        with self._lock:
            self._refresh()
            for provider in self._providers.values():
                if worker is not None and any(fnmatch.fnmatchcase(worker, p) for p in provider.workers):
                    return provider
            return None if self._default is None else self._providers[self._default]


def estimate(provider: Provider | None, duration_sec: float, bytes_tx: int, bytes_rx: int) -> dict[str, Any]:
    """``{duration_sec, bytes_tx, bytes_rx, cost_estimate, provider}`` for one finished job."""
    cost = 0.0
    if provider is not None:
        cost = (
            duration_sec / 60 * provider.cost_per_minute
            + bytes_tx / 1e9 * provider.egress_per_gb
            + bytes_rx / 1e9 * provider.ingress_per_gb
        )
    return {
        "duration_sec": round(duration_sec, 6),
        "bytes_tx": bytes_tx,
        "bytes_rx": bytes_rx,
        "cost_estimate": round(cost, 8),
        "provider": None if provider is None else provider.name,
    }
