"""Prompts from the project: looks from the card, expressions, places, style presets and seeds."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from comfyvn.errors import Invalid
from comfyvn_comfyui.plan import BackgroundSlot
from comfyvn_comfyui.prompts import (
    EXPRESSIONS,
    MAX_APPEARANCE,
    MAX_PROMPT,
    STYLES,
    PromptSpec,
    background_prompt,
    character_appearance,
    character_subject,
    expression_fragment,
    generation_size,
    get_style,
    seed_for,
    sprite_prompt,
)
from hypothesis import given
from hypothesis import strategies as st

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "sillytavern"
# KSampler's sampler and scheduler names in ComfyUI (comfy/samplers.py KSAMPLER_NAMES, SCHEDULER_NAMES).
COMFY_SAMPLERS = {
    "euler",
    "euler_ancestral",
    "heun",
    "dpm_2",
    "dpm_2_ancestral",
    "lms",
    "dpmpp_2s_ancestral",
    "dpmpp_sde",
    "dpmpp_2m",
    "dpmpp_2m_sde",
    "dpmpp_3m_sde",
    "ddim",
    "uni_pc",
}
COMFY_SCHEDULERS = {"normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform", "beta"}
# SillyTavern's expression set (its sprite files are named after these).
ST_EXPRESSIONS = (
    "admiration",
    "amusement",
    "anger",
    "annoyance",
    "approval",
    "caring",
    "confusion",
    "curiosity",
    "desire",
    "disappointment",
    "disapproval",
    "disgust",
    "embarrassment",
    "excitement",
    "fear",
    "gratitude",
    "grief",
    "joy",
    "love",
    "nervousness",
    "neutral",
    "optimism",
    "pride",
    "realization",
    "relief",
    "remorse",
    "sadness",
    "surprise",
)


def mira() -> dict[str, Any]:
    """Mira as the importer stores her: the card's description, the card itself under metadata.card."""
    card = json.loads((EXAMPLES / "Mira Vale.json").read_text("utf-8"))["data"]
    return {
        "name": "Mira Vale",
        "description": card["description"],
        "metadata": {"role": "character", "card": {"personality": card["personality"], "tags": card["tags"]}},
    }


def test_example_card_appearance_is_the_sentence_about_looks() -> None:
    spec = mira()
    # The description: who she is (not looks), "Twenty-four, sharp-eyed, sleeves always rolled up.", what she does.
    assert character_appearance(spec) == "Twenty-four, sharp-eyed, sleeves always rolled up."
    assert character_subject(spec) == "woman"  # "She keeps the tide ledgers"


def test_personality_and_tags_are_not_appearance() -> None:
    spec = {
        "name": "Kai",
        "description": "Kai runs the night market.",
        "metadata": {"card": {"personality": "blue hair, green eyes", "tags": ["blue hair", "mystery"]}},
    }
    # No sentence describes looks: the first one stands in; the card's other fields are never used.
    assert character_appearance(spec) == "Kai runs the night market."


def test_macros_markup_and_brackets_are_removed() -> None:
    spec = {
        "name": "Mira",
        "description": "{{char}} has <b>long red hair</b> and *green eyes* (and freckles) .\n{{user}} adores her.",
    }
    assert character_appearance(spec) == "Mira has long red hair and green eyes and freckles."


def test_explicit_appearance_wins_and_is_bounded() -> None:
    spec = {"description": "She has short hair.", "metadata": {"appearance": "tall, silver armour " * 40}}
    text = character_appearance(spec)
    assert text.startswith("tall, silver armour") and len(text) <= MAX_APPEARANCE
    assert not text.endswith((",", " "))


def test_long_description_is_cut_at_a_word() -> None:
    description = " ".join(f"She wears coat number {i}." for i in range(60))
    text = character_appearance({"description": description})
    assert len(text) <= MAX_APPEARANCE and description.startswith(text)


def test_nothing_known_gives_empty_appearance() -> None:
    assert character_appearance({}) == "" and character_appearance({"description": "  "}) == ""
    assert character_subject({}) == "person"


@pytest.mark.parametrize(
    ("spec", "subject"),
    [
        ({"description": "He is tall. His coat is grey."}, "man"),
        ({"description": "They are tall."}, "person"),
        ({"description": "He met her.", "metadata": {"card": {"tags": ["Female"]}}}, "woman"),
        # Tags naming both: the pronouns decide.
        ({"description": "She met him. She smiled.", "metadata": {"card": {"tags": ["male", "female"]}}}, "woman"),
    ],
)
def test_subject(spec: dict[str, Any], subject: str) -> None:
    assert character_subject(spec) == subject


def test_expression_fragments() -> None:
    assert expression_fragment("happy") == "happy, smiling"
    assert expression_fragment("Surprised") == EXPRESSIONS["surprised"]
    assert expression_fragment("smirking_wide") == "smirking wide expression"
    assert expression_fragment("") == EXPRESSIONS["neutral"]
    for name in ("neutral", "happy", "sad", "angry", "surprised", "afraid", "thinking", "embarrassed", "smile"):
        assert name in EXPRESSIONS
    assert [e for e in ST_EXPRESSIONS if e not in EXPRESSIONS] == []


def test_style_presets() -> None:
    assert {"anime", "painterly", "pixel", "realistic"} <= set(STYLES)
    for name, preset in STYLES.items():
        assert preset.name == name
        width, height = preset.sprite_size
        assert width % 64 == 0 and height % 64 == 0 and height > width
        assert preset.sampler in COMFY_SAMPLERS and preset.scheduler in COMFY_SCHEDULERS
        assert 1 <= preset.steps <= 100 and 1 <= preset.cfg <= 15 and 0 < preset.img2img_denoise < 1
        assert preset.negative and preset.positive_prefix
    assert get_style(STYLES["pixel"]) is STYLES["pixel"]


def test_unknown_style_names_the_known_ones() -> None:
    with pytest.raises(Invalid) as caught:
        sprite_prompt({}, "happy", "vaporwave")
    assert caught.value.field == "style"
    assert all(name in caught.value.message for name in STYLES)


def test_sprite_prompt() -> None:
    spec = sprite_prompt(mira(), "surprise", "anime", pose="arms crossed")
    assert isinstance(spec, PromptSpec)
    for part in (
        STYLES["anime"].positive_prefix,
        "solo, a woman",
        "sharp-eyed",
        "surprised, wide eyes",
        "arms crossed",
        "full body, standing, plain flat white background",
        "centered, no scenery",
    ):
        assert part in spec.positive
    assert "., " not in spec.positive
    assert "scenery" in spec.negative and STYLES["anime"].negative in spec.negative
    assert (spec.width, spec.height, spec.steps, spec.cfg) == (832, 1216, 28, 6.5)
    assert spec.output_width is None and spec.style == "anime"
    params = spec.to_params()
    assert params["prompt"] == spec.positive and params["sampler"] == "euler_ancestral"


def test_background_prompt_from_slot_or_mapping() -> None:
    slot = BackgroundSlot("harbour", ("s1",), "bg/Harbour at dusk (rain).jpg", "Harbour", "dusk", "rain")
    spec = background_prompt(slot, "painterly")
    for part in ("scenery, no people, wide establishing shot", "Harbour", "at dusk", "raining"):
        assert part in spec.positive
    assert "people" in spec.negative
    assert (spec.width, spec.height, spec.output_width, spec.output_height) == (1344, 768, 1920, 1080)
    as_mapping = {"key": "harbour", "location": "Harbour", "time_of_day": "dusk", "weather": "rain"}
    assert background_prompt(as_mapping, STYLES["painterly"]) == spec
    # A weather-planner word with no phrase of its own is used as it is.
    odd = background_prompt({"location": "Pier", "time_of_day": "late_night", "weather": None}, "pixel")
    assert "Pier, late night" in odd.positive


def test_generation_size() -> None:
    assert generation_size(1920, 1080) == (1344, 768)
    assert generation_size(1080, 1920) == (768, 1344)
    assert generation_size(1024, 1024) == (1024, 1024)
    with pytest.raises(Invalid):
        generation_size(0, 10)


def test_seed_for() -> None:
    # The documented recipe: first 4 bytes (big-endian) of the sha256 of the length-prefixed UTF-8 parts.
    expected = hashlib.sha256(b"\0" * 7 + b"\x06sprite" + b"\0" * 7 + b"\x04mira").digest()[:4]
    assert seed_for("sprite", "mira") == int.from_bytes(expected, "big")
    assert seed_for("ab", "c") != seed_for("a", "bc")
    assert seed_for() == int.from_bytes(hashlib.sha256(b"").digest()[:4], "big")


@given(st.lists(st.text(max_size=20), max_size=5))
def test_seed_is_a_stable_32_bit_number(parts: list[str]) -> None:
    seed = seed_for(*parts)
    assert 0 <= seed < 2**32 and seed == seed_for(*list(parts))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=400),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
character_specs = st.fixed_dictionaries(
    {},
    optional={
        "name": json_values,
        "description": st.one_of(st.text(max_size=2000), json_values),
        "metadata": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {},
                optional={"appearance": json_values, "card": st.fixed_dictionaries({}, optional={"tags": json_values})},
            ),
        ),
    },
)


@given(character_specs, st.text(max_size=50), st.sampled_from(sorted(STYLES)), st.text(max_size=300))
def test_prompts_never_crash_and_stay_bounded(spec: dict[str, Any], expression: str, style: str, extra: str) -> None:
    first = sprite_prompt(spec, expression, style, pose=extra or None, extra=extra)
    assert first == sprite_prompt(spec, expression, style, pose=extra or None, extra=extra)
    assert len(first.positive) <= MAX_PROMPT and len(character_appearance(spec)) <= MAX_APPEARANCE
    assert "\n" not in first.positive and "{{" not in first.positive
    place = {"location": spec.get("description"), "time_of_day": expression, "weather": extra}
    background = background_prompt(place, style)
    assert len(background.positive) <= MAX_PROMPT and "\n" not in background.positive
