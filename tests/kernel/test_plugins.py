"""Plugin loading from real entry points: a distribution written to disk by the test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from comfyvn import Kernel, RuntimePaths, create_kernel, hookimpl
from comfyvn.cli import make_cli


def write_distribution(site: Path, dist: str, version: str, plugins: dict[str, str]) -> None:
    """A minimal installed distribution: modules plus a dist-info with ``comfyvn`` entry points."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("[comfyvn]\n" + "".join(f"{name} = {name}_mod\n" for name in plugins))
    for name, source in plugins.items():
        (site / f"{name}_mod.py").write_text(textwrap.dedent(source))


GOOD = """
    from comfyvn import hookimpl

    @hookimpl
    def register_flags(register):
        register("enable_good_thing", True, "A good thing.")
"""
BROKEN_IMPORT = """
    raise ImportError("missing optional dependency 'nonexistent'")
"""
BAD_HOOK = """
    from comfyvn import hookimpl

    @hookimpl
    def register_flagz(register):
        pass
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    write_distribution(
        site, "comfyvn-testplugins", "3.1.4", {"goodplug": GOOD, "brokenplug": BROKEN_IMPORT, "typoplug": BAD_HOOK}
    )
    monkeypatch.syspath_prepend(str(site))
    return site


def kernel_from_entry_points(tmp_path: Path, **env: str) -> Kernel:
    return create_kernel(paths=RuntimePaths.under(tmp_path / "rt"), env=env)


def test_entry_points_are_loaded_and_failures_listed(site: Path, tmp_path: Path) -> None:
    kernel = kernel_from_entry_points(tmp_path)
    rows = {row["name"]: row for row in kernel.plugins.listing(include_all=True)}
    assert rows["goodplug"]["status"] == "loaded"
    assert (rows["goodplug"]["distribution"], rows["goodplug"]["version"]) == ("comfyvn-testplugins", "3.1.4")
    assert rows["goodplug"]["hooks"] == ["register_flags"]
    assert rows["brokenplug"]["status"] == "failed"
    assert "missing optional dependency 'nonexistent'" in rows["brokenplug"]["error"]
    assert "Traceback" in rows["brokenplug"]["traceback"]
    assert rows["typoplug"]["status"] == "failed" and "register_flagz" in rows["typoplug"]["error"]
    assert kernel.flags.is_enabled("enable_good_thing")


def test_allow_and_block_lists(site: Path, tmp_path: Path) -> None:
    blocked = kernel_from_entry_points(tmp_path, COMFYVN_DISABLE_PLUGINS="goodplug")
    assert blocked.plugins.records["goodplug"].status == "blocked"
    assert blocked.pm.get_plugin("goodplug") is None
    allowed = kernel_from_entry_points(tmp_path, COMFYVN_PLUGINS="goodplug, typoplug")
    statuses = {name: rec.status for name, rec in allowed.plugins.records.items()}
    assert statuses["brokenplug"] == "not_allowed" and statuses["goodplug"] == "loaded"
    default_rows = {row["name"] for row in allowed.plugins.listing()}
    assert "brokenplug" not in default_rows and "typoplug" in default_rows


def test_cli_plugins_all_json_lists_distribution_version_and_failures(site: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(make_cli(kernel_from_entry_points(tmp_path)), ["plugins", "--all", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["comfyvn"]["status"] == "kernel" and rows["comfyvn"]["distribution"] == "comfyvn-kernel"
    assert rows["brokenplug"]["status"] == "failed" and rows["brokenplug"]["error"]


def test_installed_comfyvn_command_lists_hello_and_a_failing_plugin(site: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        "COMFYVN_RUNTIME_ROOT": str(tmp_path / "rt"),
    }
    out = subprocess.run(
        [sys.executable, "-m", "comfyvn", "plugins", "--all", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = {row["name"]: row for row in json.loads(out.stdout)}
    assert rows["hello"]["distribution"] == "comfyvn-hello" and rows["hello"]["version"]
    assert rows["brokenplug"]["status"] == "failed"
    assert "plugin failed" in out.stderr


def test_a_plugin_failing_in_register_commands_loses_only_its_commands(make_kernel: Callable[..., Kernel]) -> None:
    import click

    class Fine:
        @hookimpl
        def register_commands(self, cli: click.Group) -> None:
            cli.add_command(click.Command("fine", callback=lambda: click.echo("fine ran")))

    class Bad:
        @hookimpl
        def register_commands(self, cli: click.Group) -> None:
            cli.add_command(click.Command("half", callback=lambda: None))
            raise RuntimeError("bad plugin")

    kernel = make_kernel(Fine(), Bad())
    cli = make_cli(kernel)
    assert "fine" in cli.commands and "half" not in cli.commands
    assert kernel.plugins.records["bad"].status == "failed"
    assert CliRunner().invoke(cli, ["fine"]).output == "fine ran\n"


def test_no_plugin_manager_at_import_time() -> None:
    code = (
        "import gc, pluggy, comfyvn, comfyvn.cli; "
        "print(sum(isinstance(o, pluggy.PluginManager) for o in gc.get_objects()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"
