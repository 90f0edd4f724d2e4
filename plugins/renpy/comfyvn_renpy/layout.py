"""The naming and asset plan of one export: every label, variable, character, image and audio file.

Built once per export, in story order, before any script text is written; the script writer only
looks names up. Asset files are resolved below the project folder (never outside it); a missing image
becomes a placeholder and an entry in ``missing``, a missing sound is left out with a warning. Image
files are probed once (size and visible box, `art.probe`) so the script can fit them to any resolution.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import attrs
from comfyvn.errors import ComfyVNError
from comfyvn.paths import safe_join
from comfyvn_scenario import Project, split_target

from .art import Box, Picture, probe, union_box
from .conditions import key_parts
from .names import NameRegistry, placeholder_colour, slug
from .parallax import Layers, read_layers

__all__ = ["BACKDROP", "ImageDef", "Layout", "build_layout"]

#: The generated backdrop shown where a scene has no background of its own.
BACKDROP = "bg cvn_backdrop"
#: Labels the script writer adds around the story (never given to a scene or node).
RESERVED_LABELS = frozenset({"start", "cvn_switch_pov", "cvn_pov_menu", "cvn_story", "cvn_story_done", "cvn_the_end"})

#: References to the asset registry rather than to a file of the project.
ASSET_PREFIX = "asset:"
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")


@attrs.frozen
class ImageDef:
    """``image <name>`` showing ``file`` (fitted with ``picture``/``box``), else a placeholder of ``colour``.

    ``kind``: background, portrait (a character's sprite) or side (a character card's portrait shown
    beside the text box). ``box`` is the part of the file a sprite shows: the visible pixels of every
    expression of the same size, so switching expressions never moves or rescales the figure.
    """

    name: str
    kind: str  # background | portrait | side
    source: str
    file: str | None
    colour: str
    sprite: bool = False
    picture: Picture | None = None
    box: Box | None = None
    #: a background's planes for parallax (`parallax.read_layers`), None for a flat one.
    layers: Layers | None = None


@attrs.define
class Layout:
    """Names and assets of one export (mutable only while `build_layout` fills it)."""

    project: Project
    scene_labels: dict[str, str] = attrs.Factory(dict)
    node_labels: dict[tuple[str, str], str] = attrs.Factory(dict)
    char_vars: dict[str, str] = attrs.Factory(dict)
    char_tags: dict[str, str] = attrs.Factory(dict)
    attrs_of: dict[tuple[str, str], str] = attrs.Factory(dict)
    variables: dict[str, str] = attrs.Factory(dict)
    backgrounds: dict[str, str] = attrs.Factory(dict)
    images: list[ImageDef] = attrs.Factory(list)
    audio: dict[str, str | None] = attrs.Factory(dict)
    files: dict[str, Path] = attrs.Factory(dict)
    warnings: list[str] = attrs.Factory(list)
    missing: dict[str, list[str]] = attrs.Factory(lambda: {"backgrounds": [], "portraits": [], "audio": []})
    pov_labels: dict[str, str] = attrs.Factory(dict)
    pov_slugs: dict[str, str] = attrs.Factory(dict)
    #: character id -> ``side <tag>`` image of its card portrait (only characters that have one).
    side_images: dict[str, str] = attrs.Factory(dict)
    #: character ids in the order the story first shows or hears them, then the others.
    cast_order: list[str] = attrs.Factory(list)
    #: the cast art the generated backdrop is blurred from (None: a gradient).
    backdrop_source: Path | None = None
    #: whether some node shows a character without naming a position (the stage arranges those).
    auto_stage: bool = False
    #: characters whose expression pictures are all opaque (framed pictures, not cut-out figures): they
    #: are shown as the side image beside the text box, changing with the expression, never on the stage.
    face_only: set[str] = attrs.Factory(set)
    #: answers for asset references (``asset:<uid>``): the ``renpy_resolve_asset`` hook, or None.
    resolve_asset: Callable[[str], Mapping[str, Any] | None] | None = None
    #: asset reference -> what its resolver said (uid, sha256, provenance, license, source), for the manifest.
    asset_info: dict[str, dict[str, Any]] = attrs.Factory(dict)
    _node_index: dict[str, dict[str, Any]] = attrs.Factory(dict)
    _pictures: dict[Path, Picture | None] = attrs.Factory(dict)

    def node_label(self, scene_id: str, target: str) -> tuple[str | None, str]:
        """``(other scene or None, label)`` of a choice target seen from ``scene_id``."""
        other, node_id = split_target(target, self.scene_nodes(scene_id))
        return other, self.node_labels[(other or scene_id, node_id)]

    def scene_nodes(self, scene_id: str) -> dict[str, Any]:
        """Node id -> node of one scene (built once per scene: choices look targets up here)."""
        found = self._node_index.get(scene_id)
        if found is None:
            found = self._node_index[scene_id] = {n["id"]: n for n in self.project.scenes[scene_id]["nodes"]}
        return found

    def picture(self, path: Path) -> Picture | None:
        """`art.probe` of ``path``, once per file (one picture may serve several expressions and the side image)."""
        if path not in self._pictures:
            self._pictures[path] = probe(path)
        return self._pictures[path]

    def sprite(self, char_id: str, expression: str | None) -> str:
        """The ``show`` name of a character's expression (``alice smile``; the bare tag when it has none)."""
        tag = self.char_tags[char_id]
        attr = self.attrs_of.get((char_id, expression or ""))
        return f"{tag} {attr}" if attr else tag


def _resolve(root: Path | None, ref: str) -> Path | None:
    """The asset file ``ref`` names below ``root``, or None (missing, outside the project, not a file)."""
    if root is None or not ref:
        return None
    try:
        path = safe_join(root, ref)
        return path if path.is_file() else None
    except (ComfyVNError, OSError):  # OSError: a name the file system refuses is a missing asset too
        return None


def _nodes(project: Project) -> Iterator[tuple[str, dict[str, Any]]]:
    for scene_id, scene in project.scenes.items():
        for node in scene.get("nodes") or ():
            if isinstance(node, dict):
                yield scene_id, node


def _var_roots(project: Project) -> list[str]:
    """Top-level variable names in a stable order: declared ones first, then those actions/conditions use."""
    roots: dict[str, None] = dict.fromkeys(project.variables)
    for scene in project.scenes.values():
        roots.update(dict.fromkeys(scene.get("variables") or {}))

    def add(item: Mapping[str, Any]) -> None:
        parts = key_parts(str(item.get("key", "")))
        if parts and parts[0] not in roots:
            roots[parts[0]] = None

    for _scene_id, node in _nodes(project):
        for action in node.get("actions") or ():
            add(action)
        for choice in node.get("choices") or ():
            for action in choice.get("actions") or ():
                add(action)
            for condition in choice.get("conditions") or ():
                add(condition)
    return list(roots)


def _attr_name(registry: NameRegistry, text: str) -> str:
    base = slug(text)
    return registry.claim(base if not base[0].isdigit() else f"x{base}")


def build_layout(project: Project, resolve_asset: Callable[[str], Mapping[str, Any] | None] | None = None) -> Layout:
    """Name everything (labels, variables, characters, images, audio) and plan the asset copies.
    ``resolve_asset`` answers for registry references (``asset:<uid>``); without it they are missing."""
    layout = Layout(project, resolve_asset=resolve_asset)
    root = project.root
    labels = NameRegistry(set(RESERVED_LABELS))
    for scene_id, scene in project.scenes.items():
        scene_slug = slug(scene_id, lower=False)
        layout.scene_labels[scene_id] = labels.claim(f"scene_{scene_slug}")
        for node in scene.get("nodes") or ():
            base = f"{scene_slug}_{slug(str(node['id']), lower=False)}"
            # A label must not start with a digit (scene ids may): prefix those.
            layout.node_labels[(scene_id, node["id"])] = labels.claim(base if base[0].isalpha() else f"n_{base}")
    pov_ids = [p["id"] for p in project.povs if isinstance(p.get("id"), str)]
    pov_slug_registry = NameRegistry()
    for pov in pov_ids:
        layout.pov_slugs[pov] = pov_slug_registry.claim(slug(pov))
        layout.pov_labels[pov] = labels.claim(f"pov_{slug(pov, lower=False)}")

    var_registry = NameRegistry()
    for name in _var_roots(project):
        layout.variables[name] = var_registry.claim(f"v_{slug(name, lower=False)}")

    stage = _Stage.of(project)
    # "side" images are side images and "cvn_keyart" is the title screen's: no character may take those tags.
    char_registry, tag_registry = NameRegistry(), NameRegistry({"bg", "side", "cvn_keyart"})
    for char_id, spec in project.characters.items():
        layout.char_vars[char_id] = char_registry.claim(f"c_{slug(char_id, lower=False)}")
        tag = slug(char_id)
        layout.char_tags[char_id] = tag_registry.claim(tag if not tag[0].isdigit() else f"x{tag}")
        sprites = spec.get("sprites") if isinstance(spec, dict) else None
        sprites = sprites if isinstance(sprites, dict) else {}
        attr_registry = NameRegistry()
        wanted: dict[str, None] = dict.fromkeys(str(k) for k in sprites)
        wanted.update(stage.expressions.get(char_id, {}))
        default = spec.get("default_expression") if isinstance(spec, dict) else None
        if isinstance(default, str):
            wanted[default] = None
        planned = []
        for expression in wanted:
            attr = _attr_name(attr_registry, expression)
            layout.attrs_of[(char_id, expression)] = attr
            tag = layout.char_tags[char_id]
            planned.append((f"{tag} {attr}", str(sprites.get(expression) or ""), f"images/characters/{tag}_{attr}"))
        if _add_sprites(layout, root, planned):
            layout.face_only.add(char_id)
        _add_side_image(layout, root, char_id, spec)
        fallback = default if isinstance(default, str) else next(iter(wanted), None)
        if fallback is not None:
            layout.attrs_of[(char_id, "")] = layout.attrs_of[(char_id, fallback)]
        elif char_id in stage.shown:
            # Shown on the stage with no sprite at all: a placeholder figure stands in.
            _add_image(layout, root, layout.char_tags[char_id], "portrait", "", None)

    _plan_cast(layout)
    bg_registry = NameRegistry({BACKDROP.split()[1]})
    for ref in _background_refs(project):
        stem = PurePosixPath(ref.replace("\\", "/")).stem or ref
        name = _attr_name(bg_registry, stem)
        layout.backgrounds[ref] = f"bg {name}"
        _add_image(layout, root, f"bg {name}", "background", ref, f"images/bg/bg_{name}")

    audio_registry = NameRegistry()
    for ref, folder in _audio_refs(project):
        found = _resolve(root, ref)
        if found is None:
            layout.audio[ref] = None
            layout.missing["audio"].append(ref)
            layout.warnings.append(f"missing audio file {ref!r}: its play/voice statements are left out")
            continue
        stem = slug(found.stem)
        dest = f"{folder}/{audio_registry.claim(stem)}{found.suffix.lower()}"
        layout.audio[ref] = dest
        layout.files[f"game/{dest}"] = found
    return layout


def _image_file(layout: Layout, root: Path | None, ref: str) -> Path | None:
    found = _registry_file(layout, ref) if ref.startswith(ASSET_PREFIX) else _resolve(root, ref)
    return found if found is not None and found.suffix.lower() in IMAGE_EXTS else None


def _registry_file(layout: Layout, ref: str) -> Path | None:
    """The file of an asset reference, as the resolver says (None when nobody knows it or it is gone)."""
    if layout.resolve_asset is None:
        return None
    answer = layout.resolve_asset(ref)
    path = answer.get("path") if answer else None
    if not answer or not isinstance(path, str) or not Path(path).is_file():
        return None
    layout.asset_info[ref] = {k: answer.get(k) for k in ("uid", "sha256", "provenance", "license", "source")}
    return Path(path)


def _add_image(layout: Layout, root: Path | None, name: str, kind: str, ref: str, dest_stem: str | None) -> None:
    found = _image_file(layout, root, ref)
    if found is not None and dest_stem:
        dest = f"{dest_stem}{found.suffix.lower()}"
        layout.files[f"game/{dest}"] = found
        picture = layout.picture(found)
        layers = _layers(layout, ref, found, picture, dest_stem) if kind == "background" else None
        layout.images.append(
            ImageDef(name, kind, ref, dest, "", sprite=kind == "portrait", picture=picture, layers=layers)
        )
        return
    layout.images.append(ImageDef(name, kind, ref, None, placeholder_colour(name), sprite=kind == "portrait"))
    bucket = "backgrounds" if kind == "background" else "portraits"
    label = ref or name
    if label not in layout.missing[bucket]:
        layout.missing[bucket].append(label)
    # "portrait" is this module's word for a character's picture on the stage: players call it a sprite.
    what, shape = ("sprite", "figure") if kind == "portrait" else (kind, "colour")
    layout.warnings.append(f"missing {what} {label!r}: exported as a placeholder {shape}")


def _layers(layout: Layout, ref: str, found: Path, picture: Picture | None, dest_stem: str) -> Layers | None:
    """The planes of a background's ``<stem>.layers`` folder, planned for copying; None (flat) when it has
    none, or when they cannot be used (a warning says why)."""
    if ref.startswith(ASSET_PREFIX):
        shown = f"{ref} ({found.stem}.layers)"
    else:
        shown = str(PurePosixPath(ref.replace("\\", "/")).with_name(f"{found.stem}.layers"))
    layers, warning = read_layers(found, picture.size if picture else None, dest_stem, shown)
    if warning is not None:
        layout.warnings.append(warning)
    for plane in layers.planes if layers is not None else ():
        layout.files[f"game/{plane.dest}"] = plane.source
    return layers


@attrs.frozen
class _Stage:
    """Who the nodes put on stage, gathered in one pass over the project (not one per character)."""

    #: character id -> the expressions nodes show it with, in the order they first appear.
    expressions: dict[Any, dict[str, None]]
    #: ids of characters some node shows (not only hides), so they need an image even without sprites.
    shown: set[Any]

    @classmethod
    def of(cls, project: Project) -> _Stage:
        expressions: dict[Any, dict[str, None]] = {}
        shown: set[Any] = set()
        for _scene_id, node in _nodes(project):
            for entry in node.get("characters") or ():
                if not isinstance(entry, dict):
                    continue
                char_id = entry.get("id")
                try:
                    hash(char_id)
                except TypeError:
                    continue  # an unhashable id (a list…) is equal to no character id
                if isinstance(entry.get("expression"), str):
                    expressions.setdefault(char_id, {})[entry["expression"]] = None
                if not entry.get("hide"):
                    shown.add(char_id)
        return cls(expressions, shown)


def _add_sprites(layout: Layout, root: Path | None, planned: list[tuple[str, str, str]]) -> bool:
    """One character's expressions (``(image name, file ref, destination stem)``): each found file is
    shown cropped to the box that holds the visible part of every same-sized expression. True when
    every found picture is opaque (no transparent surround: a framed picture, not a figure)."""
    found = {name: _image_file(layout, root, ref) for name, ref, _stem in planned}
    pictures = {name: layout.picture(path) for name, path in found.items() if path is not None}
    groups: dict[tuple[int, int], list[Picture]] = {}
    for picture in pictures.values():
        if picture is not None:
            groups.setdefault(picture.size, []).append(picture)
    for name, ref, stem in planned:
        path = found[name]
        if path is None:
            _add_image(layout, root, name, "portrait", ref, None)
            continue
        dest = f"{stem}{path.suffix.lower()}"
        layout.files[f"game/{dest}"] = path
        picture = pictures.get(name)
        box = union_box(groups[picture.size]) if picture is not None else None
        layout.images.append(ImageDef(name, "portrait", ref, dest, "", sprite=True, picture=picture, box=box))
    probed = [p for p in pictures.values() if p is not None]
    return bool(probed) and len(probed) == len(planned) and not any(p.cutout for p in probed)


def _add_side_image(layout: Layout, root: Path | None, char_id: str, spec: Any) -> None:
    """A character card's portrait (``portrait`` or ``avatar``) becomes its side image ``side <tag>``."""
    if not isinstance(spec, dict):
        return
    ref = next((spec[k] for k in ("portrait", "avatar") if isinstance(spec.get(k), str) and spec[k]), None)
    if ref is None:
        return
    tag = layout.char_tags[char_id]
    found = _image_file(layout, root, ref)
    if found is None:
        if ref not in layout.missing["portraits"]:
            layout.missing["portraits"].append(ref)
        layout.warnings.append(f"missing portrait {ref!r} of {char_id!r}: the character has no side image")
        return
    dest = f"images/characters/{tag}_portrait{found.suffix.lower()}"
    layout.files[f"game/{dest}"] = found
    layout.images.append(ImageDef(f"side {tag}", "side", ref, dest, "", picture=layout.picture(found)))
    layout.side_images[char_id] = f"side {tag}"


def _plan_cast(layout: Layout) -> None:
    """Who appears first (for the title screen's key art) and which art the backdrop is made from."""
    order: dict[str, None] = {}
    for _scene_id, node in _nodes(layout.project):
        speaker = node.get("speaker")
        if isinstance(speaker, str) and speaker in layout.char_tags:
            order[speaker] = None
        for entry in node.get("characters") or ():
            if isinstance(entry, dict) and entry.get("id") in layout.char_tags:
                order[entry["id"]] = None
                if not entry.get("hide") and not isinstance(entry.get("position"), str):
                    layout.auto_stage = True
    order.update(dict.fromkeys(layout.char_tags))
    layout.cast_order = list(order)
    by_name = {image.name: image for image in layout.images}
    for char_id in layout.cast_order:
        side = by_name.get(layout.side_images.get(char_id, ""))
        sprite = by_name.get(layout.sprite(char_id, None))
        for image in (side, sprite):
            if image is not None and image.file is not None and image.picture is not None:
                layout.backdrop_source = layout.files[f"game/{image.file}"]
                return


def _background_refs(project: Project) -> list[str]:
    refs: dict[str, None] = {}
    for scene in project.scenes.values():
        if isinstance(scene.get("background"), str) and scene["background"]:
            refs[scene["background"]] = None
        for node in scene.get("nodes") or ():
            if isinstance(node, dict) and isinstance(node.get("background"), str) and node["background"]:
                refs[node["background"]] = None
    return list(refs)


def _audio_refs(project: Project) -> list[tuple[str, str]]:
    refs: dict[str, str] = {}

    def music(value: Any) -> None:
        if isinstance(value, Mapping) and isinstance(value.get("track"), str) and value["track"]:
            refs.setdefault(value["track"], "audio")

    for scene in project.scenes.values():
        music(scene.get("music"))
        for node in scene.get("nodes") or ():
            if not isinstance(node, dict):
                continue
            music(node.get("music"))
            for sfx in node.get("sfx") or ():
                if isinstance(sfx, Mapping) and isinstance(sfx.get("sound"), str) and sfx["sound"]:
                    refs.setdefault(sfx["sound"], "audio")
            if isinstance(node.get("voice"), str) and node["voice"]:
                refs.setdefault(node["voice"], "voice")
    return list(refs.items())


def project_source_name(project: Project) -> str:
    """The project folder's name (stable across machines, unlike its absolute path)."""
    return os.path.basename(str(project.root)) if project.root is not None else project.id
