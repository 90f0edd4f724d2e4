"""The ``comfyvn`` CLI: `make_cli(kernel)` builds a fresh root group with the kernel's commands and the plugins'
groups; `main()` runs it. A `ComfyVNError` becomes one line on stderr and its exit code."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click

from .errors import Blocked, ComfyVNError, Invalid, NotFound, OperationFailed, UpstreamError
from .flags import parse_bool
from .kernel import Kernel, create_kernel
from .log import configure_logging
from .paths import RuntimePaths
from .plugins import kernel_version, per_plugin

__all__ = ["EXIT_CODES", "exit_code", "gate_option", "main", "make_cli", "parse_gate_options"]
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
_GATE_HELP = (
    "An option for the call gates, KEY=VALUE (repeatable); after `comfyvn rating ack TOKEN`: "
    "--gate rating_ack_token=TOKEN --gate rating_acknowledged=true."
)
# Every plugin command that calls a model through the call gates takes it, so a block's way out works everywhere.
gate_option = click.option("--gate", "gate", multiple=True, metavar="KEY=VALUE", help=_GATE_HELP)


def parse_gate_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``--gate KEY=VALUE`` pairs as the call gate's options; ``true``/``false`` become booleans."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise Invalid(f"--gate expects KEY=VALUE, got {pair[:60]!r}", field="gate", code="invalid_option")
        options[key] = {"true": True, "false": False}.get(value.lower(), value)
    return options


# The one place errors become exit codes: 2 for bad input (the default), 1 for a failed operation, 3 when blocked.
EXIT_CODES: dict[type[ComfyVNError], int] = {OperationFailed: 1, UpstreamError: 1, Blocked: 3}


def exit_code(exc: ComfyVNError) -> int:
    """The exit code for ``exc``: its nearest class in `EXIT_CODES`, else 2."""
    return next((EXIT_CODES[cls] for cls in type(exc).__mro__ if cls in EXIT_CODES), 2)


class RootGroup(click.Group):
    """Turns errors raised by any command into one clear line and their exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ComfyVNError as exc:
            click.echo(f"error: {exc.message}" + (f" (field: {exc.field})" if exc.field else ""), err=True)
            ctx.exit(exit_code(exc))


def _out(as_json: bool, data: Any, lines: Iterable[str]) -> None:
    """Print ``data`` as JSON for scripts, or ``lines`` for people."""
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) if as_json else "\n".join(lines)
    if text:
        click.echo(text)


def make_cli(kernel: Kernel) -> click.Group:
    """The root group with the kernel's commands and every plugin's ``register_commands`` group."""

    @click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(kernel_version() or "unknown", prog_name="comfyvn")
    @click.pass_context
    def cli(ctx: click.Context) -> None:
        """ComfyVN: turn AI roleplay into visual novels."""
        ctx.obj = kernel

    @cli.command("plugins")
    @click.option("--all", "include_all", is_flag=True, help="Also list the kernel and blocked plugins.")
    @json_option
    def plugins_cmd(include_all: bool, as_json: bool) -> None:
        """List installed plugins with distribution, version, status and hooks."""
        rows = kernel.plugins.listing(include_all=include_all)
        _out(
            as_json,
            rows,
            (
                f"{r['name']:<16} {r['status']:<11} {r['distribution'] or '-'} {r['version'] or ''}"
                + (f"\n{'':<16} {r['error']}" if r["error"] else "")
                for r in rows
            ),
        )

    @cli.group("flags")
    def flags_group() -> None:
        """Feature flags (stored under `features` in comfyvn.json)."""

    @flags_group.command("list")
    @json_option
    def flags_list(as_json: bool) -> None:
        """Every declared flag with its value and source, and unknown names found in the file."""
        states, unknown = kernel.flags.states(), kernel.flags.unknown()
        _out(
            as_json,
            {"flags": [s.as_dict() for s in states], "unknown": unknown, "file_error": kernel.flags.file_error},
            [f"{s.name:<36} {'on ' if s.value else 'off'} ({s.source}, {s.owner})" for s in states]
            + [f"{n:<36} {json.dumps(v)} (unknown: no plugin declares it)" for n, v in sorted(unknown.items())]
            + ([f"warning: {kernel.flags.file_error}"] if kernel.flags.file_error else []),
        )

    @flags_group.command("get")
    @click.argument("name")
    @json_option
    def flags_get(name: str, as_json: bool) -> None:
        """Show one flag."""
        s = kernel.flags.get(name)
        _out(as_json, s.as_dict(), [f"{s.name} {'on' if s.value else 'off'} ({s.source}): {s.description}"])

    @flags_group.command("set")
    @click.argument("name")
    @click.argument("value")
    def flags_set(name: str, value: str) -> None:
        """Turn a flag on or off (on/off, true/false, 1/0)."""
        state = kernel.flags.set(name, parse_bool(value, field="value"))
        note = " (an environment override decides the effective value)" if state.source == "env" else ""
        click.echo(f"{state.name} {'on' if state.value else 'off'}{note}")

    @cli.group("secrets")
    def secrets_group() -> None:
        """The encrypted secrets vault (names are shown; values only with --reveal)."""

    @secrets_group.command("list")
    @json_option
    def secrets_list(as_json: bool) -> None:
        """Providers and fields stored or overridden (never values)."""
        rows = kernel.secrets.list()
        _out(as_json, rows, (r.get("variable") or f"{r['provider']}.{r['field']} ({r['source']})" for r in rows))

    @secrets_group.command("set")
    @click.argument("provider")
    @click.argument("field")
    @click.option("--value", help="The value (prefer the prompt or --stdin: arguments land in shell history).")
    @click.option("--stdin", "from_stdin", is_flag=True, help="Read the value from standard input.")
    def secrets_set(provider: str, field: str, value: str | None, from_stdin: bool) -> None:
        """Store a secret."""
        if from_stdin:
            value = sys.stdin.read().rstrip("\n")
        kernel.secrets.set(
            provider, field, value if value is not None else click.prompt(f"{provider}.{field}", hide_input=True)
        )
        click.echo(f"stored {provider}.{field}")

    @secrets_group.command("get")
    @click.argument("provider")
    @click.argument("field")
    @click.option("--reveal", is_flag=True, help="Print the value itself.")
    def secrets_get(provider: str, field: str, reveal: bool) -> None:
        """Show whether a secret is set (its value only with --reveal)."""
        value = kernel.secrets.get(provider, field)
        if value is None:
            raise NotFound(f"no secret {provider}.{field}", field="field")
        click.echo(value if reveal else f"{provider}.{field} is set ({len(value)} characters)")

    @secrets_group.command("delete")
    @click.argument("provider")
    @click.argument("field")
    def secrets_delete(provider: str, field: str) -> None:
        """Remove a secret."""
        if not kernel.secrets.delete(provider, field):
            raise NotFound(f"no secret {provider}.{field} in the vault", field="field")
        click.echo(f"deleted {provider}.{field}")

    @secrets_group.command("rotate")
    @click.option("--new-passphrase", is_flag=True, help="Passphrase vaults: prompt for a new passphrase.")
    def secrets_rotate(new_passphrase: bool) -> None:
        """Re-encrypt the vault under a new key, keeping an encrypted backup (a passphrase vault keeps its
        passphrase with a new salt unless --new-passphrase)."""
        passphrase = (
            click.prompt("new passphrase", hide_input=True, confirmation_prompt=True) if new_passphrase else None
        )
        result = kernel.secrets.rotate_key(passphrase)
        click.echo(f"rotated ({result['kdf']}): {result['secrets']} secrets re-encrypted, backup {result['backup']}")
        if passphrase:
            click.echo("set COMFYVN_SECRETS_KEY to the new passphrase before the next use")

    @cli.command("paths")
    @json_option
    def paths_cmd(as_json: bool) -> None:
        """Show the runtime folders (config, data, cache, logs)."""
        roots = kernel.paths.as_dict()
        _out(as_json, roots, (f"{name:<7} {value}" for name, value in roots.items()))

    before: dict[str, set[str]] = {}

    def root_for(plugin: str) -> click.Group:
        before[plugin] = set(cli.commands)
        return cli

    def drop_added(plugin: str) -> None:  # a failing plugin loses the commands it had added
        for name in set(cli.commands) - before[plugin]:
            del cli.commands[name]

    kernel.plugins.call_each("register_commands", cli=per_plugin(root_for), undo=drop_added)
    return cli


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: ``comfyvn``."""
    paths = RuntimePaths.from_env()
    configure_logging(paths.logs)  # before plugins load, so their failures are logged properly
    make_cli(create_kernel(paths=paths)).main(args=list(argv) if argv is not None else None, prog_name="comfyvn")
