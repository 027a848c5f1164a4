"""Shrink a sample image for the corpus: a few pixels, every metadata chunk byte for byte.

    python tests/gallery/corpus/shrink.py SOURCE TARGET

PNG: the original's chunks are copied in their order, except the image's own (IHDR, PLTE, tRNS,
IDAT), which come from a crop of the pixels. JPEG: the original's APPn and COM segments are
copied, the rest is the crop's. WebP: the original's ICCP, EXIF and XMP chunks are copied
around the crop's image chunk, under a VP8X header with the crop's size. An image with a
"stealth" record in its alpha channel keeps its full height and as many columns as the record
needs, so the record survives.
"""

from __future__ import annotations

import io
import struct
import sys
import zlib
from pathlib import Path

from PIL import Image

IMAGE_CHUNKS = {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND", b"acTL", b"fcTL", b"fdAT"}


def crop_box(image: Image.Image) -> tuple[int, int, int, int]:
    """8 × 8, or full height and enough columns for a stealth record in the alpha channel."""
    if "A" in image.getbands():
        alpha = image.getchannel("A")
        height = alpha.size[1]
        column = alpha.crop((0, 0, 1, height)).tobytes()
        bits = "".join(str(value & 1) for value in column[: (15 + 4) * 8])
        header = int(bits, 2).to_bytes(19, "big") if len(bits) == 152 else b""
        if header[:15] in (b"stealth_pngcomp", b"stealth_pnginfo"):
            needed = 152 + int.from_bytes(header[15:19], "big")
            return 0, 0, min(image.size[0], -(-needed // height)), height
    return 0, 0, min(8, image.size[0]), min(8, image.size[1])


def png_chunks(data: bytes):
    position = 8
    while position < len(data):
        length = struct.unpack(">I", data[position:position + 4])[0]
        kind = data[position + 4:position + 8]
        yield kind, data[position:position + 12 + length]
        position += 12 + length


def shrink_png(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        crop = image.crop(crop_box(image))
        small = io.BytesIO()
        crop.save(small, "PNG")
    own = {kind: chunk for kind, chunk in png_chunks(small.getvalue()) if kind in (b"IHDR", b"PLTE", b"tRNS")}
    idat = b"".join(chunk for kind, chunk in png_chunks(small.getvalue()) if kind == b"IDAT")
    out = [data[:8], own[b"IHDR"], own.get(b"PLTE", b""), own.get(b"tRNS", b"")]
    wrote_idat = False
    for kind, chunk in png_chunks(data):
        if kind == b"IDAT" and not wrote_idat:
            out.append(idat)
            wrote_idat = True
        elif kind not in IMAGE_CHUNKS:
            out.append(chunk)
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"".join(out) + iend


def jpeg_segments(data: bytes):
    """(marker, bytes) up to the start of scan; then the rest as one piece."""
    position = 2
    while position < len(data):
        marker = data[position + 1]
        if marker == 0xDA:  # start of scan: entropy-coded data to the end
            yield marker, data[position:]
            return
        length = struct.unpack(">H", data[position + 2:position + 4])[0]
        yield marker, data[position:position + 2 + length]
        position += 2 + length


def shrink_jpeg(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        small = io.BytesIO()
        image.convert("RGB").crop(crop_box(image)).save(small, "JPEG", quality=90)
    kept = [segment for marker, segment in jpeg_segments(data) if 0xE0 <= marker <= 0xEF or marker == 0xFE]
    image_part = [segment for marker, segment in jpeg_segments(small.getvalue())
                  if not (0xE0 <= marker <= 0xEF or marker == 0xFE)]
    return b"\xff\xd8" + b"".join(kept) + b"".join(image_part)


def riff_chunks(data: bytes):
    position = 12
    while position < len(data):
        kind = data[position:position + 4]
        length = struct.unpack("<I", data[position + 4:position + 8])[0]
        yield kind, data[position:position + 8 + length + (length & 1)]
        position += 8 + length + (length & 1)


def shrink_webp(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        crop = image.crop(crop_box(image))
        small = io.BytesIO()
        crop.save(small, "WEBP", lossless=True, exact=True)
    image_chunks = [chunk for kind, chunk in riff_chunks(small.getvalue()) if kind in (b"VP8 ", b"VP8L", b"ALPH")]
    metadata = {kind: chunk for kind, chunk in riff_chunks(data) if kind in (b"ICCP", b"EXIF", b"XMP ")}
    flags = (0x20 if b"ICCP" in metadata else 0) | (0x10 if "A" in crop.getbands() else 0) | (
        0x08 if b"EXIF" in metadata else 0) | (0x04 if b"XMP " in metadata else 0)
    width, height = crop.size
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([flags, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (
        height - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + metadata.get(b"ICCP", b"") + b"".join(image_chunks) + metadata.get(b"EXIF", b"") + \
        metadata.get(b"XMP ", b"")
    return b"RIFF" + struct.pack("<I", len(body)) + body


def shrink(data: bytes) -> bytes:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return shrink_png(data)
    if data[:2] == b"\xff\xd8":
        return shrink_jpeg(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return shrink_webp(data)
    raise ValueError("not a PNG, JPEG or WebP file")


if __name__ == "__main__":
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    target.write_bytes(shrink(source.read_bytes()))
