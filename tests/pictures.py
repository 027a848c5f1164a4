"""Pictures for the image-mode tests, drawn in code: a photo-like init image, a mask, and an edge map; and painting
programs' files (Krita's, OpenRaster's, GIMP's) as those programs write them."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIZE = 64


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def init_picture(size: int = SIZE) -> Image.Image:
    """A picture with colour, gradients and edges, as a photo would have."""
    ramp = np.linspace(0, 255, size, dtype=np.uint8)
    pixels = np.stack([np.tile(ramp, (size, 1)), np.tile(ramp[:, None], (1, size)),
                       np.full((size, size), 90, np.uint8)], axis=-1)
    image = Image.fromarray(pixels)
    scale = size / SIZE
    ImageDraw.Draw(image).ellipse([v * scale for v in (12, 10, 44, 42)], fill=(230, 200, 40), outline=(20, 20, 20),
                                  width=3)
    return image


def mask_picture(size: int = SIZE) -> Image.Image:
    """White (repainted) over a rectangle off the middle, black (kept) around it."""
    mask = Image.new("L", (size, size), 0)
    scale = size / SIZE
    ImageDraw.Draw(mask).rectangle([v * scale for v in (20, 16, 52, 48)], fill=255)
    return mask


def edges_picture(size: int = SIZE) -> Image.Image:
    """White edges on black, as a Canny edge map or a scribble reaches a ControlNet."""
    edges = Image.new("RGB", (size, size), "black")
    draw = ImageDraw.Draw(edges)
    scale = size / SIZE
    draw.line([v * scale for v in (4, 50, 30, 8, 60, 50)], fill="white", width=2)
    draw.rectangle([v * scale for v in (22, 30, 40, 58)], outline="white", width=2)
    return edges


def depth_picture(size: int = SIZE) -> Image.Image:
    """A near-to-far ramp with a close disc, as a depth estimator draws one (white is near)."""
    ramp = np.tile(np.linspace(40, 200, size, dtype=np.uint8)[:, None], (1, size))
    image = Image.fromarray(np.stack([ramp] * 3, axis=-1))
    scale = size / SIZE
    ImageDraw.Draw(image).ellipse([v * scale for v in (20, 24, 44, 48)], fill=(250, 250, 250))
    return image


def diffusers_image(pipe, blur: int | None = None, **call) -> Image.Image:
    """`pipe`'s image for `call` as the diffusers docs make it (the tests' reference side). With `blur`, an
    inpainting: the mask blurred by the pipeline's own mask processor, and the image laid into the init image
    with `apply_overlay`, the docs' way to keep the unmasked area as it was."""
    if blur is not None:
        call["mask_image"] = pipe.mask_processor.blur(call["mask_image"], blur_factor=blur)
    image = pipe(**call).images[0]
    return pipe.image_processor.apply_overlay(call["mask_image"], call["image"], image) if blur is not None else image


def painting(path: Path, mimetype: str, entries: dict[str, bytes]) -> Path:
    """A zip as Krita and MyPaint write one: `mimetype` first and stored, the rest deflated."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), mimetype)
        for name, data in entries.items():
            archive.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return path


def krita_file(path: Path, merged: Image.Image | None) -> Path:
    """A .kra as Krita 5 saves one: its document, its layers in Krita's own tiles, a preview at most 256 pixels
    on a side, and the merged picture."""
    picture = merged or Image.new("RGB", (64, 64))
    preview = picture.copy()
    preview.thumbnail((32, 32))
    entries = {"maindoc.xml": b'<?xml version="1.0"?><DOC editor="Krita" kritaVersion="5.2.2"><IMAGE name="Sketch" '
                              b'width="%d" height="%d" colorspacename="RGBA"/></DOC>' % picture.size,
               "documentinfo.xml": b"<document-info/>", "Sketch/layers/layer2": b"VERSION 2\nTILEWIDTH 64\n",
               "preview.png": png(preview)}
    if merged is not None:
        entries["mergedimage.png"] = png(merged)
    return painting(path, "application/x-krita", entries)


@dataclass
class XcfLayer:
    """A layer of `xcf_file`: 8-bit pixels (rows, columns, colours + alpha), or a group of `children`."""
    pixels: np.ndarray | None = None
    place: tuple[int, int] = (0, 0)
    opacity: float = 1.0
    visible: bool = True
    mode: int = 28  # GIMP 2.10's Normal
    mask: np.ndarray | None = None  # (rows, columns), 0–255
    children: list[XcfLayer] = field(default_factory=list)
    size: tuple[int, int] | None = None  # a group's (its children's box, as GIMP keeps it)
    floating_to: int | None = None  # a floating selection: the index (in file order) of the layer it belongs to


def xcf_file(path: Path, size: tuple[int, int], layers: list[XcfLayer], compression: int = 1, version: int = 11,
             grey: bool = False) -> Path:
    """An 8-bit XCF file as GIMP writes one (devel-docs/specifications/xcf.txt): `layers` top first, groups before
    their layers (with item paths), tiles of 64² raw (0), run-length (1) or zlib (2) encoded, 32-bit pointers before
    version 11 and 64-bit ones from it."""
    pointer = ">Q" if version >= 11 else ">I"
    step = struct.calcsize(pointer)
    tag = b"file" if version == 0 else b"v%03d" % version
    out = bytearray(b"gimp xcf " + tag + b"\0" + struct.pack(">III", *size, 1 if grey else 0))
    if version >= 4:
        out += struct.pack(">I", 150)  # 8-bit gamma encoded
    out += _property(17, bytes([compression])) + _property(0, b"")
    flat: list[tuple[XcfLayer, tuple[int, ...]]] = []

    def walk(children: list[XcfLayer], path: tuple[int, ...]) -> None:
        for index, layer in enumerate(children):
            flat.append((layer, path + (index,)))
            walk(layer.children, path + (index,))

    walk(layers, ())
    slots = len(out)
    out += bytes(step * (len(flat) + 2))  # the layers' pointers, their 0, and no channels' 0
    starts = []
    for index, (layer, item_path) in enumerate(flat):
        start = len(out)
        starts.append(start)
        struct.pack_into(pointer, out, slots + index * step, start)
        group = bool(layer.children) or layer.pixels is None
        pixels = layer.pixels if not group else np.zeros((*(layer.size or size)[::-1], 2 if grey else 4), np.uint8)
        rows, columns, channels = pixels.shape
        kind = (2 if grey else 0) + (channels % 2 == 0)  # with alpha: an even count of channels
        out += struct.pack(">III", columns, rows, kind) + _string("layer %d" % index)
        out += _property(6, struct.pack(">I", round(layer.opacity * 255)))
        out += _property(33, struct.pack(">f", layer.opacity)) + _property(8, struct.pack(">I", layer.visible))
        out += _property(15, struct.pack(">ii", *layer.place)) + _property(7, struct.pack(">I", layer.mode))
        if group:
            out += _property(29, b"")
        if len(item_path) > 1:
            out += _property(30, struct.pack(f">{len(item_path)}I", *item_path))
        if layer.floating_to is not None:
            out += _property(5, struct.pack(pointer, 0))  # filled in below, where its layer is
        if layer.mask is not None:
            out += _property(11, struct.pack(">I", 1))
        out += _property(0, b"")
        pointers_at = len(out)
        out += bytes(2 * step)
        struct.pack_into(pointer, out, pointers_at, len(out))
        out += _hierarchy(pixels, compression, pointer, len(out))
        if layer.mask is not None:
            struct.pack_into(pointer, out, pointers_at + step, len(out))
            out += struct.pack(">II", columns, rows) + _string("mask") + _property(0, b"")
            out += struct.pack(pointer, len(out) + step)
            out += _hierarchy(layer.mask[..., None], compression, pointer, len(out))
    for index, (layer, _) in enumerate(flat):
        if layer.floating_to is not None:
            at = out.index(struct.pack(">II", 5, step), starts[index]) + 8
            struct.pack_into(pointer, out, at, starts[layer.floating_to])
    path.write_bytes(bytes(out))
    return path


def _property(kind: int, payload: bytes) -> bytes:
    return struct.pack(">II", kind, len(payload)) + payload


def _string(text: str) -> bytes:
    data = text.encode() + b"\0"
    return struct.pack(">I", len(data)) + data


def _hierarchy(pixels: np.ndarray, compression: int, pointer: str, base: int) -> bytes:
    """A hierarchy written at `base`, its first level and its tiles, row by row."""
    rows, columns, bpp = pixels.shape
    step = struct.calcsize(pointer)
    tiles = [_encoded(pixels[row:row + 64, column:column + 64], compression)
             for row in range(0, rows, 64) for column in range(0, columns, 64)]
    head = struct.pack(">III", columns, rows, bpp)
    level_at = base + len(head) + 2 * step
    at, pointers = level_at + 8 + step * (len(tiles) + 1), []
    for tile in tiles:
        pointers.append(struct.pack(pointer, at))
        at += len(tile)
    return head + struct.pack(pointer, level_at) + bytes(step) + struct.pack(">II", columns, rows) \
        + b"".join(pointers) + bytes(step) + b"".join(tiles)


def _encoded(tile: np.ndarray, compression: int) -> bytes:
    if compression == 0:
        return tile.tobytes()
    if compression == 2:
        return zlib.compress(tile.tobytes())
    out = bytearray()
    for plane in np.moveaxis(tile, 2, 0):
        data, at = plane.tobytes(), 0
        while at < len(data):
            run = 1
            while at + run < len(data) and data[at + run] == data[at] and run < 40000:
                run += 1
            if run >= 3:
                out += bytes([run - 1, data[at]]) if run <= 127 else bytes([127, run >> 8, run & 255, data[at]])
                at += run
                continue
            end = at + 1
            while end < len(data) and end - at < 300 and not (end + 2 < len(data) and data[end] == data[end + 1]
                                                               == data[end + 2]):
                end += 1
            literal = data[at:end]
            out += bytes([256 - len(literal)]) + literal if len(literal) < 128 else \
                bytes([128, len(literal) >> 8, len(literal) & 255]) + literal
            at = end
    return bytes(out)


# The inks of `cmyk_profile`, as sRGB, and paper: a press's cyan, magenta, yellow and black, which a screen shows
# duller than its own pure colours
INKS = {"C": (0, 174, 239), "M": (236, 0, 140), "Y": (255, 242, 0), "K": (35, 31, 32)}


def cmyk_profile() -> bytes:
    """A small CMYK colour profile (ICC v2, CMYK to Lab through a 2⁴ grid): each ink as `INKS`, inks together as
    their colours multiplied, as on paper. LittleCMS reads it as it reads a press's profile."""
    from PIL import ImageCms

    corners = []
    for c in (0, 1):
        for m in (0, 1):
            for y in (0, 1):
                for k in (0, 1):
                    colour = np.ones(3)
                    for ink, on in zip("CMYK", (c, m, y, k)):
                        colour = colour * (np.array(INKS[ink]) / 255 if on else 1)
                    corners.append(tuple(int(round(v * 255)) for v in colour))
    screen = Image.frombytes("RGB", (16, 1), bytes(v for corner in corners for v in corner))
    lab = ImageCms.profileToProfile(screen, ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"),
                                    outputMode="LAB")
    grid = b"".join(struct.pack(">HHH", round(lightness * 65280 / 255), a * 256, b * 256)
                    for lightness, a, b in lab.get_flattened_data())
    identity = struct.pack(">HH", 0, 65535)
    lut = (b"mft2" + bytes(4) + bytes([4, 3, 2, 0]) + b"".join(struct.pack(">i", 65536 if i in (0, 4, 8) else 0)
                                                              for i in range(9))
           + struct.pack(">HH", 2, 2) + identity * 4 + grid + identity * 3)
    text = b"A small CMYK press\0"
    description = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(4 + 4 + 2 + 1 + 67)
    white = b"XYZ " + bytes(4) + b"".join(struct.pack(">i", round(v * 65536)) for v in (0.9642, 1.0, 0.8249))
    copyright_ = b"text" + bytes(4) + b"No copyright\0"
    tags = [(b"desc", description), (b"wtpt", white), (b"cprt", copyright_), (b"A2B0", lut)]
    at, table, data = 128 + 4 + 12 * len(tags), b"", b""
    for signature, body in tags:
        body += bytes(-len(body) % 4)
        table += signature + struct.pack(">II", at + len(data), len(body))
        data += body
    size = 128 + 4 + len(table) + len(data)
    header = (struct.pack(">I", size) + b"lcms" + bytes([2, 0x10, 0, 0]) + b"prtr" + b"CMYK" + b"Lab "
              + bytes(12) + b"acsp" + bytes(4 * 6) + struct.pack(">I", 0)
              + b"".join(struct.pack(">i", round(v * 65536)) for v in (0.9642, 1.0, 0.8249)) + bytes(4 + 16 + 28))
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data
