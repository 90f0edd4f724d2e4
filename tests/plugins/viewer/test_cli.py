"""The viewer's commands: ``comfyvn viewer thumbnail`` writes the same still as the HTTP API for the same
moment, bad input exits 2 with one line; ``comfyvn play`` puts a folder in the store, prints the player's
URL and hands over to ``comfyvn serve`` with the same host and port."""

from __future__ import annotations

import io
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import comfyvn_renpy.plugin
import comfyvn_scenario.plugin
import comfyvn_viewer.plugin
import pytest
from click.testing import CliRunner
from comfyvn import Kernel
from comfyvn.cli import make_cli
from comfyvn_scenario import ProjectStore
from PIL import Image

DEMO = Path(__file__).resolve().parents[3] / "examples" / "demo"
PLUGINS = (comfyvn_scenario.plugin, comfyvn_renpy.plugin, comfyvn_viewer.plugin)


def _invoke(kernel: Kernel, *args: str, cli: click.Group | None = None) -> Any:
    return CliRunner().invoke(cli or make_cli(kernel), list(args))


def test_thumbnail_writes_the_still_of_the_node(make_kernel: Callable[..., Kernel], tmp_path: Path) -> None:
    kernel = make_kernel(*PLUGINS)
    out = tmp_path / "shots" / "greets.png"
    out.parent.mkdir()
    result = _invoke(kernel, "viewer", "thumbnail", str(DEMO), "--node", "alice_greets", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "platform/alice_greets" in result.output
    with Image.open(out) as image:
        assert image.size == (640, 360)
    first = out.read_bytes()
    # The same moment again (answered from the cache) gives the same bytes; test_mini redraws from nothing.
    again = tmp_path / "again.png"
    assert (
        _invoke(kernel, "viewer", "thumbnail", str(DEMO), "--node", "alice_greets", "--out", str(again)).exit_code == 0
    )
    assert again.read_bytes() == first
    other = tmp_path / "bags.png"
    _invoke(kernel, "viewer", "thumbnail", str(DEMO), "--node", "bags", "--size", "320x180", "--out", str(other))
    with Image.open(io.BytesIO(other.read_bytes())) as image:
        assert image.size == (320, 180)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--node", "nowhere"], "has no node 'nowhere'"),
        (["--node", "arrival", "--size", "10x10"], "size must be at least"),
        (["--node", "arrival", "--pov", "nobody"], "no POV 'nobody'"),
    ],
)
def test_thumbnail_bad_input_exits_2_with_one_line(
    make_kernel: Callable[..., Kernel], tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "x.png"
    result = _invoke(make_kernel(*PLUGINS), "viewer", "thumbnail", str(DEMO), *args, "--out", str(out))
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_thumbnail_with_the_flag_off_names_it(make_kernel: Callable[..., Kernel], tmp_path: Path) -> None:
    kernel = make_kernel(*PLUGINS, env={"COMFYVN_FEATURE_ENABLE_MINI_VN": "0"})
    result = _invoke(kernel, "viewer", "thumbnail", str(DEMO), "--node", "arrival", "--out", str(tmp_path / "x.png"))
    assert result.exit_code == 2 and "enable_mini_vn" in result.stderr


def _with_serve(kernel: Kernel, calls: list[dict[str, Any]]) -> click.Group:
    """The CLI with a stand-in ``serve`` that records how `play` called it (the real one runs until Ctrl+C)."""
    cli = make_cli(kernel)

    @click.command("serve")
    @click.option("--host", default=None)
    @click.option("--port", type=int, default=None)
    @click.option("--reload", is_flag=True)
    def serve(**options: Any) -> None:
        calls.append(options)

    cli.add_command(serve)
    return cli


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_play_adds_a_folder_prints_the_url_and_serves(make_kernel: Callable[..., Kernel]) -> None:
    port, default = _free_port(), _free_port()
    kernel = make_kernel(*PLUGINS, env={"COMFYVN_SERVER_PORT": str(default)})
    calls: list[dict[str, Any]] = []
    result = _invoke(kernel, "play", str(DEMO), "--port", str(port), cli=_with_serve(kernel, calls))
    assert result.exit_code == 0, result.output
    assert f"http://127.0.0.1:{port}/play/demo" in result.output
    assert ProjectStore.for_kernel(kernel).exists("demo")
    assert calls == [{"host": None, "port": port, "reload": False}]
    # Played again from the folder, the stored copy is not overwritten unless asked.
    again = _invoke(kernel, "play", str(DEMO), cli=_with_serve(kernel, calls))
    assert again.exit_code == 2 and "comfyvn play demo" in again.stderr and "--replace" in again.stderr
    by_id = _invoke(kernel, "play", "demo", cli=_with_serve(kernel, calls))
    assert by_id.exit_code == 0 and f"http://127.0.0.1:{default}/play/demo" in by_id.output


def test_play_on_a_busy_port_prints_no_url(make_kernel: Callable[..., Kernel]) -> None:
    kernel = make_kernel(*PLUGINS)
    calls: list[dict[str, Any]] = []
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = _invoke(kernel, "play", str(DEMO), "--port", str(port), cli=_with_serve(kernel, calls))
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and "/play/" not in result.output
    assert (
        result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}") and len(result.stderr.splitlines()) == 1
    )
    assert calls == [] and not ProjectStore.for_kernel(kernel).exists("demo")


def test_play_an_unknown_project_exits_2(make_kernel: Callable[..., Kernel]) -> None:
    kernel = make_kernel(*PLUGINS, env={"COMFYVN_SERVER_PORT": str(_free_port())})
    calls: list[dict[str, Any]] = []
    result = _invoke(kernel, "play", "nothing-here", cli=_with_serve(kernel, calls))
    assert result.exit_code == 2 and "nothing-here" in result.stderr
    assert calls == []


def test_play_with_the_web_player_off_names_the_flag(make_kernel: Callable[..., Kernel]) -> None:
    kernel = make_kernel(*PLUGINS, env={"COMFYVN_FEATURE_ENABLE_VIEWER_WEBMODE": "0"})
    result = _invoke(kernel, "play", "demo", cli=_with_serve(kernel, []))
    assert result.exit_code == 2 and "enable_viewer_webmode" in result.stderr
