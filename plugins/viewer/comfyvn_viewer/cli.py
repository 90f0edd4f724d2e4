"""The viewer's commands: ``comfyvn play PROJECT`` (serve the studio and print the player's URL) and
``comfyvn viewer thumbnail PROJECT --node N --out FILE`` (a Mini-VN still to a file)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import urllib.request
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from comfyvn.errors import ComfyVNError, Conflict
from comfyvn.paths import atomic_write_bytes
from comfyvn_scenario import load_project
from comfyvn_scenario.store import ProjectStore

from . import thumbnails
from .features import FLAG_WEB
from .mini import Moment, parse_size

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["play_command", "viewer_group"]

_DEFAULT_PORT = 8001


def _store_id(kernel: Kernel, project: str, replace: bool) -> tuple[str, str | None]:
    """The store id to play: a store id as given, or a folder added to the store (``replace`` to overwrite a
    stored project of the same id). Returns the id and, for a folder, what was done."""
    store = ProjectStore.for_kernel(kernel)
    folder = Path(project)
    if not (folder.is_dir() or folder.name == "project.json"):
        store.load(project)  # 404 naming the project when it is neither a folder nor a store id
        return project, None
    wanted = load_project(folder).id or None
    if wanted is not None and store.exists(wanted) and not replace:
        raise Conflict(
            f"the store already has a project {wanted!r}: play it by id (comfyvn play {wanted}) or pass --replace",
            field="project",
            code="project_exists",
        )
    stored = store.create_from_folder(folder, project_id=wanted, replace=replace)
    return stored.id, f"added {folder.name} to the project store as {stored.id!r}"


def _open_when_up(base: str, url: str) -> None:
    """Open ``url`` in the browser once the server answers its health check (at most 30 s)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2):  # our own server, at the URL printed
                webbrowser.open(url)
                return
        except OSError:
            time.sleep(0.2)


def _check_free(host: str, port: int) -> None:
    """Refuse a port something already listens on, before any URL is printed (a URL followed by "cannot
    listen" sends people to whatever holds the port). The socket is closed at once for `serve` to bind."""
    name = host.strip("[]")
    try:
        probe = socket.create_server((name, port), family=socket.AF_INET6 if ":" in name else socket.AF_INET)
    except OSError as exc:
        raise ComfyVNError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}", field="port", code="bind_failed"
        ) from None
    probe.close()


@click.command("play")
@click.argument("project")
@click.option("--host", default=None, help="Interface to bind (default 127.0.0.1, or COMFYVN_SERVER_HOST).")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="Port (default 8001, or COMFYVN_SERVER_PORT)."
)
@click.option("--open", "open_browser", is_flag=True, help="Open the player in the default browser.")
@click.option("--replace", is_flag=True, help="A folder replaces the stored project of the same id.")
@click.pass_context
def play_command(
    ctx: click.Context, project: str, host: str | None, port: int | None, open_browser: bool, replace: bool
) -> None:
    """Serve PROJECT (a store id, or a folder added to the store) and print the web player's URL."""
    kernel: Kernel = ctx.obj
    kernel.flags.require(FLAG_WEB)
    root = ctx.find_root().command
    serve = root.get_command(ctx, "serve") if isinstance(root, click.Group) else None
    if serve is None:
        raise click.UsageError("the server plugin is not installed: `comfyvn serve` is missing")
    env = {**os.environ, **kernel.env}
    shown_host = host or env.get("COMFYVN_SERVER_HOST") or "127.0.0.1"
    shown_port = port or int(env.get("COMFYVN_SERVER_PORT") or _DEFAULT_PORT)
    # Before the store changes (a folder played on a busy port is not left half-added) and before any URL.
    _check_free(shown_host, shown_port)
    project_id, note = _store_id(kernel, project, replace)
    name = f"[{shown_host}]" if ":" in shown_host else shown_host
    base = f"http://{'127.0.0.1' if shown_host in ('0.0.0.0', '::') else name}:{shown_port}"
    url = f"{base}/play/{project_id}"
    if note:
        click.echo(note)
    click.echo(f"play {project_id}: {url}")
    if open_browser:
        threading.Thread(target=_open_when_up, args=(base, url), daemon=True).start()
    ctx.invoke(serve, host=host, port=shown_port, reload=False)


@click.group("viewer")
def viewer_group() -> None:
    """Mini-VN stills of a project (the web player: `comfyvn play`)."""


@viewer_group.command("thumbnail")
@click.argument("project")
@click.option("--node", required=True, help="The node to draw.")
@click.option("--scene", default=None, help="Its scene (default: the first scene that has the node).")
@click.option("--pov", default=None, help="The point of view (default: the project's).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("--size", default="640x360", show_default=True, help="WxH, at most 1920x1080, 1:1 to 3:1.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="PNG to write.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def thumbnail_command(
    kernel: Kernel,
    project: str,
    node: str,
    scene: str | None,
    pov: str | None,
    seed: int,
    size: str,
    out: Path,
    as_json: bool,
) -> None:
    """Draw the Mini-VN still of NODE of PROJECT (a folder or a store id) into --out."""
    dimensions = parse_size(size, field="--size")
    loaded = thumbnails.load(kernel, project, allow_folder=True)
    shot: dict[str, Any] = thumbnails.snapshot(kernel, loaded, Moment(scene, node, pov, seed), dimensions)
    atomic_write_bytes(out, thumbnails.thumbnail_file(kernel, shot["mini_digest"]).read_bytes())
    if as_json:
        click.echo(json.dumps({**shot, "out": str(out)}, indent=2, sort_keys=True))
    else:
        where = f"{shot['scene']}/{shot['node']}"
        click.echo(f"{out}: {shot['width']}x{shot['height']} still of {where} ({shot['mini_digest'][:12]})")
