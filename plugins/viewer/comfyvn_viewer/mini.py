"""Mini-VN: a still of one moment of a project (background, sprites, side image, text box with the line), drawn
with Pillow the way the Ren'Py export lays out its screen.

The geometry is the export's own (`comfyvn_renpy.gui.gui_spec` at the still's size), backgrounds cover the
screen (`art.cover_crop`), sprites are cropped to their visible pixels and fitted like the export fits them,
the text box is the export's ``textbox.png``, the line is the first page the export's `Paginator` makes of
the node's text (inline Markdown read by `text.parse_markdown`), in the fonts `fonts.plan_fonts` chooses for
it (CJK from fonts-noto-cjk and the like). Who is on stage is what the story leaves there on its shortest
way from the scene's start to the node (a background change clears the stage, as Ren'Py's ``scene`` does).

Pure: the same project files, moment and size give the same PNG bytes (no metadata chunks), and
`plan_still` names every file a still depends on, so callers can key a cache on their contents.
"""

from __future__ import annotations

import hashlib
import io
import unicodedata
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
from comfyvn.digest import digest
from comfyvn.errors import ComfyVNError, Invalid, NotFound, TooLarge
from comfyvn.paths import safe_join
from comfyvn_renpy import art, fonts
from comfyvn_renpy.gui import GuiSpec, gui_spec
from comfyvn_renpy.gui_images import Palette, gui_images, png_bytes
from comfyvn_renpy.script import NARRATORS, POSITIONS, TRANSFORMS, choice_text, shown_choices
from comfyvn_renpy.text import BOLD, Paginator, parse_markdown
from comfyvn_scenario import Project, compile_scenario, initial_state, split_target
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

__all__ = [
    "DEFAULT_SIZE",
    "MAX_PIXELS",
    "RENDERER",
    "Moment",
    "Sprite",
    "StillPlan",
    "parse_size",
    "plan_still",
    "render_still",
    "still_digest",
]

#: Bumped when the drawing changes, so cached stills of the old drawing are not served for new requests.
RENDERER = "mini-vn/2"
DEFAULT_SIZE = (640, 360)
MIN_SIZE = (160, 90)
MAX_PIXELS = 1920 * 1080
#: Width over height: the export's text box needs at least a square screen, and wider than 3:1 is a banner.
MIN_ASPECT, MAX_ASPECT = 1.0, 3.0
#: Picture files larger than this are not decoded (bounded memory per still).
MAX_IMAGE_BYTES = 64 * 2**20
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")
_XALIGN = dict(TRANSFORMS)
#: How the export's ``cvn_arrange`` spreads characters shown without a position (1, 2, 3 on stage).
_AUTO_SLOTS = {1: (0.5,), 2: (0.25, 0.75), 3: (0.08, 0.5, 0.92)}


@attrs.frozen
class Moment:
    """Which moment to draw: a node of a scene (None: where the runner starts for this seed and POV)."""

    scene: str | None = None
    node: str | None = None
    pov: str | None = None
    seed: int = 0


@attrs.frozen
class Sprite:
    """A character on stage: its picture file and where it stands (``xalign``)."""

    character: str
    file: Path
    xalign: float


@attrs.frozen
class StillPlan:
    """What one still shows, resolved: the node, files to draw and the line."""

    scene: str
    node: str
    pov: str
    seed: int
    background: Path | None
    sprites: tuple[Sprite, ...]
    side: Path | None
    speaker: str | None
    colour: str | None
    text: str
    #: The menu the export shows at this node (its choices' texts, in order); empty when it shows none.
    choices: tuple[str, ...] = ()

    def files(self) -> list[Path]:
        """Every picture file the still draws (their contents belong in its digest)."""
        found = [self.background, *(s.file for s in self.sprites), self.side]
        return [f for f in found if f is not None]


def parse_size(value: str | None, *, field: str = "size") -> tuple[int, int]:
    """``"640x360"`` → ``(640, 360)``; default 640x360; at least 160x90, at most 1920x1080 pixels in all,
    width from 1 to 3 times the height."""
    if value is None:
        return DEFAULT_SIZE
    parts = value.lower().replace("\u00d7", "x").split("x") if isinstance(value, str) else []
    if len(parts) != 2 or not all(p.strip().isdigit() and len(p.strip()) <= 5 for p in parts):
        raise Invalid("size must look like 640x360", field=field, code="invalid_size")
    width, height = int(parts[0]), int(parts[1])
    if width < MIN_SIZE[0] or height < MIN_SIZE[1]:
        raise Invalid(f"size must be at least {MIN_SIZE[0]}x{MIN_SIZE[1]}", field=field, code="invalid_size")
    if width * height > MAX_PIXELS:
        raise TooLarge("size must be at most 1920x1080 pixels in all", field=field, code="size_too_large")
    if not MIN_ASPECT <= width / height <= MAX_ASPECT:
        raise Invalid("size must be 1 to 3 times as wide as it is high", field=field, code="invalid_size")
    return width, height


def _picture_file(root: Path | None, ref: Any, resolve: Callable[[str], Path | None] | None) -> Path | None:
    """The image file ``ref`` names: ``asset:<uid>`` through ``resolve``, else below ``root`` (never outside)."""
    if not isinstance(ref, str) or not ref:
        return None
    if ref.startswith("asset:"):
        found = resolve(ref) if resolve is not None else None
    elif root is None:
        return None
    else:
        try:
            found = safe_join(root, ref)
        except ComfyVNError:
            return None
    if found is None or not found.is_file() or found.suffix.lower() not in IMAGE_EXTS:
        return None
    return found


def _start(project: Project, moment: Moment) -> tuple[str, str, str]:
    """``(scene, node, pov)`` of the moment: the runner's start for its seed and POV unless a node is named."""
    scenario = compile_scenario(project)
    pov = moment.pov or scenario.default_pov
    known = {str(p.get("id")) for p in project.povs if isinstance(p, Mapping)}
    if moment.pov is not None and known and moment.pov not in known:
        raise NotFound(f"project has no POV {moment.pov!r}", field="pov", code="pov_not_found")
    if moment.scene is None and moment.node is None:
        state = initial_state(scenario, seed=moment.seed, pov=pov).state
        return state.scene_id, state.node_id, pov
    scene_id = moment.scene
    if scene_id is None:  # a node alone: the first scene in story order that has it
        scene_id = next((s for s, nodes in scenario.nodes.items() if moment.node in nodes), scenario.start[0])
    if scene_id not in project.scenes:
        raise NotFound(f"project has no scene {scene_id!r}", field="scene", code="scene_not_found")
    node_id = moment.node if moment.node is not None else scenario.scene_starts[scene_id]
    if node_id not in scenario.nodes[scene_id]:
        raise NotFound(f"scene {scene_id!r} has no node {node_id!r}", field="node", code="node_not_found")
    return scene_id, node_id, pov


def _path_to(scene: Mapping[str, Any], node_id: str) -> list[Mapping[str, Any]]:
    """The nodes on the shortest way (by choices) from the scene's start to ``node_id``, both included;
    just the node when it cannot be reached inside the scene (it is entered from another scene)."""
    nodes = {n["id"]: n for n in scene.get("nodes") or () if isinstance(n, Mapping) and isinstance(n.get("id"), str)}
    start = str(scene.get("start"))
    parent: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        if current == node_id:
            break
        for choice in nodes.get(current, {}).get("choices") or ():
            target = choice.get("target") if isinstance(choice, Mapping) else None
            if not isinstance(target, str):
                continue
            other, local = split_target(target, nodes)
            if other is None and local in nodes and local not in parent:
                parent[local] = current
                queue.append(local)
    if node_id not in parent:
        return [nodes[node_id]]
    way: list[Mapping[str, Any]] = []
    cursor: str | None = node_id
    while cursor is not None:
        way.append(nodes[cursor])
        cursor = parent[cursor]
    return way[::-1]


def _sprite_ref(spec: Any, expression: Any) -> Any:
    if not isinstance(spec, Mapping) or not isinstance(spec.get("sprites"), Mapping):
        return None
    sprites = spec["sprites"]
    wanted = expression if isinstance(expression, str) else spec.get("default_expression")
    return sprites.get(wanted) if wanted in sprites else next(iter(sprites.values()), None)


def plan_still(project: Project, moment: Moment, resolve: Callable[[str], Path | None] | None = None) -> StillPlan:
    """Resolve what the still of ``moment`` shows. ``resolve`` answers ``asset:<uid>`` references with a file.

    Raises `NotFound` naming the field for an unknown scene, node or POV (the project itself is validated
    by `compile_scenario`: an invalid one is `Unprocessable`)."""
    scene_id, node_id, pov = _start(project, moment)
    scene = project.scenes[scene_id]
    root = project.root
    background_ref: Any = scene.get("background")
    stage: dict[str, tuple[Any, str | None]] = {}  # character -> (expression, position), in order shown
    for node in _path_to(scene, node_id):
        if "background" in node:
            background_ref, stage = node["background"], {}
        for entry in node.get("characters") or ():
            if not isinstance(entry, Mapping) or entry.get("id") not in project.characters:
                continue
            char_id = str(entry["id"])
            if entry.get("hide"):
                stage.pop(char_id, None)
                continue
            position = entry.get("position") if entry.get("position") in POSITIONS else None
            if position is None and char_id in stage:
                position = stage[char_id][1]
            stage[char_id] = (entry.get("expression"), position)
    node = _path_to(scene, node_id)[-1]
    sprites: list[Sprite] = []
    side: Path | None = None
    free = [c for c, (_e, p) in stage.items() if p is None]
    slots = _AUTO_SLOTS.get(len(free)) or tuple(i / max(1, len(free) - 1) for i in range(len(free)))
    auto = dict(zip(free, slots, strict=True))
    for char_id, (expression, position) in stage.items():
        if position == "offscreen":
            continue
        file = _picture_file(root, _sprite_ref(project.characters[char_id], expression), resolve)
        if file is None:
            continue
        picture = _probe(file)
        if picture is not None and not picture.cutout:
            side = side or file  # a framed picture, not a figure: the export shows it beside the text box
            continue
        xalign = _XALIGN[POSITIONS[position]] if position is not None else auto[char_id]
        sprites.append(Sprite(char_id, file, xalign))
    speaker = node.get("speaker") if isinstance(node.get("speaker"), str) else None
    spec = project.characters.get(speaker) if speaker is not None else None
    name: str | None = None
    colour: str | None = None
    if isinstance(spec, Mapping):
        name = str(spec.get("name") or speaker)
        colour = spec.get("color") if isinstance(spec.get("color"), str) else None
        portrait = next((spec[k] for k in ("portrait", "avatar") if isinstance(spec.get(k), str)), None)
        side = _picture_file(root, portrait, resolve) or side
    elif speaker is not None and speaker.lower() not in NARRATORS:
        name = speaker
    text = str(node["text"]) if isinstance(node.get("text"), str) else ""
    return StillPlan(
        scene_id, node_id, pov, moment.seed, _picture_file(root, background_ref, resolve), tuple(sprites),
        side, name, colour, text, _menu(node, pov),
    )  # fmt: skip


def _menu(node: Mapping[str, Any], pov: str) -> tuple[str, ...]:
    """The texts of the menu the export shows at ``node`` (`script.flow_kind`): none at an end or where it
    jumps on (one unlabelled, unconditional choice); choices shown only to other POVs left out."""
    choices = shown_choices(node)
    if node.get("end") or not choices:
        return ()
    only = choices[0]
    if (
        len(choices) == 1
        and not only.get("label")
        and node.get("type") != "choice"
        and only.get("visible_to") is None
        and not only.get("conditions")
    ):
        return ()
    shown = []
    for choice in choices:
        visible = choice.get("visible_to")
        visible = [visible] if isinstance(visible, str) else visible
        if isinstance(visible, list) and visible and pov not in {str(v) for v in visible}:
            continue
        shown.append(choice_text(choice))
    return tuple(shown)


def still_digest(plan: StillPlan, project_files: Mapping[str, str], size: tuple[int, int], project_id: str) -> str:
    """sha256 of the canonical inputs: renderer, project id and file digests, moment, size, and the
    sha256 of every picture drawn (a changed sprite gives a new still)."""
    # In drawing order: the same files in other roles (a sprite that becomes the background) differ too.
    pictures = [hashlib.sha256(path.read_bytes()).hexdigest() for path in plan.files()]
    return digest(
        {
            "renderer": RENDERER,
            "project": project_id,
            "files": dict(project_files),
            "scene": plan.scene,
            "node": plan.node,
            "pov": plan.pov,
            "seed": plan.seed,
            "size": list(size),
            "pictures": pictures,
        }
    )


def _probe(path: Path) -> art.Picture | None:
    return art.probe(path) if path.stat().st_size <= MAX_IMAGE_BYTES else None


def _open(path: Path) -> Image.Image | None:
    """The picture as RGBA, or None when Pillow cannot read it (or it is too large to decode)."""
    if path.stat().st_size > MAX_IMAGE_BYTES:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.size[0] * image.size[1] > art.MAX_DECODED_PIXELS:
                    return None
                return image.convert("RGBA")
    except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError):
        return None


def _background(canvas: Image.Image, plan: StillPlan, spec: GuiSpec) -> None:
    picture = _open(plan.background) if plan.background is not None else None
    if picture is None:
        # No background (or an unreadable one): the export's backdrop, from the cast's art or a gradient.
        source = plan.sprites[0].file if plan.sprites else plan.side
        with Image.open(io.BytesIO(art.backdrop_png(source, spec))) as backdrop:
            canvas.alpha_composite(backdrop.convert("RGBA").resize(canvas.size, Image.Resampling.LANCZOS))
        return
    left, top, width, height = art.cover_crop(picture.size, spec.width, spec.height)
    cropped = picture.crop((left, top, left + width, top + height))
    canvas.alpha_composite(cropped.resize(canvas.size, Image.Resampling.LANCZOS))


def _fitted(picture: Image.Image, box: tuple[int, int, int, int], max_w: int, max_h: int) -> Image.Image:
    part = picture.crop(box)
    zoom = art.fit_zoom(part.width, part.height, max_w, max_h)
    return part.resize((max(1, round(part.width * zoom)), max(1, round(part.height * zoom))), Image.Resampling.LANCZOS)


def _sprites(canvas: Image.Image, plan: StillPlan, spec: GuiSpec) -> None:
    for sprite in plan.sprites:
        picture, probed = _open(sprite.file), _probe(sprite.file)
        if picture is None or probed is None:
            continue
        figure = _fitted(picture, probed.box, spec.sprite_max_width, spec.sprite_max_height)
        x = round((spec.width - figure.width) * sprite.xalign)
        canvas.alpha_composite(figure, (x, spec.height - figure.height))


def _side(canvas: Image.Image, plan: StillPlan, spec: GuiSpec) -> None:
    """The side image as the export's say screen adds it (``SideImage() xalign 0.0 yalign 1.0``, after the
    text box): fitted into the side-image box, in the bottom-left corner, over the text box."""
    if plan.side is not None and (picture := _open(plan.side)) is not None:
        probed = _probe(plan.side)
        box = probed.box if probed is not None and probed.cutout else (0, 0, *picture.size)
        face = _fitted(picture, box, spec.side_image_width, spec.side_image_height)
        canvas.alpha_composite(face, (0, spec.height - face.height))


class _Fonts:
    """The fonts the export would ship for these characters, at one size: a face per character."""

    def __init__(self, chars: Iterable[str], size: int) -> None:
        plan = fonts.plan_fonts(chars, size=size)
        self.metrics = plan.metrics
        base = self.metrics.base
        self.regular: Any = ImageFont.truetype(str(base[0]), size) if base else ImageFont.load_default(size)
        self.bold: Any = ImageFont.truetype(str(base[1]), size) if base and base[1] else self.regular

    def face(self, ch: str, style: int) -> Any:
        for chars, font in self.metrics.groups:
            if ch in chars:
                return font
        return self.bold if style & BOLD else self.regular


def _breaks_between(prev: str, ch: str) -> bool:
    """Where a line may wrap: after a space, and on either side of a wide (CJK) character."""
    if ch.isspace():
        return False
    return prev.isspace() or unicodedata.east_asian_width(ch) in "WF" or unicodedata.east_asian_width(prev) in "WF"


def _wrap(
    chars: list[tuple[str, int]], width: float, advance: Callable[[str, int], float]
) -> list[list[tuple[str, int]]]:
    """Greedy lines of ``(char, style)`` no wider than ``width`` (Ren'Py wraps the page itself in a game)."""
    pieces: list[list[tuple[str, int]]] = []
    for ch, style in chars:
        if ch == "\n" or not pieces or _breaks_between(pieces[-1][-1][0], ch):
            pieces.append([])
        pieces[-1].append((ch, style))
    lines: list[list[tuple[str, int]]] = [[]]
    used = 0.0
    for piece in pieces:
        size = sum(advance(c, s) for c, s in piece)
        if piece[0][0] == "\n" or (lines[-1] and used + size > width):
            piece = [p for p in piece if p[0] != "\n"]
            while piece and piece[0][0].isspace():
                piece = piece[1:]
            lines.append([])
            used = 0.0
            size = sum(advance(c, s) for c, s in piece)
        lines[-1].extend(piece)
        used += size
    return [line for line in lines if line]


def _draw_line(
    draw: ImageDraw.ImageDraw, x: float, y: int, line: list[tuple[str, int]], faces: _Fonts, fill: Any
) -> None:
    run: list[str] = []
    font: Any = None
    for ch, style in [*line, ("", 0)]:
        face = faces.face(ch, style) if ch else None
        if run and face is not font:
            text = "".join(run)
            draw.text((x, y), text, font=font, fill=fill, anchor="ls")
            x += font.getlength(text)
            run = []
        font = face
        run.append(ch)


def _textbox(canvas: Image.Image, plan: StillPlan, spec: GuiSpec) -> None:
    palette = Palette()
    with Image.open(io.BytesIO(gui_images(spec, palette, spec.scale(440))["game/gui/textbox.png"])) as box:
        top = spec.height - spec.textbox_height
        canvas.alpha_composite(box.convert("RGBA"), (0, top))
    draw = ImageDraw.Draw(canvas)
    if plan.speaker:
        names = _Fonts(plan.speaker, spec.name_text_size)
        pad = spec.scale(14)
        width = sum(names.face(c, 0).getlength(c) for c in plan.speaker)
        ascent = max(sum(names.face(c, 0).getmetrics()) for c in plan.speaker)
        panel = (
            spec.dialogue_xpos - pad,
            top - ascent // 2 - pad,
            spec.dialogue_xpos + round(width) + pad,
            top + ascent // 2 + pad,
        )
        draw.rounded_rectangle(
            panel,
            radius=spec.scale(12),
            fill=(16, 19, 31, 240),
            outline=(227, 168, 87, 230),
            width=max(1, spec.scale(2)),
        )
        colour = plan.colour if plan.colour and len(plan.colour) == 7 else palette.accent
        _draw_line(
            draw, spec.dialogue_xpos, top + ascent // 2 - spec.scale(6), [(c, 0) for c in plan.speaker], names, colour
        )
    parsed = parse_markdown(plan.text)
    faces = _Fonts(parsed.text, spec.text_size)
    spans = Paginator(spec, faces.metrics).spans(parsed)
    if not spans:
        return
    # At a menu the line being answered (its last page) is the caption that stays in the text box.
    start, end = spans[-1] if plan.choices else spans[0]
    styles = [0] * len(parsed.text)
    for a, b, style in parsed.runs:
        styles[a:b] = [style] * (b - a)
    chars = [(parsed.text[i], styles[i]) for i in range(start, end)]
    y = top + spec.dialogue_ypos
    for line in _wrap(chars, spec.dialogue_width, faces.metrics.advance)[: spec.dialogue_lines]:
        skip = max(faces.metrics.lineskip(c, s) for c, s in line)
        ascent = max(faces.face(c, s).getmetrics()[0] for c, s in line)
        _draw_line(draw, spec.dialogue_xpos, y + ascent, line, faces, palette.text)
        y += skip + spec.line_spacing


def _frame(image: Image.Image, width: int, height: int, border: int) -> Image.Image:
    """``image`` stretched to ``width`` x ``height`` as Ren'Py's ``Frame`` does: the ``border`` pixels of
    each corner kept, the edges stretched along, the centre stretched both ways."""
    w, h = image.size
    b = max(0, min(border, w // 2, h // 2, width // 2, height // 2))
    out = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    xs = ((0, b, 0, b), (b, w - b, b, width - b), (w - b, w, width - b, width))
    ys = ((0, b, 0, b), (b, h - b, b, height - b), (h - b, h, height - b, height))
    for sx0, sx1, dx0, dx1 in xs:
        for sy0, sy1, dy0, dy1 in ys:
            if sx1 > sx0 and sy1 > sy0 and dx1 > dx0 and dy1 > dy0:
                part = image.crop((sx0, sy0, sx1, sy1)).resize((dx1 - dx0, dy1 - dy0), Image.Resampling.BILINEAR)
                out.paste(part, (dx0, dy0))
    return out


#: The exported ``choice_button_text`` colour (screens.rpy), idle.
_CHOICE_TEXT = "#e8e6ee"


def _choices(canvas: Image.Image, labels: tuple[str, ...], spec: GuiSpec) -> None:
    """The export's ``choice`` screen (screens.rpy with the sizes `shell.gui_file` sets): idle buttons
    ``choice_button_width`` wide on ``choice_idle_background.png`` framed, stacked ``choice_spacing`` apart
    and centred in the area above the text box (cut at its bottom, as its viewport is, when they overflow),
    each label (inline Markdown, not paged) wrapped in the padded width and centred."""
    if not labels:
        return
    s = spec.scale
    width = min(spec.width - s(160), s(1180))
    pad_x, pad_y, spacing, top = s(40), s(16), s(18), s(70)
    area = spec.height - spec.textbox_height - s(44) - top - s(24)
    images = gui_images(spec, Palette(), spec.scale(440))
    with Image.open(io.BytesIO(images["game/gui/button/choice_idle_background.png"])) as loaded:
        background = loaded.convert("RGBA")
    buttons: list[tuple[Image.Image, list[list[tuple[str, int]]], _Fonts]] = []
    for label in labels:
        parsed = parse_markdown(label)
        faces = _Fonts(parsed.text or " ", spec.text_size)
        styles = [0] * len(parsed.text)
        for a, b, style in parsed.runs:
            styles[a:b] = [style] * (b - a)
        chars = list(zip(parsed.text, styles, strict=True))
        lines = _wrap(chars, width - 2 * pad_x, faces.metrics.advance) or [[(" ", 0)]]
        height = sum(max(faces.metrics.lineskip(c, st) for c, st in line) for line in lines) + 2 * pad_y
        buttons.append((_frame(background, width, height, s(14)), lines, faces))
    total = sum(b[0].height for b in buttons) + spacing * (len(buttons) - 1)
    layer = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    x = (spec.width - width) // 2
    y = top + max(0, (area - total) // 2)
    for frame, lines, faces in buttons:
        layer.alpha_composite(frame, (x, y))
        line_y = y + pad_y
        for line in lines:
            skip = max(faces.metrics.lineskip(c, st) for c, st in line)
            ascent = max(faces.face(c, st).getmetrics()[0] for c, st in line)
            used = sum(faces.metrics.advance(c, st) for c, st in line)
            _draw_line(draw, x + (width - used) / 2, line_y + ascent, line, faces, _CHOICE_TEXT)
            line_y += skip
        y += frame.height + spacing
    # The viewport shows the area only: buttons past its bottom are scrolled out of sight.
    visible = layer.crop((0, 0, spec.width, top + area))
    canvas.alpha_composite(visible, (0, 0))


def render_still(plan: StillPlan, size: tuple[int, int]) -> bytes:
    """The PNG of ``plan`` at ``size`` (see `parse_size`): the same plan and files give the same bytes."""
    spec = gui_spec(*size)
    canvas = Image.new("RGBA", size, (0, 0, 0, 255))
    _background(canvas, plan, spec)
    _sprites(canvas, plan, spec)
    _textbox(canvas, plan, spec)
    _side(canvas, plan, spec)
    _choices(canvas, plan.choices, spec)
    return png_bytes(canvas.convert("RGB"))
