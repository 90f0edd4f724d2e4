"""Which depth model and device the plugin uses: ``--model``, ``COMFYVN_DEPTH_MODEL``, ``layers`` in comfyvn.json.

``{"layers": {"model": "models/depth_anything_v2_small.onnx", "device": "auto"}}`` — both optional. A
relative ``model`` is read from the config folder (where comfyvn.json is). The order: the CLI's
``--model``, then the environment, then the file. HTTP requests never name a model: they use this one,
so no caller can make the server open an arbitrary file of its disk.

Nothing is ever downloaded: with no model configured every command says so and how to get one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from comfyvn.errors import ComfyVNError, Invalid, NotFound

from .runtime import DEVICES

__all__ = [
    "DEVICES",
    "METHODS",
    "MODEL_ENV",
    "SETUP_HINT",
    "LayersSettings",
    "check_device",
    "setup_hint",
]

MODEL_ENV = "COMFYVN_DEPTH_MODEL"
# planes.METHODS, kept here so that loading the plugin does not load OpenCV (a test checks they agree).
METHODS = ("quantile", "kmeans")
SETUP_HINT = (
    "no depth model configured: set the COMFYVN_DEPTH_MODEL environment variable or layers.model in"
    " comfyvn.json to an ONNX depth model file (MiDaS v2.1 small or Depth Anything V2 small exported to ONNX,"
    " where to get them: 'Getting a model' in docs/layers.md); nothing is downloaded"
)


def setup_hint(option: str | None = None) -> str:
    """`SETUP_HINT`, naming the command line's own way to give a model (``--model PATH``) when there is one."""
    return SETUP_HINT if option is None else SETUP_HINT.replace(": set the", f": give {option}, or set the", 1)


_KEYS = frozenset({"model", "device"})


def _bad(message: str, field: str) -> ComfyVNError:
    return ComfyVNError(message, field=f"layers.{field}", code="invalid_config")


def check_device(value: Any, field: str = "device") -> str:
    """``value`` if it is one of `DEVICES` (any case), else `Invalid` listing them."""
    if isinstance(value, str) and value.strip().lower() in DEVICES:
        return value.strip().lower()
    raise Invalid(f"device is one of {', '.join(DEVICES)}", field=field, code="invalid_device")


@attrs.frozen
class LayersSettings:
    """``model``: the depth model file (None when none is configured); ``source``: where it came from
    (``option``, ``env`` or ``file``); ``device``: the default device of splits."""

    model: Path | None
    source: str | None
    device: str = "auto"

    @classmethod
    def from_kernel(cls, kernel: Any, *, model: str | os.PathLike[str] | None = None) -> LayersSettings:
        """The settings of ``kernel``; ``model`` (the CLI's ``--model``) wins over the environment and the file."""
        section = kernel.config.get("layers", {})
        if not isinstance(section, Mapping):
            raise _bad("layers in comfyvn.json must be an object", "(root)")
        if unknown := sorted(set(section) - _KEYS):
            raise _bad(f"unknown setting {str(unknown[0])[:40]!r}", str(unknown[0])[:40])
        device = section.get("device", "auto")
        if not isinstance(device, str) or device.strip().lower() not in DEVICES:
            raise _bad(f"device is one of {', '.join(DEVICES)}", "device")
        device = device.strip().lower()
        env: Mapping[str, str] = kernel.env
        if model is not None and str(model).strip():
            return cls(Path(model).expanduser().resolve(), "option", device)
        if env.get(MODEL_ENV, "").strip():
            return cls(Path(env[MODEL_ENV].strip()).expanduser().resolve(), "env", device)
        configured = section.get("model")
        if configured is None:
            return cls(None, None, device)
        if not isinstance(configured, str) or not configured.strip():
            raise _bad("model must be the path of an ONNX file", "model")
        path = Path(configured.strip()).expanduser()
        return cls((path if path.is_absolute() else kernel.paths.config / path).resolve(), "file", device)

    def require_model(self, option: str | None = None) -> Path:
        """The model file; `NotFound` with the set-up hint (naming the CLI's ``option`` when given) when none
        is configured, or when the file is missing (named by its base name: never a server path)."""
        if self.model is None:
            raise NotFound(setup_hint(option), field="model", code="model_not_configured")
        if not self.model.is_file():
            raise NotFound(
                f"the depth model {self.model.name!r} (from {self.where()}) is not a file here",
                field="model",
                code="model_not_found",
            )
        return self.model

    def where(self) -> str:
        """Where the model setting came from, in words."""
        return {"option": "--model", "env": MODEL_ENV, "file": "layers.model in comfyvn.json"}.get(
            self.source or "", "not configured"
        )
