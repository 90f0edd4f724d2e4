"""Rendered art put into a project: asset references, speakers staged, the author's art kept."""

from __future__ import annotations

import copy
from typing import Any

from comfyvn_comfyui.apply import apply_renders, rendered_index, staged_characters


def _project() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    meta = {
        "id": "p",
        "title": "P",
        "start": "s1",
        "characters": {
            "mira": {"name": "Mira", "sprites": {}},
            "jonah": {"name": "Jonah", "metadata": {"role": "user"}},
            "cora": {"name": "Cora", "default_expression": "stern", "sprites": {"stern": "assets/cora.png"}},
        },
    }
    scenes = {
        "s1": {
            "id": "s1",
            "start": "n1",
            "background": "backgrounds/Harbour at dusk (rain).jpg",
            "nodes": [
                {"id": "n1", "type": "dialogue", "speaker": "mira", "text": "Hi.", "choices": [{"target": "n2"}]},
                {"id": "n2", "type": "dialogue", "speaker": "jonah", "text": "Hello.", "choices": [{"target": "n3"}]},
                {
                    "id": "n3",
                    "type": "dialogue",
                    "speaker": "cora",
                    "text": "Tickets.",
                    "characters": [{"id": "cora", "expression": "stern"}],
                },
            ],
        },
        "s2": {"id": "s2", "start": "m1", "nodes": [{"id": "m1", "type": "narration", "text": "Later."}]},
    }
    return meta, scenes


SPRITE = {"kind": "sprite", "character": "mira", "expression": "neutral", "asset_uid": "aaaa"}
HARBOUR = {
    "kind": "background",
    "place": {"key": "harbour-dusk-rain", "location": "Harbour", "time_of_day": "dusk", "weather": "rain"},
    "scenes": ["s1"],
    "ref": "backgrounds/Harbour at dusk (rain).jpg",
    "asset_uid": "bbbb",
}
BARE = {
    "kind": "background",
    "place": {"key": "scene-s2", "location": "Later", "time_of_day": None, "weather": None},
    "scenes": ["s2"],
    "ref": None,
    "asset_uid": "cccc",
}


def test_sprites_and_backgrounds_become_asset_references_and_the_inputs_stay_untouched() -> None:
    meta, scenes = _project()
    before = copy.deepcopy((meta, scenes))
    new_meta, new_scenes, changed = apply_renders(meta, scenes, [SPRITE, HARBOUR, BARE])
    assert changed and (meta, scenes) == before
    mira = new_meta["characters"]["mira"]
    assert mira["sprites"] == {"neutral": "asset:aaaa"} and mira["default_expression"] == "neutral"
    assert new_scenes["s1"]["background"] == "asset:bbbb"
    assert new_scenes["s2"]["background"] == "asset:cccc"
    index = rendered_index(new_meta)
    assert index["sprites"] == {"mira": {"neutral": "aaaa"}}
    assert index["backgrounds"]["bbbb"]["was"] == "backgrounds/Harbour at dusk (rain).jpg"
    assert index["backgrounds"]["cccc"] == {**BARE["place"], "was": None}


def test_an_unstaged_speaker_is_shown_on_its_own_lines_and_staged_ones_are_left_alone() -> None:
    meta, scenes = _project()
    _, new_scenes, _ = apply_renders(meta, scenes, [SPRITE])
    nodes = {n["id"]: n for n in new_scenes["s1"]["nodes"]}
    assert nodes["n1"]["characters"] == [{"id": "mira", "expression": "neutral"}]
    assert "characters" not in nodes["n2"]  # the player is never drawn
    assert nodes["n3"]["characters"] == [{"id": "cora", "expression": "stern"}]
    assert staged_characters(new_scenes) == {"mira", "cora"}


def test_applying_the_same_renders_again_changes_nothing() -> None:
    meta, scenes = _project()
    once_meta, once_scenes, _ = apply_renders(meta, scenes, [SPRITE, HARBOUR, BARE])
    # The second run's background slots name the earlier renders (asset:…), as the planner reports them.
    again = [SPRITE, {**HARBOUR, "ref": "asset:bbbb"}, {**BARE, "ref": "asset:cccc"}]
    twice_meta, twice_scenes, changed = apply_renders(once_meta, once_scenes, again)
    assert not changed and (twice_meta, twice_scenes) == (once_meta, once_scenes)
    assert rendered_index(twice_meta)["backgrounds"]["bbbb"]["was"] == "backgrounds/Harbour at dusk (rain).jpg"


def test_a_character_the_project_no_longer_has_is_skipped() -> None:
    meta, scenes = _project()
    new_meta, _, _ = apply_renders(meta, scenes, [{**SPRITE, "character": "ghost"}])
    assert "ghost" not in new_meta["characters"]


def test_nothing_rendered_changes_nothing() -> None:
    # A project whose art the author provided (or whose only renders name characters it no longer has)
    # must not get a new version holding an empty `metadata.comfyui.rendered`.
    meta, scenes = _project()
    for outcomes in ([], [{**SPRITE, "character": "ghost"}]):
        new_meta, new_scenes, changed = apply_renders(meta, scenes, outcomes)
        assert not changed and (new_meta, new_scenes) == (meta, scenes)
        assert "metadata" not in new_meta
