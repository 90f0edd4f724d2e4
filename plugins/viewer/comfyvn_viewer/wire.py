"""Request shapes of the Mini-VN and native viewer routes, structured by the strict converter
(`comfyvn.wire.parse_request`: unknown keys and wrong types are refused naming the field)."""

from __future__ import annotations

import attrs

__all__ = ["RefreshRequest", "SnapshotRequest", "StartRequest"]


@attrs.frozen
class SnapshotRequest:
    """``POST /api/viewer/mini/snapshot``: a store project and the moment (default: where the story starts)."""

    project: str
    scene: str | None = None
    node: str | None = None
    pov: str | None = None
    seed: int = 0
    size: str | None = None


@attrs.frozen
class RefreshRequest:
    """``POST /api/viewer/mini/refresh``: every node of a store project, at one size, POV and seed."""

    project: str
    size: str | None = None
    pov: str | None = None
    seed: int = 0


@attrs.frozen
class StartRequest:
    """``POST /api/viewer/start``: a store project (``project_id``) or a project folder (``project_path``,
    only below the store), and optionally an engine named in ``viewer.allowed_executables``."""

    project_id: str | None = None
    project_path: str | None = None
    renpy_executable: str | None = None
    renpy_sdk: str | None = None
