"""``layers.split`` as a job of the jobs plugin: one flat picture -> planes + depth map + layers.json.

A *local* kind: its source is a file of this machine (an asset, a store project's background, an upload
kept under the plugin's folder), so it runs only on the embedded cluster. The depth model is the
configured one, read where the job runs: params never name a model file. A job asked for a GPU device
needs the worker resource ``GPU=1`` (see `service.submit_split`). Idempotent: a rerun writes the same
files again, atomically, into the same folder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from comfyvn.errors import Invalid

from .settings import DEVICES, METHODS, check_device

if TYPE_CHECKING:
    from comfyvn_jobs import JobContext, KindRegistrar

__all__ = ["KIND", "MAX_FEATHER", "MAX_PLANES", "MIN_PLANES", "check_split_params", "register_kinds", "run_split"]

KIND = "layers.split"
MIN_PLANES, MAX_PLANES, MAX_FEATHER = 2, 8, 64
_PROJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_UID = re.compile(r"^[0-9a-f]{16}$")
_SHA = re.compile(r"^[0-9a-f]{64}$")
_OPTIONS = ("planes", "method", "device", "feather")


def _bad(message: str, field: str) -> Invalid:
    return Invalid(message, field=field, code="invalid_params")


def _int(params: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad(f"{name} must be a whole number from {low} to {high}", f"params.{name}")
    return value


def _text(value: Any, field: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise _bad(f"{field.rsplit('.', 1)[-1]} must be text of 1 to {limit} characters", field)
    return value


def _source(value: Any) -> dict[str, str]:
    """``{"asset": uid}``, ``{"project": id, "background": relative path}`` or ``{"upload": sha256, "name": base}``."""
    if not isinstance(value, Mapping):
        raise _bad("source must be an object", "params.source")
    keys = set(value)
    if keys == {"asset"}:
        uid = _text(value["asset"], "params.source.asset", 16)
        if not _UID.match(uid):
            raise _bad("asset is an asset uid (16 hex digits)", "params.source.asset")
        return {"asset": uid}
    if keys == {"project", "background"}:
        project = _text(value["project"], "params.source.project", 128)
        if not _PROJECT.match(project):
            raise _bad("project is a project id", "params.source.project")
        background = _text(value["background"], "params.source.background", 1024)
        return {"project": project, "background": background}
    if keys == {"upload", "name"}:
        sha = _text(value["upload"], "params.source.upload", 64)
        if not _SHA.match(sha):
            raise _bad("upload is the sha256 of a kept upload", "params.source.upload")
        return {"upload": sha, "name": _text(value["name"], "params.source.name", 255)}
    raise _bad("source is {asset}, {project, background} or {upload, name}", "params.source")


def check_split_params(params: dict[str, Any]) -> dict[str, Any]:
    """``{source, planes?, method?, device?, feather?}`` with defaults filled (the stored params are these)."""
    if unknown := sorted(set(params) - {"source", *_OPTIONS}):
        raise _bad(f"unknown parameter {str(unknown[0])[:40]!r}", f"params.{str(unknown[0])[:40]}")
    method = params.get("method", "quantile")
    if method not in METHODS:
        raise _bad(f"method is one of {', '.join(METHODS)}", "params.method")
    return {
        "source": _source(params.get("source")),
        "planes": _int(params, "planes", 3, MIN_PLANES, MAX_PLANES),
        "method": method,
        "device": check_device(params.get("device", DEVICES[0]), "params.device"),
        "feather": _int(params, "feather", 4, 0, MAX_FEATHER),
    }


def run_split(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """The body of a ``layers.split`` job: the split, with progress from the pipeline's events."""
    from .service import run_split_job  # the pipeline (numpy, cv2, onnxruntime) loads where the job runs

    return run_split_job(ctx.kernel, ctx.job_id, params, report=ctx.report)


def register_kinds(register: KindRegistrar) -> None:
    """The layers plugin's job kinds."""
    register(
        KIND,
        run_split,
        "Split a flat picture into depth planes (a depth model on ONNX Runtime), with layers.json for parallax.",
        check=check_split_params,
        local=True,
    )
