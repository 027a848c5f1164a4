"""Painting programs' own files as pictures: Krita's `.kra` and OpenRaster's `.ora` (MyPaint, Krita, GIMP, Pinta).

Both are zip files whose first entry, `mimetype`, names the kind, and both keep the picture as the program showed
it, all layers put together, as `mergedimage.png` (OpenRaster since version 0.0.5 of its specification, Krita since
2.9). An OpenRaster file without one (MyPaint wrote none before 1.2) is put together here from its layers
(`stack.xml`): each visible layer over the ones below it at its place and opacity, a group first on its own.
Blending modes other than "over" (multiply, screen, MyPaint's pigment mode) are taken as "over": a sketch's layers
are nearly always plain, and such a file is an old one. Photoshop's files are `photoshop.py`'s (and Pillow's).

`register()` makes these Pillow formats ("KRA", "ORA"), so every place that opens a picture reads them; the app
keeps each as PNG when it comes in (`images.kept_bytes`).
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from functools import cache
from typing import TYPE_CHECKING

from hypersd_desktop.core.stub_formats import StubLoader

if TYPE_CHECKING:  # read only where a file is opened: the window starts without it
    from xml.etree import ElementTree

MIMETYPES = {"KRA": "application/x-krita", "ORA": "image/openraster"}
KINDS = {"KRA": "a Krita file", "ORA": "an OpenRaster file"}
MERGED = "mergedimage.png"
STACK = "stack.xml"
MOST_ENTRY_BYTES = 1 << 30  # a merged picture or layer larger than this is no 8192² picture: refused, not read
MOST_STACK_BYTES = 4 << 20
MOST_GROUP_DEPTH = 32  # groups within groups: each is put together on a canvas of its own
ZIP_START = b"PK\x03\x04"
# what reading a damaged zip file raises: its entries' headers, lengths, compression and names may be anything
# (SyntaxError: ElementTree's ParseError is one)
_DAMAGED = (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, OSError, ValueError, EOFError,
            struct.error, SyntaxError, UnicodeDecodeError, KeyError)


class PaintingError(SyntaxError):
    """Not a painting file of the kind tried (Pillow then tries its other formats), or one that cannot be read."""


def painting_kind(data: bytes) -> str | None:
    """"KRA" or "ORA" where a file's bytes are those of a Krita or OpenRaster file (a zip file whose `mimetype`
    entry names the kind: its first, as both programs write it, or anywhere, as other zip tools may have put it);
    None otherwise."""
    if not data.startswith(ZIP_START) or len(data) < 30:
        return None
    name_length, extra_length = int.from_bytes(data[26:28], "little"), int.from_bytes(data[28:30], "little")
    if data[30:30 + name_length] == b"mimetype":
        start = 30 + name_length + extra_length
        found = _kind_named(data[start:start + 64])
        if found:
            return found
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return _kind_of(archive)
    except _DAMAGED:
        return None


def _kind_named(mimetype: bytes) -> str | None:
    return next((kind for kind, name in MIMETYPES.items() if mimetype.strip().startswith(name.encode())), None)


def _kind_of(archive: zipfile.ZipFile) -> str | None:
    try:
        return _kind_named(_entry(archive, "mimetype", 256))
    except (PaintingError, *_DAMAGED):
        return None


def is_procreate(data: bytes) -> bool:
    """Whether a file's bytes are Procreate's (a zip of its own archive and tiles, with no picture read here)."""
    if not data.startswith(ZIP_START):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "Document.archive" in archive.namelist()
    except _DAMAGED:
        return False


def why_unread(data: bytes) -> str | None:
    """What to do with a Krita or OpenRaster file that holds no picture the app can read, in words; None where it
    holds one or is no such file."""
    kind = painting_kind(data)
    if kind is None:
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except _DAMAGED:
        return None  # cut short: said as for any damaged picture
    if MERGED in names or (kind == "ORA" and STACK in names):
        return None
    program = "Krita" if kind == "KRA" else "the program that made it"
    return (f"{KINDS[kind]} saved without its merged picture ({MERGED}); open it in {program} and save it again, "
            "or export it as PNG")


def _entry(archive: zipfile.ZipFile, name: str, most: int = MOST_ENTRY_BYTES) -> bytes:
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise PaintingError(f"no {name} in the file") from None
    if info.file_size > most:
        raise PaintingError(f"{name} is {info.file_size:,} bytes")
    return archive.read(info)


def _merged_or_put_together(im):
    """The picture `_PaintingFile._open` found: the merged picture, or the layers put together."""
    from PIL import Image

    try:
        if im.merged is not None:
            return Image.open(io.BytesIO(im.merged))
        return _put_together(im.archive, im.stack, im.size)
    except _DAMAGED as error:
        raise PaintingError(f"a damaged layer: {error}") from None
    finally:
        if im.archive is not None:
            im.archive.close()


def _painting_file(kind: str):
    from PIL import ImageFile

    class PaintingFile(ImageFile.StubImageFile):
        format = kind
        format_description = KINDS[kind][KINDS[kind].index(" ") + 1:]

        def _open(self) -> None:
            from xml.etree import ElementTree

            from PIL import Image

            try:
                archive = zipfile.ZipFile(self.fp)
            except _DAMAGED:
                raise PaintingError(f"not {KINDS[kind]}") from None
            if _kind_of(archive) != kind:
                archive.close()
                raise PaintingError(f"not {KINDS[kind]}")
            try:
                names = set(archive.namelist())
                self.merged, self.archive, self.stack = None, None, None
                if kind == "ORA" and STACK in names:
                    self.stack = ElementTree.fromstring(_entry(archive, STACK, MOST_STACK_BYTES))
                    self._mode, self._size = "RGBA", (int(self.stack.get("w", 0)), int(self.stack.get("h", 0)))
                if MERGED in names:
                    merged = _entry(archive, MERGED)
                    with Image.open(io.BytesIO(merged)) as opened:
                        mode, size = opened.mode, opened.size
                    # the layers where a merged picture is not of the file's size (a stand-in some writers leave)
                    if self.stack is None or size == self._size:
                        self.merged, self._mode, self._size = merged, mode, size
                if self.merged is not None:
                    archive.close()
                elif self.stack is not None:
                    if min(self._size) < 1:
                        raise PaintingError("stack.xml gives no size")
                    self.archive = archive
                else:
                    raise PaintingError(f"no {MERGED} in the file")
            except _DAMAGED as error:
                archive.close()
                raise PaintingError(f"a damaged {KINDS[kind]}: {error}") from None
            self._handler = StubLoader(_merged_or_put_together)

    PaintingFile.__name__ = PaintingFile.__qualname__ = f"{kind}PaintingFile"
    return PaintingFile


@cache
def register() -> None:
    """Let Pillow open Krita and OpenRaster files (once): `Image.open` gives their merged picture."""
    from PIL import Image

    for kind in MIMETYPES:
        factory = _painting_file(kind)
        Image.register_open(kind, factory, lambda prefix: prefix.startswith(ZIP_START))
        Image.register_extensions(kind, [f".{kind.lower()}"])


def _put_together(archive: zipfile.ZipFile, image: ElementTree.Element, size: tuple[int, int]):
    """An OpenRaster file's picture from its layers: the root `stack` element's, bottom first."""
    from PIL import Image

    root = image.find("stack")
    canvas = Image.new("RGBA", size)
    if root is not None:
        _stack_onto(canvas, archive, root, (0, 0), 0)
    return canvas


def _stack_onto(canvas, archive: zipfile.ZipFile, stack: ElementTree.Element, origin: tuple[int, int],
                depth: int) -> None:
    """Put a stack's visible layers and groups onto `canvas`; its first child is its top one (OpenRaster's order)."""
    from PIL import Image

    if depth > MOST_GROUP_DEPTH:
        raise PaintingError(f"groups nested more than {MOST_GROUP_DEPTH} deep")
    for child in reversed(list(stack)):
        if child.get("visibility", "visible") == "hidden" or child.tag not in ("layer", "stack"):
            continue
        place = origin[0] + _number(child, "x"), origin[1] + _number(child, "y")
        if child.tag == "stack":
            group = Image.new("RGBA", canvas.size)
            _stack_onto(group, archive, child, place, depth + 1)
            layer, place = group, (0, 0)
        else:
            layer = _layer(archive, child, canvas.size)
            if layer is None:
                continue
        _over(canvas, _faded(layer, _number(child, "opacity", 1.0)), place)


def _layer(archive: zipfile.ZipFile, element: ElementTree.Element, size: tuple[int, int]):
    """A layer's picture as RGBA; MyPaint's background, kept as a tile, repeated over the canvas."""
    from PIL import Image

    source = element.get("src")
    if not source or source not in archive.namelist():
        return None
    with Image.open(io.BytesIO(_entry(archive, source))) as opened:
        layer = opened.convert("RGBA")
    tiled = any(name.endswith(("background_tile", "background-tile")) for name in element.attrib)
    if tiled and layer.size != size:  # a row of tiles, then rows down: few pastes however small the tile
        row = Image.new("RGBA", (size[0], layer.height))
        for left in range(0, size[0], layer.width):
            row.paste(layer, (left, 0))
        layer = Image.new("RGBA", size)
        for top in range(0, size[1], row.height):
            layer.paste(row, (0, top))
    return layer


def _number(element: ElementTree.Element, name: str, default: float = 0):
    """An attribute's number: an opacity, 0 to 1, where `default` is a float, else a whole number (a place);
    `default` for junk."""
    try:
        value = float(element.get(name, default))
        if value != value:  # "nan"
            return default
        return min(max(value, 0.0), 1.0) if isinstance(default, float) else int(value)
    except (ValueError, OverflowError):  # not a number, "inf"
        return default


def _faded(layer, opacity: float):
    if opacity >= 1:
        return layer
    alpha = layer.getchannel("A").point(lambda value: round(value * opacity))
    faded = layer.copy()
    faded.putalpha(alpha)
    return faded


def _over(canvas, layer, place: tuple[int, int]) -> None:
    """`layer` over `canvas` with its top left at `place` (which may be off the canvas), the part outside left out."""
    left, top = max(place[0], 0), max(place[1], 0)
    right, bottom = min(place[0] + layer.width, canvas.width), min(place[1] + layer.height, canvas.height)
    if right <= left or bottom <= top:
        return
    source = (left - place[0], top - place[1], right - place[0], bottom - place[1])
    canvas.alpha_composite(layer, (left, top), source)

