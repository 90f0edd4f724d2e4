"""Preset tables of the weather planner: canonical values, aliases and their presentation numbers.

The canonical values and the alias idea are the original ComfyVN's wire contract; the numbers are
ours. `docs/weather.md` lists every preset (a test keeps the two in step).
"""

from __future__ import annotations

import attrs

__all__ = [
    "ALIASES",
    "AMBIENCE",
    "DEFAULTS",
    "FIELDS",
    "TIME_OF_DAY",
    "WEATHER",
    "AmbiencePreset",
    "ParticlePreset",
    "TimePreset",
    "WeatherPreset",
]


@attrs.frozen
class TimePreset:
    """Key/fill/rim light levels (0-1), colour temperature (K), exposure (EV), sky tint, background."""

    key: float
    fill: float
    rim: float
    temperature: int
    exposure: float
    sky_tint: str
    background: str


@attrs.frozen
class ParticlePreset:
    type: str
    spawn_rate: int
    intensity: float
    size: tuple[float, float] | None = None
    noise: float | None = None
    density: float | None = None


@attrs.frozen
class WeatherPreset:
    """The weather overlay (intensity, blend, tint), its effect on the grade, particles and loop."""

    overlay: str
    intensity: float
    blend: str
    tint: str
    contrast: float
    exposure: float
    loop: str | None
    gain_db: float
    particle: ParticlePreset | None = None
    one_shots: tuple[str, ...] = ()
    depth_mask: bool = False
    transition: str = "crossfade"


@attrs.frozen
class AmbiencePreset:
    """Mood: transition length and easing, fades, and small biases on overlay, exposure, particles."""

    duration: float
    ease: str
    sfx_fade: float
    overlay_gain: float
    exposure_bias: float
    particle_gain: float
    saturation: float
    tint: str | None = None


TIME_OF_DAY: dict[str, TimePreset] = {
    "dawn": TimePreset(0.55, 0.4, 0.45, 4200, -0.2, "#f6c89a", "backgrounds/dawn_default.png"),
    "day": TimePreset(0.9, 0.6, 0.3, 5600, 0.0, "#ffffff", "backgrounds/day_default.png"),
    "dusk": TimePreset(0.6, 0.35, 0.5, 3600, -0.15, "#ff9e6b", "backgrounds/dusk_default.png"),
    "night": TimePreset(0.25, 0.2, 0.6, 3000, -0.65, "#5f86d9", "backgrounds/night_default.png"),
}

WEATHER: dict[str, WeatherPreset] = {
    "clear": WeatherPreset("clear_sky", 0.3, "screen", "#ffffff", 0.1, 0.0, "ambience/wind_soft.ogg", -9.0),
    "overcast": WeatherPreset("overcast", 0.5, "overlay", "#c4ccd8", -0.15, -0.2, "ambience/wind_grey.ogg", -7.0),
    "rain": WeatherPreset(
        "rain",
        0.65,
        "soft_light",
        "#98adc4",
        -0.2,
        -0.3,
        "ambience/rain_loop.ogg",
        -4.0,
        ParticlePreset("rain", 240, 0.6, size=(0.6, 1.0)),
    ),
    "storm": WeatherPreset(
        "storm",
        0.8,
        "overlay",
        "#8290b0",
        -0.35,
        -0.45,
        "ambience/storm_loop.ogg",
        -2.5,
        ParticlePreset("rain", 360, 0.75, size=(0.8, 1.3), noise=0.4),
        one_shots=("ambience/thunder_roll.ogg",),
        depth_mask=True,
        transition="flash",
    ),
    "snow": WeatherPreset(
        "snow",
        0.6,
        "screen",
        "#e4f0f5",
        -0.1,
        -0.1,
        "ambience/snow_wind.ogg",
        -6.0,
        ParticlePreset("snow", 150, 0.55, size=(0.5, 1.4)),
    ),
    "fog": WeatherPreset(
        "fog",
        0.6,
        "screen",
        "#d5dade",
        -0.3,
        -0.25,
        "ambience/fog_drone.ogg",
        -8.0,
        ParticlePreset("fog", 60, 0.5, density=0.5),
        depth_mask=True,
    ),
}

AMBIENCE: dict[str, AmbiencePreset] = {
    "calm": AmbiencePreset(1.2, "easeInOutQuad", 1.5, 0.0, 0.0, 0.0, 1.0),
    "tense": AmbiencePreset(0.8, "easeInQuad", 1.0, 0.08, -0.05, 0.1, 0.9),
    "mystic": AmbiencePreset(1.6, "easeInOutSine", 2.0, 0.05, -0.03, 0.05, 1.05, tint="#b9a4ff"),
    "energetic": AmbiencePreset(0.6, "easeOutQuad", 0.8, -0.05, 0.08, -0.05, 1.15),
    "melancholic": AmbiencePreset(1.8, "easeInOutSine", 2.2, 0.04, -0.1, 0.05, 0.8),
}

DEFAULTS: dict[str, str] = {"time_of_day": "day", "weather": "clear", "ambience": "calm"}
FIELDS: tuple[str, ...] = ("time_of_day", "weather", "ambience")

ALIASES: dict[str, dict[str, str]] = {
    "time_of_day": {
        "sunrise": "dawn",
        "morning": "dawn",
        "daybreak": "dawn",
        "noon": "day",
        "midday": "day",
        "afternoon": "day",
        "daytime": "day",
        "sunset": "dusk",
        "evening": "dusk",
        "twilight": "dusk",
        "midnight": "night",
        "nighttime": "night",
        "late_night": "night",
    },
    "weather": {
        "sunny": "clear",
        "fair": "clear",
        "cloudy": "overcast",
        "grey": "overcast",
        "gray": "overcast",
        "rainy": "rain",
        "drizzle": "rain",
        "showers": "rain",
        "stormy": "storm",
        "thunderstorm": "storm",
        "heavy_rain": "storm",
        "downpour": "storm",
        "snowy": "snow",
        "blizzard": "snow",
        "snowfall": "snow",
        "foggy": "fog",
        "mist": "fog",
        "misty": "fog",
        "haze": "fog",
    },
    "ambience": {
        "peaceful": "calm",
        "relaxed": "calm",
        "serene": "calm",
        "anxious": "tense",
        "dramatic": "tense",
        "suspense": "tense",
        "mysterious": "mystic",
        "magical": "mystic",
        "arcane": "mystic",
        "upbeat": "energetic",
        "lively": "energetic",
        "action": "energetic",
        "sad": "melancholic",
        "somber": "melancholic",
        "sombre": "melancholic",
        "gloomy": "melancholic",
    },
}

CANONICAL: dict[str, tuple[str, ...]] = {
    "time_of_day": tuple(TIME_OF_DAY),
    "weather": tuple(WEATHER),
    "ambience": tuple(AMBIENCE),
}
