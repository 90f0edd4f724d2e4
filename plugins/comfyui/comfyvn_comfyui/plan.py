"""What art a story shows: one sprite slot per (character, expression), one background slot per place.

The Ren'Py exporter (``comfyvn_renpy.layout``) decides what the game shows; this module mirrors its
notion so the renderer makes exactly the art an export will use:

* a **sprite slot** for every project character that is not the player persona (``metadata.role ==
  "user"``) and that some node puts on stage (a ``characters`` entry without ``hide``) or that speaks
  (a node's ``speaker`` outside narration). Its expressions are those the nodes show it with, in the
  order they first appear, plus the expression shown when none is named: the character's
  ``default_expression``, else its first sprite (as the exporter falls back), else ``neutral`` when no
  node names an expression either. ``ref`` is the character's current sprite for that expression.
* a **background slot** for every distinct background a scene or node names (``ref``), with the place,
  time of day and weather read from the file's name (``Harbour at dusk (rain).jpg``); and one for every
  scene without any background (the exporter shows a generated backdrop there), placed by the scene's
  ``metadata.location`` or title. Time and weather missing from a file name come from the weather
  planner's state for the scene (``metadata.weather`` of the scene, else of the project).

Slots come in story order (scene order, then node order), so equal projects give equal plans.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from pathlib import PurePosixPath
from typing import Any

import attrs
from comfyvn_scenario.project import Project

__all__ = [
    "TIME_WORDS",
    "WEATHER_WORDS",
    "WORD_ALIASES",
    "ArtPlan",
    "BackgroundSlot",
    "SpriteSlot",
    "parse_place",
    "plan_art",
    "slug",
]

#: Words of a background's file name that say the time of day (matched whole, case-insensitively).
TIME_WORDS = ("dawn", "morning", "noon", "day", "afternoon", "dusk", "evening", "sunset", "night", "midnight")
#: Words that say the weather.
WEATHER_WORDS = ("clear", "rain", "storm", "snow", "fog", "mist", "cloudy", "overcast", "wind")
#: Other spellings of those words in file names (``Snowy street``), as the word they stand for.
WORD_ALIASES = {
    "sunrise": "dawn",
    "midday": "noon",
    "twilight": "dusk",
    "nighttime": "night",
    "rainy": "rain",
    "stormy": "storm",
    "thunderstorm": "storm",
    "snowy": "snow",
    "foggy": "fog",
    "misty": "mist",
    "windy": "wind",
    "sunny": "clear",
}
#: Linking words left dangling at the end of a place once its time and weather are taken out.
_LINKS = frozenset({"at", "in", "on", "during", "by", "with", "and", "the", "of", "a"})
_PLACE_DROPS = frozenset(TIME_WORDS) | frozenset(WEATHER_WORDS)
DEFAULT_EXPRESSION = "neutral"
MAX_KEY = 64
MAX_WORD = 40
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,5}$")
_PARENS = re.compile(r"[(\[{]([^)\]}]*)[)\]}]")


@attrs.frozen
class SpriteSlot:
    """One expression of one character; ``ref`` is the project's sprite for it (None: none yet)."""

    character: str
    name: str
    expression: str
    ref: str | None


@attrs.frozen
class BackgroundSlot:
    """One place the story shows. ``ref`` is the background the scenes name (None: a scene without one,
    keyed ``scene-<scene>``); ``scenes`` are the scenes that show it, in story order."""

    key: str
    scenes: tuple[str, ...]
    ref: str | None
    location: str
    time_of_day: str | None
    weather: str | None


@attrs.frozen
class ArtPlan:
    """Every sprite and background the story shows, in story order."""

    sprites: tuple[SpriteSlot, ...]
    backgrounds: tuple[BackgroundSlot, ...]


def slug(text: str, *, fallback: str = "x") -> str:
    """Lowercase ASCII letters and digits joined by ``-`` (accents folded), at most 64 characters."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    value = _NOT_SLUG.sub("-", folded.lower()).strip("-")[:MAX_KEY].strip("-")
    return value or fallback


def _nodes(scene: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    nodes = scene.get("nodes")
    for node in nodes if isinstance(nodes, list) else ():
        if isinstance(node, Mapping):
            yield node


def _stage(project: Project) -> tuple[dict[str, dict[str, None]], dict[str, None]]:
    """``(character id -> expressions shown, in first-seen order; ids shown or speaking, in order)``."""
    expressions: dict[str, dict[str, None]] = {}
    present: dict[str, None] = {}
    for scene in project.scenes.values():
        for node in _nodes(scene):
            speaker = node.get("speaker")
            if isinstance(speaker, str) and node.get("type") != "narration":
                present.setdefault(speaker, None)
            entries = node.get("characters")
            for entry in entries if isinstance(entries, list) else ():
                if not isinstance(entry, Mapping) or entry.get("hide") or not isinstance(entry.get("id"), str):
                    continue
                present.setdefault(entry["id"], None)
                expression = entry.get("expression")
                if isinstance(expression, str) and expression.strip():
                    expressions.setdefault(entry["id"], {})[expression] = None
    return expressions, present


def _is_player(spec: Any) -> bool:
    metadata = spec.get("metadata") if isinstance(spec, Mapping) else None
    return isinstance(metadata, Mapping) and metadata.get("role") == "user"


def _sprite_slots(project: Project) -> list[SpriteSlot]:
    expressions, present = _stage(project)
    characters = project.characters
    # Story order first (who appears first renders first), then the file's order for the rest.
    order = [c for c in present if c in characters] + [c for c in characters if c not in present]
    slots: list[SpriteSlot] = []
    for char_id in order:
        spec = characters[char_id]
        if char_id not in present or _is_player(spec):
            continue
        spec = spec if isinstance(spec, Mapping) else {}
        raw_sprites = spec.get("sprites")
        sprites: Mapping[str, Any] = raw_sprites if isinstance(raw_sprites, Mapping) else {}
        wanted = dict(expressions.get(char_id, {}))
        default = spec.get("default_expression")
        if isinstance(default, str) and default.strip():
            wanted.setdefault(default, None)
        elif not wanted:
            first = next((str(k) for k in sprites), None)
            wanted[first or DEFAULT_EXPRESSION] = None
        name = spec.get("name")
        name = name if isinstance(name, str) and name.strip() else char_id
        for expression in wanted:
            ref = sprites.get(expression)
            slots.append(SpriteSlot(char_id, name, expression, ref if isinstance(ref, str) and ref else None))
    return slots


def _words(text: str) -> list[str]:
    return _WORD.findall(text.replace("_", " "))


def parse_place(ref: str) -> tuple[str, str | None, str | None]:
    """``(location, time of day, weather)`` from a background's file name.

    ``backgrounds/Harbour at dusk (rain).jpg`` -> ``("Harbour", "dusk", "rain")``: time and weather are
    the first `TIME_WORDS` / `WEATHER_WORDS` (or `WORD_ALIASES`) in the stem, in or out of brackets; the
    place is what is left outside the brackets, less those words and dangling linking words. A stem of
    only time/weather words is its own place (``night.png`` -> ``("night", "night", None)``).
    """
    stem = PurePosixPath(ref.replace("\\", "/")).stem or ref
    time_of_day = weather = None
    for word in _words(stem):
        lower = WORD_ALIASES.get(word.lower(), word.lower())
        if time_of_day is None and lower in TIME_WORDS:
            time_of_day = lower
        elif weather is None and lower in WEATHER_WORDS:
            weather = lower
    outside = _PARENS.sub(" ", stem)
    place = [w for w in _words(outside) if WORD_ALIASES.get(w.lower(), w.lower()) not in _PLACE_DROPS]
    while place and place[-1].lower() in _LINKS:
        place.pop()
    while place and place[0].lower() in _LINKS - {"the", "a"}:
        place.pop(0)
    location = " ".join(place) or " ".join(_words(stem)) or stem
    return location[:200], time_of_day, weather


def _state_word(value: Any) -> str | None:
    """A weather-state value as a prompt word (``late_night`` -> ``late night``), None when unusable."""
    if not isinstance(value, str):
        return None
    word = " ".join(value.replace("_", " ").replace("-", " ").split()).lower()
    return word[:MAX_WORD] or None


def _weather_state(project: Project, scene: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The scene's ``(time_of_day, weather)`` from the weather planner's state: the scene's
    ``metadata.weather``, else the project's; an explicit null on the scene opts out (as the baker does)."""
    metadata = scene.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    if "weather" in metadata:
        state = metadata["weather"]
    else:
        project_md = project.meta.get("metadata")
        state = project_md.get("weather") if isinstance(project_md, Mapping) else None
    if not isinstance(state, Mapping):
        return None, None
    return _state_word(state.get("time_of_day")), _state_word(state.get("weather"))


def _scene_place(scene_id: str, scene: Mapping[str, Any]) -> str:
    metadata = scene.get("metadata")
    for value in (metadata.get("location") if isinstance(metadata, Mapping) else None, scene.get("title")):
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())[:200]
    return scene_id


def _background_slots(project: Project) -> list[BackgroundSlot]:
    refs: dict[str, list[str]] = {}  # ref -> scenes naming it
    entries: list[tuple[str, str, str]] = []  # (kind, ref or scene id, first scene) in story order
    for scene_id, scene in project.scenes.items():
        named = [scene.get("background")] + [node.get("background") for node in _nodes(scene)]
        found = [ref for ref in named if isinstance(ref, str) and ref]
        for ref in found:
            if ref not in refs:
                refs[ref] = []
                entries.append(("ref", ref, scene_id))
            if scene_id not in refs[ref]:
                refs[ref].append(scene_id)
        if not found:
            entries.append(("scene", scene_id, scene_id))
    claimed: set[str] = set()

    def claim(base: str) -> str:
        key, counter = base, 1
        while key in claimed:
            counter += 1
            key = f"{base}-{counter}"
        claimed.add(key)
        return key

    slots = []
    for kind, value, first_scene in entries:
        scene = project.scenes[first_scene]
        state_time, state_weather = _weather_state(project, scene)
        if kind == "ref":
            location, time_of_day, weather = parse_place(value)
            base = slug(_EXTENSION.sub("", value))
            slots.append(
                BackgroundSlot(
                    claim(base),
                    tuple(refs[value]),
                    value,
                    location,
                    time_of_day or state_time,
                    weather or state_weather,
                )
            )
        else:
            key = claim(f"scene-{slug(value)}")
            slots.append(BackgroundSlot(key, (value,), None, _scene_place(value, scene), state_time, state_weather))
    return slots


def plan_art(project: Project) -> ArtPlan:
    """The sprites and backgrounds ``project`` shows (see the module docstring), in story order."""
    return ArtPlan(tuple(_sprite_slots(project)), tuple(_background_slots(project)))
