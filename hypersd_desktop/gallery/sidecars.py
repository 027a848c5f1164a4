"""Generation parameters kept beside an image instead of in it, for images whose file says nothing.

- AUTOMATIC1111 (and Forge) with "Create a text file next to every image with generation parameters": the
  `parameters` text in `<image name>.txt`.
- Fooocus, which by default writes no metadata into its images: each day's output folder has a `log.html`
  listing every image made there, each entry with a "Copy to Clipboard" button holding the image's settings as
  URL-quoted JSON in Fooocus's own scheme (the keys of its `parameters` JSON).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from functools import lru_cache
from pathlib import Path

from hypersd_desktop.gallery.formats import ImageMetadata, parse_a1111
from hypersd_desktop.gallery.formats.fooocus import parse_fooocus

MAX_TEXT_BYTES = 1024 * 1024  # a parameters text beside an image
MAX_LOG_BYTES = 64 * 1024 * 1024  # a Fooocus day's log: ~3 kB an image
FOOOCUS_LOG = "log.html"

# In one image's entry: its file name (the link around its picture) and its settings (the button's call)
_LINK = re.compile(r'<a href="([^"<>]+)"')
_BUTTON = re.compile(r"to_clipboard\('([^'<>]*)'\)")


def sidecar_metadata(path: Path) -> ImageMetadata | None:
    """What the files beside an image say of it, or None."""
    text = path.with_suffix(".txt")
    try:
        if text.is_file() and text.stat().st_size <= MAX_TEXT_BYTES:
            found = parse_a1111(text.read_text(encoding="utf-8", errors="replace"))
            if found is not None:
                return found
        log = path.parent / FOOOCUS_LOG
        if log.is_file():
            stat = log.stat()
            entry = _fooocus_log(str(log), stat.st_mtime_ns, stat.st_size).get(path.name)
            return parse_fooocus(entry) if entry else None
    except OSError:
        return None
    return None


@lru_cache(maxsize=4)  # an import walks a folder's images one by one: its log is read once
def _fooocus_log(path: str, _mtime_ns: int, size: int) -> dict[str, str]:
    """The JSON text of each image a Fooocus log lists, by file name."""
    if size > MAX_LOG_BYTES:
        return {}
    html = Path(path).read_text(encoding="utf-8", errors="replace")
    entries: dict[str, str] = {}
    for block in html.split('class="image-container"')[1:]:  # an entry of a version without the button has none
        link, button = _LINK.search(block), _BUTTON.search(block)
        if link is None or button is None:
            continue
        text = urllib.parse.unquote(button[1])
        try:
            if isinstance(json.loads(text), dict):
                entries.setdefault(urllib.parse.unquote(link[1]), text)  # the newest first: Fooocus prepends
        except (ValueError, RecursionError):
            continue
    return entries
