"""Small valid projects for the project-store tests, and a Hypothesis strategy for generated ones."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

from comfyvn_scenario import Project, save_project
from hypothesis import strategies as st
from scenario_support import DEMO


def two_scenes() -> Project:
    """``intro`` (a choice that jumps into ``outro``) and ``outro``: small, valid, cross-scene."""
    intro = {
        "id": "intro",
        "start": "a",
        "nodes": [
            {"id": "a", "text": "Hello", "speaker": "ann", "choices": [{"id": "go", "target": "b"}]},
            {"id": "b", "text": "Onward", "choices": [{"id": "next", "target": "outro:z"}]},
        ],
    }
    outro = {"id": "outro", "start": "z", "nodes": [{"id": "z", "text": "The end", "end": True}]}
    meta = {
        "id": "tiny",
        "title": "Tiny",
        "start": "intro",
        "characters": {"ann": {"name": "Ann"}},
        "variables": {"score": 0},
    }
    return Project(meta=meta, scenes={"intro": intro, "outro": outro})


def copy_demo(target: Path) -> Path:
    """The demo project folder copied to ``target`` (as a hand-made project would be)."""
    shutil.copytree(DEMO, target)
    return target


def tree_bytes(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (the store's bookkeeping included) by relative path: to compare snapshots."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
_NAME = st.text("abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=8).map(lambda s: "x" + s)
_VALUE = st.one_of(st.integers(-1000, 1000), st.booleans(), _TEXT)


@st.composite
def projects(draw: st.DrawFn) -> tuple[Project, dict[str, bytes]]:
    """A valid project (several scenes, choices within and across scenes, characters, variables, actions)
    and the asset files to go with it (random names and bytes under ``assets/``)."""
    scene_ids = draw(st.lists(_NAME, min_size=1, max_size=4, unique=True))
    sizes = {sid: draw(st.integers(1, 5)) for sid in scene_ids}
    characters = draw(st.dictionaries(_NAME, st.fixed_dictionaries({"name": _TEXT.filter(bool)}), max_size=3))
    variables = draw(st.dictionaries(_NAME, _VALUE, max_size=3))
    scenes: dict[str, dict[str, Any]] = {}
    for sid in scene_ids:
        nodes = []
        for i in range(sizes[sid]):
            node: dict[str, Any] = {"id": f"n{i}", "text": draw(_TEXT)}
            if characters and draw(st.booleans()):
                node["speaker"] = draw(st.sampled_from(sorted(characters)))
            if i == sizes[sid] - 1:
                node["end"] = True
            else:
                choices = []
                for c in range(draw(st.integers(1, 3))):
                    other = draw(st.sampled_from(scene_ids))
                    target = f"n{draw(st.integers(0, sizes[sid] - 1))}" if other == sid else f"{other}:n0"
                    choice: dict[str, Any] = {"id": f"c{c}", "label": draw(_TEXT), "target": target}
                    if variables and draw(st.booleans()):
                        key = draw(st.sampled_from(sorted(variables)))
                        choice["actions"] = [{"type": "set", "key": key, "value": draw(_VALUE)}]
                    choices.append(choice)
                node["choices"] = choices
            nodes.append(node)
        scenes[sid] = {"id": sid, "title": draw(_TEXT), "start": "n0", "nodes": nodes}
    meta = {
        "id": "generated",
        "title": draw(_TEXT.filter(bool)),
        "start": scene_ids[0],
        "characters": characters,
        "variables": variables,
    }
    assets = draw(
        st.dictionaries(
            st.tuples(st.sampled_from(["bg", "music", "characters/x"]), _NAME).map(
                lambda t: f"assets/{t[0]}/{t[1]}.bin"
            ),
            st.binary(max_size=2048),
            max_size=4,
        )
    )
    return Project(meta=meta, scenes=copy.deepcopy(scenes)), assets


def write_folder(project: Project, assets: dict[str, bytes], folder: Path) -> Path:
    """``project`` saved as a folder with its asset files."""
    save_project(project, folder)
    for name, data in assets.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder
