"""The chat's background picture: SillyTavern names it (``chat_metadata.custom_background``,
``url("backgrounds/<file>")``) but keeps the file in its own ``public/backgrounds/`` folder, so the chat
alone never carries it. The import copies it from a folder the user names (``--backgrounds DIR``) and
otherwise says which file is missing and where it goes, instead of a game that silently shows a colour.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from comfyvn.errors import ComfyVNError
from comfyvn.paths import safe_join

from .cast import AssetFile

__all__ = ["MAX_BACKGROUND_BYTES", "chat_background"]

MAX_BACKGROUND_BYTES = 64 << 20  # a picture; anything bigger is not copied


def _inside(ref: str) -> bool:
    parts = PurePosixPath(ref).parts
    return bool(parts) and not ref.startswith("/") and ".." not in parts


def _find(folder: Path, ref: str) -> Path | None:
    """The file ``ref`` names in SillyTavern's backgrounds ``folder``: by its path below ``backgrounds/``,
    else by its name alone. Never outside ``folder`` (`safe_join`)."""
    below = ref.removeprefix("backgrounds/")
    for candidate in dict.fromkeys((below, PurePosixPath(ref).name)):
        try:
            path = safe_join(folder, candidate, field="backgrounds")
        except ComfyVNError:
            continue
        if path.is_file():
            return path
    return None


def chat_background(ref: str | None, folder: Path | None) -> tuple[list[AssetFile], list[str]]:
    """The asset to copy for the chat's background ``ref`` (a project-relative path the scenes use) from
    ``folder``, and the warnings for a background that will be missing from the project."""
    if ref is None:
        return [], []
    name = PurePosixPath(ref).name
    where = f"put {name} in the project's {PurePosixPath(ref).parent.as_posix()}/ folder"
    if not _inside(ref):
        return [], [f"the chat's background {ref!r} is not a path inside the project; the scenes show a plain colour"]
    if folder is None:
        return [], [
            f"the chat's background {name} is not in the project (SillyTavern keeps it in its own backgrounds "
            f"folder), so the scenes show a plain colour: {where}, or import with --backgrounds DIR"
        ]
    found = _find(folder, ref)
    if found is None:
        return [], [f"the chat's background {name} is not in {folder}; the scenes show a plain colour: {where}"]
    if found.stat().st_size > MAX_BACKGROUND_BYTES:
        return [], [f"the chat's background {name} is larger than {MAX_BACKGROUND_BYTES >> 20} MiB and was not copied"]
    return [AssetFile(ref, source=found)], []
