"""ComfyVN's microcore: hook bus, event bus, feature flags, secrets vault, runtime paths, logging, CLI root.

Everything a user sees is a plugin (entry-point group ``comfyvn``). Importing this package creates no
plugin manager: build one with `create_kernel`.
"""

from __future__ import annotations

from .errors import ComfyVNError, Conflict, FeatureDisabled, NotFound
from .hookspecs import hookimpl, hookspec
from .kernel import Kernel, create_kernel
from .paths import RuntimePaths

__all__ = [
    "ComfyVNError",
    "Conflict",
    "FeatureDisabled",
    "Kernel",
    "NotFound",
    "RuntimePaths",
    "create_kernel",
    "hookimpl",
    "hookspec",
]
