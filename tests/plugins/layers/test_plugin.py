"""The layers plugin's wiring: its flag (on by default, and off refusing the CLI), its events with payload
schemas that a strict kernel checks on a real split, the limits it shares with the pipeline, and that it
loads without the jobs plugin and without an ONNX Runtime."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import comfyvn_layers.jobs as layer_jobs
import comfyvn_layers.planes as planes
import comfyvn_layers.plugin as layers_plugin
import comfyvn_layers.runtime as runtime
import comfyvn_layers.settings as settings
import pytest
from click.testing import CliRunner
from comfyvn import Kernel
from comfyvn.cli import make_cli

from .surfaces import banded_png, good_model

KernelFactory = Callable[..., Kernel]


def test_the_flag_is_declared_on_by_default(make_kernel: KernelFactory) -> None:
    state = make_kernel(layers_plugin).flags.get("enable_flat2layers")
    assert (state.value, state.source, state.spec.default) == (True, "default", True)


def test_the_flag_off_refuses_the_commands_naming_it(make_kernel: KernelFactory, tmp_path: Path) -> None:
    kernel = make_kernel(layers_plugin, env={"COMFYVN_FEATURE_ENABLE_FLAT2LAYERS": "0"})
    picture = tmp_path / "park.png"
    picture.write_bytes(banded_png())
    model = good_model(tmp_path)
    for args in (["split", str(picture), "--model", str(model)], ["info", str(model)]):
        result = CliRunner().invoke(make_cli(kernel), ["layers", *args])
        assert result.exit_code == 2
        assert "feature 'enable_flat2layers' is disabled" in result.stderr
        assert "comfyvn flags set enable_flat2layers on" in result.stderr
    assert not (tmp_path / "park.layers").exists()


def test_the_events_are_declared_with_schemas(make_kernel: KernelFactory) -> None:
    bus = make_kernel(layers_plugin).events
    for name in ("on_mask_ready", "on_plane_exported", "on_debug"):
        spec = bus.spec(name)
        assert spec is not None and spec.schema is not None and spec.description


def test_a_real_split_emits_payloads_the_strict_kernel_accepts(make_kernel: KernelFactory, tmp_path: Path) -> None:
    kernel = make_kernel(layers_plugin)  # strict: a payload off its schema raises inside the split
    seen: list[tuple[str, dict[str, object]]] = []
    kernel.events.subscribe(
        lambda env: seen.append((env.event, dict(env.payload))),
        events=["on_mask_ready", "on_plane_exported", "on_debug"],
    )
    picture = tmp_path / "park.png"
    picture.write_bytes(banded_png())
    args = ["layers", "split", str(picture), "--model", str(good_model(tmp_path)), "--planes", "3"]
    result = CliRunner().invoke(make_cli(kernel), args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    names = [name for name, _ in seen]
    assert names.count("on_mask_ready") == 3 and names.count("on_plane_exported") == 3 and names[-1] == "on_debug"
    exported = [payload for name, payload in seen if name == "on_plane_exported"]
    assert [p["file"] for p in exported] == ["plane0.png", "plane1.png", "plane2.png"]
    assert seen[-1][1]["provider"] == "CPUExecutionProvider"


def test_a_payload_off_its_schema_is_refused(make_kernel: KernelFactory) -> None:
    bus = make_kernel(layers_plugin).events
    with pytest.raises(ValueError, match="on_plane_exported"):
        bus.emit("on_plane_exported", {"index": 0, "file": "../plane0.png", "parallax": 0.5})
    with pytest.raises(ValueError, match="on_debug"):
        bus.emit("on_debug", {"timings_ms": {"load": 1.0}})


def test_the_plugin_keeps_the_pipelines_limits_without_loading_it() -> None:
    assert settings.METHODS == planes.METHODS
    assert (layer_jobs.MIN_PLANES, layer_jobs.MAX_PLANES, layer_jobs.MAX_FEATHER) == (
        planes.MIN_PLANES,
        planes.MAX_PLANES,
        planes.MAX_FEATHER,
    )
    assert settings.DEVICES == runtime.DEVICES


def test_loading_the_plugin_loads_neither_opencv_nor_onnxruntime() -> None:
    code = "import sys, comfyvn_layers.plugin; print([m for m in ('cv2', 'onnxruntime') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_without_onnx_runtime_the_commands_say_how_to_install_one(tmp_path: Path) -> None:
    # A child process whose import of onnxruntime fails, as on an install without the [cpu] or [gpu] extra.
    (tmp_path / "onnxruntime.py").write_text("raise ImportError('not installed')\n")
    model = good_model(tmp_path)
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from click.testing import CliRunner
        from comfyvn import create_kernel
        from comfyvn.cli import make_cli
        import comfyvn_layers.plugin as plugin
        kernel = create_kernel(plugins=[plugin], env={{"COMFYVN_RUNTIME_ROOT": {str(tmp_path / "rt")!r}}})
        for args in (["info"], ["info", {str(model)!r}]):
            result = CliRunner().invoke(make_cli(kernel), ["layers", *args])
            print(result.exit_code, result.output.replace(chr(10), " | "))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    lines = out.stdout.splitlines()
    assert len(lines) == 2, out.stdout + out.stderr
    assert lines[0].startswith("2 ") and "pip install 'comfyvn-layers[cpu]'" in lines[0]
    assert lines[1].startswith("2 ") and "pip install 'comfyvn-layers[cpu]'" in lines[1]
    assert json.dumps(lines).count(str(tmp_path)) == 0
