"""ComfyVN's microcore: hook bus, event bus, feature flags, secrets vault, runtime paths, logging, CLI root.

Everything a user sees is a plugin (entry-point group ``comfyvn``). Importing this package creates no
plugin manager: build one with `create_kernel`. The error classes live in `comfyvn.errors`.
"""

from __future__ import annotations

from .errors import ComfyVNError
from .hookspecs import hookimpl, hookspec
from .kernel import Kernel, create_kernel
from .paths import RuntimePaths

__all__ = ["ComfyVNError", "Kernel", "RuntimePaths", "create_kernel", "hookimpl", "hookspec"]
