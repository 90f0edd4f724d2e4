"""Prompts from the project: a character's looks, an expression, a place, in one of the style presets.

Everything here is a pure function of its inputs, so equal projects give equal prompts (and, with
`seed_for`, equal seeds): a render is reproducible from its provenance. Sprite prompts ask for a full
figure on a plain flat white background (what `matte.matte` keys out); background prompts ask for an
empty establishing shot of the place at its time of day and weather. Text from a card is cleaned of
macros (``{{char}}``), markup and line breaks and bounded, so a long card cannot swamp the prompt.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from typing import Any

import attrs
from comfyvn.errors import Invalid

from .plan import BackgroundSlot

__all__ = [
    "EXPRESSIONS",
    "STYLES",
    "PromptSpec",
    "StylePreset",
    "background_prompt",
    "character_appearance",
    "character_subject",
    "expression_fragment",
    "generation_size",
    "get_style",
    "seed_for",
    "sprite_prompt",
]

MAX_APPEARANCE = 300
MAX_PHRASE = 200
MAX_PROMPT = 1500


@attrs.frozen
class StylePreset:
    """A look: prompt text around the subject, a negative prompt, sampler settings and sizes.

    ``sprite_size`` is the generation size of a sprite (portrait, multiples of 64);
    ``background_pixels`` the pixel budget of a background, whose shape follows the game's aspect
    (`generation_size`) before it is scaled to the game's resolution. ``img2img_denoise`` is how much of a
    reference picture (the card portrait) a sprite redraws.
    """

    name: str
    description: str
    positive_prefix: str
    positive_suffix: str
    negative: str
    steps: int
    cfg: float
    sampler: str
    scheduler: str
    sprite_size: tuple[int, int] = (832, 1216)
    background_pixels: int = 1024 * 1024
    img2img_denoise: float = 0.6


@attrs.frozen
class PromptSpec:
    """What one render asks for. ``width``/``height`` are the generation size; ``output_width``/
    ``output_height`` the size the image is delivered at (None: as generated)."""

    positive: str
    negative: str
    width: int
    height: int
    steps: int
    cfg: float
    sampler: str = "euler"
    scheduler: str = "normal"
    style: str = ""
    output_width: int | None = None
    output_height: int | None = None

    def to_params(self) -> dict[str, Any]:
        """The `workflows.bind` parameters this spec fills (prompt, negative, size, steps, cfg, sampler)."""
        return {
            "prompt": self.positive,
            "negative": self.negative,
            "width": self.width,
            "height": self.height,
            "steps": self.steps,
            "cfg": self.cfg,
            "sampler": self.sampler,
            "scheduler": self.scheduler,
        }


_COMMON_NEGATIVE = "lowres, blurry, jpeg artifacts, watermark, signature, text, logo, frame, border"

STYLES: dict[str, StylePreset] = {
    "anime": StylePreset(
        name="anime",
        description="Anime visual-novel art: clean line art, cel shading.",
        positive_prefix="anime style, visual novel art, clean lineart, cel shading",
        positive_suffix="masterpiece, best quality, highly detailed",
        negative=f"{_COMMON_NEGATIVE}, bad anatomy, bad hands, extra fingers, missing fingers, realistic, photo, 3d",
        steps=28,
        cfg=6.5,
        sampler="euler_ancestral",
        scheduler="normal",
    ),
    "painterly": StylePreset(
        name="painterly",
        description="Digital painting with visible brushwork and soft light.",
        positive_prefix="digital painting, painterly brushwork, soft lighting, concept art",
        positive_suffix="rich colours, detailed, artstation quality",
        negative=f"{_COMMON_NEGATIVE}, photo, 3d render, deformed, bad anatomy, flat colours",
        steps=30,
        cfg=7.0,
        sampler="dpmpp_2m",
        scheduler="karras",
    ),
    "pixel": StylePreset(
        name="pixel",
        description="Pixel art with a limited palette.",
        positive_prefix="pixel art, 16-bit, crisp pixels, limited palette",
        positive_suffix="retro game art, sharp edges",
        negative=f"{_COMMON_NEGATIVE}, smooth shading, anti-aliasing, gradient, photo, 3d, painting",
        steps=25,
        cfg=7.0,
        sampler="euler",
        scheduler="normal",
    ),
    "realistic": StylePreset(
        name="realistic",
        description="Photorealistic, cinematic light.",
        positive_prefix="photorealistic, cinematic lighting, 35mm photograph",
        positive_suffix="sharp focus, natural colours, high detail",
        negative=f"{_COMMON_NEGATIVE}, cartoon, anime, illustration, painting, drawing, deformed, bad anatomy",
        steps=30,
        cfg=5.5,
        sampler="dpmpp_2m_sde",
        scheduler="karras",
    ),
}

#: Expression -> prompt fragment. The names cover ComfyVN's usual ones and SillyTavern's expression set
#: (imported sprites are named after it); anything else becomes "<expression> expression".
EXPRESSIONS: dict[str, str] = {
    "neutral": "neutral expression, calm face",
    "happy": "happy, smiling",
    "smile": "gentle smile",
    "joy": "joyful, bright smile",
    "laughing": "laughing, eyes closed, open mouth",
    "amusement": "amused smile",
    "sad": "sad expression, downcast eyes",
    "sadness": "sad expression, downcast eyes",
    "crying": "crying, tears",
    "grief": "grief-stricken, tears",
    "angry": "angry expression, furrowed brows",
    "anger": "angry expression, furrowed brows",
    "annoyance": "annoyed expression, frown",
    "surprised": "surprised, wide eyes, open mouth",
    "surprise": "surprised, wide eyes, open mouth",
    "realization": "sudden realization, wide eyes",
    "afraid": "frightened expression, worried brows",
    "fear": "frightened expression, worried brows",
    "nervous": "nervous expression, sweat drop",
    "nervousness": "nervous expression, sweat drop",
    "thinking": "thoughtful expression, hand on chin",
    "curiosity": "curious expression, head tilt",
    "confused": "confused expression, head tilt",
    "confusion": "confused expression, head tilt",
    "embarrassed": "embarrassed, blushing",
    "embarrassment": "embarrassed, blushing",
    "love": "loving gaze, blushing, soft smile",
    "desire": "longing gaze, blushing",
    "admiration": "admiring gaze, soft smile",
    "caring": "warm caring smile",
    "gratitude": "grateful smile",
    "approval": "approving nod, slight smile",
    "disapproval": "disapproving frown",
    "disappointment": "disappointed expression",
    "disgust": "disgusted expression, wrinkled nose",
    "excitement": "excited, sparkling eyes, big smile",
    "optimism": "hopeful smile",
    "pride": "proud smile, chin up",
    "smug": "smug smirk",
    "relief": "relieved smile, exhale",
    "remorse": "remorseful expression, looking down",
    "determined": "determined expression, clenched fist",
    "tired": "tired expression, half-closed eyes",
    "serious": "serious expression",
}

TIME_PHRASES: dict[str, str] = {
    "dawn": "at dawn, soft pink sunrise light",
    "morning": "in the morning, fresh morning light",
    "noon": "at noon, bright overhead sun",
    "day": "in daylight",
    "afternoon": "in the afternoon, warm light",
    "dusk": "at dusk, orange twilight sky",
    "evening": "in the evening, fading light",
    "sunset": "at sunset, golden hour",
    "night": "at night, moonlight, dark sky",
    "midnight": "at midnight, deep darkness, moonlight",
}
WEATHER_PHRASES: dict[str, str] = {
    "clear": "clear sky",
    "rain": "raining, wet surfaces, rain streaks",
    "storm": "thunderstorm, heavy rain, dramatic clouds",
    "snow": "snowing, snow-covered",
    "fog": "thick fog, misty atmosphere",
    "mist": "light mist",
    "cloudy": "cloudy sky",
    "overcast": "overcast sky, diffuse light",
    "wind": "windy, blowing leaves",
}

SPRITE_FRAMING = "full body, standing, plain flat white background, simple background, centered, no scenery"
SPRITE_NEGATIVE = (
    "scenery, landscape, room, detailed background, gradient background, multiple people, cropped, "
    "cut off, out of frame, close-up"
)
BACKGROUND_FRAMING = "scenery, no people, wide establishing shot, visual novel background"
BACKGROUND_NEGATIVE = "people, person, character, crowd, humans, animals in foreground, ui, text box"

# Words that say a sentence is about how someone looks (matched as word prefixes, case-insensitively).
_LOOKS = re.compile(
    r"\b(hair|haired|eyes?|eyed|tall|short|petite|slender|slim|lanky|muscular|stocky|curvy|build|"
    r"wear(s|ing)?|worn|dress(ed|es)?|coat|jacket|shirt|blouse|skirt|trousers|jeans|boots|uniform|hat|"
    r"scarf|cloak|robe|armou?r|glasses|spectacles|freckle[sd]?|scar(red|s)?|tattoo(ed|s)?|beard(ed)?|"
    r"moustache|mustache|skin|complexion|face|cheeks?|lips|braid(s|ed)?|ponytail|bangs|fringe|"
    r"blonde?|brunette|redhead|pale|tanned|sleeves?|earrings?|necklace|ears|tail|wings|horns|"
    r"figure|height|(\w+-)?years?[- ]old|twenty|thirty|forty|fifty|sixty|teen(age|ager)?)\b",
    re.IGNORECASE,
)
_MACRO = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_TAG = re.compile(r"<[^<>]{0,200}>")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_PRONOUNS = {
    "woman": re.compile(r"\b(she|her|hers|herself)\b", re.IGNORECASE),
    "man": re.compile(r"\b(he|him|his|himself)\b", re.IGNORECASE),
}
_TAG_SUBJECTS = {"female": "woman", "woman": "woman", "girl": "woman", "male": "man", "man": "man", "boy": "man"}


def get_style(style: str | StylePreset) -> StylePreset:
    """The preset named ``style`` (a `StylePreset` passes through); unknown names raise `Invalid`
    (field ``style``) naming the known ones."""
    if isinstance(style, StylePreset):
        return style
    found = STYLES.get(style) if isinstance(style, str) else None
    if found is None:
        shown = repr(style)[:40] if isinstance(style, str) else type(style).__name__
        raise Invalid(f"unknown style {shown}; one of {', '.join(sorted(STYLES))}", field="style", code="unknown_style")
    return found


def seed_for(*parts: str) -> int:
    """A seed in 0..2**32-1 from ``parts`` (sha256 of the parts, length-prefixed so that
    ``("ab", "c")`` and ``("a", "bc")`` differ): stable across processes and machines."""
    digest = hashlib.sha256()
    for part in parts:
        data = str(part).encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big") + data)
    return int.from_bytes(digest.digest()[:4], "big")


def _clean(text: str, name: str = "") -> str:
    """Card text as plain prompt text: macros resolved or dropped, tags and emphasis marks removed,
    whitespace collapsed, commas de-doubled."""

    def macro(match: re.Match[str]) -> str:
        return name if match.group(1).lower() == "char" and name else ""

    text = _MACRO.sub(macro, text)
    text = _TAG.sub(" ", text)
    # Brackets are emphasis syntax to ComfyUI's text encoder ("(word:1.5)"): card text must not weight itself.
    text = re.sub(r"[*_`#~()\[\]{}|\\]", " ", text)
    text = "".join(c if c.isprintable() else " " for c in text)
    text = re.sub(r"\s+([.,;:!?])", r"\1", " ".join(text.split()))
    return re.sub(r",(\s*,)+", ",", text).strip(" ,")


def _bounded(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut.rstrip(" ,;:")


def _spec_text(spec: Mapping[str, Any], key: str) -> str:
    value = spec.get(key)
    return value if isinstance(value, str) else ""


def _card(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = spec.get("metadata")
    card = metadata.get("card") if isinstance(metadata, Mapping) else None
    return card if isinstance(card, Mapping) else {}


def character_appearance(spec: Mapping[str, Any]) -> str:
    """How a project character looks, as prompt text of at most ~300 characters.

    An explicit ``metadata.appearance`` string wins. Otherwise the sentences of the character's
    ``description`` (else its card's) that describe looks (hair, eyes, clothes, build, age…); when none
    does, the description's first sentence. Personality, scenario and card tags are not looks and are
    not used. Macros (``{{char}}``), markup and line breaks are removed. Empty when nothing is known.
    """
    if not isinstance(spec, Mapping):
        return ""
    name = _spec_text(spec, "name")
    metadata = spec.get("metadata")
    explicit = metadata.get("appearance") if isinstance(metadata, Mapping) else None
    if isinstance(explicit, str) and explicit.strip():
        return _bounded(_clean(explicit, name), MAX_APPEARANCE)
    description = _clean(_spec_text(spec, "description") or _spec_text(_card(spec), "description"), name)
    if not description:
        return ""
    sentences = [s.strip() for s in _SENTENCE.split(description) if s.strip()]
    looks = [s for s in sentences if _LOOKS.search(s)] or sentences[:1]
    return _bounded(" ".join(looks), MAX_APPEARANCE)


def character_subject(spec: Mapping[str, Any]) -> str:
    """``woman``, ``man`` or ``person``: from gender words in the card's tags, else the pronouns its
    description uses most (a sprite prompt needs a subject; a wrong guess is worse than none)."""
    if not isinstance(spec, Mapping):
        return "person"
    tags = _card(spec).get("tags")
    found = (
        {_TAG_SUBJECTS[t.lower()] for t in tags if isinstance(t, str) and t.lower() in _TAG_SUBJECTS}
        if isinstance(tags, list)
        else set()
    )
    if len(found) == 1:
        return found.pop()
    text = _spec_text(spec, "description") or _spec_text(_card(spec), "description")
    counts = {subject: len(pattern.findall(text)) for subject, pattern in _PRONOUNS.items()}
    if counts["woman"] > counts["man"]:
        return "woman"
    if counts["man"] > counts["woman"]:
        return "man"
    return "person"


def expression_fragment(expression: str) -> str:
    """The prompt fragment of an expression (`EXPRESSIONS`), else ``"<expression> expression"``."""
    key = " ".join(str(expression).replace("_", " ").replace("-", " ").split()).lower()
    if key in EXPRESSIONS:
        return EXPRESSIONS[key]
    word = _bounded(_clean(key), 40)
    return f"{word} expression" if word else EXPRESSIONS["neutral"]


def generation_size(width: int, height: int, pixels: int = 1024 * 1024) -> tuple[int, int]:
    """A generation size of about ``pixels`` pixels with the aspect of ``width`` x ``height``, both sides
    multiples of 64 (what latent models need): 1920x1080 -> 1344x768."""
    if width <= 0 or height <= 0 or pixels <= 0:
        raise Invalid("sizes must be positive", field="size", code="invalid_size")
    aspect = width / height
    gen_h = max(64, round(math.sqrt(pixels / aspect) / 64) * 64)
    gen_w = max(64, round(gen_h * aspect / 64) * 64)
    return gen_w, gen_h


def _join(*parts: str) -> str:
    """Prompt parts as one comma-separated prompt (a sentence's final stop would read as ``., ``)."""
    return _bounded(", ".join(p.rstrip(" .;,") for p in parts if p.rstrip(" .;,")), MAX_PROMPT)


def sprite_prompt(
    character_spec: Mapping[str, Any],
    expression: str,
    style: str | StylePreset,
    *,
    pose: str | None = None,
    extra: str = "",
) -> PromptSpec:
    """The prompt of one character sprite: the style, a solo subject with its looks, the expression, the
    pose (default standing), framed full body on a plain flat white background for matting."""
    preset = get_style(style)
    name = _spec_text(character_spec, "name") if isinstance(character_spec, Mapping) else ""
    pose_text = _bounded(_clean(pose), MAX_PHRASE) if isinstance(pose, str) else ""
    positive = _join(
        preset.positive_prefix,
        f"solo, a {character_subject(character_spec)}",
        character_appearance(character_spec),
        expression_fragment(expression),
        pose_text,
        SPRITE_FRAMING,
        _bounded(_clean(extra, name), MAX_PHRASE) if isinstance(extra, str) else "",
        preset.positive_suffix,
    )
    width, height = preset.sprite_size
    return PromptSpec(
        positive=positive,
        negative=_join(preset.negative, SPRITE_NEGATIVE),
        width=width,
        height=height,
        steps=preset.steps,
        cfg=preset.cfg,
        sampler=preset.sampler,
        scheduler=preset.scheduler,
        style=preset.name,
    )


def _place_phrase(value: Any, phrases: Mapping[str, str]) -> str:
    if not isinstance(value, str):
        return ""
    key = " ".join(value.replace("_", " ").split()).lower()
    return phrases.get(key) or _bounded(_clean(key), 40)


def background_prompt(
    slot: BackgroundSlot | Mapping[str, Any],
    style: str | StylePreset,
    *,
    width: int = 1920,
    height: int = 1080,
    extra: str = "",
) -> PromptSpec:
    """The prompt of one background: the style, an empty wide shot of the slot's location at its time
    of day and in its weather. Generated at the style's pixel budget in the aspect of ``width`` x
    ``height`` (the game's resolution), delivered at that resolution (``output_width``/``output_height``).
    ``slot`` is a `plan.BackgroundSlot` or a mapping with the same keys."""
    preset = get_style(style)
    fields: Mapping[str, Any] = attrs.asdict(slot) if isinstance(slot, BackgroundSlot) else slot
    if not isinstance(fields, Mapping):
        raise Invalid("a background slot must be an object", field="place", code="invalid_place")
    location = fields.get("location")
    place = _bounded(_clean(location), MAX_PHRASE) if isinstance(location, str) else ""
    positive = _join(
        preset.positive_prefix,
        BACKGROUND_FRAMING,
        place,
        _place_phrase(fields.get("time_of_day"), TIME_PHRASES),
        _place_phrase(fields.get("weather"), WEATHER_PHRASES),
        _bounded(_clean(extra), MAX_PHRASE) if isinstance(extra, str) else "",
        preset.positive_suffix,
    )
    gen_w, gen_h = generation_size(width, height, preset.background_pixels)
    return PromptSpec(
        positive=positive,
        negative=_join(preset.negative, BACKGROUND_NEGATIVE),
        width=gen_w,
        height=gen_h,
        steps=preset.steps,
        cfg=preset.cfg,
        sampler=preset.sampler,
        scheduler=preset.scheduler,
        style=preset.name,
        output_width=width,
        output_height=height,
    )
