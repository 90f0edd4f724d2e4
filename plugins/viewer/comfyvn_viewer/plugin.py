"""Hook implementations of the viewer plugin (wiring only): the flags, the thumbnail event, the routes (Mini-VN,
native viewer, web player) and the Mini-VN refresh job."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from comfyvn import hookimpl

from . import native, player, routes, thumbnails
from .cli import play_command, viewer_group
from .features import FLAG_MINI, FLAG_WEB, THUMBNAIL_EVENT, THUMBNAIL_SCHEMA

if TYPE_CHECKING:
    import click
    from comfyvn import Kernel
    from comfyvn_jobs import KindRegistrar


@hookimpl
def register_flags(register: Any) -> None:
    register(FLAG_WEB, True, "The web player: /play/{project_id}, shareable /api/viewer/web/{token}/... links.")
    register(FLAG_MINI, True, "Mini-VN stills: /api/viewer/mini/*, `comfyvn viewer thumbnail` and the refresh job.")


@hookimpl
def register_events(register: Any) -> None:
    register(
        THUMBNAIL_EVENT,
        "A Mini-VN still of one moment (project, scene, node, pov, seed) is ready: its digest and URL.",
        THUMBNAIL_SCHEMA,
    )


@hookimpl
def register_routes(kernel: Kernel) -> list[Any]:
    return [*routes.make_routes(kernel), *player.player_routes(kernel)]


# optionalhook: the server plugin's hook. A share link checks its own signed, expiring token, and the page
# it opens needs the player's static files, so both are served off-loopback without an API token; the
# route that issues links (POST /api/viewer/share) is outside these prefixes and needs one.
@hookimpl(optionalhook=True)
def server_open_prefixes() -> list[str]:
    return [player.SHARE_PREFIX, player.STATIC_PREFIX]


# optionalhook: the jobs plugin's hook; without it the CLI still draws stills in-process.
@hookimpl(optionalhook=True)
def register_job_kinds(register: KindRegistrar) -> None:
    thumbnails.register_kinds(register)


@hookimpl
def shutdown(kernel: Kernel) -> None:
    """A viewer started by this host ends with it (no orphan Ren'Py window after the server stops)."""
    if native.status(kernel)["running"]:
        native.stop(kernel)


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(play_command)
    cli.add_command(viewer_group)
