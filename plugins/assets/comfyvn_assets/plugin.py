"""Hook implementations of the assets plugin (wiring only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from comfyvn import hookimpl
from comfyvn.errors import NotFound

from . import routes
from .cli import assets_group
from .events import EVENTS
from .registry import AssetRegistry

if TYPE_CHECKING:
    import click
    from comfyvn import Kernel

ASSET_REF = "asset:"


@hookimpl
def register_events(register: Any) -> None:
    for name, (description, schema) in EVENTS.items():
        register(name, description, schema)


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(assets_group)


@hookimpl
def register_routes(kernel: Kernel) -> list[Any]:
    return routes.make_routes(kernel)


@hookimpl
def shutdown(kernel: Kernel) -> None:
    AssetRegistry.forget(kernel)


# optionalhook: the registry works without the Ren'Py exporter installed.
@hookimpl(optionalhook=True)
def renpy_resolve_asset(ref: str, kernel: Kernel) -> dict[str, Any] | None:
    """The file behind ``asset:<uid>`` for the exporter, with what its manifest records."""
    if not isinstance(ref, str) or not ref.startswith(ASSET_REF):
        return None
    registry = AssetRegistry.for_kernel(kernel)
    uid = ref[len(ASSET_REF) :].strip()
    try:
        path = registry.file_path(uid)
        asset = registry.get(uid)
    except NotFound:
        return None
    return {
        "path": str(path),
        "uid": asset.uid,
        "sha256": asset.sha256,
        "provenance": asset.provenance,
        "license": asset.license,
        "source": asset.source,
        "type": asset.type,
        "asset_path": asset.path,
    }
