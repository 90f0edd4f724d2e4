"""Execution providers: what is asked for, what really runs, and one cached session per model."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from comfyvn.errors import Invalid, Unprocessable
from comfyvn_layers import runtime
from comfyvn_layers.depth import estimate_depth
from comfyvn_layers.model import inspect_model
from comfyvn_layers.runtime import CPU, choose_providers, clear_sessions, session_for

from .onnx_models import brightness_model, row_model, write

CUDA = "CUDAExecutionProvider"


@pytest.fixture(autouse=True)
def fresh_sessions() -> Iterator[None]:
    clear_sessions()
    yield
    clear_sessions()


@pytest.mark.parametrize(
    ("device", "available", "expected"),
    [
        ("auto", [CPU], [CPU]),
        ("auto", [CUDA, CPU], [CUDA, CPU]),
        ("auto", ["TensorrtExecutionProvider", CUDA, CPU], [CUDA, CPU]),  # TensorRT only by name
        ("auto", ["DmlExecutionProvider", CPU], ["DmlExecutionProvider", CPU]),
        ("cpu", [CUDA, CPU], [CPU]),
        ("cuda", [CUDA, CPU], [CUDA, CPU]),
        ("tensorrt", ["TensorrtExecutionProvider", CUDA, CPU], ["TensorrtExecutionProvider", CUDA, CPU]),
        ("rocm", ["ROCMExecutionProvider", CPU], ["ROCMExecutionProvider", CPU]),
    ],
)
def test_providers_are_chosen_best_first_and_cpu_closes_the_list(
    device: str, available: list[str], expected: list[str]
) -> None:
    assert choose_providers(device, available) == (expected, [])


def test_asking_for_an_absent_accelerator_warns_and_falls_back_to_cpu() -> None:
    providers, warnings = choose_providers("cuda", ["AzureExecutionProvider", CPU])
    assert providers == [CPU]
    assert warnings == ["cuda requested but not available here (providers: Azure, CPU); running on CPU"]


def test_an_unknown_device_is_invalid() -> None:
    with pytest.raises(Invalid) as caught:
        choose_providers("gpu", [CPU])
    assert caught.value.field == "device" and "cuda" in caught.value.message


def test_cuda_requested_on_this_machine_reports_the_cpu_provider_that_ran_and_says_why(tmp_path: Path) -> None:
    if CUDA in runtime.available_providers():
        pytest.skip("this machine lists CUDA; the fallback is tested with a simulated listing below")
    model = write(tmp_path, "row.onnx", row_model(16))
    session, provider, warnings = session_for(model, "cuda")
    assert provider == CPU == session.get_providers()[0]
    assert len(warnings) == 1 and warnings[0].startswith("cuda requested but not available here")
    result = estimate_depth(np.zeros((16, 16, 3), np.uint8), inspect_model(model, device="cuda"), "cuda")
    assert result.provider == CPU and result.warnings == warnings


def test_a_listed_accelerator_that_does_not_start_is_reported_as_the_cpu_that_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # onnxruntime-gpu on a machine without a usable CUDA lists CUDA and silently runs on CPU; this build
    # lists CUDA here only because we say so, and does the same.
    if CUDA in runtime.available_providers():
        pytest.skip("CUDA is really here")
    monkeypatch.setattr(runtime, "available_providers", lambda: [CUDA, CPU])
    _, provider, warnings = session_for(write(tmp_path, "row.onnx", row_model(16)), "auto")
    assert provider == CPU
    assert warnings == ("CUDA is listed but could not start (driver or CUDA/cuDNN libraries missing?); running on CPU",)


def test_one_session_per_model_is_reused_and_a_changed_file_gets_a_new_one(tmp_path: Path) -> None:
    model = write(tmp_path, "m.onnx", brightness_model(8))
    first, _, _ = session_for(model, "cpu")
    assert session_for(model, "cpu")[0] is first
    assert session_for(model, "auto")[0] is first  # auto resolves to the same providers on a CPU machine
    model.write_bytes(row_model(8))
    stat = model.stat()
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    second, _, _ = session_for(model, "cpu")
    assert second is not first
    assert second.get_outputs()[0].shape == [1, 1, 8, 8]
    assert len(runtime._sessions) == 1  # the stale session of the old file is gone


def test_concurrent_callers_share_one_session(tmp_path: Path) -> None:
    model = write(tmp_path, "m.onnx", brightness_model(8))
    got: list[Any] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        got.append(session_for(model, "cpu")[0])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 4 and all(s is got[0] for s in got)


def test_the_cache_keeps_at_most_a_few_sessions(tmp_path: Path) -> None:
    for n in range(runtime.MAX_SESSIONS + 2):
        session_for(write(tmp_path, f"m{n}.onnx", brightness_model(8)), "cpu")
    assert len(runtime._sessions) == runtime.MAX_SESSIONS


def test_without_onnxruntime_the_error_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(Unprocessable) as caught:
        runtime.available_providers()
    assert caught.value.code == "onnxruntime_missing"
    assert "pip install 'comfyvn-layers[cpu]'" in caught.value.message
