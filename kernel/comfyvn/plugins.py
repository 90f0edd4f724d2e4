"""Plugin loading: the plugin-manager factory, entry points, isolation and the listing. A plugin that fails
to import or register is unregistered, logged with its traceback and listed as ``failed`` — never hidden."""

from __future__ import annotations

import functools
import importlib.metadata as metadata
import traceback
import types
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs
import pluggy
import structlog

from . import hookspecs

__all__ = ["ENTRY_POINT_GROUP", "HookFailure", "PluginRecord", "PluginSet", "make_plugin_manager", "per_plugin"]

ENTRY_POINT_GROUP = "comfyvn"
KERNEL_NAME = "comfyvn"
log = structlog.get_logger("comfyvn.plugins")
OnError = Literal["fail", "log", "report"]


@attrs.define
class PluginRecord:
    """What the listing says of one plugin; ``status`` is loaded, failed, blocked or not_allowed."""

    name: str
    status: str
    distribution: str | None = None
    version: str | None = None
    module: str | None = None
    error: str | None = None
    traceback: str | None = None
    hooks: list[str] = attrs.field(factory=list)


@attrs.frozen
class HookFailure:
    """What `PluginSet.call_each` returns in place of a result when ``on_error="report"`` and the plugin raised."""

    hook: str
    error: Exception


@attrs.frozen
class per_plugin:  # noqa: N801 - reads as a function at call sites
    """A `PluginSet.call_each` argument built for each plugin from its name (how registrars know who registers)."""

    factory: Callable[[str], Any]


def make_plugin_manager() -> pluggy.PluginManager:
    """A fresh plugin manager knowing the kernel's hookspecs (never created at import time)."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


@functools.cache
def _dists_by_top_level() -> Mapping[str, list[str]]:
    return metadata.packages_distributions()


def _distribution_of(module: str) -> tuple[str | None, str | None]:
    dist = next(iter(_dists_by_top_level().get(module.split(".")[0]) or []), None)
    return dist, kernel_version(dist) if dist else None


def kernel_version(distribution: str = "comfyvn-kernel") -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


class PluginSet:
    """The plugin manager plus a record of every plugin seen, loaded or not."""

    def __init__(self) -> None:
        self.pm = make_plugin_manager()
        self.records: dict[str, PluginRecord] = {}
        # Called with a failed plugin's name so registries can drop what it contributed.
        self.failure_listeners: list[Callable[[str], None]] = []

    def add(
        self, plugin: object, name: str | None = None, *, distribution: str | None = None, version: str | None = None
    ) -> bool:
        """Register one plugin object (module or instance); a failure is recorded, not raised."""
        is_module = isinstance(plugin, types.ModuleType)
        module = plugin.__name__ if is_module else type(plugin).__module__  # type: ignore[attr-defined]
        if name is None and is_module:
            name = module.rsplit(".", 2)[-2] if module.endswith(".plugin") else module
        name = name or getattr(plugin, "name", None) or type(plugin).__name__.lower()
        if distribution is None:
            distribution, version = _distribution_of(module)
        self.records[name] = PluginRecord(name, "loaded", distribution, version, module)
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # a bad hookimpl signature, a duplicate name, …
            self._mark_failed(name, exc)
            return False
        return True

    def load_entry_points(self, env: Mapping[str, str]) -> None:
        """Load every ``comfyvn`` entry point, honouring ``COMFYVN_PLUGINS``/``COMFYVN_DISABLE_PLUGINS``."""
        allow, block = (
            {p.strip() for p in env.get(var, "").split(",") if p.strip()}
            for var in ("COMFYVN_PLUGINS", "COMFYVN_DISABLE_PLUGINS")
        )
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in self.records:
                continue  # two distributions claiming one name: the first (sorted) wins
            dist, version = (ep.dist.name, ep.dist.version) if ep.dist else (None, None)
            status = "blocked" if ep.name in block else "not_allowed" if allow and ep.name not in allow else None
            if status:
                self.records[ep.name] = PluginRecord(ep.name, status, dist, version, ep.value)
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                self.records[ep.name] = PluginRecord(ep.name, "failed", dist, version, ep.value)
                self._mark_failed(ep.name, exc)
                continue
            self.add(plugin, ep.name, distribution=dist, version=version)

    def publish_hookspecs(self) -> None:
        """Run ``add_hookspecs`` for each plugin, then fail plugins until ``check_pending`` passes."""
        self.call_each("add_hookspecs", pm=self.pm)
        while True:
            try:
                return self.pm.check_pending()
            except pluggy.PluginValidationError as exc:
                name = self.pm.get_name(exc.plugin) if exc.plugin is not None else None
                if name is None:
                    raise
                self._mark_failed(name, exc)

    def call_each(
        self,
        hook_name: str,
        *,
        reverse: bool = False,
        on_error: OnError = "fail",
        undo: Callable[[str], None] | None = None,
        propagate: tuple[type[Exception], ...] = (),
        **kwargs: Any,
    ) -> list[tuple[str, Any]]:
        """The one hook dispatcher: call ``hook_name`` on each plugin separately in pluggy's call order (tryfirst,
        then the last-registered plugin first, then trylast; ``reverse`` turns it around); return ``(plugin,
        result)`` pairs. A raising plugin never stops the others: ``on_error="fail"`` unregisters it, ``"log"``
        logs and notes it and skips it, ``"report"`` also returns ``(plugin, HookFailure)``; ``undo(plugin)``
        first takes back what it had added. ``propagate`` types (the caller's errors) reach the caller as they are.
        """
        caller = getattr(self.pm.hook, hook_name, None)
        impls = [i for i in (caller.get_hookimpls() if caller else []) if not (i.hookwrapper or i.wrapper)]
        # pluggy's own call loop walks its implementation list backwards; so do we, so that a direct
        # ``pm.hook.<name>(...)`` call and this dispatcher agree on who goes first.
        results: list[tuple[str, Any]] = []
        for impl in impls if reverse else reversed(impls):
            name = impl.plugin_name
            args = [kwargs[a].factory(name) if isinstance(kwargs[a], per_plugin) else kwargs[a] for a in impl.argnames]
            try:
                results.append((name, impl.function(*args)))
            except propagate:
                raise
            except Exception as exc:
                if undo is not None:
                    undo(name)
                if on_error == "fail":
                    self._mark_failed(name, exc, during=hook_name)
                    continue
                log.error("plugin hook failed", plugin=name, hook=hook_name, exc_info=exc)
                record = self.records.get(name)
                if record is not None and record.error is None:
                    record.error = f"{hook_name}: {type(exc).__name__}: {exc}"
                if on_error == "report":
                    results.append((name, HookFailure(hook_name, exc)))
        return results

    def _mark_failed(self, name: str, exc: BaseException, *, during: str = "load") -> None:
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        record = self.records.setdefault(name, PluginRecord(name, "failed"))
        record.status = "failed"
        record.error = f"{during}: {type(exc).__name__}: {exc}"
        record.traceback = "".join(traceback.format_exception(exc))
        for listener in self.failure_listeners:
            listener(name)
        log.error("plugin failed", plugin=name, during=during, error=record.error, traceback=record.traceback)

    def listing(self, *, include_all: bool = False) -> list[dict[str, Any]]:
        """Loaded and failed plugins with distribution, version and hooks; ``include_all`` adds the
        kernel itself and blocked or not-allowed plugins."""
        kernel = PluginRecord(KERNEL_NAME, "kernel", "comfyvn-kernel", kernel_version(), "comfyvn")
        rows = [kernel] if include_all else []
        for name in sorted(self.records):
            record = self.records[name]
            plugin = self.pm.get_plugin(name)
            if plugin is not None:
                record.hooks = sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or [])
            if include_all or record.status in ("loaded", "failed"):
                rows.append(record)
        return [attrs.asdict(row) for row in rows]
