"""The `Kernel`: the one object handed to plugins, and the factory that builds it."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import pluggy

from .events import EventBus
from .flags import CHANGED_EVENT, FeatureFlags
from .paths import RuntimePaths
from .plugins import KERNEL_NAME, PluginSet, per_plugin
from .secrets import Vault

__all__ = ["Kernel", "create_kernel"]

_NAMES = {"type": "object", "required": ["provider", "field"], "not": {"required": ["value"]}}
KERNEL_EVENTS: dict[str, tuple[str, dict[str, Any]]] = {
    CHANGED_EVENT: (
        "A feature flag's effective value changed (by `set`, or a `refresh` that read a new value).",
        {
            "type": "object",
            "required": ["name", "value", "previous", "source"],
            "properties": {"value": {"type": "boolean"}, "source": {"enum": ["set", "refresh"]}},
        },
    ),
    "security.secret_read": ("A secret was read from the vault or an override (never its value).", _NAMES),
    "security.secret_write": ("A secret was stored or deleted (never its value).", _NAMES),
    "security.key_rotated": (
        "The vault was re-encrypted under a new key; a backup was kept.",
        {"type": "object", "required": ["kdf", "backup"]},
    ),
}


@attrs.define(eq=False)
class Kernel:
    """Everything a plugin gets: the plugin manager, the event bus, flags, secrets and paths."""

    plugins: PluginSet
    events: EventBus
    flags: FeatureFlags
    secrets: Vault
    paths: RuntimePaths
    env: Mapping[str, str]
    started: bool = False

    @property
    def pm(self) -> pluggy.PluginManager:
        return self.plugins.pm

    @property
    def config(self) -> dict[str, Any]:
        """A copy of ``<config>/comfyvn.json``, read again when another process changed it."""
        return self.flags.document()

    def routes(self) -> list[tuple[str, Any]]:
        """Every plugin's ``register_routes`` result as ``(plugin, route)`` pairs, failures isolated."""
        pairs: list[tuple[str, Any]] = []
        for plugin, routes in self.plugins.call_each("register_routes", kernel=self):
            pairs.extend((plugin, route) for route in routes or [])
        return pairs

    def startup(self) -> None:
        """Run every plugin's ``startup`` once; a failing plugin is logged and the rest still start."""
        if not self.started:
            self.started = True
            self.plugins.call_each("startup", kernel=self, on_error="log")

    def shutdown(self) -> None:
        """Run ``shutdown`` hooks in the reverse of ``startup``'s order, each isolated."""
        if self.started:
            self.started = False
            self.plugins.call_each("shutdown", kernel=self, reverse=True, on_error="log")

    def __enter__(self) -> Kernel:
        self.startup()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def create_kernel(
    plugins: Iterable[object] | None = None,
    *,
    load_entrypoints: bool | None = None,
    paths: RuntimePaths | None = None,
    env: Mapping[str, str] | None = None,
    strict: bool = False,
    history_size: int = 500,
) -> Kernel:
    """Build a kernel: with ``plugins``, exactly those objects (entry points only if ``load_entrypoints``);
    else every installed entry point. ``strict`` (tests) raises on undeclared events and bad payloads."""
    env = dict(os.environ) if env is None else env
    paths = paths or RuntimePaths.from_env(env)
    plugin_set = PluginSet()
    given = list(plugins) if plugins is not None else []
    for plugin in given:
        plugin_set.add(plugin)
    if load_entrypoints or (load_entrypoints is None and plugins is None):
        plugin_set.load_entry_points(env)
    events = EventBus(history_size=history_size, strict=strict)
    flags = FeatureFlags(paths.config / "comfyvn.json", env=env, emit=events.emit)
    vault = Vault(paths.config, env=env, emit=events.emit, audit_path=paths.logs / "secrets_audit.jsonl")
    plugin_set.failure_listeners += [events.remove_owner, flags.remove_owner]
    kernel_events = events.registrar(KERNEL_NAME)
    for name, (description, schema) in KERNEL_EVENTS.items():
        kernel_events(name, description, schema)
    plugin_set.publish_hookspecs()
    plugin_set.call_each("register_events", register=per_plugin(events.registrar))
    plugin_set.call_each("register_flags", register=per_plugin(flags.registrar))
    flags.refresh()
    return Kernel(plugins=plugin_set, events=events, flags=flags, secrets=vault, paths=paths, env=env)
