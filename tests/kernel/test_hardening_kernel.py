"""Issue 11 #12 (flags: a file lock across processes, CLI changes seen by a running server) and #13 (broken
config and vault files give one line, never a traceback)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from comfyvn import Kernel, hookimpl
from comfyvn.cli import make_cli
from comfyvn.flags import FeatureFlags

NAMES = [f"enable_f{i}" for i in range(12)]


class Many:
    name = "many"

    @hookimpl
    def register_flags(self, register: Any) -> None:
        for name in NAMES:
            register(name, False, f"Flag {name}.")


def _flags(path: Path, events: list[Any] | None = None) -> FeatureFlags:
    flags = FeatureFlags(
        path, env={}, emit=(lambda name, payload: events.append(payload)) if events is not None else None
    )
    register = flags.registrar("many")
    for name in NAMES:
        register(name, False, f"Flag {name}.")
    return flags.refresh()


def test_concurrent_writers_from_separate_processes_lose_nothing(tmp_path: Path) -> None:
    # Each writer has its own FeatureFlags, as the CLI and the server do: only a file lock orders them.
    path = tmp_path / "comfyvn.json"
    path.write_text(json.dumps({"features": {}, "server": {"port": 8123}}))
    start = threading.Barrier(len(NAMES))

    def writer(name: str) -> None:
        flags = _flags(path)
        start.wait()
        for value in (True, False, True):
            flags.set(name, value)

    threads = [threading.Thread(target=writer, args=(name,)) for name in NAMES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    document = json.loads(path.read_text())
    assert document["features"] == dict.fromkeys(NAMES, True) and document["server"] == {"port": 8123}


def test_a_running_server_sees_a_cli_change(tmp_path: Path) -> None:
    path = tmp_path / "comfyvn.json"
    events: list[Any] = []
    server, cli = _flags(path, events), _flags(path)
    assert server.is_enabled("enable_f3") is False
    cli.set("enable_f3", "on")
    assert server.is_enabled("enable_f3") is True
    assert server.get("enable_f3").source == "file"
    assert {"name": "enable_f3", "value": True, "previous": False, "source": "refresh"} in events


def _cli(kernel: Kernel, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(make_cli(kernel), list(args))
    return result.exit_code, result.output


def test_a_config_nested_deep_is_reported_not_a_crash(make_kernel: Callable[..., Kernel], runtime: Any) -> None:
    runtime.config.mkdir(parents=True)
    (runtime.config / "comfyvn.json").write_text('{"features": ' + "[" * 100_000 + "]" * 100_000 + "}")
    kernel = make_kernel(Many())  # before: RecursionError while building the kernel, so every command died
    assert kernel.flags.file_error is not None and "nested deeper" in kernel.flags.file_error
    assert kernel.flags.snapshot()["enable_f0"] is False and kernel.config == {}
    code, output = _cli(kernel, "flags", "list")
    assert code == 0 and "warning:" in output
    code, output = _cli(kernel, "flags", "set", "enable_f0", "on")
    assert code == 2 and output.count("\n") == 1 and output.startswith("error: refusing to overwrite"), output


def test_a_config_number_out_of_range_is_reported(make_kernel: Callable[..., Kernel], runtime: Any) -> None:
    runtime.config.mkdir(parents=True)
    (runtime.config / "comfyvn.json").write_text('{"server": {"max_body_size": 1e400}}')
    kernel = make_kernel(Many())
    assert kernel.flags.file_error is not None and kernel.config == {}


def test_server_settings_refuse_an_infinite_body_size() -> None:
    from comfyvn.errors import ComfyVNError
    from comfyvn_server import ServerSettings

    for value in (float("inf"), float("nan"), 10**400):
        try:
            ServerSettings.resolve(config={"server": {"max_body_size": value}})
        except ComfyVNError as exc:
            assert exc.field == "server.max_body_size"
        else:
            raise AssertionError(f"{value!r} accepted")


def test_a_vault_that_is_a_folder_or_nested_deep_is_one_line(make_kernel: Callable[..., Kernel], runtime: Any) -> None:
    kernel = make_kernel()
    vault = kernel.secrets.path
    vault.parent.mkdir(parents=True, exist_ok=True)
    vault.mkdir()
    code, output = _cli(kernel, "secrets", "get", "comfyui", "token")
    assert code == 2 and output.startswith("error: the vault file is corrupted") and output.count("\n") == 1, output
    vault.rmdir()
    vault.write_text("[" * 100_000 + "]" * 100_000)
    code, output = _cli(kernel, "secrets", "list")
    assert code == 2 and output.startswith("error: the vault file is corrupted") and output.count("\n") == 1, output
