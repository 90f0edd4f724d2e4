"""The kernel's hook specifications. They only ever grow (new hooks, new parameters), never change meaning;
implementations take only the arguments they use. Documented in ``docs/plugin_hooks.md``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from .events import EventRegistrar
    from .flags import FlagRegistrar
    from .kernel import Kernel

PROJECT = "comfyvn"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def add_hookspecs(pm: pluggy.PluginManager) -> None:
    """Publish a plugin's own extension points with ``pm.add_hookspecs(module)``. Returns nothing.
    Runs once, after every plugin is registered and before any other hook; ``check_pending()`` follows.
    """


@hookspec
def register_events(register: EventRegistrar) -> None:
    """Declare the events a plugin emits: ``register(name, description, schema=None)``. Returns nothing.
    Runs once per plugin while the kernel is built; strict kernels validate payloads against ``schema``.
    """


@hookspec
def register_flags(register: FlagRegistrar) -> None:
    """Declare feature flags: ``register(name, default, description, aliases=())``. Returns nothing.
    Runs once per plugin while the kernel is built, before ``comfyvn.json`` is read.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add the plugin's click group (named after it) to the root group. Returns nothing.
    Runs when the CLI is built; commands receive the `Kernel` through ``@click.pass_obj``.
    """


@hookspec
def register_routes(kernel: Kernel) -> list[Any]:
    """Return the plugin's HTTP routes: Starlette ``Route``/``WebSocketRoute`` objects.
    Runs when the server plugin builds its application; handlers may close over the kernel.
    """
    return []


@hookspec
def startup(kernel: Kernel) -> None:
    """Runs once when a long-lived host starts (the server's lifespan, `Kernel.startup()`), not for
    one-shot CLI commands. A plugin whose startup raises is logged and reported; the others still start.
    """


@hookspec
def shutdown(kernel: Kernel) -> None:
    """Runs when the host stops, in the reverse of ``startup``'s order; each call is isolated."""
