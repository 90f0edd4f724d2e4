"""Put rendered art into a project: what the next export shows.

Sprites become ``asset:<uid>`` references in ``characters.<id>.sprites`` (and the expression shown by
default when the character had none). A character the story never stages — an imported chat only
names who speaks — is shown on its own dialogue lines in the default expression, as a visual novel
shows whoever talks. Backgrounds replace the missing file a scene named (or fill a scene that had none).
``metadata.comfyui.rendered`` remembers which references are renders and what each place was, so a
later run knows its own art from the author's, and the project store keeps the previous versions.
Nothing the author provided is ever replaced.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["ASSET_PREFIX", "apply_renders", "rendered_index", "staged_characters"]

ASSET_PREFIX = "asset:"


def rendered_index(meta: Mapping[str, Any]) -> dict[str, Any]:
    """``metadata.comfyui.rendered`` of a project: ``{"sprites": {char: {expr: uid}}, "backgrounds": {uid: place}}``."""
    section = meta.get("metadata", {}).get("comfyui") if isinstance(meta.get("metadata"), dict) else None
    rendered = section.get("rendered") if isinstance(section, dict) else None
    if not isinstance(rendered, dict):
        return {"sprites": {}, "backgrounds": {}}
    sprites, backgrounds = rendered.get("sprites"), rendered.get("backgrounds")
    return {
        "sprites": dict(sprites) if isinstance(sprites, dict) else {},
        "backgrounds": dict(backgrounds) if isinstance(backgrounds, dict) else {},
    }


def staged_characters(scenes: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """Ids of the characters some node's ``characters`` entry names (shown or hidden)."""
    staged: set[str] = set()
    for scene in scenes.values():
        for node in scene.get("nodes") or ():
            for entry in node.get("characters") or () if isinstance(node, dict) else ():
                if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                    staged.add(entry["id"])
    return staged


def apply_renders(
    meta: Mapping[str, Any], scenes: Mapping[str, Mapping[str, Any]], outcomes: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], bool]:
    """``(meta, scenes, changed)`` with the renders in ``outcomes`` applied (inputs are not modified).

    Each outcome is ``{"kind": "sprite", "character", "expression", "asset_uid"}`` or ``{"kind":
    "background", "place": {key, location, time_of_day, weather, ref}, "scenes": [...], "ref",
    "asset_uid"}`` (``ref`` is what the scenes name now: the missing file, an earlier render, or None).
    """
    new_meta = copy.deepcopy(dict(meta))
    new_scenes = {sid: copy.deepcopy(dict(scene)) for sid, scene in scenes.items()}
    index = rendered_index(new_meta)
    listed = new_meta.get("characters")
    characters: dict[str, Any] = listed if isinstance(listed, dict) else {}
    staged = staged_characters(new_scenes)
    shown_by_default: dict[str, str] = {}
    for outcome in outcomes:
        ref = f"{ASSET_PREFIX}{outcome['asset_uid']}"
        if outcome["kind"] == "sprite":
            char_id, expression = outcome["character"], outcome["expression"]
            spec = characters.get(char_id)
            if not isinstance(spec, dict):
                continue
            found = spec.get("sprites")
            sprites: dict[str, Any] = found if isinstance(found, dict) else {}
            sprites[expression] = ref
            spec["sprites"] = sprites
            if not isinstance(spec.get("default_expression"), str):
                spec["default_expression"] = expression
            index["sprites"].setdefault(char_id, {})[expression] = outcome["asset_uid"]
            if char_id not in staged:
                shown_by_default[char_id] = spec["default_expression"]
        else:
            place = dict(outcome["place"])
            old = outcome.get("ref")
            for scene_id in outcome["scenes"]:
                scene = new_scenes.get(scene_id)
                if scene is None:
                    continue
                if old is None:
                    if not scene.get("background"):
                        scene["background"] = ref
                    continue
                if scene.get("background") == old:
                    scene["background"] = ref
                for node in scene.get("nodes") or ():
                    if isinstance(node, dict) and node.get("background") == old:
                        node["background"] = ref
            previous = index["backgrounds"].pop(old.removeprefix(ASSET_PREFIX), None) if old else None
            was = previous.get("was") if isinstance(previous, dict) else old
            index["backgrounds"][outcome["asset_uid"]] = {**place, "was": was}
    for scene in new_scenes.values():
        for node in scene.get("nodes") or ():
            speaker = node.get("speaker") if isinstance(node, dict) else None
            if node.get("type") == "dialogue" and speaker in shown_by_default and not node.get("characters"):
                node["characters"] = [{"id": speaker, "expression": shown_by_default[speaker]}]
    # An unchanged index is not written: a run that rendered nothing must not make a new version.
    metadata = new_meta.setdefault("metadata", {}) if index != rendered_index(meta) else None
    if isinstance(metadata, dict):
        section = metadata.setdefault("comfyui", {})
        if isinstance(section, dict):
            section["rendered"] = index
    changed = new_meta != dict(meta) or any(new_scenes[s] != dict(scenes[s]) for s in scenes)
    return new_meta, new_scenes, changed
