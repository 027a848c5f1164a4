""""Stealth" PNG info: parameters hidden in the least significant bits of the pixels.

Written by A1111's stealth-pnginfo extension (its `parameters` text) and by NovelAI (its JSON
record), read column by column, top to bottom: a 15-byte signature, a 32-bit big-endian bit
count, then the payload, gzip-compressed where the signature says "comp". The alpha layout
("stealth_pnginfo", "stealth_pngcomp") takes one bit per pixel from the alpha channel; the RGB
layout ("stealth_rgbinfo", "stealth_rgbcomp", the extension's choice for images without alpha)
takes three, from red, green and blue in that order. Only as many columns as the bits need are
decoded, and the payload is capped. The signature of a usual PNG (8-bit RGB or RGBA, not
interlaced) is looked for without decoding the image: the first pixel of each of its first rows
unfilters from the one above it alone, so an import of plain PNGs stays a read of their chunks.
"""

from __future__ import annotations

import gzip
import struct
import zlib

from PIL import Image

ALPHA, RGB = "A", "RGB"  # where the bits are: one per pixel, or three
_SIGNATURES = {b"stealth_pnginfo": (ALPHA, False), b"stealth_pngcomp": (ALPHA, True),
               b"stealth_rgbinfo": (RGB, False), b"stealth_rgbcomp": (RGB, True)}
_HEADER_BITS = (15 + 4) * 8
_MAX_PAYLOAD = 1024 * 1024


def read_stealth(image: Image.Image) -> str | None:
    """The hidden text of an image, or None: in the alpha channel of one that has it, else in the RGB channels
    of a PNG (the extension writes PNGs only; a lossy format would have lost the bits)."""
    bands = image.getbands()
    layers = ([ALPHA] if ALPHA in bands else []) + ([RGB] if image.format == "PNG" and bands[:3] == tuple(RGB)
                                                      else [])
    # The top of the first column, inflated once for every layer looked in (RGB's header is a prefix of alpha's).
    column = _png_first_pixels(getattr(image, "filename", ""), max(map(_header_pixels, layers))) if layers else None
    for layer in layers:
        text = _read(image, layer, column)
        if text is not None:
            return text
    return None


def _header_pixels(layer: str) -> int:
    return -(-_HEADER_BITS // len(layer))


def _read(image: Image.Image, layer: str, column: tuple[bytes, int] | None) -> str | None:
    quick = _first_column_header(column, layer)
    if quick is not None and _SIGNATURES.get(quick[:15], (None,))[0] != layer:
        return None
    header = _bits(image, layer, _HEADER_BITS)
    if header is None or _SIGNATURES.get(header[:15], (None,))[0] != layer:
        return None
    compressed = _SIGNATURES[header[:15]][1]
    length = int.from_bytes(header[15:19], "big")
    if length % 8 or not 0 < length // 8 <= _MAX_PAYLOAD:
        return None
    payload = _bits(image, layer, _HEADER_BITS + length)
    if payload is None:
        return None
    try:
        raw = gzip.decompress(payload[19:]) if compressed else payload[19:]
        return raw.decode("utf-8")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError):
        return None


_LSB = bytes(ord("0") + (value & 1) for value in range(256))


def _bits(image: Image.Image, layer: str, bits: int) -> bytes | None:
    """The first `bits` least significant bits of `layer`, pixel by pixel down each column from the left (a
    pixel's channels in order), packed into bytes; None if the image holds fewer."""
    width, height = image.size
    columns = -(-bits // (height * len(layer)))
    if columns > width:
        return None
    block = image.crop((0, 0, columns, height))
    block = block.getchannel(ALPHA) if layer == ALPHA else block.convert(RGB)
    data = block.transpose(Image.Transpose.TRANSPOSE).tobytes()[:bits]
    count = len(data) // 8
    digits = data[: count * 8].translate(_LSB)
    return int(digits, 2).to_bytes(count, "big") if count else b""


_PNG = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {2: 3, 6: 4}  # PNG colour types: RGB, RGBA
_MOST_INFLATED = 64 * 2**20  # bytes of rows: a first column this costly is left to the decoder


def _first_column_header(column: tuple[bytes, int] | None, layer: str) -> bytes | None:
    """The header's bytes in `layer` of `column` (`_png_first_pixels`: the top of the first column of an 8-bit,
    non-interlaced RGB(A) PNG file, read without decoding the rest); None without it."""
    if column is None:
        return None
    values, channels = column
    if layer == ALPHA and channels != 4:
        return None
    picked = values[3::4] if layer == ALPHA else b"".join(values[k:k + 3] for k in range(0, len(values), channels))
    digits = picked[:_HEADER_BITS].translate(_LSB)
    return int(digits, 2).to_bytes(_HEADER_BITS // 8, "big") if len(digits) == _HEADER_BITS else None


def _png_first_pixels(path: str, rows: int) -> tuple[bytes, int] | None:
    """The first pixel of each of the first `rows` rows of the PNG file at `path` and its channel count, or None if it
    is not an 8-bit, non-interlaced RGB or RGBA PNG that tall. Only the image data of those rows is inflated."""
    try:
        with open(path, "rb") as file:
            if file.read(8) != _PNG:
                return None
            inflate, data, need, channels = zlib.decompressobj(), bytearray(), 0, 0
            while len(data) < need or not need:
                head = file.read(8)
                if len(head) < 8:
                    return None
                length, kind = struct.unpack(">I4s", head)
                if kind == b"IHDR":
                    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", file.read(13))
                    channels = _CHANNELS.get(colour, 0)
                    if depth != 8 or not channels or interlace or height < rows or not width:
                        return None
                    stride = 1 + width * channels
                    need = rows * stride
                    if need > _MOST_INFLATED:
                        return None
                    file.seek(length - 13 + 4, 1)
                elif kind == b"IDAT" and need:
                    data += inflate.decompress(file.read(length), need - len(data))
                    file.seek(4, 1)
                elif kind in (b"IDAT", b"IEND"):
                    return None
                else:
                    file.seek(length + 4, 1)
    except (OSError, struct.error, zlib.error):
        return None
    above, column = bytes(channels), bytearray()
    for row in range(rows):
        start = row * stride
        kind, raw = data[start], data[start + 1:start + 1 + channels]
        if kind in (0, 1):  # None, Sub (nothing to the left of the first pixel)
            pixel = bytes(raw)
        elif kind in (2, 4):  # Up, Paeth (with nothing to the left, Paeth predicts the pixel above)
            pixel = bytes((value + up) & 0xFF for value, up in zip(raw, above))
        elif kind == 3:  # Average of nothing and the pixel above
            pixel = bytes((value + up // 2) & 0xFF for value, up in zip(raw, above))
        else:
            return None
        column += pixel
        above = pixel
    return bytes(column), channels
