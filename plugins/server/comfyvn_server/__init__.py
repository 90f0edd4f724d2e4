"""ComfyVN's studio server: `create_app(kernel)` composes every plugin's routes into one Starlette app.

Other plugins never import this package: they return plain Starlette routes from ``register_routes``.
"""

from __future__ import annotations

from .app import create_app
from .settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]
