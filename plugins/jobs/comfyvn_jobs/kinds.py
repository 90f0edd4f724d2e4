"""Job kinds: what plugins register through ``register_job_kinds``, the context a job body receives, and
the diagnostic kinds this plugin ships (``test.noop``, ``test.sleep``, ``test.fail``)."""

from __future__ import annotations

import re
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
from comfyvn.errors import Invalid, OperationFailed
from comfyvn.plugins import per_plugin

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = [
    "JobCancelled",
    "JobContext",
    "JobKind",
    "KindRegistrar",
    "builtin_kinds",
    "check_resources",
    "kinds_for",
]

_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_RESOURCE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
# Progress goes to the scheduler as a message; a job reporting in a tight loop must not flood it.
PROGRESS_INTERVAL = 0.1
MAX_RETRIES = 10

RunFn = Callable[["JobContext", dict[str, Any]], Any]
CheckFn = Callable[[dict[str, Any]], dict[str, Any]]


class JobCancelled(Exception):
    """Raised by `JobContext.report` once the job was cancelled: the body stops at its next report."""


@attrs.frozen
class JobKind:
    """A registered kind of job."""

    name: str
    run: RunFn
    description: str
    owner: str
    resources: Mapping[str, float] = attrs.field(factory=dict)
    retries: int = 0
    check: CheckFn | None = None
    local: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "owner": self.owner,
            "resources": dict(self.resources),
            "retries": self.retries,
            "local": self.local,
        }


def check_resources(value: Any, field: str = "resources") -> dict[str, float]:
    """``{"COMFYUI": 1}``: Dask resource names with positive amounts; anything else is `Invalid`."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise Invalid("resources must be an object of NAME: amount", field=field)
    out: dict[str, float] = {}
    for name, amount in value.items():
        if not isinstance(name, str) or not _RESOURCE.match(name):
            raise Invalid("a resource name is letters, digits and _ (at most 32)", field=f"{field}.{name}")
        if isinstance(amount, bool) or not isinstance(amount, int | float) or not 0 < amount <= 1_000_000:
            raise Invalid(f"resource {name} needs a positive amount", field=f"{field}.{name}")
        out[name] = float(amount)
    return out


class KindRegistrar:
    """The ``register`` handed to one plugin's ``register_job_kinds`` hook."""

    def __init__(self, table: dict[str, JobKind], owner: str) -> None:
        self._table, self.owner = table, owner

    def __call__(
        self,
        name: str,
        run: RunFn,
        description: str,
        *,
        resources: Mapping[str, float] | None = None,
        retries: int = 0,
        check: CheckFn | None = None,
        local: bool = False,
    ) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"invalid job kind {name!r}: use dotted lower-case words (plugin.thing)")
        if not callable(run):
            raise TypeError(f"job kind {name!r}: run must be callable")
        if not isinstance(description, str) or not description.strip():
            raise ValueError(f"job kind {name!r} needs a description")
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
            raise ValueError(f"job kind {name!r}: retries must be 0..{MAX_RETRIES}")
        if (existing := self._table.get(name)) is not None:
            raise ValueError(f"job kind {name!r} is already registered by {existing.owner!r}")
        if not isinstance(local, bool):
            raise TypeError(f"job kind {name!r}: local must be true or false")
        self._table[name] = JobKind(
            name, run, description.strip(), self.owner, check_resources(resources), retries, check, local
        )


_KINDS: weakref.WeakKeyDictionary[Kernel, dict[str, JobKind]] = weakref.WeakKeyDictionary()
_KINDS_LOCK = threading.Lock()


def kinds_for(kernel: Kernel) -> dict[str, JobKind]:
    """Every job kind ``kernel``'s plugins register, collected once per kernel (a failing plugin is logged)."""
    with _KINDS_LOCK:
        table = _KINDS.get(kernel)
        if table is None:
            table = {}

            def undo(owner: str) -> None:
                for name in [n for n, k in table.items() if k.owner == owner]:
                    del table[name]

            kernel.plugins.call_each(
                "register_job_kinds",
                register=per_plugin(lambda owner: KindRegistrar(table, owner)),
                on_error="log",
                # A plugin whose registration fails registers nothing: not half of its kinds.
                undo=undo,
            )
            _KINDS[kernel] = table
        return table


@attrs.define(eq=False)
class JobContext:
    """What a job body gets: its id and kind, the worker's kernel and options, and progress reporting."""

    job_id: str
    kind: str
    kernel: Kernel
    worker: str
    options: Mapping[str, str]
    send: Callable[[dict[str, Any]], None]
    is_cancelled: Callable[[], bool]
    bytes_tx: int = 0
    bytes_rx: int = 0
    _last: float = 0.0
    _last_message: str | None = None

    @property
    def comfyui_url(self) -> str | None:
        """The ComfyUI server next to this worker (``comfyvn worker --comfyui-url``), if any."""
        return self.options.get("comfyui_url")

    def cancelled(self) -> bool:
        """Whether the job was cancelled (Dask cannot stop a running thread: bodies stop themselves)."""
        return self.is_cancelled()

    def report(self, fraction: float, message: str = "") -> None:
        """Progress from 0 to 1 with a short message; raises `JobCancelled` once the job was cancelled."""
        if self.is_cancelled():
            raise JobCancelled(self.job_id)
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction <= 1:
            raise ValueError("progress must be a number from 0 to 1")
        now = time.monotonic()
        message = str(message)[:200]
        if fraction < 1 and message == self._last_message and now - self._last < PROGRESS_INTERVAL:
            return
        self._last, self._last_message = now, message
        self.send({"type": "progress", "job": self.job_id, "progress": float(fraction), "message": message})

    def add_transfer(self, *, tx: int = 0, rx: int = 0) -> None:
        """Count bytes this job sent (``tx``) and received (``rx``) for the cost estimate."""
        self.bytes_tx += max(0, int(tx))
        self.bytes_rx += max(0, int(rx))


# -- the diagnostic kinds ---------------------------------------------------------------------------
def _number(params: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise Invalid(f"{name} must be a number from {low:g} to {high:g}", field=f"params.{name}")
    return float(value)


def _only(params: dict[str, Any], *names: str) -> None:
    extra = sorted(set(params) - set(names))
    if extra:
        raise Invalid(f"unknown parameter {extra[0]!r}", field=f"params.{extra[0]}")


def _check_noop(params: dict[str, Any]) -> dict[str, Any]:
    _only(params)
    return {}


def _noop(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    return {"worker": ctx.worker}


def _check_sleep(params: dict[str, Any]) -> dict[str, Any]:
    _only(params, "seconds", "steps")
    return {
        "seconds": _number(params, "seconds", 0.1, 0, 60),
        "steps": int(_number(params, "steps", 5, 1, 1000)),
    }


def _sleep(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    seconds, steps = float(params["seconds"]), int(params["steps"])
    for step in range(steps):
        time.sleep(seconds / steps)
        ctx.report((step + 1) / steps, f"step {step + 1}/{steps}")
    return {"seconds": seconds, "steps": steps, "worker": ctx.worker}


def _check_fail(params: dict[str, Any]) -> dict[str, Any]:
    _only(params, "message")
    message = params.get("message", "test.fail always fails")
    if not isinstance(message, str) or len(message) > 200:
        raise Invalid("message must be a string of at most 200 characters", field="params.message")
    return {"message": message}


def _fail(ctx: JobContext, params: dict[str, Any]) -> None:
    raise OperationFailed(str(params["message"]), code="job_failed")


def builtin_kinds(register: KindRegistrar) -> None:
    """The diagnostic kinds: a cluster smoke test without any other plugin."""
    register("test.noop", _noop, "Does nothing and returns the worker's name (overhead benchmarks).", check=_check_noop)
    register(
        "test.sleep",
        _sleep,
        "Sleeps `seconds` (≤ 60) in `steps` steps, reporting progress after each (cluster smoke tests).",
        check=_check_sleep,
    )
    register(
        "test.fail", _fail, "Always fails with `message` (checks failure reporting and retries).", check=_check_fail
    )
