"""Extension points of the Ren'Py exporter (documented in ``docs/renpy.md``).

Implementations take only the arguments they use and return plain data, so a plugin can implement
them without importing this package.
"""

from __future__ import annotations

from typing import Any

from comfyvn import hookspec


@hookspec
def renpy_export_gate(project: Any, options: dict[str, Any], kernel: Any) -> dict[str, Any] | None:
    """Allow or block an export before anything is written.

    Runs once per export (CLI, HTTP, demo, dry runs included), after the project is loaded. Return
    None to allow, or ``{"reason": str, ...}`` to block: the export fails with HTTP 423 / CLI exit 3,
    code ``export_blocked``, and every blocking answer is listed under ``blocked_by``. Return
    ``{"allow": True, ...}`` to allow and say something: its ``warnings`` (strings) join the export's
    warnings, its ``rating`` becomes ``export_manifest.rating``, and the answer is kept under
    ``export_manifest.rating_gate.notes``. ``kernel`` is the exporting kernel (flags, paths, events).
    """


@hookspec
def renpy_export_contributions(project: Any, options: dict[str, Any]) -> dict[str, Any] | None:
    """Add files and script lines to an export (weather baking, battle scenes, credits…).

    Runs once per export after the gate. Return None or ``{"files": {"game/<path>": str|bytes},
    "scene_lines": {scene_id: [ren'py statements]}, "node_lines": {"scene_id:node_id": [statements]}}``.
    Scene lines run when a scene is entered (after its background and music); node lines when a node is
    entered (after its actions, before its stage directions and text). Lines are inserted verbatim at
    one indentation level, so each must be a complete one-line Ren'Py statement.
    """


@hookspec
def renpy_resolve_asset(ref: str, kernel: Any) -> dict[str, Any] | None:
    """The file behind an asset reference (``asset:<uid>``) a project names for a sprite, portrait or background.

    Called for each such reference an export meets (the assets plugin answers for its registry).
    Return None when the reference is not yours or names nothing, else ``{"path": absolute path of the
    file, "uid", "sha256", "provenance": {...}, "license", "source"}``: the exporter copies the file
    like one of the project's own and records the rest under the asset's entry in
    ``export_manifest.json`` (``asset``). A reference nobody resolves is a missing asset (a placeholder).
    """
