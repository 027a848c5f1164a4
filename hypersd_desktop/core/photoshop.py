"""Photoshop files Pillow does not read: 16- and 32-bit documents, and large documents (`.psb`).

A Photoshop file keeps, after its layers, the picture as Photoshop shows it: all layers merged, a plane per
channel, raw or run-length encoded (PackBits, a row at a time, as Photoshop writes 8- and 16-bit planes). Pillow
reads that picture from 8-bit `.psd` files; this reads it from the others and makes it 8 bits a channel as the app
works: 16-bit values scaled, 32-bit values (linear light, as Photoshop keeps them) encoded as sRGB. The first
channel past the colour ones is the transparency where it is the only one (as Pillow takes it for 8-bit RGB files).
It also reads 8-bit greyscale files with transparency, whose two planes Pillow reads as one (a grey sketch on a
transparent layer came in as noise). Where the picture has transparency, Photoshop keeps its colours put over
white (so a reader that leaves the transparency out sees the picture on white paper): `unmatted` takes the white
back out, for Pillow's files as for these.

`register()` makes it a Pillow format; `images.read_formats` registers it with the others.
"""

from __future__ import annotations

import io
import struct
from functools import cache

from hypersd_desktop.core.stub_formats import StubLoader

SIGNATURE = b"8BPS"
COLOURS = {0: 1, 1: 1, 2: 1, 3: 3, 4: 4, 7: 1, 8: 1, 9: 3}  # colour mode: channels of colour (others: extra ones)
MODES = {1: "L", 3: "RGB", 4: "CMYK", 9: "LAB"}
RAW, PACKBITS = 0, 1
GREYSCALE = 1
VERSION_INFO, ICC_PROFILE = 1057, 1039  # image resources: whether the merged picture is real; the colour profile


class PhotoshopError(SyntaxError):
    """Not a Photoshop file read here (Pillow then tries its other formats), or one that cannot be read."""


def header(data: bytes) -> tuple[int, int, int, int, int, int]:
    """(version, channels, height, width, depth, colour mode) of a Photoshop file's first 26 bytes: version 1 for
    `.psd`, 2 for a large document (`.psb`); depth in bits a channel."""
    if len(data) < 26 or not data.startswith(SIGNATURE):
        raise PhotoshopError("not a Photoshop file")
    version, channels, height, width, depth, mode = struct.unpack(">4xH6xHIIHH", data[:26])
    return version, channels, height, width, depth, mode


def read_here(data: bytes) -> bool:
    """Whether a Photoshop file is one this reads (Pillow reads the other ones: 1- and 8-bit `.psd`, except 8-bit
    greyscale ones with transparency)."""
    try:
        version, channels, _, _, depth, mode = header(data)
    except PhotoshopError:
        return False
    grey_and_alpha = depth == 8 and mode == GREYSCALE and channels == 2
    return version in (1, 2) and mode in COLOURS and (version == 2 or depth != 8 or grey_and_alpha) \
        and depth in (8, 16, 32) and channels >= COLOURS[mode]


def unmatted(picture):
    """A merged picture with transparency (LA, RGBA) with the white Photoshop put its colours over taken out:
    stored = colour × alpha + white × (1 − alpha). Others are returned as they are."""
    if picture.mode not in ("LA", "RGBA"):
        return picture
    import numpy as np
    from PIL import Image

    pixels = np.asarray(picture, np.float32)
    alpha = pixels[..., -1:]
    colours = (pixels[..., :-1] + alpha - 255) * 255 / np.maximum(alpha, 1)
    pixels[..., :-1] = np.where(alpha > 0, colours, pixels[..., :-1])
    return Image.fromarray(np.rint(pixels.clip(0, 255)).astype(np.uint8), picture.mode)


def merged_saved(data: bytes) -> bool:
    """Whether a Photoshop file holds its merged picture. Saved with "Maximize PSD and PSB File Compatibility" off,
    a layered file holds in its place a stand-in ("This layered Photoshop file was not saved with a composite
    image"), and its version info resource says so; a file without that resource holds a real one."""
    try:
        version_info = image_resources(io.BytesIO(data)).get(VERSION_INFO, b"")
    except PhotoshopError:
        return True  # read as any other file: damaged, or not Photoshop's
    return len(version_info) < 5 or version_info[4] != 0  # after the resource's version (4 bytes): whether it is real


def image_resources(stream) -> dict[int, bytes]:
    """A Photoshop file's image resources by id (`stream` at any place; left after them): 1039 its colour
    profile, 1057 its version info, …"""
    stream.seek(26)
    stream.seek(struct.unpack(">I", _read(stream, 4))[0], 1)  # the colour mode data
    block = _read(stream, struct.unpack(">I", _read(stream, 4))[0])
    found, at = {}, 0
    while at + 12 <= len(block) and block[at:at + 4] in (b"8BIM", b"MeSa"):
        resource, name_length = struct.unpack(">H", block[at + 4:at + 6])[0], block[at + 6]
        at += 6 + name_length + 1 + (name_length + 1) % 2  # the name: a Pascal string padded to even
        size = struct.unpack(">I", block[at:at + 4])[0]
        found[resource] = block[at + 4:at + 4 + size]
        at += 4 + size + size % 2
    return found


def _skip_sections(stream, version: int) -> None:
    """Past the colour mode data, the image resources and the layers, to the merged picture."""
    stream.seek(26)
    for size_format in (">I", ">I", ">I" if version == 1 else ">Q"):
        size = struct.unpack(size_format, _read(stream, struct.calcsize(size_format)))[0]
        stream.seek(size, 1)


def _read(stream, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise PhotoshopError("the file is cut short")
    return data


def merged_picture(stream, version: int, channels: int, size: tuple[int, int], depth: int, colour_mode: int):
    """The merged picture of the Photoshop file `stream` (at its start), 8 bits a channel, as a Pillow image."""
    import numpy as np
    from PIL import Image

    width, height = size
    _skip_sections(stream, version)
    compression = struct.unpack(">H", _read(stream, 2))[0]
    colours = COLOURS[colour_mode]
    kept = colours + 1 if channels == colours + 1 else colours  # the transparency, where it is the one extra
    row_bytes = width * depth // 8
    if compression == PACKBITS and depth != 32:
        count_format = ">H" if version == 1 else ">I"
        counts = np.frombuffer(_read(stream, channels * height * struct.calcsize(count_format)), count_format)
    elif compression != RAW:
        raise PhotoshopError(f"compression {compression} of the merged picture")
    bands = []  # each plane made 8-bit as it is read: a 16-bit 8192² plane is 128 MiB
    for channel in range(kept):
        if compression == RAW:
            plane = _read(stream, row_bytes * height)
        else:
            packed = _read(stream, int(counts[channel * height:(channel + 1) * height].sum()))
            try:
                plane = Image.frombytes("L", (row_bytes, height), packed, "packbits", "L").tobytes()
            except ValueError as error:
                raise PhotoshopError(f"a damaged picture: {error}") from None
        bands.append(_eight_bit(plane, depth, (width, height), alpha=channel == colours))
    if colour_mode == 4:  # CMYK planes hold 255 for no ink
        bands[:4] = [band.point(lambda value: 255 - value) for band in bands[:4]]
    picture = Image.merge(MODES[colour_mode], bands[:colours]) if colours > 1 else bands[0]
    if colours > 1 and picture.mode != "RGB" and not (picture.mode == "CMYK" and kept == colours):
        picture = picture.convert("RGB")  # Lab; CMYK with transparency (CMYK alone is made RGB by its profile)
    if kept > colours:
        picture = picture.convert("RGBA" if picture.mode == "RGB" else "LA")
        picture.putalpha(bands[colours])
    return picture


def _eight_bit(plane: bytes, depth: int, size: tuple[int, int], alpha: bool):
    """A plane of 8, 16 or 32 bits a value as an 8-bit Pillow band: 16-bit values scaled; 32-bit ones (linear light,
    0–1) encoded as sRGB, except the transparency, which is not light."""
    import numpy as np
    from PIL import Image

    if depth == 8:
        return Image.frombytes("L", size, plane)
    if depth == 16:
        values = (np.frombuffer(plane, ">u2").astype(np.uint32) * 255 + 32767) // 65535
    else:
        linear = np.clip(np.nan_to_num(np.frombuffer(plane, ">f4").astype(np.float64)), 0.0, 1.0)
        encoded = linear if alpha else np.where(linear <= 0.0031308, linear * 12.92,
                                                1.055 * linear ** (1 / 2.4) - 0.055)
        values = np.rint(encoded * 255)
    return Image.fromarray(values.astype(np.uint8).reshape(size[1], size[0]), "L")


@cache
def register() -> None:
    """Let Pillow open 16- and 32-bit Photoshop files, large documents and 8-bit greyscale ones with transparency
    (once), before its own PSD reader."""
    from PIL import Image, ImageFile

    class PhotoshopFile(ImageFile.StubImageFile):
        format = "PSD"
        format_description = "Adobe Photoshop (16 or 32 bits, or a large document)"

        def _open(self) -> None:
            head = self.fp.read(26)
            if not read_here(head):
                raise PhotoshopError("a Photoshop file Pillow reads")
            version, channels, height, width, depth, colour_mode = header(head)
            if min(width, height) < 1:
                raise PhotoshopError("no picture")
            colours = COLOURS[colour_mode]
            has_alpha = channels == colours + 1
            self._mode = ("LA" if has_alpha else "L") if colours == 1 else ("RGBA" if has_alpha else "RGB")
            if colour_mode == 4 and not has_alpha:
                self._mode = "CMYK"  # made RGB through its profile when it is kept
            self._size = (width, height)
            self.layout = (version, channels, (width, height), depth, colour_mode)
            profile = image_resources(self.fp).get(ICC_PROFILE)
            if profile and colour_mode != 9:  # not a Lab one: the picture is made RGB without it
                self.info["icc_profile"] = profile
            self._handler = StubLoader(lambda im: merged_picture(im.fp, *im.layout))

    Image.register_open("PSD_DEEP", PhotoshopFile, lambda prefix: prefix.startswith(SIGNATURE))
    Image.register_extensions("PSD_DEEP", [".psb"])
    # tried before Pillow's own reader, which opens a greyscale file with transparency as plain grey; this one
    # declines every other file at once (its first 26 bytes)
    Image.init()
    Image.ID.remove("PSD_DEEP")
    Image.ID.insert(0, "PSD_DEEP")
