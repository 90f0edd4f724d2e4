"""`create_app(kernel)`: the server's own routes plus every plugin's, middleware and lifespan.

Composition happens once, without decorators or globals: the routes are the objects plugins return
from ``register_routes``. A route that clashes with an earlier one (same path and method) is left
out and reported in ``/status``, as is a plugin that returns something that is not a route.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import structlog
from comfyvn import Kernel
from comfyvn.errors import ComfyVNError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp

from . import bus, core
from .auth import RouteScopes
from .errors import EXCEPTION_HANDLERS, route_not_found
from .middleware import GuardMiddleware
from .settings import ServerSettings
from .state import ServerState

__all__ = ["SERVER_EVENTS", "create_app", "declare_events"]

log = structlog.get_logger("comfyvn.server")
# A self-authorising prefix: two or more plain segments, ending in "/" (never "/" or "/api/" alone).
_OPEN_PREFIX = re.compile(r"(?:/[A-Za-z0-9_~-][A-Za-z0-9_.~-]*){2,}/")
SERVER_PLUGIN = "server"
SERVER_EVENTS = {bus.TEST_EVENT: ("A test envelope emitted by POST /api/modder/hooks/test.", bus.TEST_EVENT_SCHEMA)}


def declare_events(register: Any) -> None:
    """Declare the server's own events with a kernel ``register`` (the plugin hook uses this)."""
    for name, (description, schema) in SERVER_EVENTS.items():
        register(name, description, schema)


def _route_keys(route: BaseRoute, prefix: str = "") -> list[str]:
    if isinstance(route, Route):
        return [f"{m} {prefix}{route.path}" for m in sorted(route.methods or {"GET"}) if m != "HEAD"]
    if isinstance(route, WebSocketRoute):
        return [f"WS {prefix}{route.path}"]
    if isinstance(route, Mount):
        keys = [key for sub in route.routes or [] for key in _route_keys(sub, prefix + route.path)]
        return keys or [f"MOUNT {prefix}{route.path}"]
    return []


class StudioApp(Starlette):
    """Starlette with the guard as the outermost layer.

    Starlette wraps every app in its ``ServerErrorMiddleware``, which answers an escaped exception with
    a plain-text 500. `GuardMiddleware` already turns every escape into a logged JSON 500 that carries
    the request id, so Starlette's layer could only ever see the guard's own errors, and the guard
    catches those too. Leaving it out takes one layer (a call and a wrapped ``send`` per message) off
    every request: measured on hypercorn, about 3% of ``/health`` throughput.
    """

    def build_middleware_stack(self) -> ASGIApp:
        handlers = {key: value for key, value in self.exception_handlers.items() if key not in (500, Exception)}
        app: ASGIApp = ExceptionMiddleware(self.router, handlers=handlers, debug=self.debug)
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return app


def _server_name(kernel: Kernel) -> str:
    """Built-in routes belong to the server plugin under whatever name it was registered with."""
    return next(
        (
            name
            for name, plugin in kernel.pm.list_name_plugin()
            if getattr(plugin, "__name__", None) == f"{__package__}.plugin"
        ),
        SERVER_PLUGIN,
    )


def _compose(state: ServerState) -> list[BaseRoute]:
    routes: list[BaseRoute] = []

    def add(owner: str, route: Any) -> None:
        if not isinstance(route, BaseRoute):
            state.route_errors.append({"plugin": owner, "error": f"not a Starlette route: {type(route).__name__}"})
            log.error("plugin returned a non-route", plugin=owner, type=type(route).__name__)
            return
        keys = _route_keys(route)
        clashes = [key for key in keys if key in state.route_owner]
        if clashes:
            for key in clashes:
                state.route_conflicts.append({"route": key, "kept": state.route_owner[key], "dropped": owner})
            log.error("route conflict; later route left out", plugin=owner, routes=clashes)
            return
        for key in keys:
            state.route_owner[key] = owner
        routes.append(route)

    me = _server_name(state.kernel)
    for route in [*core.make_routes(), *bus.make_routes()]:
        add(me, route)
    for owner, route in state.kernel.routes():
        add(owner, route)
    return routes


def open_prefixes(kernel: Kernel) -> tuple[str, ...]:
    """The ``server_open_prefixes`` answers that are well formed: ``/a/b/``-shaped, at least two segments."""
    found: set[str] = set()
    for plugin, answer in kernel.plugins.call_each("server_open_prefixes", on_error="log", kernel=kernel):
        if answer is None:
            continue
        for prefix in answer if isinstance(answer, list) else [answer]:
            if isinstance(prefix, str) and _OPEN_PREFIX.fullmatch(prefix):
                found.add(prefix)
            else:
                log.warning("server_open_prefixes answer ignored", plugin=plugin, prefix=str(prefix)[:80])
    return tuple(sorted(found))


def create_app(kernel: Kernel, settings: ServerSettings | None = None) -> Starlette:
    """The studio application for ``kernel``.

    ``settings`` default to the environment (``COMFYVN_SERVER_HOST``/``PORT``) and the ``server``
    section of ``comfyvn.json``. The lifespan runs ``kernel.startup()``/``shutdown()`` and the
    webhook deliveries; off-loopback it refuses to start while no API token exists.
    """
    if settings is None:
        settings = ServerSettings.resolve(env=kernel.env, config=kernel.config)
    if kernel.events.spec(bus.TEST_EVENT) is None:
        # The server plugin itself may not be registered (a plugin's tests compose just their routes).
        declare_events(kernel.events.registrar(SERVER_PLUGIN))
    state = ServerState.build(kernel, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if not settings.loopback and not state.tokens.list():
            raise ComfyVNError(
                f"refusing to serve on {settings.host}: it is reachable off this machine and no "
                "API token exists; create one with `comfyvn tokens create --scope admin`",
                field="host",
                code="token_required",
            )
        async with httpx.AsyncClient(timeout=settings.webhook_timeout) as client, anyio.create_task_group() as group:
            state.hub.closing = None  # a fresh event for this run (an app may be served more than once)
            state.dispatcher.attach(group, client)
            kernel.startup()
            try:
                yield
            finally:
                state.hub.closing_event().set()
                kernel.shutdown()
                state.dispatcher.detach()
                group.cancel_scope.cancel()

    routes = _compose(state)
    # Write scopes follow the plugin that owns the route a request reaches, not its path's prefix.
    owned = [(route, state.route_owner[keys[0]]) for route in routes if (keys := _route_keys(route))]
    scopes = RouteScopes(owned, server=_server_name(kernel))
    app = StudioApp(
        routes=routes,
        middleware=[
            Middleware(
                GuardMiddleware,
                settings=settings,
                tokens=state.tokens,
                scopes=scopes,
                open_prefixes=open_prefixes(kernel),
            )
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    # A miss is a 404 JSON error for WebSocket handshakes too (Starlette's default closes them: a bare 403).
    app.router.default = route_not_found
    app.state.server = state
    return app
