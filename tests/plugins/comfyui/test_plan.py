"""The art plan: which sprites and backgrounds a story shows, mirroring the Ren'Py exporter's notion."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from comfyvn_comfyui.plan import ArtPlan, BackgroundSlot, SpriteSlot, parse_place, plan_art, slug
from comfyvn_roleplay.cards import read_card
from comfyvn_roleplay.convert import ImportOptions
from comfyvn_roleplay.importer import import_chat, store_raw
from comfyvn_roleplay.lorebook import read_lorebook
from comfyvn_scenario.project import Project, load_project
from hypothesis import given
from hypothesis import strategies as st

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "sillytavern"
CHAT = EXAMPLES / "Mira Vale - 2024-09-28@14h05m07s.jsonl"


def import_example(tmp_path: Path, *, sprites: bool) -> Project:
    """The SillyTavern example imported as `comfyvn import sillytavern` does (card, lorebook, sprites?)."""
    raw = store_raw(tmp_path / "raw", CHAT.read_bytes(), CHAT.name)
    import_chat(
        raw,
        tmp_path / "project",
        options=ImportOptions(),
        cards=[read_card((EXAMPLES / "Mira Vale.png").read_bytes(), filename="Mira Vale.png")],
        world=read_lorebook((EXAMPLES / "Saltmere.json").read_bytes(), name="Saltmere"),
        sprites_dir=EXAMPLES / "sprites" if sprites else None,
    )
    return load_project(tmp_path / "project")


def test_example_without_sprites_needs_a_neutral_mira_and_the_harbour(tmp_path: Path) -> None:
    project = import_example(tmp_path, sprites=False)
    assert project.characters["jonah"]["metadata"]["role"] == "user"  # the player: speaks, never drawn
    plan = plan_art(project)
    assert plan.sprites == (SpriteSlot("mira_vale", "Mira Vale", "neutral", None),)
    assert plan.backgrounds == (
        BackgroundSlot(
            key="backgrounds-harbour-at-dusk-rain",
            scenes=("scene_0001", "scene_0002"),
            ref="backgrounds/Harbour at dusk (rain).jpg",
            location="Harbour",
            time_of_day="dusk",
            weather="rain",
        ),
    )


def test_example_with_sprites_lists_the_shown_expressions_with_their_files(tmp_path: Path) -> None:
    project = import_example(tmp_path, sprites=True)
    plan = plan_art(project)
    # The importer shows Mira neutral, then surprised ("gasps") in scene 1 and joyful ("smiles") in scene 2;
    # her unused "fear" sprite is not part of the story.
    assert [(s.expression, s.ref) for s in plan.sprites] == [
        ("neutral", "assets/characters/mira_vale/neutral.png"),
        ("surprise", "assets/characters/mira_vale/surprise.png"),
        ("joy", "assets/characters/mira_vale/joy.png"),
    ]


def character(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, **extra}


def make_project(characters: dict[str, Any], scenes: list[dict[str, Any]], **meta: Any) -> Project:
    return Project(meta={"id": "p", "characters": characters, **meta}, scenes={s["id"]: s for s in scenes})


def scene(scene_id: str, nodes: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"id": scene_id, "start": nodes[0]["id"], "nodes": nodes, **extra}


def test_who_gets_a_sprite() -> None:
    project = make_project(
        {
            "ann": character("Ann", default_expression="calm", sprites={"calm": "a/calm.png"}),
            "bob": character("Bob"),  # only hidden
            "cat": character("Cat"),  # only speaks in narration (not a line of hers)
            "dan": character("Dan"),  # speaks a dialogue line
            "eve": character("Eve", metadata={"role": "user"}),  # the player persona
            "fay": character("Fay"),  # never appears
            "gus": character("Gus", sprites={"grin": "g/grin.png", "sad": "g/sad.png"}),  # no default
        },
        [
            scene(
                "s1",
                [
                    {"id": "n1", "type": "dialogue", "speaker": "dan", "text": "hi"},
                    {"id": "n2", "characters": [{"id": "ann", "expression": "angry"}, {"id": "bob", "hide": True}]},
                    {"id": "n3", "type": "narration", "speaker": "cat", "text": "..."},
                    {"id": "n4", "speaker": "eve", "characters": [{"id": "eve", "expression": "smile"}]},
                    {
                        "id": "n5",
                        "characters": [{"id": "ann", "expression": "angry"}, {"id": "gus"}, "junk", {"id": 3}],
                    },
                    {"id": "n6", "characters": [{"id": "ann", "expression": "happy", "hide": True}]},
                ],
            )
        ],
    )
    assert plan_art(project).sprites == (
        SpriteSlot("dan", "Dan", "neutral", None),
        SpriteSlot("ann", "Ann", "angry", None),
        SpriteSlot("ann", "Ann", "calm", "a/calm.png"),
        # No default: the exporter falls back to the first sprite, which already exists.
        SpriteSlot("gus", "Gus", "grin", "g/grin.png"),
    )


def test_backgrounds_per_ref_and_per_bare_scene_with_weather_state() -> None:
    project = make_project(
        {},
        [
            scene("intro", [{"id": "a", "background": "bg/Beach (day).png"}], background="bg/Street at night.jpg"),
            scene(
                "home",
                [{"id": "a", "text": "x"}],
                title="Evening",
                metadata={"location": "Mira's kitchen", "weather": {"time_of_day": "late_night", "weather": "storm"}},
            ),
            scene("again", [{"id": "a", "background": "bg/Beach (day).png"}, {"id": "b", "background": None}]),
            scene("optout", [{"id": "a"}], metadata={"weather": None}, title="Pier"),
            scene("plain", [{"id": "a"}]),
        ],
        metadata={"weather": {"time_of_day": "dawn", "weather": "fog", "ambience": "calm"}},
    )
    assert plan_art(project).backgrounds == (
        BackgroundSlot("bg-street-at-night", ("intro",), "bg/Street at night.jpg", "Street", "night", "fog"),
        BackgroundSlot("bg-beach-day", ("intro", "again"), "bg/Beach (day).png", "Beach", "day", "fog"),
        BackgroundSlot("scene-home", ("home",), None, "Mira's kitchen", "late night", "storm"),
        BackgroundSlot("scene-optout", ("optout",), None, "Pier", None, None),
        BackgroundSlot("scene-plain", ("plain",), None, "plain", "dawn", "fog"),
    )


def test_background_keys_stay_unique() -> None:
    project = make_project(
        {},
        [
            scene("s1", [{"id": "a", "background": "a b.png"}, {"id": "b", "background": "a_b.jpg"}]),
            scene("a-b", [{"id": "a", "background": "scene/a-b.png"}]),
            scene("a_b", [{"id": "a"}]),
        ],
    )
    keys = [b.key for b in plan_art(project).backgrounds]
    assert keys == ["a-b", "a-b-2", "scene-a-b", "scene-a-b-2"]


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("backgrounds/Harbour at dusk (rain).jpg", ("Harbour", "dusk", "rain")),
        ("beach_day.jpg", ("beach", "day", None)),
        ("Forest in the fog at midnight.webp", ("Forest", "midnight", "fog")),
        ("The Gull pub interior.png", ("The Gull pub interior", None, None)),
        ("C:\\art\\Snowy Street (night).png", ("Street", "night", "snow")),
        ("night.png", ("night", "night", None)),
        ("Rooftop [sunset, wind].png", ("Rooftop", "sunset", "wind")),
    ],
)
def test_parse_place(ref: str, expected: tuple[str, str | None, str | None]) -> None:
    assert parse_place(ref) == expected


def test_slug() -> None:
    assert slug("Café — Nuit!") == "cafe-nuit"
    assert slug("???") == "x"
    assert len(slug("a" * 200)) == 64


# -- properties ----------------------------------------------------------------------------------

ids = st.sampled_from(["ann", "bob", "cat", "Dee", "e.f", "x"])
texts = st.one_of(st.none(), st.integers(), st.text(max_size=12), ids)
stage_entries = st.one_of(
    st.fixed_dictionaries(
        {"id": st.one_of(ids, st.integers(), st.lists(ids, max_size=1))},
        optional={"expression": texts, "hide": st.booleans(), "position": texts},
    ),
    texts,
)
nodes = st.lists(
    st.fixed_dictionaries(
        {"id": st.text(min_size=1, max_size=4)},
        optional={
            "type": st.sampled_from(["dialogue", "narration", "choice", "jump", "end"]),
            "speaker": st.one_of(st.none(), ids, st.text(max_size=4)),
            "characters": st.one_of(st.lists(stage_entries, max_size=3), texts),
            "background": st.one_of(st.none(), st.text(max_size=20), st.sampled_from(["bg/Sea at dusk.png", "x.png"])),
        },
    ),
    min_size=1,
    max_size=5,
)
weather_states = st.one_of(
    st.none(),
    texts,
    st.fixed_dictionaries({}, optional={"time_of_day": texts, "weather": texts, "ambience": texts}),
)
scenes = st.lists(
    st.fixed_dictionaries(
        {"nodes": nodes},
        optional={
            "background": st.one_of(st.none(), st.text(max_size=20), st.just("bg/Sea at dusk.png")),
            "title": texts,
            "metadata": st.one_of(
                texts, st.fixed_dictionaries({}, optional={"location": texts, "weather": weather_states})
            ),
        },
    ),
    min_size=1,
    max_size=4,
)
specs = st.one_of(
    texts,
    st.fixed_dictionaries(
        {},
        optional={
            "name": texts,
            "default_expression": texts,
            "sprites": st.one_of(texts, st.dictionaries(st.text(max_size=6), texts, max_size=3)),
            "metadata": st.one_of(texts, st.fixed_dictionaries({"role": st.sampled_from(["user", "character"])})),
        },
    ),
)
projects = st.builds(
    lambda chars, raw_scenes, project_weather: Project(
        meta={"id": "p", "characters": chars, "metadata": {"weather": project_weather}},
        scenes={f"s{i}": {"id": f"s{i}", "start": s["nodes"][0]["id"], **s} for i, s in enumerate(raw_scenes)},
    ),
    st.dictionaries(ids, specs, max_size=4),
    scenes,
    weather_states,
)


@given(projects)
def test_plan_never_crashes_and_is_deterministic(project: Project) -> None:
    plan = plan_art(project)
    assert isinstance(plan, ArtPlan)
    assert plan_art(copy.deepcopy(project)) == plan  # equal projects, equal plans
    keys = [b.key for b in plan.backgrounds]
    assert len(keys) == len(set(keys))
    assert len({(s.character, s.expression) for s in plan.sprites}) == len(plan.sprites)
    for sprite in plan.sprites:
        spec = project.characters[sprite.character]
        assert not (
            isinstance(spec, dict) and isinstance(spec.get("metadata"), dict) and spec["metadata"].get("role") == "user"
        )
    # Every scene is covered: by the backgrounds it names, else by a slot of its own.
    covered = {scene_id for slot in plan.backgrounds for scene_id in slot.scenes}
    assert covered == set(project.scenes)
    named = {
        ref
        for s in project.scenes.values()
        for ref in [s.get("background"), *(n.get("background") for n in s["nodes"])]
        if isinstance(ref, str) and ref
    }
    assert {b.ref for b in plan.backgrounds if b.ref is not None} == named
