"""Thumbnails cached on disk, made lazily on a small thread pool (never on the caller's thread)."""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from PIL import Image, ImageOps

from hypersd_desktop.core.files import write_atomic
from hypersd_desktop.core.images import eight_bit, open_any_size, too_many_pixels

DEFAULT_SIZE = 256
log = logging.getLogger("hypersd")


class Thumbnails:
    """`request(path)` returns a Future of the thumbnail's path; `path_if_ready` answers without work."""

    def __init__(self, cache_dir: Path, size: int = DEFAULT_SIZE, workers: int = 2) -> None:
        self.cache_dir = cache_dir
        self.size = size
        self.workers = workers
        self._said_unwritable = False  # the log says once that the cache cannot be written
        self._pool: ThreadPoolExecutor | None = None  # started by the first request: the worker and CLI never ask
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def cache_path(self, image: Path) -> Path:
        """Where the thumbnail of `image` lives; the name changes when the file or the size changes."""
        stat = image.stat()
        key = f"{image.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{self.size}".encode()
        digest = hashlib.sha1(key).hexdigest()
        return self.cache_dir / digest[:2] / f"{digest}.webp"

    def path_if_ready(self, image: Path) -> Path | None:
        try:
            target = self.cache_path(image)
        except OSError:
            return None
        return target if target.exists() else None

    def request(self, image: Path) -> Future[Path | bytes]:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="thumbnails")
            return self._pool.submit(self.make, image)

    def make(self, image: Path) -> Path | bytes:
        """Create the thumbnail now (in the calling thread) if it is not cached; returns its path, or its WebP
        bytes where the cache cannot be written (a full disk): the gallery still shows it."""
        target = self.cache_path(image)
        if target.exists():
            return target
        with open_any_size(image) as source:
            source.draft("RGB", (self.size, self.size))  # JPEG: decode at reduced size
            if too_many_pixels(source):  # a 16K² PNG: gigabytes to decode for a thumbnail
                raise ValueError(f"{image.name} has too many pixels ({source.width} × {source.height}) for a "
                                 "thumbnail")
            source = eight_bit(source)  # 16-bit grey scaled, not clipped to white
            if source.mode not in ("RGB", "RGBA", "L"):
                source = source.convert("RGBA")  # palette images: scale colours, not indices
            # Scale first, then turn upright and convert the small image: no full-size copies
            # (a quarter less time per thumbnail; the square box makes the order irrelevant).
            source.thumbnail((self.size, self.size), Image.Resampling.LANCZOS)
            thumb = ImageOps.exif_transpose(source.convert("RGB"))
        data = io.BytesIO()
        thumb.save(data, format="WEBP", quality=82, method=2)  # method 2: 2x faster to encode, same look
        try:
            write_atomic(target, data.getvalue())
        except OSError as error:
            if not self._said_unwritable:
                self._said_unwritable = True
                log.warning("thumbnails are not cached in %s (%s); they are made each time instead", self.cache_dir,
                            error)
            return data.getvalue()
        return target
