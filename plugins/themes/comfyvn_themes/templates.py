"""The theme templates: Modern, Fantasy, Romantic, Dark and Action.

Each template coordinates a LUT stack, an ambience (a world state the weather planner understands,
plus ambience loops), a music pack, a prompt style, backdrop assets and character styling — a
default look and per-role overrides.
"""

from __future__ import annotations

import attrs

__all__ = [
    "CHARACTER_FIELDS",
    "TEMPLATES",
    "Ambience",
    "Assets",
    "CharacterStyle",
    "MusicPack",
    "PromptStyle",
    "ThemeTemplate",
]


@attrs.frozen
class CharacterStyle:
    palette: str
    rim_light: str
    wardrobe: str
    expression_bias: str


CHARACTER_FIELDS: tuple[str, ...] = tuple(a.name for a in attrs.fields(CharacterStyle))


@attrs.frozen
class Ambience:
    """A world state in the weather planner's vocabulary and the ambience loops to layer on it."""

    time_of_day: str
    weather: str
    mood: str
    sfx: tuple[str, ...]


@attrs.frozen
class MusicPack:
    pack: str
    mood: str
    tempo: int
    intensity: float


@attrs.frozen
class PromptStyle:
    style: str
    lighting: str
    keywords: tuple[str, ...]
    negative: tuple[str, ...]


@attrs.frozen
class Assets:
    backdrop: str
    overlays: tuple[str, ...]


@attrs.frozen
class ThemeTemplate:
    id: str
    label: str
    summary: str
    luts: tuple[str, ...]
    ambience: Ambience
    music: MusicPack
    prompt: PromptStyle
    assets: Assets
    character: CharacterStyle
    roles: dict[str, CharacterStyle]


TEMPLATES: dict[str, ThemeTemplate] = {
    t.id: t
    for t in (
        ThemeTemplate(
            id="modern",
            label="Modern",
            summary="Clean daylight, city textures and understated grading.",
            luts=("neutral", "daylight_soft", "urban_teal"),
            ambience=Ambience("day", "clear", "calm", ("city.traffic.distant", "cafe.murmur.light")),
            music=MusicPack("modern_lofi", "easygoing", 88, 0.3),
            prompt=PromptStyle(
                "contemporary slice of life",
                "soft window light",
                ("city", "apartment", "cafe", "smartphone"),
                ("armor", "castle", "medieval"),
            ),
            assets=Assets("modern/city_street_day", ("fx/light_dust",)),
            character=CharacterStyle("natural", "soft_white", "casual", "neutral"),
            roles={
                "protagonist": CharacterStyle("natural", "soft_white", "casual", "hopeful"),
                "rival": CharacterStyle("cool", "steel", "smart_casual", "smug"),
                "mentor": CharacterStyle("warm", "soft_white", "business", "calm"),
            },
        ),
        ThemeTemplate(
            id="fantasy",
            label="Fantasy",
            summary="Golden-hour kingdoms, rich colour and a touch of magic.",
            luts=("warm", "golden_hour", "storybook_bloom"),
            ambience=Ambience("dawn", "clear", "mystic", ("forest.birds.morning", "magic.shimmer.low")),
            music=MusicPack("orchestral_fantasy", "wonder", 96, 0.45),
            prompt=PromptStyle(
                "high fantasy illustration",
                "golden rim light",
                ("castle", "forest", "magic", "banners"),
                ("smartphone", "car", "neon"),
            ),
            assets=Assets("fantasy/castle_courtyard", ("fx/fireflies", "fx/light_motes")),
            character=CharacterStyle("jewel", "gold", "adventurer", "determined"),
            roles={
                "protagonist": CharacterStyle("jewel", "gold", "knight", "determined"),
                "mage": CharacterStyle("arcane", "violet", "robes", "focused"),
                "villain": CharacterStyle("crimson", "ember", "dark_regalia", "cold"),
            },
        ),
        ThemeTemplate(
            id="romantic",
            label="Romantic",
            summary="Warm dusk, soft focus and gentle strings.",
            luts=("warm", "pastel_bloom", "soft_focus"),
            ambience=Ambience("dusk", "clear", "calm", ("breeze.leaves.soft", "fountain.trickle")),
            music=MusicPack("piano_strings", "tender", 72, 0.25),
            prompt=PromptStyle(
                "romantic visual novel",
                "warm sunset glow",
                ("sunset", "blossoms", "promenade", "lanterns"),
                ("gore", "weapons"),
            ),
            assets=Assets("romantic/riverside_promenade", ("fx/petals", "fx/bokeh_warm")),
            character=CharacterStyle("pastel", "peach", "date_outfit", "shy"),
            roles={
                "protagonist": CharacterStyle("pastel", "peach", "date_outfit", "nervous"),
                "love_interest": CharacterStyle("rose", "gold", "elegant", "warm"),
                "rival": CharacterStyle("lavender", "cool_white", "elegant", "teasing"),
            },
        ),
        ThemeTemplate(
            id="dark",
            label="Dark",
            summary="Night, fog and desaturated shadows for horror and mystery.",
            luts=("cool", "bleach_bypass", "deep_shadow"),
            ambience=Ambience("night", "fog", "tense", ("wind.howl.low", "drone.subsonic")),
            music=MusicPack("dark_ambient", "dread", 60, 0.55),
            prompt=PromptStyle(
                "dark gothic mystery",
                "single cold key light",
                ("shadows", "fog", "ruins", "candles"),
                ("bright colors", "cheerful"),
            ),
            assets=Assets("dark/abandoned_chapel", ("fx/fog_rolling", "fx/film_grain")),
            character=CharacterStyle("desaturated", "cold_blue", "dark_coat", "wary"),
            roles={
                "protagonist": CharacterStyle("desaturated", "cold_blue", "dark_coat", "wary"),
                "antagonist": CharacterStyle("crimson", "red", "formal_black", "menacing"),
                "ally": CharacterStyle("muted", "amber", "worn_layers", "tired"),
            },
        ),
        ThemeTemplate(
            id="action",
            label="Action",
            summary="High contrast, speed lines and driving percussion.",
            luts=("high_contrast", "teal_orange", "sharpen_punch"),
            ambience=Ambience("day", "overcast", "energetic", ("wind.gust.strong", "debris.rattle")),
            music=MusicPack("hybrid_percussion", "driving", 140, 0.8),
            prompt=PromptStyle(
                "dynamic action anime",
                "hard rim light",
                ("motion blur", "sparks", "rooftops", "dynamic pose"),
                ("static", "calm"),
            ),
            assets=Assets("action/rooftop_chase", ("fx/speed_lines", "fx/sparks")),
            character=CharacterStyle("saturated", "hot_orange", "combat_gear", "fierce"),
            roles={
                "protagonist": CharacterStyle("saturated", "hot_orange", "combat_gear", "fierce"),
                "rival": CharacterStyle("electric", "cyan", "tactical", "cocky"),
                "boss": CharacterStyle("black_red", "red", "armored", "imposing"),
            },
        ),
    )
}
