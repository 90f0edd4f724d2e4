"""ComfyVN's Ren'Py exporter: scenario projects to Ren'Py 8 projects that the real engine lints and plays.

Pure pieces: `build_bundle` (project → files in memory), `write_bundle` / `preview_bundle` /
`publish_zip`; the engine wrapper `find_engine`; the kernel-aware pipeline `run_export` and `run_demo`.
"""

from __future__ import annotations

from .demo import find_demo_project, run_demo
from .engine import Engine, LintResult, find_engine
from .export import Bundle, ExportOptions, build_bundle
from .output import preview_bundle, publish_zip, write_bundle
from .service import ExportRequest, run_export

__all__ = [
    "Bundle",
    "Engine",
    "ExportOptions",
    "ExportRequest",
    "LintResult",
    "build_bundle",
    "find_demo_project",
    "find_engine",
    "preview_bundle",
    "publish_zip",
    "run_demo",
    "run_export",
    "write_bundle",
]
