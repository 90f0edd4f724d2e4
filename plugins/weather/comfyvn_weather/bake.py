"""Weather baked into a Ren'Py export: each scene's world state → ``show``/``with``/``play sound`` lines.

The Ren'Py exporter asks every plugin for ``renpy_export_contributions(project, options)``; with
``options["bake_weather"]`` this module answers. A scene's state is its ``metadata.weather``
(``{time_of_day, weather, ambience}``), else the project's ``metadata.weather``, else nothing is baked
for it; ``metadata.weather: null`` on a scene opts it out of the project default. Each state compiles
to the planner's plan, which becomes:

* ``image cvn_weather <tod>_<weather>_<ambience> = Solid("#rrggbbaa")`` — the plan's grade as one
  translucent tint (darkening from the light rig's exposure, the sky tint, the weather overlay tint,
  composited "over" in that order), shown above the sprites (``zorder 10``);
* ``image cvn_weather_fx … = SnowBlossom(...)`` — the plan's rain, snow or fog particles (``zorder 11``);
* ``define cvn_weather_<type>_<ms> = Dissolve(s)`` (``Fade`` with a white flash for storms);
* ``play sound "audio/weather/<loop>" loop fadein <s> volume <v>`` only when the project's ``assets/``
  holds a file for the plan's loop — no file, no line (``stop sound`` instead, so the previous scene's
  loop does not run on) and a warning in the file header and under ``warnings``.

The project is read by duck typing (``.meta``, ``.scenes``, ``.root``); this module never imports the
exporter or the scenario plugin. Equal projects give byte-identical contributions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import attrs
from comfyvn.errors import ComfyVNError

from .planner import WeatherPlan, WorldState, compile_plan, merge_state
from .presets import FIELDS

__all__ = [
    "AUDIO_EXTS",
    "FX_TAG",
    "OUTPUT",
    "TAG",
    "AssetIndex",
    "SceneState",
    "Sound",
    "bake_contribution",
    "overlay_colour",
    "render_contribution",
    "scene_states",
]

OUTPUT = "game/comfyvn_weather.rpy"
TAG = "cvn_weather"
FX_TAG = "cvn_weather_fx"
AUDIO_DIR = "audio/weather"
AUDIO_EXTS = (".ogg", ".opus", ".wav", ".mp3", ".flac")
OVERLAY_ZORDER, FX_ZORDER = 10, 11


@attrs.frozen
class SceneState:
    """The world state one scene is baked with, where it came from (``scene``/``project``) and its warnings."""

    scene_id: str
    source: str
    state: WorldState
    warnings: tuple[str, ...] = ()

    @property
    def attribute(self) -> str:
        """The image attribute naming this state: canonical values only, so always a safe Ren'Py word."""
        return f"{self.state.time_of_day}_{self.state.weather}_{self.state.ambience}"


@attrs.frozen
class Sound:
    """An ambience file found in the project: its source path and where the export puts it (below game/)."""

    source: Path
    dest: str


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _parse_state(raw: Any, where: str) -> tuple[WorldState, tuple[str, ...]]:
    if not isinstance(raw, Mapping):
        raise ComfyVNError(
            f"{where} must be an object {{time_of_day, weather, ambience}}, got {type(raw).__name__}",
            field=where,
            code="invalid_weather_state",
        )
    for key, value in raw.items():
        if key not in FIELDS:
            raise ComfyVNError(
                f"{where}: unknown field {key!r}; expected one of {list(FIELDS)}",
                field=f"{where}.{key}",
                code="invalid_weather_state",
            )
        if value is not None and not isinstance(value, str):
            raise ComfyVNError(
                f"{where}.{key} must be a string, got {type(value).__name__}",
                field=f"{where}.{key}",
                code="invalid_weather_state",
            )
    return merge_state(WorldState(), raw)


def _metadata(owner: Any) -> Mapping[str, Any]:
    metadata = owner.get("metadata") if isinstance(owner, Mapping) else None
    return metadata if isinstance(metadata, Mapping) else {}


def scene_states(project: Any) -> list[SceneState]:
    """Each scene's state in story order: its ``metadata.weather``, else the project's, else none.

    Raises `ComfyVNError` naming the field for a state that is not an object, has an unknown field or a
    non-string value; an unknown value falls back to the default with a warning (as in the planner).
    """
    meta = getattr(project, "meta", None)
    scenes = getattr(project, "scenes", None)
    project_md = _metadata(meta)
    fallback = None
    if project_md.get("weather") is not None:
        fallback = _parse_state(project_md["weather"], "project.metadata.weather")
    found = []
    for scene_id, scene in scenes.items() if isinstance(scenes, Mapping) else ():
        scene_md = _metadata(scene)
        if "weather" in scene_md:
            if scene_md["weather"] is None:
                continue  # an explicit null opts the scene out of the project default
            state, warnings = _parse_state(scene_md["weather"], f"scenes.{scene_id}.metadata.weather")
            source = "scene"
        elif fallback is not None:
            (state, warnings), source = fallback, "project"
        else:
            continue
        found.append(SceneState(str(scene_id), source, state, tuple(f"scene {str(scene_id)!r}: {w}" for w in warnings)))
    return found


class AssetIndex:
    """Audio files below a project's ``assets/`` folder, looked up by the stem of a plan's loop."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._by_stem: dict[str, list[Path]] = {}
        assets = root / "assets" if root is not None else None
        if assets is None or not assets.is_dir():
            return
        inside = root.resolve() if root is not None else None
        for path in sorted(assets.rglob("*")):
            # Only real audio files that stay inside the project (a symlink could point anywhere).
            if (
                path.suffix.lower() in AUDIO_EXTS
                and path.is_file()
                and inside is not None
                and path.resolve().is_relative_to(inside)
            ):
                self._by_stem.setdefault(path.stem.lower(), []).append(path)

    def find(self, ref: str) -> Sound | None:
        """The file for ``ref`` (e.g. ``ambience/rain_loop.ogg``): ``assets/<ref>`` itself, else any audio
        file named ``<stem>.<ogg|opus|wav|mp3|flac>`` below ``assets/`` (same extension first, then path order)."""
        wanted = PurePosixPath(ref)
        candidates = self._by_stem.get(wanted.stem.lower(), [])
        if not candidates or self.root is None:
            return None
        assets = self.root / "assets"
        exact = [p for p in candidates if p.relative_to(assets).as_posix() == wanted.as_posix()]
        best = (
            exact[0]
            if exact
            else sorted(
                candidates, key=lambda p: (p.suffix.lower() != wanted.suffix.lower(), p.relative_to(assets).as_posix())
            )[0]
        )
        return Sound(best, f"{AUDIO_DIR}/{wanted.stem.lower()}{best.suffix.lower()}")


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def overlay_colour(plan: WeatherPlan) -> str:
    """The plan's grade as one ``#rrggbbaa``: black at ``0.35 * -exposure`` (max 0.4), the sky tint at 0.1
    (none for a white sky), the weather overlay tint at ``0.35 * intensity``, composited bottom to top."""
    base, overlay = plan.scene.background_layers[0], plan.scene.background_layers[1]
    layers: list[tuple[tuple[int, int, int], float]] = []
    darkness = min(0.4, max(0.0, -plan.scene.light_rig.exposure * 0.35))
    if darkness > 0:
        layers.append(((0, 0, 0), darkness))
    if base.tint and base.tint.lower() != "#ffffff":
        layers.append((_rgb(base.tint), 0.1))
    if overlay.tint:
        layers.append((_rgb(overlay.tint), min(1.0, max(0.0, overlay.intensity * 0.35))))
    colour: list[float] = [0.0, 0.0, 0.0]
    alpha = 0.0
    for rgb, a in layers:  # Porter-Duff "over": each layer on top of what is below it
        out = a + alpha * (1 - a)
        if out > 0:
            colour = [(c * a + below * alpha * (1 - a)) / out for c, below in zip(rgb, colour, strict=True)]
        alpha = out
    r, g, b = (max(0, min(255, round(c))) for c in colour)
    return f"#{r:02x}{g:02x}{b:02x}{max(0, min(255, round(alpha * 255))):02x}"


def _particles(plan: WeatherPlan) -> str | None:
    """A ``SnowBlossom`` for the plan's particles: count = spawn rate * intensity / 4 (at least 4)."""
    p = plan.particles
    if p is None:
        return None
    count = max(4, round(p.spawn_rate * p.intensity / 4))
    scale = p.size[1] if p.size else 1.0
    tint = plan.scene.background_layers[1].tint or "#ffffff"
    if p.type == "rain":
        drift = round(40 + 100 * (p.noise or 0.0))
        sprite = f'Solid("{tint}aa", xysize=(2, {round(22 * scale)}))'
        return (
            f"SnowBlossom({sprite}, count={count}, border=40, xspeed=(-{drift}, -20), yspeed=(700, 950), "
            f"start=0, fast=True)"
        )
    if p.type == "snow":
        side = max(2, round(6 * scale))
        return (
            f'SnowBlossom(Solid("#ffffffdd", xysize=({side}, {side})), count={count}, border=20, '
            f"xspeed=(-25, 25), yspeed=(40, 110), start=0, fast=True)"
        )
    # Fog: wide, faint banks drifting in from the sides.
    alpha = round(0x40 * (p.density if p.density is not None else 0.5) + 0x10)
    return (
        f'SnowBlossom(Solid("{tint}{alpha:02x}", xysize=(420, 180)), count={count}, border=420, '
        f"xspeed=(12, 36), yspeed=(-6, 6), start=0, fast=True, horizontal=True)"
    )


def _transition(plan: WeatherPlan) -> tuple[str, str]:
    """``(define name, expression)`` of the plan's transition."""
    t = plan.transition
    name = f"{TAG}_{t.type}_{round(t.duration * 1000)}"
    if t.type == "flash":
        return name, f'Fade(0.1, 0.0, {round(max(0.1, t.duration - 0.1), 3)!r}, color="#ffffff")'
    return name, f"Dissolve({t.duration!r})"


def _volume(gain_db: float) -> float:
    return round(min(1.0, 10 ** (gain_db / 20)), 3)


def render_contribution(
    project_id: str,
    scenes: Iterable[SceneState],
    sounds: Mapping[str, Sound | None],
    audio: Mapping[str, bytes] | None = None,
) -> dict[str, Any] | None:
    """The contribution for ``scenes`` (pure). ``sounds`` maps each loop/one-shot ref to the file found for
    it (None: absent); ``audio`` maps a found file's dest to its bytes. None when no scene is baked."""
    baked = list(scenes)
    if not baked:
        return None
    plans = {s.attribute: compile_plan(s.state) for s in baked}
    has_fx = any(plan.particles is not None for plan in plans.values())
    warnings: list[str] = [w for s in baked for w in s.warnings]
    scene_lines: dict[str, list[str]] = {}
    for scene in baked:
        plan = plans[scene.attribute]
        lines = []
        if plan.particles is not None:
            lines.append(f"show {FX_TAG} {scene.attribute} zorder {FX_ZORDER}")
        elif has_fx:
            lines.append(f"hide {FX_TAG}")
        lines.append(f"show {TAG} {scene.attribute} zorder {OVERLAY_ZORDER} with {_transition(plan)[0]}")
        sfx = plan.sfx
        loop = sounds.get(sfx.loop) if sfx.loop else None
        if loop is not None:
            lines.append(f'play sound "{loop.dest}" loop fadein {sfx.fade_in!r} volume {_volume(sfx.gain_db)!r}')
        else:
            # No file for this plan's loop: say so, and stop the previous scene's loop rather than keep it.
            lines.append(f"stop sound fadeout {sfx.fade_out!r}")
            warnings.append(
                f"scene {scene.scene_id!r}: no ambience file for {sfx.loop!r} below assets/ "
                f"(any of {', '.join(PurePosixPath(str(sfx.loop)).stem + e for e in AUDIO_EXTS)}); "
                "its play sound line is left out"
            )
        for shot in sfx.one_shots:
            found = sounds.get(shot)
            if found is not None:
                lines.append(f'play audio "{found.dest}"')
            else:
                warnings.append(
                    f"scene {scene.scene_id!r}: no sound file for {shot!r} below assets/; "
                    "its play audio line is left out"
                )
        scene_lines[scene.scene_id] = lines
    return {
        "files": {OUTPUT: _rpy_file(project_id, baked, plans, warnings), **dict(sorted((audio or {}).items()))},
        "scene_lines": scene_lines,
        "warnings": warnings,
    }


def _rpy_file(project_id: str, baked: list[SceneState], plans: Mapping[str, WeatherPlan], warnings: list[str]) -> str:
    out = [
        f"## Generated by ComfyVN (weather plugin) for project {_one_line(project_id)}: weather baked with "
        "--bake-weather.",
        "## Do not edit: change the scenes' metadata.weather and export again.",
        "##",
    ]
    for scene in baked:
        out.append(
            f"## scene {_one_line(scene.scene_id)}: {plans[scene.attribute].scene.summary['description']} "
            f"({scene.source} metadata) -> {TAG} {scene.attribute}"
        )
    out += [f"## warning: {_one_line(w)}" for w in warnings]
    out.append("")
    for name, expression in sorted(dict(_transition(plan) for plan in plans.values()).items()):
        out.append(f"define {name} = {expression}")
    out.append("")
    for attribute, plan in sorted(plans.items()):
        out.append(f'image {TAG} {attribute} = Solid("{overlay_colour(plan)}")')
        if (fx := _particles(plan)) is not None:
            out.append(f"image {FX_TAG} {attribute} = {fx}")
    return "\n".join(out) + "\n"


def bake_contribution(project: Any, options: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``renpy_export_contributions`` answer: None unless ``options["bake_weather"]`` and some scene
    has a state; else the ``.rpy`` file, the ambience files found, scene lines and warnings."""
    if not options.get("bake_weather"):
        return None
    scenes = scene_states(project)
    if not scenes:
        return None
    meta = getattr(project, "meta", None)
    project_id = meta.get("id", "") if isinstance(meta, Mapping) else ""
    index = AssetIndex(getattr(project, "root", None))
    refs: dict[str, None] = {}
    for scene in scenes:
        sfx = compile_plan(scene.state).sfx
        refs.update(dict.fromkeys([*([sfx.loop] if sfx.loop else []), *sfx.one_shots]))
    sounds = {ref: index.find(ref) for ref in refs}
    audio = {f"game/{s.dest}": s.source.read_bytes() for s in sounds.values() if s is not None}
    return render_contribution(str(project_id), scenes, sounds, audio)
