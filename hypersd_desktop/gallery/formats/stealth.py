""""Stealth" PNG info: parameters hidden in the least significant bits of the alpha channel.

Written by A1111's stealth-pnginfo extension (its `parameters` text) and by NovelAI (its JSON
record), read column by column: a 15-byte signature ("stealth_pnginfo" plain or
"stealth_pngcomp" gzip), a 32-bit big-endian bit count, then the payload. Only as many columns
as the bits need are decoded, and the payload is capped, so an opaque image costs one column.
"""

from __future__ import annotations

import gzip
import zlib

from PIL import Image

_SIGNATURES = {b"stealth_pnginfo": False, b"stealth_pngcomp": True}
_MAX_PAYLOAD = 1024 * 1024


def read_stealth(image: Image.Image) -> str | None:
    """The hidden text of an image with an alpha channel, or None."""
    if "A" not in image.getbands():
        return None
    alpha = image.getchannel("A")
    width, height = alpha.size
    header_bits = (15 + 4) * 8
    columns = -(-header_bits // height)
    if columns > width:
        return None
    header = _bytes(alpha, columns, header_bits)
    compressed = _SIGNATURES.get(header[:15])
    if compressed is None:
        return None
    length = int.from_bytes(header[15:19], "big")
    if length % 8 or not 0 < length // 8 <= _MAX_PAYLOAD or header_bits + length > width * height:
        return None
    payload = _bytes(alpha, -(-(header_bits + length) // height), header_bits + length)[19:]
    try:
        raw = gzip.decompress(payload) if compressed else payload
        return raw.decode("utf-8")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError):
        return None


_LSB = bytes(ord("0") + (value & 1) for value in range(256))


def _bytes(alpha: Image.Image, columns: int, bits: int) -> bytes:
    """The first `bits` least significant bits, column-major, packed into bytes."""
    block = alpha.crop((0, 0, columns, alpha.size[1])).transpose(Image.Transpose.TRANSPOSE).tobytes()[:bits]
    count = len(block) // 8
    digits = block[: count * 8].translate(_LSB)
    return int(digits, 2).to_bytes(count, "big") if count else b""
