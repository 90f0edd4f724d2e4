"""ONNX Runtime sessions: which execution provider runs, and one session per model per process.

The provider list is chosen from ``onnxruntime.get_available_providers()`` and the requested device; the
provider that really runs is read back from the session (``get_providers()[0]``), because onnxruntime-gpu
lists CUDA even where no driver is present and then silently falls back to CPU. Whenever what runs is not
what was asked for, a warning says why; callers put it in every result.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from collections import OrderedDict
from pathlib import Path
from types import ModuleType
from typing import Any

from comfyvn.errors import Invalid, NotFound, Unprocessable

__all__ = [
    "DEVICES",
    "MAX_SESSIONS",
    "available_providers",
    "choose_providers",
    "clear_sessions",
    "file_sha256",
    "load_onnxruntime",
    "session_for",
]

CPU = "CPUExecutionProvider"
# Device name -> the providers to try, best first; CPU always closes the list so a session never fails
# for want of an accelerator.
_DEVICE_PROVIDERS: dict[str, tuple[str, ...]] = {
    "cpu": (),
    "cuda": ("CUDAExecutionProvider",),
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider"),
    "rocm": ("ROCMExecutionProvider",),
    "coreml": ("CoreMLExecutionProvider",),
    "directml": ("DmlExecutionProvider",),
}
# "auto" prefers these, in this order, when present. TensorRT is left out: its first session builds an
# engine for minutes, so it runs only when asked for by name.
_AUTO = ("CUDAExecutionProvider", "ROCMExecutionProvider", "CoreMLExecutionProvider", "DmlExecutionProvider")
DEVICES = ("auto", *_DEVICE_PROVIDERS)
MAX_SESSIONS = 4
MISSING = "no ONNX Runtime installed: pip install 'comfyvn-layers[cpu]' (or 'comfyvn-layers[gpu]' for CUDA)"

_lock = threading.Lock()
_sessions: OrderedDict[tuple[Any, ...], tuple[Any, str, tuple[str, ...]]] = OrderedDict()
_digests: dict[tuple[str, int, int], str] = {}


def load_onnxruntime() -> ModuleType:
    """The ``onnxruntime`` module, or `Unprocessable` (``onnxruntime_missing``) saying how to install it."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise Unprocessable(MISSING, code="onnxruntime_missing") from exc
    module: ModuleType = onnxruntime
    return module


def available_providers() -> list[str]:
    """The execution providers this onnxruntime build lists (listed is not the same as usable)."""
    return list(load_onnxruntime().get_available_providers())


def _short(provider: str) -> str:
    return provider.removesuffix("ExecutionProvider")


def choose_providers(device: str, available: list[str]) -> tuple[list[str], list[str]]:
    """The provider list to open a session with for ``device``, and warnings for what was asked but is absent.

    ``device`` is ``auto`` (the best accelerator listed, then CPU) or one of `DEVICES`; an unknown name is
    `Invalid` (field ``device``).
    """
    if device not in DEVICES:
        raise Invalid(f"unknown device {device!r}: use one of {', '.join(DEVICES)}", field="device")
    wanted = _AUTO if device == "auto" else _DEVICE_PROVIDERS[device]
    chosen = [p for p in wanted if p in available]
    warnings: list[str] = []
    if device not in ("auto", "cpu") and not chosen:
        listed = ", ".join(_short(p) for p in available) or "none"
        warnings.append(f"{device} requested but not available here (providers: {listed}); running on CPU")
    return [*chosen, CPU], warnings


def _stat_key(path: Path) -> tuple[str, int, int]:
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except OSError as exc:
        raise NotFound(f"depth model {path.name!r} not found", field="model", code="model_not_found") from exc
    return real, st.st_mtime_ns, st.st_size


def file_sha256(path: Path) -> str:
    """The model file's SHA-256, cached per (real path, mtime, size) so a 100 MB model is hashed once."""
    key = _stat_key(path)
    with _lock:
        if key in _digests:
            return _digests[key]
    digest = hashlib.sha256()
    with open(key[0], "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    with _lock:
        _digests[key] = digest.hexdigest()
    return _digests[key]


def _open(real: str, name: str, providers: list[str]) -> Any:
    ort = load_onnxruntime()
    options = ort.SessionOptions()
    # Errors only: onnxruntime-gpu logs a CUDA load failure at error level on CPU-only machines, which
    # the warning we return already explains.
    options.log_severity_level = 3
    try:
        with warnings.catch_warnings():
            # onnxruntime warns when a listed provider is absent from its build; the session then runs on
            # the next one, and `session_for` reports that in its own words.
            warnings.filterwarnings("ignore", message="Specified provider", category=UserWarning)
            return ort.InferenceSession(real, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own pybind classes (InvalidProtobuf, Fail, ...)
        # Its messages quote the absolute path, so only the class name comes back.
        kind = type(exc).__name__
        reason = "not an ONNX model, or a truncated one" if kind == "InvalidProtobuf" else "the model failed to load"
        raise Unprocessable(
            f"depth model {name!r} is unusable: {reason} (onnxruntime: {kind})", field="model", code="invalid_model"
        ) from exc


def session_for(path: Path, device: str = "auto") -> tuple[Any, str, tuple[str, ...]]:
    """``(session, provider_that_runs, warnings)`` for the model at ``path`` on ``device``.

    Sessions are cached in-process per (real path, mtime, size, provider list), at most `MAX_SESSIONS`,
    least recently used dropped first; a changed model file gets a fresh session. Thread-safe: a session's
    ``run`` may be called from several threads. Bad files are `Unprocessable` (``invalid_model``), naming
    the file by its base name only.
    """
    path = Path(path)
    real, mtime, size = _stat_key(path)
    providers, warnings = choose_providers(device, available_providers())
    key = (real, mtime, size, tuple(providers))
    with _lock:
        if key in _sessions:
            _sessions.move_to_end(key)
            session, ran, opened_warnings = _sessions[key]
            return session, ran, (*warnings, *opened_warnings)
        # Opened under the lock: two threads asking for the same model must not load it twice.
        session = _open(real, path.name, providers)
        ran = session.get_providers()[0]
        fallback: tuple[str, ...] = ()
        if ran != providers[0] and not warnings:
            fallback = (
                f"{_short(providers[0])} is listed but could not start (driver or CUDA/cuDNN libraries missing?);"
                f" running on {_short(ran)}",
            )
        for stale in [k for k in _sessions if k[0] == real and k[1:3] != (mtime, size)]:
            del _sessions[stale]
        _sessions[key] = (session, ran, fallback)
        while len(_sessions) > MAX_SESSIONS:
            _sessions.popitem(last=False)
    return session, ran, (*warnings, *fallback)


def clear_sessions() -> None:
    """Forget every cached session and digest (tests; a long-running service never needs it)."""
    with _lock:
        _sessions.clear()
        _digests.clear()
