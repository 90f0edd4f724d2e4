"""The geometry of an exported game's interface, computed once from the resolution.

The screens writer lays the text box out with these numbers and the text paginator measures pages
against them, so a page that fits here fits on the player's screen. Sizes follow the proportions of
Ren'Py's own 1920x1080 template and scale linearly with the window height.
"""

from __future__ import annotations

import attrs
from comfyvn.errors import Invalid

__all__ = ["DEFAULT_RESOLUTION", "MIN_RESOLUTION", "GuiSpec", "gui_spec", "parse_resolution"]

DEFAULT_RESOLUTION = (1920, 1080)
MIN_RESOLUTION = (1280, 720)
MAX_RESOLUTION = (7680, 4320)


@attrs.frozen
class GuiSpec:
    """Pixel sizes of one export's interface (all integers, in screen pixels)."""

    width: int
    height: int
    text_size: int
    name_text_size: int
    interface_text_size: int
    textbox_height: int
    dialogue_xpos: int
    dialogue_ypos: int
    dialogue_width: int
    dialogue_lines: int
    line_spacing: int
    side_image_width: int
    nvl_width: int
    nvl_lines: int

    @property
    def line_height(self) -> int:
        """Distance between two baselines of dialogue text."""
        return self.text_size + self.line_spacing

    @property
    def dialogue_height(self) -> int:
        """Pixels of the text box below the dialogue's top: a page drawn with the real font's line height
        (ascent + descent + ``line_spacing``) must fit here, or its last line leaves the screen."""
        return self.textbox_height - self.dialogue_ypos - _scaled(8, self.height / 1080)

    @property
    def factor(self) -> float:
        """How much larger than Ren'Py's 1080-pixel-high reference layout this window is."""
        return self.height / 1080

    def scale(self, value: float) -> int:
        """``value`` pixels of the 1080-high reference layout, in this window's pixels (at least 1)."""
        return _scaled(value, self.factor)

    @property
    def sprite_max_height(self) -> int:
        """Tallest a standing sprite is drawn: the whole figure stays below the top edge."""
        return round(self.height * 0.92)

    @property
    def sprite_max_width(self) -> int:
        """Widest a standing sprite is drawn, so that three characters can share the stage."""
        return round(self.width * 0.45)

    @property
    def side_image_height(self) -> int:
        """Tallest a side image (a character's portrait beside the text box) is drawn."""
        return round(self.side_image_width * 1.25)


def _scaled(value: float, factor: float) -> int:
    return max(1, round(value * factor))


def gui_spec(width: int, height: int) -> GuiSpec:
    """The interface geometry for a ``width`` x ``height`` window."""
    factor = height / 1080
    text_size = _scaled(33, factor)
    line_spacing = _scaled(8, factor)
    textbox_height = _scaled(278, factor)
    dialogue_ypos = _scaled(75, factor)
    # The side image sits in the text box's left margin; dialogue starts to its right.
    dialogue_xpos = _scaled(402, factor) + max(0, (width - round(1920 * factor)) // 2)
    dialogue_width = min(_scaled(1116, factor), width - dialogue_xpos - _scaled(80, factor))
    usable = textbox_height - dialogue_ypos - _scaled(20, factor)
    lines = max(2, usable // (text_size + line_spacing))
    nvl_lines = max(6, (height - _scaled(160, factor)) // (text_size + line_spacing))
    return GuiSpec(
        width=width,
        height=height,
        text_size=text_size,
        name_text_size=_scaled(45, factor),
        interface_text_size=_scaled(33, factor),
        textbox_height=textbox_height,
        dialogue_xpos=dialogue_xpos,
        dialogue_ypos=dialogue_ypos,
        dialogue_width=dialogue_width,
        dialogue_lines=lines,
        line_spacing=line_spacing,
        side_image_width=_scaled(360, factor),
        nvl_width=width - _scaled(480, factor),
        nvl_lines=nvl_lines,
    )


def parse_resolution(value: str | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``"1920x1080"`` (or a pair) → ``(1920, 1080)``; at least 1280x720, at most 7680x4320."""
    if isinstance(value, str):
        parts = value.lower().replace("\u00d7", "x").split("x")
        if len(parts) != 2 or not all(p.strip().isdigit() and len(p.strip()) <= 5 for p in parts):
            raise Invalid("resolution must look like 1920x1080", field="resolution", code="invalid_resolution")
        pair = (int(parts[0]), int(parts[1]))
    elif (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        pair = (int(value[0]), int(value[1]))
    else:
        raise Invalid("resolution must look like 1920x1080", field="resolution", code="invalid_resolution")
    if not (MIN_RESOLUTION[0] <= pair[0] <= MAX_RESOLUTION[0] and MIN_RESOLUTION[1] <= pair[1] <= MAX_RESOLUTION[1]):
        raise Invalid(
            f"resolution must be between {MIN_RESOLUTION[0]}x{MIN_RESOLUTION[1]} and "
            f"{MAX_RESOLUTION[0]}x{MAX_RESOLUTION[1]}",
            field="resolution",
            code="invalid_resolution",
        )
    return pair
