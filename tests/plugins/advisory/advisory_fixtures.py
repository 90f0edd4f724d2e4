"""Shared by the advisory tests: a small store project with a picture in it."""

from __future__ import annotations

from typing import Any

from comfyvn import Kernel
from comfyvn_renpy import find_demo_project
from comfyvn_scenario import Project, ProjectStore

PICTURE = find_demo_project() / "assets" / "backgrounds" / "carriage.png"


def make_project(
    kernel: Kernel, *, metadata: dict[str, Any] | None = None, text: str = "Hello there.", project_id: str = "tea"
) -> str:
    """A store project (``tea`` by default) whose scene shows ``assets/bg/room.png`` (a picture of the demo)."""
    scene = {
        "id": "s",
        "start": "a",
        "background": "assets/bg/room.png",
        "nodes": [{"id": "a", "text": text, "end": True}],
    }
    meta = {"id": project_id, "title": "Tea", "scenes": ["s"], "start": "s", "metadata": metadata or {}}
    store = ProjectStore.for_kernel(kernel)
    stored = store.create(Project(meta=meta, scenes={"s": scene}))
    picture = stored.path / "assets" / "bg" / "room.png"
    picture.parent.mkdir(parents=True)
    picture.write_bytes(PICTURE.read_bytes())
    return stored.id
