"""The exporter's published hooks go through the kernel's one dispatcher: a raising gate blocks the export
(fails closed), a raising contributor is logged and left out, and contributions merge in hook call order."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from comfyvn import Kernel, hookimpl
from comfyvn.cli import exit_code
from comfyvn.errors import ComfyVNError
from comfyvn_renpy import ExportRequest, run_export
from comfyvn_renpy.service import check_gates, collect_contributions
from comfyvn_scenario import load_project
from structlog.testing import capture_logs


class CrashingGate:
    @hookimpl
    def renpy_export_gate(self, project: Any) -> dict[str, Any] | None:
        raise RuntimeError("rating service unreachable")


class AllowingGate:
    @hookimpl
    def renpy_export_gate(self, project: Any) -> dict[str, Any] | None:
        return None


def _lines(name: str) -> object:
    class Contributor:
        @hookimpl
        def renpy_export_contributions(self, project: Any, options: dict[str, Any]) -> dict[str, Any]:
            return {"scene_lines": {"night_train": [f"$ renpy.notify('{name}')"]}}

    plugin = Contributor()
    plugin.name = name  # type: ignore[attr-defined]
    return plugin


class CrashingContributor:
    @hookimpl
    def renpy_export_contributions(self, project: Any, options: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("bake failed")


def test_a_raising_gate_blocks_the_export(
    renpy_kernel: Callable[..., Kernel], demo_project: Path, tmp_path: Path
) -> None:
    kernel = renpy_kernel(AllowingGate(), CrashingGate())
    with capture_logs() as logs, pytest.raises(ComfyVNError) as caught:
        run_export(kernel, ExportRequest(project=demo_project, out=tmp_path / "o"))
    assert (caught.value.code, exit_code(caught.value)) == ("export_blocked", 3)
    assert caught.value.details["blocked_by"] == [
        {"plugin": "crashinggate", "reason": "the gate failed (RuntimeError)"}
    ]
    assert not (tmp_path / "o").exists()
    assert any(e["event"] == "plugin hook failed" and e["plugin"] == "crashinggate" for e in logs)


def test_gates_that_allow_are_counted(renpy_kernel: Callable[..., Kernel], demo_project: Path) -> None:
    kernel = renpy_kernel(AllowingGate())
    assert check_gates(kernel, load_project(demo_project), {}) == {"allowed": True, "checked": 1}


def test_contributions_merge_in_call_order_and_a_raising_one_is_left_out(
    renpy_kernel: Callable[..., Kernel], demo_project: Path
) -> None:
    kernel = renpy_kernel(_lines("early"), CrashingContributor(), _lines("late"))
    with capture_logs() as logs:
        extras, files, contributors = collect_contributions(kernel, load_project(demo_project), {"bake_weather": True})
    assert contributors == ["late", "early"]  # the last-registered plugin first, as pluggy calls hooks
    assert extras.scene_lines == {"night_train": ["$ renpy.notify('late')", "$ renpy.notify('early')"]}
    assert files == {}
    assert [e["plugin"] for e in logs if e["event"] == "plugin hook failed"] == ["crashingcontributor"]
    assert kernel.plugins.records["crashingcontributor"].status == "loaded"
