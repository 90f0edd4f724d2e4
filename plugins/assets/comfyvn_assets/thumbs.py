"""Thumbnails: ``<cache>/assets/thumbs/<sha256>.png``, at most 256 px on a side, made by one background
thread after a registration (never blocking it) or on demand when asked for before they are ready."""

from __future__ import annotations

import contextlib
import io
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import structlog
from comfyvn.paths import atomic_write_bytes
from PIL import Image, ImageOps

__all__ = ["THUMB_SIZE", "Thumbnailer"]

log = structlog.get_logger("comfyvn.assets.thumbs")
THUMB_SIZE = 256


class Thumbnailer:
    """Makes and finds thumbnails below ``folder``."""

    def __init__(self, folder: Path, size: int = THUMB_SIZE) -> None:
        self.folder, self.size = folder, size
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._pending: set[Future[Path | None]] = set()

    def path(self, sha256: str) -> Path:
        return self.folder / f"{sha256}.png"

    def make(self, sha256: str, source: Path) -> Path:
        """The thumbnail of the image ``source`` (whose bytes hash to ``sha256``), made if missing."""
        target = self.path(sha256)
        if target.is_file():
            return target
        with Image.open(source) as image:
            image.draft("RGB", (self.size * 2, self.size * 2))  # JPEG: decode at a reduced scale
            picture = ImageOps.exif_transpose(image)
            picture.thumbnail((self.size, self.size))
            if picture.mode not in ("RGB", "RGBA", "L", "LA"):
                picture = picture.convert("RGBA")
            buffer = io.BytesIO()
            picture.save(buffer, format="PNG", optimize=True)
        return atomic_write_bytes(target, buffer.getvalue())

    def _background(self, sha256: str, source: Path) -> Path | None:
        try:
            return self.make(sha256, source)
        except Exception:  # a thumbnail is a convenience: log, and the next request makes it synchronously
            log.warning("thumbnail failed", sha256=sha256, exc_info=True)
            return None

    def schedule(self, sha256: str, source: Path) -> None:
        """Queue the thumbnail of ``source`` on the background thread."""
        if self.path(sha256).is_file():
            return
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="comfyvn-thumbs")
            future = self._executor.submit(self._background, sha256, source)
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[Path | None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def wait(self, timeout: float | None = None) -> None:
        """Wait for every queued thumbnail."""
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            with contextlib.suppress(Exception):
                future.result(timeout)

    def close(self) -> None:
        """Finish queued thumbnails and stop the thread."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def remove(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(sha256).unlink()
