"""The interface pictures of an exported game (text box, name box, frames, buttons, overlays), drawn with Pillow.

Every export writes its own, so a game needs no Ren'Py SDK step (``renpy gui_images``) and no files from
Ren'Py's template. Drawing is pure: the same `GuiSpec` and `Palette` give the same pixels, and PNGs are
saved without timestamps or other metadata, so the bytes are the same on every export.
"""

from __future__ import annotations

import io

import attrs
from PIL import Image, ImageDraw

from .gui import GuiSpec

__all__ = ["Palette", "gui_images", "png_bytes", "rounded_panel"]

# Shapes are drawn this many times larger, then reduced: smooth (antialiased) edges, still deterministic.
_SUPERSAMPLE = 4


@attrs.frozen
class Palette:
    """The colours of the interface (``#rrggbb``); screens and pictures share them."""

    panel: str = "#10131f"
    accent: str = "#e3a857"
    text: str = "#f3f0e8"
    idle: str = "#b4b8c8"
    insensitive: str = "#5d6274"
    muted: str = "#3a3f52"


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _rgba(colour: str, alpha: float) -> tuple[int, int, int, int]:
    return (*_rgb(colour), max(0, min(255, round(alpha * 255))))


def png_bytes(image: Image.Image) -> bytes:
    """PNG bytes with no metadata chunks (no time, no text): the same pixels always give the same bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=9, optimize=False)
    return buffer.getvalue()


def rounded_panel(
    width: int,
    height: int,
    radius: int,
    fill: tuple[int, int, int, int],
    outline: tuple[int, int, int, int] | None = None,
    border: int = 0,
) -> Image.Image:
    """A rounded rectangle of ``width`` x ``height`` with antialiased corners and an optional border."""
    k = _SUPERSAMPLE
    big = Image.new("RGBA", (width * k, height * k), (0, 0, 0, 0))
    draw = ImageDraw.Draw(big)
    box = (0, 0, width * k - 1, height * k - 1)
    if outline is not None and border > 0:
        draw.rounded_rectangle(box, radius=radius * k, fill=outline)
        inner = (border * k, border * k, width * k - 1 - border * k, height * k - 1 - border * k)
        draw.rounded_rectangle(inner, radius=max(0, radius - border) * k, fill=fill)
    else:
        draw.rounded_rectangle(box, radius=radius * k, fill=fill)
    return big.resize((width, height), Image.Resampling.LANCZOS)


def _textbox(spec: GuiSpec, palette: Palette) -> Image.Image:
    """Full-width band behind the dialogue: a soft top edge, a thin accent rule, darker towards the bottom."""
    width, height = spec.width, spec.textbox_height
    column = Image.new("RGBA", (1, height))
    fade = spec.scale(18)
    for y in range(height):
        alpha = 0.80 + 0.14 * (y / max(1, height - 1))
        if y < fade:
            alpha *= (y + 1) / fade
        column.putpixel((0, y), _rgba(palette.panel, alpha))
    band = column.resize((width, height), Image.Resampling.NEAREST)
    row = Image.new("RGBA", (width, 1))
    for x in range(width):
        # Brightest in the middle, fading out towards both sides.
        edge = min(x, width - 1 - x) / (width / 2)
        row.putpixel((x, 0), _rgba(palette.accent, 0.75 * min(1.0, edge * 2.5)))
    rule = row.resize((width, max(1, spec.scale(2))), Image.Resampling.NEAREST)
    band.alpha_composite(rule, (0, fade))
    return band


def _horizontal_fade(spec: GuiSpec, palette: Palette, reach: float, strength: float) -> Image.Image:
    """Dark on the left, clear after ``reach`` of the width: the title screen's menu side stays readable.

    Only a few rows high: the screens stretch it to the window (each row is the same).
    """
    row = Image.new("RGBA", (spec.width, 1))
    end = max(1, round(spec.width * reach))
    for x in range(spec.width):
        t = min(1.0, x / end)
        row.putpixel((x, 0), _rgba(palette.panel, strength * (1 - t) ** 1.6))
    return row.resize((spec.width, 4), Image.Resampling.NEAREST)


def _game_menu_overlay(spec: GuiSpec, palette: Palette, nav_width: int) -> Image.Image:
    """A dim veil over the whole screen and a darker column where the navigation sits (stretched like the fade)."""
    row = Image.new("RGBA", (spec.width, 1))
    for x in range(spec.width):
        row.putpixel((x, 0), _rgba(palette.panel, 0.93 if x < nav_width else 0.84))
    return row.resize((spec.width, 4), Image.Resampling.NEAREST)


def _thumb(size: int, palette: Palette, hover: bool) -> Image.Image:
    k = _SUPERSAMPLE
    big = Image.new("RGBA", (size * k, size * k), (0, 0, 0, 0))
    draw = ImageDraw.Draw(big)
    fill = _rgba(palette.text if hover else palette.accent, 1.0)
    draw.ellipse((0, 0, size * k - 1, size * k - 1), fill=_rgba(palette.panel, 1.0))
    inset = max(1, size // 8) * k
    draw.ellipse((inset, inset, size * k - 1 - inset, size * k - 1 - inset), fill=fill)
    return big.resize((size, size), Image.Resampling.LANCZOS)


def _icon(palette: Palette) -> Image.Image:
    """A speech bubble in the accent colour: the window's icon."""
    size, k = 64, _SUPERSAMPLE
    big = Image.new("RGBA", (size * k, size * k), (0, 0, 0, 0))
    draw = ImageDraw.Draw(big)
    draw.rounded_rectangle((4 * k, 6 * k, 60 * k, 46 * k), radius=12 * k, fill=_rgba(palette.accent, 1.0))
    draw.polygon([(16 * k, 44 * k), (14 * k, 60 * k), (32 * k, 44 * k)], fill=_rgba(palette.accent, 1.0))
    for cx in (18, 32, 46):
        draw.ellipse(((cx - 4) * k, 22 * k, (cx + 4) * k, 30 * k), fill=_rgba(palette.panel, 1.0))
    return big.resize((size, size), Image.Resampling.LANCZOS)


def _silhouette(palette: Palette) -> Image.Image:
    """A neutral standing figure (head and shoulders down to the feet) for a sprite whose file is missing.

    Drawn near-white so that a ``TintMatrix`` gives each missing sprite its own colour.
    """
    width, height, k = 200, 480, _SUPERSAMPLE
    big = Image.new("RGBA", (width * k, height * k), (0, 0, 0, 0))
    draw = ImageDraw.Draw(big)
    body = _rgba("#f4f4f4", 0.92)
    draw.ellipse((62 * k, 8 * k, 138 * k, 96 * k), fill=body)
    draw.rounded_rectangle((24 * k, 108 * k, 176 * k, 330 * k), radius=48 * k, fill=body)
    draw.rounded_rectangle((48 * k, 300 * k, 96 * k, 479 * k), radius=18 * k, fill=body)
    draw.rounded_rectangle((104 * k, 300 * k, 152 * k, 479 * k), radius=18 * k, fill=body)
    return big.resize((width, height), Image.Resampling.LANCZOS)


def gui_images(spec: GuiSpec, palette: Palette, nav_width: int) -> dict[str, bytes]:
    """``game/gui/…`` path → PNG bytes for every picture the exported screens use."""
    radius = spec.scale(12)
    panel = _rgba(palette.panel, 0.94)
    images: dict[str, Image.Image] = {
        "textbox.png": _textbox(spec, palette),
        "namebox.png": rounded_panel(
            4 * radius, 4 * radius, radius, _rgba(palette.panel, 0.96), _rgba(palette.accent, 0.9), spec.scale(2)
        ),
        "frame.png": rounded_panel(
            6 * radius, 6 * radius, 2 * radius, panel, _rgba(palette.idle, 0.35), max(1, spec.scale(2))
        ),
        "button/choice_idle_background.png": rounded_panel(
            4 * radius, 4 * radius, radius, _rgba(palette.panel, 0.86), _rgba(palette.idle, 0.45), max(1, spec.scale(2))
        ),
        "button/choice_hover_background.png": rounded_panel(
            4 * radius, 4 * radius, radius, _rgba(palette.muted, 0.96), _rgba(palette.accent, 1.0), spec.scale(3)
        ),
        "button/slot_idle_background.png": rounded_panel(
            4 * radius, 4 * radius, radius, _rgba(palette.text, 0.06), _rgba(palette.idle, 0.25), max(1, spec.scale(2))
        ),
        "button/slot_hover_background.png": rounded_panel(
            4 * radius, 4 * radius, radius, _rgba(palette.accent, 0.18), _rgba(palette.accent, 0.9), spec.scale(2)
        ),
        "slider/thumb_idle.png": _thumb(spec.scale(34), palette, hover=False),
        "slider/thumb_hover.png": _thumb(spec.scale(34), palette, hover=True),
        "overlay/main_menu.png": _horizontal_fade(spec, palette, reach=0.62, strength=0.9),
        "overlay/game_menu.png": _game_menu_overlay(spec, palette, nav_width),
        "window_icon.png": _icon(palette),
        "placeholder_sprite.png": _silhouette(palette),
    }
    return {f"game/gui/{name}": png_bytes(image) for name, image in images.items()}
