"""GIMP's own files (`.xcf`) as pictures: their layers put together as GIMP shows them.

An XCF file keeps no picture of the whole, only its layers: each in tiles of 64 × 64 pixels (raw, run-length or
zlib encoded), in the image's precision (8 to 64 bits, integer or floating point, linear light or gamma encoded),
RGB, grey or indexed, with its place, opacity, mask, group and blending mode. This puts them together, bottom
first, as GIMP does: Normal, Behind, Erase and the blending modes that work a colour channel at a time (Multiply,
Screen, Overlay, Soft and Hard light, Dodge, Burn, Divide, Addition, Subtract, Difference, Exclusion, Grain extract
and merge, Darken and Lighten only, Linear, Vivid and Pin light, Linear burn, Hard mix), GIMP 2.10's and GIMP 2.8's
legacy ones, each blended and put together in the colour spaces the layer names (linear light or gamma encoded).
Dissolve's dots are random as GIMP's are, though not the same dots. The modes of hue, saturation, colour and
lightness, Color erase, Merge and Split are taken as Normal, as `paintings` does for OpenRaster's modes. A group is
put together on its own, or for a "pass through" one (GIMP 2.10's default), its layers onto what is below it, as
GIMP does. The canvas is put together a band of rows at a time, each layer's tiles decoded only where they meet the
band and the canvas, so memory stays a few bands' worth whatever the layers' sizes (a layer may reach far past the
canvas).

The format is GIMP's devel-docs/specifications/xcf.txt. `register()` makes it a Pillow format ("XCF"); the app
keeps the picture as PNG when it comes in (`images.kept_bytes`).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from functools import cache

from hypersd_desktop.core.stub_formats import StubLoader

SIGNATURE = b"gimp xcf "
NEWEST_VERSION = 23  # the newest XCF version seen (GIMP 3.0); newer ones are tried, and said so where they fail
TILE = 64
BAND_PIXELS = 1 << 20  # about this many pixels of the canvas are put together at a time (16 MiB as float32 RGBA)
MOST_LAYERS = 20_000
MOST_GROUP_DEPTH = 32
MOST_PROPERTY_BYTES = 64 << 20
RGB, GREY, INDEXED = 0, 1, 2
RAW, RLE, ZLIB = 0, 1, 2
# property types (xcf.txt chapters 2–5)
END, COLORMAP, FLOATING_SELECTION, OPACITY, MODE, VISIBLE, APPLY_MASK, OFFSETS, COMPRESSION, PARASITES = \
    0, 1, 5, 6, 7, 8, 11, 15, 17, 21
GROUP_ITEM, ITEM_PATH, FLOAT_OPACITY, COMPOSITE_SPACE, BLEND_SPACE = 29, 30, 33, 36, 37
PASS_THROUGH, ERASE, BEHIND, DISSOLVE = 61, 58, (2, 29), (1,)
# precision: (numpy type of a component, linear light) by the header's value, for XCF 7 and later
_PRECISIONS = {100: ("u1", True), 150: ("u1", False), 200: ("u2", True), 250: ("u2", False), 300: ("u4", True),
               350: ("u4", False), 500: ("f2", True), 550: ("f2", False), 600: ("f4", True), 650: ("f4", False),
               700: ("f8", True), 750: ("f8", False)}
_PRECISIONS_4 = {0: ("u1", False), 1: ("u2", False), 2: ("u4", True), 3: ("f2", True), 4: ("f4", True)}
_PRECISIONS_5 = {**{key: value for key, value in _PRECISIONS.items() if key < 400},
                 400: ("f2", True), 450: ("f2", False), 500: ("f4", True), 550: ("f4", False)}
# blending modes by PROP_MODE (GIMP 2.8's legacy numbers, then GIMP 2.10's): the backdrop's colours and the
# layer's, 0–1, blended as GIMP's layer-mode operations blend them (a division by about 0 gives 0, as GIMP's)
_BLENDS = {
    "multiply": ((3, 30), lambda below, above: below * above),
    "screen": ((4, 31), lambda below, above: 1 - (1 - below) * (1 - above)),
    "difference": ((6, 32), lambda below, above: abs(below - above)),
    "addition": ((7, 33), lambda below, above: below + above),  # past 0–1 until the picture is made, as GIMP
    "subtract": ((8, 34), lambda below, above: below - above),
    "darken only": ((9, 35), lambda below, above: below.clip(None, above)),
    "lighten only": ((10, 36), lambda below, above: below.clip(above, None)),
    "divide": ((15, 41), lambda below, above: _divided(below, above)),
    "dodge": ((16, 42), lambda below, above: _divided(below, 1 - above)),
    "burn": ((17, 43), lambda below, above: 1 - _divided(1 - below, above)),
    "hard light": ((18, 44), lambda below, above: _where(
        above > 0.5, 1 - (1 - below) * (1 - (above - 0.5) * 2), below * above * 2).clip(None, 1)),
    "soft light": ((5, 19, 45), lambda below, above: (1 - below) * below * above
                   + below * (1 - (1 - below) * (1 - above))),
    "grain extract": ((20, 46), lambda below, above: below - above + 0.5),
    "grain merge": ((21, 47), lambda below, above: below + above - 0.5),
    "overlay": ((23,), lambda below, above: _where(
        below < 0.5, 2 * below * above, 1 - 2 * (1 - below) * (1 - above))),
    "vivid light": ((48,), lambda below, above: _where(
        above <= 0.5, (1 - _divided(1 - below, 2 * above)).clip(0, None),
        _divided(below, 2 * (1 - above)).clip(None, 1))),
    "pin light": ((49,), lambda below, above: _where(
        above > 0.5, below.clip(2 * (above - 0.5), None), below.clip(None, 2 * above))),
    "linear light": ((50,), lambda below, above: below + 2 * above - 1),
    "hard mix": ((51,), lambda below, above: (below + above >= 1).astype(below.dtype)),
    "exclusion": ((52,), lambda below, above: 0.5 - 2 * (below - 0.5) * (above - 0.5)),
    "linear burn": ((53,), lambda below, above: below + above - 1),
}
BLENDS = {mode: blend for modes, blend in _BLENDS.values() for mode in modes}
LEGACY_MODES = range(23)  # GIMP 2.8's modes: blended and put together gamma encoded
PERCEPTUAL_BLENDS = (31,)  # GIMP 2.10's modes blended gamma encoded where a file does not say (Screen)


class XcfError(SyntaxError):
    """Not a GIMP file (Pillow then tries its other formats), or one that cannot be read."""


# what reading a damaged file raises: its pointers, sizes and lengths may be anything
_DAMAGED = (struct.error, IndexError, ValueError, zlib.error, OverflowError, KeyError)


def version(data: bytes) -> int | None:
    """The XCF version of a file's first bytes ("gimp xcf file" is version 0, "gimp xcf v011" 11); None for
    other files."""
    if not data.startswith(SIGNATURE) or data[13:14] != b"\0":
        return None
    tag = data[9:13]
    if tag == b"file":
        return 0
    return int(tag[1:]) if tag[:1] == b"v" and tag[1:].isdigit() else None


@dataclass
class _Tiles:
    """A drawable's pixels: its size, bytes a pixel and where each tile's data starts."""
    width: int
    height: int
    bpp: int
    pointers: object  # numpy array of file offsets, row by row


@dataclass
class _Layer:
    name: str
    size: tuple[int, int]
    place: tuple[int, int] = (0, 0)
    colours: int = 3
    alpha: bool = True
    opacity: float = 1.0
    visible: bool = True
    mode: int = 0
    linear_space: bool | None = None  # where the layer names the space it is put together in
    linear_blend: bool | None = None  # where the layer names the space its mode blends in
    group: bool = False
    path: tuple[int, ...] = ()
    floating_to: int = 0  # the drawable a floating selection belongs to
    at: int = 0  # where the layer is in the file
    tiles: _Tiles | None = None
    mask: _Tiles | None = None
    children: list[_Layer] = field(default_factory=list)

    @property
    def linear(self) -> bool:
        """Whether the layer is put together in linear light (GIMP 2.10's modes) or gamma encoded (legacy ones)."""
        return self.linear_space if self.linear_space is not None else self.mode not in LEGACY_MODES

    @property
    def blends_linear(self) -> bool:
        """Whether the layer's mode blends in linear light (GIMP 2.10's Multiply) or gamma encoded (its Screen)."""
        if self.linear_blend is not None:
            return self.linear_blend
        return self.mode not in LEGACY_MODES and self.mode not in PERCEPTUAL_BLENDS


class XcfFile:
    """A parsed XCF file: its canvas, precision and layers (a tree: groups hold their layers, top one first)."""

    def __init__(self, data: bytes) -> None:
        found = version(data)
        if found is None:
            raise XcfError("not a GIMP file")
        self.data, self.version = data, found
        self.pointer = ">u8" if found >= 11 else ">u4"
        self.width, self.height, self.base = struct.unpack_from(">III", data, 14)
        at = 26
        if found >= 4:
            component, self.linear = _precision(found, struct.unpack_from(">I", data, at)[0])
            at += 4
        else:
            component, self.linear = "u1", False
        # high bit depths were written in the machine's byte order by GIMP's development versions before XCF 12
        self.component = ("<" if found < 12 and component != "u1" else ">") + component
        if self.base not in (RGB, GREY, INDEXED):
            raise XcfError(f"colour mode {self.base}")
        self.colours = 1 if self.base == GREY else 3
        self.compression, self.colormap, self.profile = RAW, b"", None
        for kind, start, length in self._properties_at(at):
            at = start + length
            if kind == COMPRESSION:
                self.compression = data[start]
            elif kind == COLORMAP:
                count = struct.unpack_from(">I", data, start)[0]
                self.colormap = data[start + 4:start + 4 + 3 * count]
            elif kind == PARASITES:
                self.profile = _parasites(data[start:start + length]).get("icc-profile")
        if self.compression not in (RAW, RLE, ZLIB):
            raise XcfError(f"compression {self.compression}")
        at += 8  # the END property
        pointers, at = self._pointer_list(at)
        self.layers = _tree([self._layer(pointer) for pointer in pointers])

    def _properties_at(self, at: int):
        """(type, payload start, payload length) of each property of the list at `at`, up to its END."""
        data = self.data
        while True:
            kind, length = struct.unpack_from(">II", data, at)
            if kind == END:
                return
            if kind == COLORMAP:  # some GIMP versions wrote n + 4 as its length; the payload is 3n + 4
                length = 4 + 3 * struct.unpack_from(">I", data, at + 8)[0]
            if length > MOST_PROPERTY_BYTES or at + 8 + length > len(data):
                raise XcfError(f"a property of {length} bytes")
            yield kind, at + 8, length
            at += 8 + length

    def _pointer_list(self, at: int):
        """The offsets of a zero-ended list at `at`, and the place after it."""
        import numpy as np

        step = np.dtype(self.pointer).itemsize
        found = []
        while True:
            pointer = int(np.frombuffer(self.data, self.pointer, 1, at)[0])
            at += step
            if pointer == 0:
                return found, at
            found.append(pointer)
            if len(found) > MOST_LAYERS:
                raise XcfError(f"more than {MOST_LAYERS} layers")

    def _layer(self, at: int) -> _Layer:
        data = self.data
        width, height, kind = struct.unpack_from(">III", data, at)
        start, name = _string(data, at + 12)
        layer = _Layer(name, (width, height), colours=self.colours, alpha=kind % 2 == 1, at=at)
        apply_mask, at = True, start
        for prop, start, length in self._properties_at(at):
            at = start + length
            if prop == OPACITY:
                layer.opacity = min(struct.unpack_from(">I", data, start)[0], 255) / 255
            elif prop == FLOAT_OPACITY:
                value = struct.unpack_from(">f", data, start)[0]
                layer.opacity = min(max(value, 0.0), 1.0) if value == value else 1.0
            elif prop == VISIBLE:
                layer.visible = struct.unpack_from(">I", data, start)[0] != 0
            elif prop == OFFSETS:
                layer.place = struct.unpack_from(">ii", data, start)
            elif prop == MODE:
                layer.mode = struct.unpack_from(">I", data, start)[0]
            elif prop in (COMPOSITE_SPACE, BLEND_SPACE):  # negative: "Auto", and what it was
                space = abs(struct.unpack_from(">i", data, start)[0])
                linear = space == 1 if space in (1, 2, 3) else None  # RGB linear, perceptual, LAB (as perceptual)
                if prop == COMPOSITE_SPACE:
                    layer.linear_space = linear
                else:
                    layer.linear_blend = linear
            elif prop == APPLY_MASK:
                apply_mask = struct.unpack_from(">I", data, start)[0] != 0
            elif prop == GROUP_ITEM:
                layer.group = True
            elif prop == ITEM_PATH:
                layer.path = struct.unpack_from(f">{length // 4}I", data, start)
            elif prop == FLOATING_SELECTION:
                layer.floating_to = int.from_bytes(data[start:start + length], "big")
        hierarchy, mask = (int(value) for value in _numbers(data, self.pointer, 2, at + 8))
        if layer.floating_to and kind // 2 != self.base:  # grey pixels pasted on a channel or mask: not shown
            layer.visible = False
            return layer
        if not layer.group:
            channels = 1 if self.base == INDEXED else layer.colours  # an index into the colour map, or colours
            layer.tiles = self._tiles(hierarchy, layer.size, channels + layer.alpha)
        if mask and apply_mask:
            layer.mask = self._mask(mask, layer.size)
        return layer

    def _mask(self, at: int, size: tuple[int, int]) -> _Tiles:
        at, _ = _string(self.data, at + 8)
        for _, start, length in self._properties_at(at):
            at = start + length
        return self._tiles(int(_numbers(self.data, self.pointer, 1, at + 8)[0]), size, 1)

    def _tiles(self, at: int, size: tuple[int, int], channels: int) -> _Tiles:
        import numpy as np

        width, height, bpp = struct.unpack_from(">III", self.data, at)
        component = 1 if self.base == INDEXED else np.dtype(self.component).itemsize
        if (width, height) != size or bpp != channels * component:
            raise XcfError(f"pixels of {width} × {height} × {bpp} bytes for a layer of {size[0]} × {size[1]}")
        level = int(_numbers(self.data, self.pointer, 1, at + 12)[0])
        count = -(-width // TILE) * -(-height // TILE)
        if count * 4 > len(self.data):
            raise XcfError(f"{count} tiles")
        pointers = _numbers(self.data, self.pointer, count, level + 8)
        if count and int(pointers.max()) >= len(self.data):
            raise XcfError("a tile past the end of the file")
        return _Tiles(width, height, bpp, pointers)

    # -- pixels

    def picture(self):
        """The layers put together as a Pillow image: RGBA, or LA for a grey image; 8 bits a channel."""
        import numpy as np
        from PIL import Image

        width, height, colours = self.width, self.height, self.colours
        mode = "LA" if colours == 1 else "RGBA"
        picture = Image.new(mode, (width, height))
        rows = max(TILE, min(16 * TILE, BAND_PIXELS // width // TILE * TILE))  # whole rows of tiles
        for top in range(0, height, rows):
            bottom = min(top + rows, height)
            band = _Band(np.zeros((bottom - top, width, colours + 1), np.float32), None, top)
            self._stack_onto(band, self.layers, 0)
            pixels = band.pixels  # done with: made straight and 8-bit in place
            pixels[..., :-1] /= pixels[..., -1:].clip(1e-12, None)
            if band.linear:
                pixels[..., :-1] = _to_gamma(pixels[..., :-1])
            np.rint(pixels.clip(0, 1, out=pixels) * 255, out=pixels)
            picture.paste(Image.fromarray(pixels.astype(np.uint8), mode), (0, top))
        return picture

    def _stack_onto(self, band: _Band, layers: list[_Layer], depth: int) -> None:
        """Put `layers` (top one first) onto `band`, bottom first."""
        if depth > MOST_GROUP_DEPTH:
            raise XcfError(f"groups nested more than {MOST_GROUP_DEPTH} deep")
        for layer in reversed(layers):
            if not layer.visible:
                continue
            if layer.group and layer.mode == PASS_THROUGH:
                self._pass_through(band, layer, depth)
                continue
            if layer.group:
                import numpy as np

                inner = _Band(np.zeros_like(band.pixels), None, band.top)
                self._stack_onto(inner, layer.children, depth + 1)
                if inner.linear is None:
                    continue  # nothing in the group meets the band
                box, pixels, linear = (0, 0, band.pixels.shape[1], band.pixels.shape[0]), inner.straight(), inner.linear
                mask = self._mask_over(layer, band.top, box) if layer.mask is not None else None
            else:
                box = _meet(layer, band)
                if box is None:
                    continue
                raw, box = self._visible(layer, band.top, box)
                if raw is None:
                    continue
                pixels, linear = self._pixels(layer, raw), layer.linear
                mask = self._mask_over(layer, band.top, box) if layer.mask is not None else None
            band.put(pixels, linear, box, layer, mask)

    def _pass_through(self, band: _Band, group: _Layer, depth: int) -> None:
        """A "pass through" group's layers put onto the band itself, as if not grouped; where the group is not
        at full opacity or has a mask, the band then goes that far back to what it was."""
        import numpy as np

        faded = group.opacity < 1 or group.mask is not None
        if faded:
            band.to_space(group.linear)  # the space the group goes back in
            before = band.pixels.copy()
        self._stack_onto(band, group.children, depth + 1)
        if not faded:
            return
        band.to_space(group.linear)
        height, width = band.pixels.shape[:2]
        amount = np.float32(group.opacity)
        if group.mask is not None:
            amount = amount * self._mask_over(group, band.top, (0, 0, width, height))
        band.pixels -= before
        band.pixels *= amount
        band.pixels += before

    def _visible(self, layer: _Layer, top: int, box: tuple[int, int, int, int]):
        """A layer's pixels' bytes over `box` (band columns and rows), cut to the part that is not transparent (a
        stroke on a layer of the canvas's size), and that part's box; None, None where all of it is."""
        import numpy as np

        raw = self._decode(layer.tiles, _in_layer(layer, top, box))
        if not layer.alpha:
            return raw, box
        alpha = (raw[..., -1] if self.base == INDEXED else self._values(raw)[..., -1]) > 0
        rows, columns = np.flatnonzero(alpha.any(axis=1)), np.flatnonzero(alpha.any(axis=0))
        if not len(rows):
            return None, None
        first_row, last_row, first_column, last_column = rows[0], rows[-1] + 1, columns[0], columns[-1] + 1
        box = (box[0] + first_column, box[1] + first_row, box[0] + last_column, box[1] + last_row)
        return raw[first_row:last_row, first_column:last_column], box

    def _pixels(self, layer: _Layer, raw):
        """A layer's colours (in the space it is put together in) and transparency, 0–1, float32, from its
        pixels' bytes."""
        import numpy as np

        rows, columns = raw.shape[:2]
        pixels = np.empty((rows, columns, layer.colours + 1), np.float32)
        convert = None if layer.linear == self.linear else "linear" if layer.linear else "gamma"
        if self.base == INDEXED:
            colormap = np.frombuffer(self.colormap.ljust(768, b"\0"), np.uint8).reshape(256, 3)
            pixels[..., :-1] = _table("u1", convert)[colormap][raw[..., 0]]
            pixels[..., -1] = raw[..., 1] / np.float32(255) if layer.alpha else 1
            return pixels
        values = self._values(raw)
        pixels[..., :-1] = _converted(values[..., :layer.colours], self.component[1:], convert)
        pixels[..., -1] = _converted(values[..., -1], self.component[1:], None) if layer.alpha else 1
        return pixels

    def _mask_over(self, layer: _Layer, top: int, box: tuple[int, int, int, int]):
        """A layer's mask (0–1) over `box`; 0 where the layer does not reach (a group's box is the band)."""
        import numpy as np

        inside = _meet(layer, _Band(None, False, top, box)) if layer.group else box
        mask = np.zeros((box[3] - box[1], box[2] - box[0], 1), np.float32)
        if inside is not None:
            values = _converted(self._values(self._decode(layer.mask, _in_layer(layer, top, inside))),
                                self.component[1:], None)
            mask[inside[1] - box[1]:inside[3] - box[1], inside[0] - box[0]:inside[2] - box[0]] = values
        return mask

    def _values(self, raw):
        """Component bytes (rows, columns, bytes a pixel) as components (rows, columns, components)."""
        import numpy as np

        return np.ascontiguousarray(raw).view(self.component)

    def _decode(self, tiles: _Tiles, box: tuple[int, int, int, int]):
        """The bytes of a drawable's pixels in `box` (its own columns and rows), (rows, columns, bytes a pixel)."""
        import numpy as np

        left, top, right, bottom = box
        across = -(-tiles.width // TILE)
        first_column, first_row = left // TILE, top // TILE
        last_column, last_row = (right - 1) // TILE, (bottom - 1) // TILE
        out = np.empty(((last_row - first_row + 1) * TILE, (last_column - first_column + 1) * TILE, tiles.bpp),
                       np.uint8)
        for row in range(first_row, last_row + 1):
            rows = min(TILE, tiles.height - row * TILE)
            for column in range(first_column, last_column + 1):
                columns = min(TILE, tiles.width - column * TILE)
                tile = self._tile(tiles, row * across + column, columns, rows)
                y, x = (row - first_row) * TILE, (column - first_column) * TILE
                out[y:y + rows, x:x + columns] = tile
        y, x = first_row * TILE, first_column * TILE
        return out[top - y:bottom - y, left - x:right - x]

    def _tile(self, tiles: _Tiles, index: int, columns: int, rows: int):
        import numpy as np

        data, start, size = self.data, int(tiles.pointers[index]), columns * rows * tiles.bpp
        if self.compression == RLE:
            planes = _unrle(data, start, columns * rows, tiles.bpp)
            return np.frombuffer(planes, np.uint8).reshape(tiles.bpp, rows, columns).transpose(1, 2, 0)
        if self.compression == ZLIB:
            end = int(tiles.pointers[index + 1]) if index + 1 < len(tiles.pointers) else len(data)
            if end <= start:
                end = len(data)
            raw = zlib.decompressobj().decompress(data[start:end], size)
        else:
            raw = data[start:start + size]
        if len(raw) != size:
            raise XcfError("a damaged tile")
        return np.frombuffer(raw, np.uint8).reshape(rows, columns, tiles.bpp)


class _Band:
    """Rows of the canvas being put together, from canvas row `top`: colours premultiplied by their transparency,
    and the transparency (float32), in linear light, gamma encoded, or None where nothing is on them yet."""

    def __init__(self, pixels, linear: bool | None, top: int, box: tuple[int, int, int, int] | None = None) -> None:
        self.pixels, self.linear, self.top = pixels, linear, top
        self.box = box or (0, 0, pixels.shape[1], pixels.shape[0])

    def straight(self):
        """The colours, not premultiplied, and the transparency."""
        pixels = self.pixels.copy()
        pixels[..., :-1] /= pixels[..., -1:].clip(1e-12, None)
        return pixels

    def to_space(self, linear: bool) -> None:
        if self.linear is None:
            self.linear = linear  # nothing on it: 0 in either
        elif linear != self.linear:
            pixels = self.straight()
            self.pixels[..., :-1] = (_to_linear if linear else _to_gamma)(pixels[..., :-1]) * pixels[..., -1:]
            self.linear = linear

    def put(self, pixels, linear: bool, box: tuple[int, int, int, int], layer: _Layer, mask) -> None:
        """`pixels` (colours not premultiplied, in linear light or not, and transparency; a copy of the layer's own,
        written over here) over this band's `box`,
        as `layer`'s opacity, mask and mode say: `layer` over what is below, its mode's blend of the two where both
        are (W3C's compositing of separable blend modes, as GIMP's "union")."""
        self.to_space(layer.linear)
        above = pixels[..., :-1]
        if linear != layer.linear:
            above = (_to_linear if layer.linear else _to_gamma)(above)
        amount = pixels[..., -1:] * layer.opacity
        if mask is not None:
            amount *= mask
        left, top, right, bottom = box
        under = self.pixels[top:bottom, left:right]
        if layer.mode in DISSOLVE:  # each pixel all or nothing, as often as the layer is opaque there
            import numpy as np

            dots = np.random.default_rng((self.top + top) * 1_000_003 + left).random(amount.shape, np.float32)
            amount = (dots < amount).astype(np.float32)
        if layer.mode == ERASE:  # the layer takes away what is below, as far as it is opaque
            under *= 1 - amount
            return
        if layer.mode in BEHIND:  # the layer goes under what is there
            under[..., :-1] += (1 - under[..., -1:]) * amount * above
            under[..., -1:] += (1 - under[..., -1:]) * amount
            return
        blend, extra = BLENDS.get(layer.mode), None
        if blend is not None:
            below_alpha = under[..., -1:]
            below = under[..., :-1] / below_alpha.clip(1e-12, None)
            if layer.blends_linear == layer.linear:
                blended = blend(below, above)
            else:
                space = _to_linear if layer.blends_linear else _to_gamma
                blended = (_to_gamma if layer.blends_linear else _to_linear)(blend(space(below), space(above)))
            if layer.mode in LEGACY_MODES:  # GIMP 2.8's modes worked on 8-bit values
                blended = blended.clip(0, 1)
            extra = amount * below_alpha * (blended - above)
        if linear != layer.linear:  # made linear or gamma encoded: back into `pixels`, the layer's own copy
            pixels[..., :-1] = above
        pixels[..., :-1] *= amount  # the layer premultiplied, at its opacity
        pixels[..., -1:] = amount
        under *= 1 - amount
        under += pixels
        if extra is not None:
            under[..., :-1] += extra


def _divided(numerator, denominator):
    """numerator / denominator, 0 where the denominator is about 0 (GIMP's `safe_div`)."""
    import numpy as np

    small = np.abs(denominator) <= 1e-6
    return np.where(small, 0, numerator / np.where(small, 1, denominator)).astype(np.float32)


def _where(condition, yes, no):
    import numpy as np

    return np.where(condition, yes, no).astype(np.float32)


def _meet(layer: _Layer, band: _Band) -> tuple[int, int, int, int] | None:
    """Where a layer meets a band, in band columns and rows; None where it does not."""
    left, top, right, bottom = band.box
    x, y = layer.place[0], layer.place[1] - band.top
    box = max(left, x), max(top, y), min(right, x + layer.size[0]), min(bottom, y + layer.size[1])
    return box if box[0] < box[2] and box[1] < box[3] else None


def _in_layer(layer: _Layer, top: int, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """A box of band columns and rows in the layer's own columns and rows."""
    x, y = layer.place[0], layer.place[1] - top
    return box[0] - x, box[1] - y, box[2] - x, box[3] - y


def _converted(values, kind: str, convert: str | None):
    """Components of numpy type `kind` as float32 values, 0–1, made "linear" or "gamma" encoded where asked."""
    import numpy as np

    if kind in ("u1", "u2"):
        return np.take(_table(kind, convert), values)
    if kind == "u4":
        values = (values / np.float64(0xFFFFFFFF)).astype(np.float32)
    else:
        values = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0).clip(0, 1)
    return values if convert is None else (_to_linear if convert == "linear" else _to_gamma)(values)


@cache
def _table(kind: str, convert: str | None):
    """The float32 value of each 8- or 16-bit component, 0–1, made "linear" or "gamma" encoded where asked."""
    import numpy as np

    values = np.arange(np.iinfo(kind).max + 1, dtype=np.float32) / np.float32(np.iinfo(kind).max)
    return values if convert is None else (_to_linear if convert == "linear" else _to_gamma)(values)


def _to_linear(values):
    """sRGB's curve undone, as babl does: values past 0–1 (a blend's) carried on along it, not clipped."""
    import numpy as np

    curve = ((np.maximum(values, 0.04045) + 0.055) / 1.055) ** 2.4
    return np.where(values <= 0.04045, values / 12.92, curve).astype(np.float32)


def _to_gamma(values):
    import numpy as np

    curve = 1.055 * np.maximum(values, 0.0031308) ** (1 / 2.4) - 0.055
    return np.where(values <= 0.0031308, values * 12.92, curve).astype(np.float32)


def _tree(layers: list[_Layer]) -> list[_Layer]:
    """The file's layers (all of them, top first, each group before its own) as a tree by their item paths; a
    floating selection above the layer it belongs to, or left out where it belongs to a mask or channel."""
    root = _Layer("", (0, 0), group=True)
    stack, floating = [root], []
    for layer in layers:
        if layer.floating_to:
            floating.append(layer)
            continue
        depth = max(len(layer.path) - 1, 0)
        del stack[depth + 1:]
        stack[-1].children.append(layer)
        if layer.group:
            if len(stack) > MOST_GROUP_DEPTH:
                raise XcfError(f"groups nested more than {MOST_GROUP_DEPTH} deep")
            stack.append(layer)
    for selection in floating:
        _float_above(root, selection)
    return root.children


def _float_above(group: _Layer, selection: _Layer) -> bool:
    """Put a floating selection above the layer it belongs to, in that layer's group; False where none is."""
    for index, layer in enumerate(group.children):
        if layer.at == selection.floating_to and not layer.group:
            group.children.insert(index, selection)
            return True
        if layer.group and _float_above(layer, selection):
            return True
    return False


def _precision(found: int, value: int) -> tuple[str, bool]:
    """(numpy type of a component, linear light) of an XCF file of version `found` by its header's precision."""
    table = _PRECISIONS_4 if found == 4 else _PRECISIONS_5 if found < 7 else _PRECISIONS
    if value not in table:
        raise XcfError(f"precision {value}")
    return table[value]


def _string(data: bytes, at: int) -> tuple[int, str]:
    length = struct.unpack_from(">I", data, at)[0]
    if at + 4 + length > len(data):
        raise XcfError("a string past the end of the file")
    return at + 4 + length, data[at + 4:at + 3 + length].decode("utf-8", "replace")


def _numbers(data: bytes, kind: str, count: int, at: int):
    import numpy as np

    return np.frombuffer(data, kind, count, at)


def _parasites(payload: bytes) -> dict[str, bytes]:
    """A PROP_PARASITES payload's parasites by name: "icc-profile" the image's colour profile, …"""
    found, at = {}, 0
    try:
        while at < len(payload):
            at, name = _string(payload, at)
            size = struct.unpack_from(">I", payload, at + 4)[0]
            found[name] = payload[at + 8:at + 8 + size]
            at += 8 + size
    except (XcfError, struct.error):
        pass  # the parasites before a damaged one
    return found


def _unrle(data: bytes, at: int, count: int, planes: int) -> bytes:
    """`planes` run-length encoded streams of `count` bytes each, from `at` (xcf.txt chapter 8)."""
    out = bytearray()
    for plane in range(planes):
        end = (plane + 1) * count
        while len(out) < end:
            op = data[at]
            if op < 127:
                out += data[at + 1:at + 2] * (op + 1)
                at += 2
            elif op == 127:
                out += data[at + 3:at + 4] * (data[at + 1] << 8 | data[at + 2])
                at += 4
            elif op == 128:
                length = data[at + 1] << 8 | data[at + 2]
                out += data[at + 3:at + 3 + length]
                at += 3 + length
            else:
                out += data[at + 1:at + 257 - op]
                at += 257 - op
        if len(out) != end:
            raise XcfError("a damaged tile")
    return bytes(out)


def _picture(im):
    """The picture of the opened GIMP file `im`: its layers put together."""
    try:
        im.fp.seek(0)
        return XcfFile(im.fp.read()).picture()
    except _DAMAGED as error:
        raise XcfError(f"a damaged GIMP file: {error}") from None


def _header(stream) -> tuple[int, tuple[int, int], int, bool, bytes | None]:
    """(version, canvas size, colour mode, linear light, colour profile) of an XCF file read from its start: its
    header and image properties only, not its layers."""
    head = stream.read(30)
    found = version(head)
    if found is None:
        raise XcfError("not a GIMP file")
    width, height, base = struct.unpack_from(">III", head, 14)
    linear = found >= 4 and _precision(found, struct.unpack_from(">I", head, 26)[0])[1]
    if found < 4:
        stream.seek(26)
    profile = None
    while True:
        kind, length = struct.unpack(">II", stream.read(8))
        if kind == END:
            break
        if kind == COLORMAP:
            length = 4 + 3 * struct.unpack(">I", stream.read(4))[0]
            stream.seek(-4, 1)
        if length > MOST_PROPERTY_BYTES:
            raise XcfError(f"a property of {length} bytes")
        payload = stream.read(length)
        if kind == PARASITES:
            profile = _parasites(payload).get("icc-profile")
    return found, (width, height), base, linear, profile


@cache
def register() -> None:
    """Let Pillow open GIMP files (once): `Image.open` gives their layers put together."""
    from PIL import Image, ImageFile

    class GimpFile(ImageFile.StubImageFile):
        format = "XCF"
        format_description = "GIMP image"

        def _open(self) -> None:
            try:
                _, size, base, linear, profile = _header(self.fp)
            except (struct.error, ValueError) as error:
                raise XcfError(f"a damaged GIMP file: {error}") from None
            if min(size) < 1 or base not in (RGB, GREY, INDEXED):
                raise XcfError("no picture")
            self._mode, self._size = "LA" if base == GREY else "RGBA", size
            if profile and not linear:  # a linear image's profile is not of the gamma-encoded picture made
                self.info["icc_profile"] = profile
            self._handler = StubLoader(_picture)

    Image.register_open("XCF", GimpFile, lambda prefix: prefix.startswith(SIGNATURE))
    Image.register_extensions("XCF", [".xcf"])
