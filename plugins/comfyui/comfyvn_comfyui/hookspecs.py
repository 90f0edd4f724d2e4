"""Extension points the ComfyUI bridge publishes (added to the kernel's manager via ``add_hookspecs``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from comfyvn.hookspecs import hookspec

if TYPE_CHECKING:
    from comfyvn import Kernel


@hookspec(firstresult=True)
def comfyui_matte_sprite(image: bytes, kernel: Kernel) -> dict[str, Any] | None:
    """Cut the figure out of a sprite render that the bridge's own matte could not key. ``firstresult``.

    Called with the render's PNG bytes when its border is not one flat colour (the flood fill from the
    border then has no backdrop to remove, typically scenery drawn around the figure), and not when the
    render is already transparent. ``kernel`` is the rendering kernel (its config and flags).

    Return ``{"png": bytes, "method": str, "model": str, "provider": str, "warnings": [str, ...]}`` (an
    RGBA PNG of the same size with a transparent border; ``method`` names the technique, e.g. ``depth``;
    ``model`` the model file's base name, never a path; ``provider`` what ran it), or None to pass
    the question on. The sprite's provenance records the answer (without ``png``) under ``matte``. With
    no answer, an answer that is not such a cut-out, or an implementation that raises, the render is kept
    as it came (its backdrop visible in the game) and the provenance says so.
    """
