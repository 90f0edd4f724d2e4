"""Hook implementations of the viewer plugin (wiring only): the flags, the thumbnail event."""

from __future__ import annotations

from typing import Any

from comfyvn import hookimpl

from .features import FLAG_MINI, FLAG_WEB, THUMBNAIL_EVENT, THUMBNAIL_SCHEMA


@hookimpl
def register_flags(register: Any) -> None:
    register(FLAG_WEB, True, "The web player: /play/{project_id}, shareable /api/viewer/web/{token}/... links.")
    register(FLAG_MINI, True, "Mini-VN stills: /api/viewer/mini/*, `comfyvn viewer thumbnail` and the refresh job.")


@hookimpl
def register_events(register: Any) -> None:
    register(
        THUMBNAIL_EVENT,
        "A Mini-VN still of one moment (project, scene, node, pov, seed) is ready: its digest and URL.",
        THUMBNAIL_SCHEMA,
    )
