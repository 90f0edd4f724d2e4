"""Where jobs run: ``jobs`` in comfyvn.json and ``COMFYVN_DASK_SCHEDULER``.

``{"jobs": {"scheduler": "tcp://host:8786", "threads": 8, "resources": {"GPU": 1}, "connect_timeout": 10}}``
— all optional. Without a scheduler the service starts an in-process Dask ``LocalCluster`` (one worker,
``threads`` threads, default the CPU count but at least 2, advertising ``resources``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
from comfyvn.errors import ComfyVNError

from .kinds import check_resources

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["SCHEDULER_ENV", "JobSettings", "parse_resources"]

SCHEDULER_ENV = "COMFYVN_DASK_SCHEDULER"
_ADDRESS = re.compile(r"^(tcp|tls|inproc|ws|wss)://[^\s/]+$")


def _bad(message: str, field: str) -> ComfyVNError:
    return ComfyVNError(message, field=f"jobs.{field}", code="invalid_config")


def check_address(address: str, field: str = "scheduler") -> str:
    """A Dask scheduler address such as ``tcp://127.0.0.1:8786``."""
    if not _ADDRESS.match(address):
        raise ComfyVNError("a scheduler address looks like tcp://host:8786", field=field, code="invalid_scheduler")
    return address


def parse_resources(text: str, field: str = "resources") -> dict[str, float]:
    """``COMFYUI=1,GPU=1`` -> ``{"COMFYUI": 1.0, "GPU": 1.0}`` (the ``--resources`` option)."""
    pairs: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, amount = item.partition("=")
        try:
            if not sep:
                raise ValueError(item)
            pairs[name.strip()] = float(amount)
        except ValueError:
            raise ComfyVNError(f"{item!r}: expected NAME=AMOUNT", field=field, code="invalid_resources") from None
    return check_resources(pairs, field)


@attrs.frozen
class JobSettings:
    scheduler: str | None = None
    threads: int = 2
    resources: Mapping[str, float] = attrs.field(factory=dict)
    connect_timeout: float = 10.0

    @classmethod
    def from_kernel(cls, kernel: Kernel) -> JobSettings:
        """The settings of ``kernel``: its environment first, then ``jobs`` in comfyvn.json."""
        section = kernel.config.get("jobs", {})
        if not isinstance(section, Mapping):
            raise _bad("jobs in comfyvn.json must be an object", "(root)")
        unknown = sorted(set(section) - {"scheduler", "threads", "resources", "connect_timeout"})
        if unknown:
            raise _bad(f"unknown setting {unknown[0]!r}", unknown[0])
        scheduler = kernel.env.get(SCHEDULER_ENV) or section.get("scheduler")
        if scheduler is not None:
            if not isinstance(scheduler, str):
                raise _bad("scheduler must be an address string", "scheduler")
            check_address(scheduler, "jobs.scheduler")
        threads = section.get("threads", max(2, os.cpu_count() or 2))
        if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 256:
            raise _bad("threads must be a whole number from 1 to 256", "threads")
        timeout = section.get("connect_timeout", 10)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 600:
            raise _bad("connect_timeout must be a number of seconds up to 600", "connect_timeout")
        resources = check_resources(section.get("resources"), "jobs.resources")
        return cls(scheduler or None, threads, resources, float(timeout))
