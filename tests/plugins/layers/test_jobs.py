"""The ``layers.split`` job kind: its params, the GPU resource, progress and events from a real run, and a
rerun that writes the same files (a job may run twice)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import comfyvn_jobs.plugin
import comfyvn_layers.plugin
import comfyvn_layers.service as service
import pytest
from comfyvn import Kernel
from comfyvn.errors import Invalid, NotFound
from comfyvn_jobs import jobs_for
from comfyvn_jobs.service import close_jobs
from comfyvn_layers.jobs import KIND, check_split_params

from .surfaces import banded_png, good_model

SOURCE = {"upload": "a" * 64, "name": "park.png"}


@pytest.fixture
def kernel(make_kernel: Callable[..., Kernel], tmp_path: Path) -> Iterator[Kernel]:
    made = make_kernel(
        comfyvn_jobs.plugin, comfyvn_layers.plugin, env={"COMFYVN_DEPTH_MODEL": str(good_model(tmp_path))}
    )
    yield made
    close_jobs(made)


def _kept(kernel: Kernel) -> dict[str, str]:
    return service.keep_upload(kernel, io.BytesIO(banded_png()), "park.png")


def test_params_get_their_defaults_and_nothing_else() -> None:
    assert check_split_params({"source": SOURCE}) == {
        "source": SOURCE,
        "planes": 3,
        "method": "quantile",
        "device": "auto",
        "feather": 4,
    }
    assert check_split_params({"source": {"asset": "0123456789abcdef"}, "device": "CUDA"})["device"] == "cuda"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "params.source"),
        ({"source": {"asset": "0123456789abcdef", "project": "p"}}, "params.source"),
        ({"source": {"asset": "/etc/passwd"}}, "params.source.asset"),
        ({"source": {"upload": "abc", "name": "x.png"}}, "params.source.upload"),
        ({"source": {"project": "../p", "background": "a.png"}}, "params.source.project"),
        ({"source": SOURCE, "planes": 1}, "params.planes"),
        ({"source": SOURCE, "planes": 9}, "params.planes"),
        ({"source": SOURCE, "planes": True}, "params.planes"),
        ({"source": SOURCE, "feather": 65}, "params.feather"),
        ({"source": SOURCE, "method": "otsu"}, "params.method"),
        ({"source": SOURCE, "device": "tpu"}, "params.device"),
        ({"source": SOURCE, "model": "/srv/other.onnx"}, "params.model"),
    ],
)
def test_bad_params_are_invalid_naming_the_field(params: dict[str, Any], field: str) -> None:
    with pytest.raises(Invalid) as caught:
        check_split_params(params)
    assert caught.value.field == field


def test_the_kind_is_local_and_declares_no_fixed_resource(kernel: Kernel) -> None:
    kind = jobs_for(kernel).kinds()[KIND]
    assert (kind.local, dict(kind.resources)) == (True, {})


def test_a_gpu_split_asks_for_gpu_1_only_where_one_is_offered(kernel: Kernel, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _kept(kernel)
    jobs = jobs_for(kernel)
    # As on a machine with onnxruntime-gpu: the embedded worker offers GPU=1 from its first job on.
    monkeypatch.setattr(service, "gpu_offered", lambda: True)
    assert comfyvn_layers.plugin.jobs_embedded_resources(kernel) == {"GPU": 1}
    gpu = service.submit_split(kernel, {"source": source, "device": "cuda"})
    assert gpu["resources"] == {"GPU": 1.0}
    assert service.submit_split(kernel, {"source": source, "device": "auto"})["resources"] == {"GPU": 1.0}
    assert service.submit_split(kernel, {"source": source, "device": "cpu"})["resources"] == {}
    for record in jobs.list():
        jobs.wait(record["id"], timeout=120)
    done = jobs.get(gpu["id"])
    assert done["status"] == "done", done
    assert done["result"]["provider"] == "CPUExecutionProvider"
    assert "cuda requested but not available" in done["result"]["warnings"][0]
    # Where nothing could ever offer GPU=1 the job asks for none: it runs on CPU (its warning says why)
    # instead of waiting for ever.
    monkeypatch.setattr(service, "gpu_offered", lambda: False)
    assert comfyvn_layers.plugin.jobs_embedded_resources(kernel) is None
    assert service.submit_split(kernel, {"source": source, "device": "cuda"})["resources"] == {}


def test_gpu_offered_follows_the_providers_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "available_providers", lambda: ["CPUExecutionProvider"])
    assert service.gpu_offered() is False
    monkeypatch.setattr(service, "available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert service.gpu_offered() is True


def test_a_run_reports_progress_emits_events_and_a_rerun_writes_the_same_files(kernel: Kernel) -> None:
    params = check_split_params({"source": _kept(kernel), "planes": 2})
    seen: list[tuple[str, dict[str, Any]]] = []
    kernel.events.subscribe(
        lambda env: seen.append((env.event, dict(env.payload))),
        events=["on_mask_ready", "on_plane_exported", "on_debug"],
    )
    progress: list[tuple[float, str]] = []
    result = service.run_split_job(kernel, "job-test", params, report=lambda f, m: progress.append((f, m)))
    assert result == {"folder": "splits/job-test", "planes": 2, "provider": "CPUExecutionProvider", "warnings": []}
    fractions = [f for f, _ in progress]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert progress[-1][1] == "2 planes on CPUExecutionProvider"
    assert [name for name, _ in seen] == [
        "on_mask_ready",
        "on_plane_exported",
        "on_mask_ready",
        "on_plane_exported",
        "on_debug",
    ]
    assert all(payload["split"] == "job-test" for _, payload in seen)
    folder = kernel.paths.plugin_dir("layers") / "splits" / "job-test"
    first = {p.name: p.read_bytes() for p in folder.iterdir()}
    service.run_split_job(kernel, "job-test", params, report=lambda f, m: None)
    again = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert sorted(again) == ["depth.png", "layers.json", "plane0.png", "plane1.png"]
    # Same pixels and depth; layers.json differs only in its timings.
    assert {k: v for k, v in again.items() if k != "layers.json"} == {
        k: v for k, v in first.items() if k != "layers.json"
    }


def test_a_job_whose_upload_is_gone_fails_with_a_clear_error(kernel: Kernel) -> None:
    params = check_split_params({"source": {"upload": "b" * 64, "name": "park.png"}})
    with pytest.raises(NotFound) as caught:
        service.run_split_job(kernel, "job-gone", params, report=lambda f, m: None)
    assert caught.value.code == "upload_gone"
