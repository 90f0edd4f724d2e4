"""What the web player shows at one moment of a run: the runner's state turned into a stage and a text box.

The story moves only through the scenario plugin's deterministic runner (`comfyvn_scenario.runner`):
the player sends the wire state back with the choice the reader took, so a seed and a choice sequence
visit exactly the nodes `runner.step` visits. Presentation comes from the Ren'Py exporter's own plan
(`comfyvn_renpy.layout.build_layout`: which file each background, sprite and side image is, resolved
below the project or through ``renpy_resolve_asset``) and its text rules (`comfyvn_renpy.text`: the same
Markdown subset, the same pages, measured in the fonts the export would ship). Nothing here knows HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from comfyvn.errors import ComfyVNError, NotFound
from comfyvn_renpy.export import SHELL_TEXT
from comfyvn_renpy.fonts import collect_characters, plan_fonts
from comfyvn_renpy.gui import DEFAULT_RESOLUTION, gui_spec
from comfyvn_renpy.layout import Layout, build_layout
from comfyvn_renpy.script import NARRATORS, POSITIONS, choice_text, flow_kind, shown_choices
from comfyvn_renpy.text import CODE, Paginator, parse_markdown
from comfyvn_scenario import Project
from comfyvn_scenario.rules import is_number
from comfyvn_scenario.runner import (
    RunState,
    Scenario,
    StepResult,
    compile_scenario,
    initial_state,
    state_from_wire,
    step,
)

__all__ = ["Playable", "Runs"]

#: A piece of visible text and its style bits (`comfyvn_renpy.text` ITALIC=1, BOLD=2, STRIKE=4, CODE=8).
Runs = list[tuple[str, int]]
#: Horizontal anchors of the export's named positions (script.TRANSFORMS), by the node's position word.
XALIGN = {"far_left": 0.0, "left": 0.2, "center": 0.5, "right": 0.8, "far_right": 1.0}


class Playable:
    """One version of a project compiled for play: the runner's scenario, the export's layout and pager.

    ``asset_url(dest)`` turns an exported file's game-relative path (``images/bg/bg_x.png``) into the URL
    the page loads it from; `asset_file` answers that URL's path with the file (only files the layout
    planned, so a URL can never name anything else)."""

    def __init__(
        self,
        project: Project,
        *,
        resolve_asset: Callable[[str], Mapping[str, Any] | None] | None = None,
        user_font: str | None = None,
    ) -> None:
        self.project = project
        self.scenario: Scenario = compile_scenario(project)
        self.layout: Layout = build_layout(project, resolve_asset)
        spec = gui_spec(*DEFAULT_RESOLUTION)
        seen, code = collect_characters(project, extra=SHELL_TEXT)
        fonts = plan_fonts(seen, size=spec.text_size, user_font=user_font, code_chars=code)
        self.pager = Paginator(spec, fonts.metrics, code_font=fonts.code_font)
        self._images = {image.name: image for image in self.layout.images}

    # -- the runner -------------------------------------------------------------------------------
    def start(self, *, seed: int, pov: str | None) -> StepResult:
        """The state before any step, at the start node (its actions applied)."""
        return initial_state(self.scenario, seed=seed, pov=self._pov(pov))

    def step(self, state: Any, choice_id: str | None) -> StepResult:
        """One runner step from a wire state: ``choice_id`` taken, or a weighted draw when None."""
        return step(self.scenario, self._state(state), choice_id)

    def view(self, state: Any, pov: str | None = None) -> StepResult:
        """Where a wire state stands (a load, a POV switch) without stepping."""
        run = self._state(state)
        chosen = self._pov(pov)
        if chosen is not None:
            run = run._replace(pov=chosen)
        node = self.scenario.node(run.scene_id, run.node_id)
        choices = () if run.finished or node.end else tuple(node.available(run.variables, run.pov))
        return StepResult(run._replace(finished=run.finished or not choices), node, choices, self.scenario.multi_scene)

    def _state(self, raw: Any) -> RunState:
        return state_from_wire(self.scenario, raw)

    def _pov(self, pov: str | None) -> str | None:
        if pov is None:
            return None
        known = [p["id"] for p in self.project.povs if isinstance(p.get("id"), str)]
        if known and pov not in known:
            raise ComfyVNError(
                f"unknown POV {pov!r}; this project has {', '.join(known)}", field="pov", code="unknown_pov"
            )
        return pov

    # -- presentation -----------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """Title, POVs and the default POV: what the title screen offers."""
        return {
            "id": self.project.id,
            "title": str(self.project.title or self.project.id),
            "default_pov": self.scenario.default_pov,
            "povs": [
                {"id": p["id"], "name": str(p.get("name") or p["id"])}
                for p in self.project.povs
                if isinstance(p.get("id"), str)
            ],
        }

    def frame(self, result: StepResult, asset_url: Callable[[str], str]) -> dict[str, Any]:
        """The whole moment: the wire state, the stage, the speaker, the text in pages, how to go on."""
        node = result.node.raw
        state = result.state
        stage = self._stage(state, asset_url)
        speaker = self._speaker(node)
        side = self._side(speaker["id"], stage, asset_url) if speaker is not None else None
        choices = (
            [] if result.finished else [{"id": c.key, "label": self._line(choice_text(c.raw))} for c in result.choices]
        )
        return {
            "state": state.to_wire(with_scene=result.multi_scene),
            "scene": state.scene_id,
            "node": {
                "id": state.node_id,
                "type": node.get("type"),
                "speaker": speaker,
                "pages": self._pages(node.get("text")),
            },
            "stage": {"background": stage["background"], "sprites": stage["sprites"], "side": side},
            "audio": stage["audio"],
            "choices": choices,
            "mode": self._mode(result),
            "finished": result.finished,
        }

    def _side(self, char_id: str, stage: Mapping[str, Any], asset_url: Callable[[str], str]) -> str | None:
        """The side image beside the text box on ``char_id``'s line, as the export's ``Character(image=tag)``
        shows it: a face-only character's ``side <tag>`` follows its last shown expression (``cvn_face``),
        else its card portrait, else its default picture; anyone else's card portrait shows only while that
        character is not standing on the stage (``config.side_image_only_not_showing``)."""
        layout = self.layout
        if char_id not in layout.char_tags:
            return None
        if char_id in layout.face_only:
            names = (stage["faces"].get(char_id), layout.side_images.get(char_id), layout.sprite(char_id, None))
            return next((url for name in names if name and (url := self._file_url(name, asset_url))), None)
        if any(sprite["id"] == char_id for sprite in stage["sprites"]):
            return None
        return self._file_url(layout.side_images.get(char_id, ""), asset_url)

    def _mode(self, result: StepResult) -> str:
        """How the reader goes on: ``end``; ``menu`` (pick a button); ``draw`` (advancing lets the runner's
        seeded LCG pick: one unlabelled choice, which the export jumps through, or a node whose choices
        declare weights, the story's random events)."""
        if result.finished:
            return "end"
        node = result.node.raw
        if flow_kind(node, self.layout.variables) == "auto":
            return "draw"
        if any("weight" in c for c in shown_choices(node)):
            return "draw"
        return "menu"

    def _speaker(self, node: Mapping[str, Any]) -> dict[str, Any] | None:
        """Who speaks, decided as the export's say statement is (narration and narrators show no name)."""
        speaker = node.get("speaker")
        if node.get("type") == "narration" or not isinstance(speaker, str) or not speaker.strip():
            return None
        spec = self.project.characters.get(speaker)
        if spec is None and speaker.strip().lower() in NARRATORS:
            return None
        spec = spec if isinstance(spec, Mapping) else {}
        colour = spec.get("color")
        return {
            "id": speaker,
            "name": str(spec.get("name") or speaker),
            "color": colour if isinstance(colour, str) and colour.startswith("#") and len(colour) <= 9 else None,
        }

    def _parsed(self, text: str) -> Any:
        parsed = parse_markdown(text)
        return parsed if self.pager.code_font is not None else parsed.without(CODE)

    def _pages(self, text: Any) -> list[Runs]:
        """The node's text in the export's pages, each as styled runs (no markup left to interpret)."""
        if not isinstance(text, str) or not text.strip():
            return []
        parsed = self._parsed(text)
        return [_runs(parsed, a, b) for a, b in self.pager.spans(parsed)]

    def _line(self, text: str) -> Runs:
        parsed = self._parsed(text)
        return _runs(parsed, 0, len(parsed.text))

    def _file_url(self, image_name: str, asset_url: Callable[[str], str]) -> str | None:
        image = self._images.get(image_name)
        return asset_url(image.file) if image is not None and image.file else None

    def _stage(self, state: RunState, asset_url: Callable[[str], str]) -> dict[str, Any]:
        """Background and sprites as the export's script leaves them on arriving here: replayed over the
        nodes the run visited (a ``scene`` statement clears the sprites, ``show``/``hide`` change them)."""
        entries = state.history_list()
        visited = [(scene, node) for scene, node, _choice in entries[1:]] + [(state.scene_id, state.node_id)]
        layout = self.layout
        background: str | None = None
        sprites: dict[str, dict[str, Any]] = {}
        faces: dict[str, str] = {}  # face-only character -> the image its side image shows (cvn_face)
        scene_id: str | None = None
        music: dict[str, Any] | None = None
        cue: dict[str, Any] | None = None  # the play/stop music statement the current node's arrival ran

        def music_statement(spec: Any, here: bool) -> None:
            nonlocal music, cue
            played = self._music(spec, asset_url)
            if played is None:
                return  # the export writes no statement: whatever plays goes on
            music = played if played["url"] else None
            cue = played if here else None

        def scene_statement(owner: Mapping[str, Any]) -> None:
            nonlocal background
            value = owner["background"]
            name = layout.backgrounds.get(value) if isinstance(value, str) else None
            if value is not None and name is None:
                return  # the export writes no statement for a background it does not know
            background = self._file_url(name, asset_url) if name else None
            sprites.clear()

        for index, (scene, node_id) in enumerate(visited):
            here = index == len(visited) - 1
            cue = None if here else cue
            nodes = self.scenario.nodes.get(scene)
            compiled = nodes.get(node_id) if nodes is not None else None
            if compiled is None:
                continue  # a hand-edited save naming a node that is gone: skip it, the current node is checked
            if scene != scene_id:
                scene_id = scene
                owner = self.project.scenes[scene]
                if "background" in owner:
                    scene_statement(owner)
                music_statement(owner.get("music"), here)
            node = compiled.raw
            if "background" in node:
                scene_statement(node)
            if node.get("music") is not None:
                music_statement(node["music"], here)
            for entry in node.get("characters") or ():
                if not isinstance(entry, Mapping) or entry.get("id") not in layout.char_tags:
                    continue
                char_id = entry["id"]
                expression = entry.get("expression") if isinstance(entry.get("expression"), str) else None
                if char_id in layout.face_only:
                    if entry.get("hide"):
                        faces.pop(char_id, None)
                    else:
                        faces[char_id] = layout.sprite(char_id, expression)
                    continue
                sprites.pop(char_id, None)
                position = entry.get("position") if isinstance(entry.get("position"), str) else None
                if entry.get("hide") or position == "offscreen" or (position and position not in POSITIONS):
                    continue
                name = layout.sprite(char_id, expression)
                image = self._images.get(name)
                sprites[char_id] = {
                    "id": char_id,
                    "url": asset_url(image.file) if image is not None and image.file else None,
                    "colour": image.colour if image is not None and not image.file else None,
                    "xalign": XALIGN.get(position) if position else None,
                }
        placed = list(sprites.values())
        loose = [s for s in placed if s["xalign"] is None]
        # Sprites without a position share the stage, as the export's cvn_arrange spreads them.
        for index, sprite in enumerate(loose):
            sprite["xalign"] = 0.5 if len(loose) == 1 else round(0.2 + 0.6 * index / (len(loose) - 1), 4)
        audio = {"music": music, "music_cue": cue, **self._arrival_sounds(state, asset_url)}
        return {"background": background, "sprites": placed, "faces": faces, "audio": audio}

    def _audio_url(self, ref: Any, asset_url: Callable[[str], str]) -> str | None:
        dest = self.layout.audio.get(ref) if isinstance(ref, str) else None
        return asset_url(dest) if dest else None

    def _music(self, spec: Any, asset_url: Callable[[str], str]) -> dict[str, Any] | None:
        """The export's ``play music``/``stop music`` statement for a music field as data (``url`` None: stop),
        or None where the export writes none (no track field, a missing file)."""
        if not isinstance(spec, Mapping) or "track" not in spec:
            return None
        fade = spec.get("fade")
        fade_s = float(fade) if is_number(fade) and fade > 0 else 0.0
        if spec["track"] is None:
            return {"url": None, "fade": fade_s, "loop": False, "volume": 1.0}
        url = self._audio_url(spec["track"], asset_url)
        if url is None:
            return None
        volume = spec.get("volume")
        return {
            "url": url,
            "fade": fade_s,
            "loop": spec.get("loop", True) is not False,
            "volume": float(volume) if is_number(volume) and 0 <= volume <= 1 else 1.0,
        }

    def _arrival_sounds(self, state: RunState, asset_url: Callable[[str], str]) -> dict[str, Any]:
        """What arriving at the current node plays besides music, as its label does: each ``play audio``
        (an effect, after its delay) and the ``voice`` of its first line (only when it has a line)."""
        node = self.scenario.node(state.scene_id, state.node_id).raw
        sounds = []
        for sfx in node.get("sfx") or ():
            url = self._audio_url(sfx.get("sound"), asset_url) if isinstance(sfx, Mapping) else None
            if url is None:
                continue
            delay, volume = sfx.get("delay"), sfx.get("volume")
            sounds.append(
                {
                    "url": url,
                    "delay": float(delay) if is_number(delay) and delay > 0 else 0.0,
                    "volume": float(volume) if is_number(volume) and 0 <= volume <= 1 else 1.0,
                }
            )
        text = node.get("text")
        voice = self._audio_url(node.get("voice"), asset_url) if isinstance(text, str) and text else None
        return {"sounds": sounds, "voice": voice}

    def asset_file(self, dest: str) -> Path:
        """The file behind an asset URL's path (404 for anything the layout did not plan)."""
        found = self.layout.files.get(f"game/{dest}")
        if found is None:
            raise NotFound("no such asset in this project", field="path", code="asset_not_found")
        return found


def _runs(parsed: Any, start: int, end: int) -> Runs:
    out: Runs = []
    for run_start, run_end, style in parsed.runs:
        a, b = max(start, run_start), min(end, run_end)
        if a < b:
            out.append((parsed.text[a:b], style))
    return out
