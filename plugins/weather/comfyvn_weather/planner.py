"""World state → a deterministic presentation plan (layers, light rig, LUT, transition, particles, SFX).

Pure: no HTTP, no click, no clock. `merge_state` folds a partial update into a state (aliases
resolved, unknown values fall back to the default with a warning); `compile_plan` turns a state into
a `WeatherPlan`. The hash is a digest of the canonical state, so it changes exactly when the state does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs
from comfyvn.digest import digest
from comfyvn.errors import ComfyVNError

from .presets import ALIASES, AMBIENCE, CANONICAL, DEFAULTS, FIELDS, TIME_OF_DAY, WEATHER

__all__ = [
    "Layer",
    "LightRig",
    "Lut",
    "Meta",
    "Particles",
    "ScenePlan",
    "Sfx",
    "Transition",
    "WeatherPlan",
    "WorldState",
    "canonical_value",
    "compile_plan",
    "merge_state",
]

_SEPARATORS = re.compile(r"[\s\-]+")


@attrs.frozen
class WorldState:
    time_of_day: str = DEFAULTS["time_of_day"]
    weather: str = DEFAULTS["weather"]
    ambience: str = DEFAULTS["ambience"]

    def as_dict(self) -> dict[str, str]:
        return {"time_of_day": self.time_of_day, "weather": self.weather, "ambience": self.ambience}

    @property
    def hash(self) -> str:
        """sha256 of the canonical JSON of the state, 16 hex digits."""
        return digest(self.as_dict())[:16]


@attrs.frozen
class Layer:
    id: str
    role: str  # base | weather | depth_mask
    texture: str
    intensity: float
    blend: str | None = None
    tint: str | None = None


@attrs.frozen
class LightRig:
    key: float
    fill: float
    rim: float
    temperature: int
    exposure: float
    contrast: float
    saturation: float


@attrs.frozen
class Lut:
    id: str
    path: str
    tint: str
    intensity: float


@attrs.frozen
class ScenePlan:
    background_layers: tuple[Layer, ...]
    light_rig: LightRig
    lut: Lut
    bake_ready: bool
    summary: dict[str, str]


@attrs.frozen
class Transition:
    type: str
    duration: float
    ease: str
    exposure_shift: float
    sfx_fade: float
    particle_fade: float


@attrs.frozen
class Particles:
    type: str
    spawn_rate: int
    intensity: float
    emitter: str
    size: tuple[float, float] | None = None
    noise: float | None = None
    density: float | None = None


@attrs.frozen
class Sfx:
    loop: str | None
    gain_db: float
    tags: tuple[str, ...]
    fade: float
    fade_in: float
    fade_out: float
    one_shots: tuple[str, ...] = ()


@attrs.frozen
class Meta:
    hash: str
    warnings: tuple[str, ...] = ()
    version: int = 0
    updated_at: str | None = None


@attrs.frozen
class WeatherPlan:
    state: WorldState
    scene: ScenePlan
    transition: Transition
    particles: Particles | None
    sfx: Sfx
    meta: Meta


def canonical_value(field: str, raw: Any) -> tuple[str, str | None]:
    """The canonical value for ``field`` and a warning when ``raw`` had to fall back to the default.

    Case, surrounding space and ``-``/space separators are ignored; aliases map to canonical values.
    A non-string raises `ComfyVNError` naming the field (a type error is not a fallback case).
    """
    if not isinstance(raw, str):
        raise ComfyVNError(
            f"{field} must be a string, got {type(raw).__name__}", field=field, code="invalid_weather_state"
        )
    cleaned = _SEPARATORS.sub("_", raw.strip().lower())
    value = ALIASES[field].get(cleaned, cleaned)
    if value in CANONICAL[field]:
        return value, None
    default = DEFAULTS[field]
    return default, f"{field}: unknown value {raw!r}, fell back to {default!r}"


def merge_state(current: WorldState, partial: Mapping[str, Any]) -> tuple[WorldState, tuple[str, ...]]:
    """Fold ``partial`` (any of time_of_day/weather/ambience; None = keep) over ``current``.

    Unknown keys raise `ComfyVNError` naming them; unknown values fall back with a warning.
    """
    values = current.as_dict()
    warnings = []
    for key in partial:
        if key not in FIELDS:
            raise ComfyVNError(
                f"unknown field {key!r}; expected one of {list(FIELDS)}", field=str(key), code="invalid_weather_state"
            )
    for key in FIELDS:
        raw = partial.get(key)
        if raw is None:
            continue
        values[key], warning = canonical_value(key, raw)
        if warning:
            warnings.append(warning)
    return WorldState(**values), tuple(warnings)


def _clamp(value: float, low: float, high: float) -> float:
    return round(max(low, min(high, value)), 3)


def compile_plan(
    state: WorldState, warnings: tuple[str, ...] = (), *, version: int = 0, updated_at: str | None = None
) -> WeatherPlan:
    """The presentation plan for ``state``; equal states give equal plans (and equal hashes)."""
    tod, wx, amb = TIME_OF_DAY[state.time_of_day], WEATHER[state.weather], AMBIENCE[state.ambience]
    suffix = f"{state.time_of_day}_{state.weather}"
    overlay_intensity = _clamp(wx.intensity + amb.overlay_gain, 0.0, 1.0)
    layers = [
        Layer(f"base_{state.time_of_day}", "base", tod.background, 1.0, tint=tod.sky_tint),
        Layer(
            f"{wx.overlay}_{state.time_of_day}",
            "weather",
            f"weather/{wx.overlay}_{state.time_of_day}.png",
            overlay_intensity,
            blend=wx.blend,
            tint=amb.tint or wx.tint,
        ),
    ]
    if wx.depth_mask:
        # Fog and storms read as depth: a multiply mask keeps the far plane hazier than the near one.
        layers.append(
            Layer(
                f"{wx.overlay}_depth",
                "depth_mask",
                f"weather/{wx.overlay}_depth.png",
                _clamp(overlay_intensity * 0.6, 0.05, 0.9),
                blend="multiply",
            )
        )
    exposure = _clamp(tod.exposure + wx.exposure + amb.exposure_bias, -1.0, 0.5)
    rig = LightRig(
        key=_clamp(tod.key + wx.contrast * 0.25, 0.05, 1.0),
        fill=_clamp(tod.fill - wx.contrast * 0.2, 0.05, 1.0),
        rim=_clamp(tod.rim - wx.contrast * 0.3, 0.05, 1.0),
        temperature=int(max(2500, min(7000, tod.temperature - wx.exposure * 400))),
        exposure=exposure,
        contrast=_clamp(1.0 + wx.contrast, 0.5, 1.5),
        saturation=_clamp(amb.saturation + wx.contrast * 0.5, 0.4, 1.3),
    )
    lut = Lut(
        f"lut_{suffix}",
        f"luts/{suffix}.cube",
        amb.tint or wx.tint,
        _clamp(wx.intensity * 0.6 + amb.overlay_gain * 0.3, 0.0, 1.0),
    )
    summary = {
        "background": tod.background,
        "overlay": layers[1].texture,
        "lut": lut.path,
        "description": f"{state.time_of_day}, {state.weather}, {state.ambience}",
    }
    duration = _clamp(amb.duration, 0.3, 3.0)
    transition = Transition(
        wx.transition,
        duration,
        amb.ease,
        _clamp(wx.exposure + amb.exposure_bias, -1.0, 0.5),
        _clamp(amb.sfx_fade, 0.2, 3.0),
        _clamp(duration * 0.6, 0.2, 1.8),
    )
    particles = None
    if wx.particle is not None:
        p = wx.particle
        particles = Particles(
            p.type,
            p.spawn_rate,
            _clamp(p.intensity + amb.particle_gain, 0.0, 1.0),
            f"{state.weather}_{state.time_of_day}",
            p.size,
            p.noise,
            p.density,
        )
    fade = _clamp(amb.sfx_fade, 0.2, 3.0)
    sfx = Sfx(
        wx.loop,
        _clamp(wx.gain_db - amb.overlay_gain * 4, -24.0, 6.0),
        (state.weather, state.ambience, state.time_of_day),
        fade,
        fade,
        _clamp(fade * 1.2, 0.2, 3.6),
        wx.one_shots,
    )
    return WeatherPlan(
        state,
        ScenePlan(tuple(layers), rig, lut, True, summary),
        transition,
        particles,
        sfx,
        Meta(state.hash, warnings, version, updated_at),
    )
