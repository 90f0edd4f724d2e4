"""`comfyvn serve` and `comfyvn tokens create|list|revoke`."""

from __future__ import annotations

import json
import time

import click
from comfyvn import Kernel

from .auth import TokenStore
from .settings import ServerSettings
from .state import TOKENS_FILE

__all__ = ["serve_command", "tokens_group"]


@click.command("serve")
@click.option("--host", default=None, help="Interface to bind (default 127.0.0.1, or COMFYVN_SERVER_HOST).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port (default 8001, or COMFYVN_SERVER_PORT; 0 picks a free one).",
)
@click.option("--reload", is_flag=True, help="Restart the worker when source files change (development).")
@click.pass_obj
def serve_command(kernel: Kernel, host: str | None, port: int | None, reload: bool) -> None:
    """Run the studio server on hypercorn until Ctrl+C or SIGTERM."""
    from .serve import run

    settings = ServerSettings.resolve(env=kernel.env, config=kernel.config, host=host, port=port)
    run(kernel, settings, reload=reload, echo=click.echo)


def _store(kernel: Kernel) -> TokenStore:
    return TokenStore(kernel.paths.config / TOKENS_FILE)


@click.group("tokens")
def tokens_group() -> None:
    """Scoped API tokens for the server (stored hashed; needed when it listens off-loopback)."""


@tokens_group.command("create")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    help="A scope such as 'admin', 'flags.write' or 'modder.write' (repeatable).",
)
@click.option("--name", default="", help="A label to recognise the token by.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def tokens_create(kernel: Kernel, scopes: tuple[str, ...], name: str, as_json: bool) -> None:
    """Create a token and print it once (only its hash is kept)."""
    token, record = _store(kernel).create(list(scopes), name=name)
    if as_json:
        click.echo(json.dumps({"token": token, **record.public()}, indent=2, sort_keys=True))
        return
    click.echo(token)
    click.echo(f"id {record.id}, scopes {', '.join(record.scopes)} — store it now: it cannot be shown again", err=True)


@tokens_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def tokens_list(kernel: Kernel, as_json: bool) -> None:
    """List tokens (ids, names, scopes; never the tokens)."""
    records = [r.public() for r in _store(kernel).list()]
    if as_json:
        click.echo(json.dumps(records, indent=2, sort_keys=True))
        return
    for row in records:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(row["created"]))
        click.echo(f"{row['id']}  {created}  {','.join(row['scopes']):<30} {row['name']}".rstrip())


@tokens_group.command("revoke")
@click.argument("token_id")
@click.pass_obj
def tokens_revoke(kernel: Kernel, token_id: str) -> None:
    """Revoke a token by id (a running server stops accepting it at once)."""
    record = _store(kernel).revoke(token_id)
    click.echo(f"revoked {record.id}")
