"""What the picture formats read here (`photoshop`, `gimp`, `paintings`, `jpegxl`) share as Pillow formats.

Each is a Pillow `StubImageFile`: opening a file reads only what its size and mode need; `StubLoader` makes the
picture when its pixels are asked for, and the image Pillow opened becomes that picture.
"""

from __future__ import annotations

from collections.abc import Callable


class StubLoader:
    """Pillow's handler of a stub format: `decode(im)` gives the picture of the opened file `im` (read from `im.fp`)."""

    def __init__(self, decode: Callable) -> None:
        self.decode = decode

    def open(self, im) -> None:
        pass

    def load(self, im):
        try:
            return self.decode(im)
        finally:
            # the file Image.open opened by its path: the image `im` becomes no longer holds it
            if getattr(im, "_exclusive_fp", False) and im.fp:
                im.fp.close()
