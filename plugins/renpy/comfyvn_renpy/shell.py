"""The game shell of an export: ``gui.rpy`` (sizes and colours), ``screens.rpy`` and the interface pictures.

Every build (the master and each POV fork) gets a complete Ren'Py 8 interface written here, so a player
finds what any Ren'Py game has: a title screen over the project's key art (Start, Load, Preferences,
About, Quit), a game menu (Save and Load with thumbnails and pages, Preferences, History, About), a
quick menu, confirm dialogs, and the screens the engine looks up by name (``say``, ``choice``, ``nvl``,
``confirm``, ``skip_indicator``, ``notify``…). Nothing comes from Ren'Py's template or SDK: the numbers
come from `gui.GuiSpec` and the pictures from `gui_images`, so an export works with no Ren'Py installed.

``screens.rpy`` is the same text for every project; everything that depends on the resolution is a
``gui.*`` variable in ``gui.rpy``. The ``say`` screen draws dialogue at exactly ``gui.text_size`` and
``gui.dialogue_width`` (the paginator's page size), and the ``choice`` screen stacks the choices in the
space above the text box, so the line being answered stays readable below them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import resources
from typing import Any

from comfyvn_scenario import Project

from .gui import GuiSpec
from .gui_images import Palette, gui_images
from .names import py_literal

__all__ = ["SCREENS", "ShellFonts", "about_text", "gui_file", "navigation_width", "screens_file", "shell_images"]

#: The screens every export defines, named as in Ren'Py's own template (players and modders expect them).
SCREENS = (
    "say",
    "input",
    "choice",
    "quick_menu",
    "navigation",
    "main_menu",
    "game_menu",
    "about",
    "save",
    "load",
    "file_slots",
    "preferences",
    "history",
    "confirm",
    "skip_indicator",
    "notify",
    "nvl",
    "nvl_dialogue",
    "cvn_the_end",
)

ShellFonts = Mapping[str, str]
DEFAULT_FONTS = {"text": "DejaVuSans.ttf", "name": "DejaVuSans.ttf", "interface": "DejaVuSans.ttf"}


def navigation_width(spec: GuiSpec) -> int:
    """Width of the game menu's navigation column (its overlay picture is darker there)."""
    return spec.scale(440)


@functools.lru_cache(maxsize=8)
def _images(spec: GuiSpec, palette: Palette) -> tuple[tuple[str, bytes], ...]:
    return tuple(gui_images(spec, palette, navigation_width(spec)).items())


def shell_images(spec: GuiSpec, palette: Palette | None = None) -> dict[str, bytes]:
    """``game/gui/…`` → PNG bytes (drawn once per resolution and palette, then reused)."""
    return dict(_images(spec, palette or Palette()))


def gui_file(spec: GuiSpec, header: str, *, palette: Palette | None = None, fonts: ShellFonts | None = None) -> str:
    """``gui.rpy``: ``gui.init`` at the export's resolution, then every size, colour and font the screens use."""
    p = palette or Palette()
    font = {**DEFAULT_FONTS, **(fonts or {})}
    s = spec.scale
    nav = navigation_width(spec)
    content_x = nav + s(40)
    content_w = spec.width - content_x - s(80)
    content_top = s(150)
    slot_spacing = s(18)
    slot_w = min(s(420), (content_w - 2 * slot_spacing) // 3)
    thumb_w = slot_w - 2 * s(12)
    thumb_h = round(thumb_w * spec.height / spec.width)
    choice_top = s(70)
    quick_h = s(44)
    values: list[tuple[str, Any]] = [
        ("gui.accent_color", p.accent),
        ("gui.idle_color", p.idle),
        ("gui.hover_color", "#ffd79a"),
        ("gui.selected_color", p.text),
        ("gui.insensitive_color", p.insensitive + "99"),
        ("gui.muted_color", p.muted),
        ("gui.panel_color", p.panel),
        ("gui.text_color", p.text),
        ("gui.interface_text_color", p.text),
        ("gui.text_font", font["text"]),
        ("gui.name_text_font", font["name"]),
        ("gui.interface_text_font", font["interface"]),
        ("gui.text_size", spec.text_size),
        ("gui.line_spacing", spec.line_spacing),
        ("gui.name_text_size", spec.name_text_size),
        ("gui.interface_text_size", spec.interface_text_size),
        ("gui.label_text_size", s(38)),
        ("gui.notify_text_size", s(26)),
        ("gui.title_text_size", s(58)),
        ("gui.game_title_size", s(96)),
        ("gui.version_text_size", s(26)),
        ("gui.textbox_height", spec.textbox_height),
        ("gui.textbox_top", spec.height - spec.textbox_height),
        ("gui.name_xpos", spec.dialogue_xpos - s(14)),
        ("gui.name_ypos", spec.dialogue_ypos - s(10)),
        ("gui.namebox_padding", (s(22), s(8), s(22), s(8))),
        ("gui.namebox_borders", (s(14), s(14), s(14), s(14))),
        ("gui.dialogue_xpos", spec.dialogue_xpos),
        ("gui.dialogue_ypos", spec.dialogue_ypos),
        ("gui.dialogue_width", spec.dialogue_width),
        ("gui.dialogue_lines", spec.dialogue_lines),
        ("gui.side_image_width", spec.side_image_width),
        ("gui.side_image_height", spec.side_image_height),
        ("gui.choice_button_width", min(spec.width - s(160), s(1180))),
        ("gui.choice_button_padding", (s(40), s(16), s(40), s(16))),
        ("gui.choice_button_borders", (s(14), s(14), s(14), s(14))),
        ("gui.choice_button_text_size", spec.text_size),
        ("gui.choice_top", choice_top),
        ("gui.choice_area_height", spec.height - spec.textbox_height - quick_h - choice_top - s(24)),
        ("gui.choice_spacing", s(18)),
        ("gui.quick_button_text_size", s(22)),
        ("gui.quick_menu_height", quick_h),
        ("gui.navigation_xpos", s(80)),
        ("gui.navigation_width", nav),
        ("gui.navigation_spacing", s(10)),
        ("gui.navigation_text_size", s(38)),
        ("gui.main_menu_title_ypos", s(130)),
        ("gui.main_menu_title_width", round(spec.width * 0.5)),
        ("gui.main_menu_navigation_ypos", round(spec.height * 0.5)),
        ("gui.menu_content_xpos", content_x),
        ("gui.menu_content_ypos", content_top),
        ("gui.menu_content_width", content_w),
        ("gui.menu_content_height", spec.height - content_top - s(70)),
        ("gui.menu_title_ypos", s(48)),
        ("gui.frame_borders", (s(24), s(24), s(24), s(24))),
        ("gui.frame_padding", (s(48), s(40), s(48), s(40))),
        ("gui.button_padding", (s(12), s(6), s(12), s(6))),
        ("gui.file_slot_cols", 3),
        ("gui.file_slot_rows", 2),
        ("gui.slot_button_width", slot_w),
        ("gui.slot_button_height", thumb_h + s(96)),
        ("gui.slot_button_padding", (s(12), s(12), s(12), s(12))),
        ("gui.slot_button_text_size", s(22)),
        ("gui.slot_spacing", slot_spacing),
        ("gui.page_button_text_size", s(30)),
        ("gui.pref_spacing", s(14)),
        ("gui.pref_column_width", s(420)),
        ("gui.bar_size", s(30)),
        ("gui.slider_width", s(520)),
        ("gui.scrollbar_size", s(14)),
        ("gui.history_name_width", s(260)),
        ("gui.history_text_width", min(s(1100), content_w - s(300))),
        ("gui.history_spacing", s(20)),
        ("gui.confirm_width", min(spec.width - s(200), s(1100))),
        ("gui.notify_ypos", s(60)),
        ("gui.skip_ypos", s(20)),
        ("gui.nvl_text_xpos", round((spec.width - spec.nvl_width) / 2)),
        ("gui.nvl_text_width", spec.nvl_width),
        ("gui.nvl_top", s(60)),
        ("gui.nvl_lines", spec.nvl_lines),
        ("gui.nvl_spacing", spec.line_spacing * 2),
        ("gui.nvl_list_length", spec.nvl_lines),
        ("gui.end_title_size", s(110)),
        ("config.thumbnail_width", thumb_w),
        ("config.thumbnail_height", thumb_h),
    ]
    out = [
        header.rstrip(),
        "## The interface's sizes, colours and fonts, for a "
        f"{spec.width}x{spec.height} window. screens.rpy uses only these names.",
        "",
        "init offset = -2",
        "",
        "init python:",
        f"    gui.init({spec.width}, {spec.height})",
        "",
        *(f"define {name} = {_value(name, value)}" for name, value in values),
        "",
        "define gui.language = 'unicode'",
        "define gui.show_name = True",
        "define config.history_length = 250",
        "# A menu's caption stays in the text box (said by the narrator) while the choices are shown above it.",
        "define config.narrator_menu = True",
        "# A card portrait is shown beside the text box when that character is not standing on the stage.",
        "define config.side_image_only_not_showing = True",
        "",
    ]
    return "\n".join(out)


def _value(name: str, value: Any) -> str:
    if isinstance(value, tuple) and name.endswith("_borders"):
        return f"Borders{value!r}"
    return repr(value) if isinstance(value, tuple) else py_literal(value)


def about_text(project: Project) -> str:
    """The About screen's credits: the project's description and authors and the character cards' creators."""
    lines: list[str] = []
    meta = project.meta
    if isinstance(meta.get("description"), str) and meta["description"].strip():
        lines += [" ".join(meta["description"].split()), ""]
    nested = meta["metadata"] if isinstance(meta.get("metadata"), dict) else {}
    for key, title in (("author", "Written by"), ("authors", "Written by"), ("credits", "")):
        value = meta.get(key, nested.get(key))
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            value = ", ".join(v.strip() for v in value)
        if isinstance(value, str) and value.strip():
            lines.append(f"{title} {' '.join(value.split())}".strip())
    for spec in project.characters.values():
        if not isinstance(spec, dict):
            continue
        card = (spec.get("metadata") or {}).get("card") if isinstance(spec.get("metadata"), dict) else None
        creator = card.get("creator") if isinstance(card, dict) else None
        if isinstance(creator, str) and creator.strip():
            lines.append(f"Character card \u201c{spec.get('name') or ''}\u201d by {creator.strip()}")
    return "\n".join(lines).strip()


def screens_file(header: str) -> str:
    """``screens.rpy``: styles and every screen of the shell (`SCREENS`); the same for every project."""
    return header.rstrip() + "\n" + _screens_text()


@functools.cache
def _screens_text() -> str:
    return (resources.files(__package__) / "shell_rpy" / "screens.rpy").read_text(encoding="utf-8")
