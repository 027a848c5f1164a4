"""Input images by content: the init image, the mask and the control images of a request.

A request names each input image by the sha256 of its file's bytes, so a request stored in a PNG
says exactly which pixels it started from, and the bytes travel once however often a request is
reused. `InputImages` keeps them as `<root>/<sha256>.<format>`, written atomically; the worker and
the gallery each keep such a folder. Images that may never be kept (each frame of a drawing on the
Draw tab) are only held in memory, the newest few, until an image made from them is saved and keeps
them. Images are checked when they come in: a file that is not an image, or one too large to be a
generation's input, is refused with a message that says so. Pictures in formats the window and the
compute runtime do not read (an iPhone's HEIC photo, AVIF) are turned upright and kept as PNG: a
request names the PNG.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import struct
import threading
from collections import OrderedDict
from functools import cache
from pathlib import Path

from hypersd_desktop.core import gimp, jpegxl, paintings, photoshop
from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.files import why_not_written, write_atomic

MAX_INPUT_SIDE = 8192  # a photo larger on a side (a phone's panorama, a 1200 dpi scan) is kept scaled down to it
MOST_INPUT_PIXELS = 178_956_970  # Pillow's guard against decompression bombs (twice Image.MAX_IMAGE_PIXELS)
FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "BMP": "bmp", "TIFF": "tif", "GIF": "gif"}
# Pillow's names for JPEG files of other kinds: a camera's or phone's photo that carries more pictures (a
# preview, a depth map) in MPF segments opens as MPO; its first picture is the photo.
JPEG_KINDS = ("MPO",)
# Formats read when they come in and kept as PNG, upright: Qt has no reader for them and the compute runtime
# may not either. HEIC/HEIF through pi-heif (libheif; the decoder only); JPEG XL through pylibjxl (libjxl's decoder:
# `jpegxl`); AVIF and Photoshop's PSD (its merged picture) through Pillow itself, or `photoshop` for 16- and 32-bit
# ones, large documents (PSB) and greyscale ones with transparency; Krita's and OpenRaster's files through
# `paintings`; GIMP's through `gimp` (its layers put together).
CONVERTED = {"HEIF": "a HEIC photo", "AVIF": "an AVIF picture", "JXL": "a JPEG XL picture", "PSD": "a Photoshop file",
             "XCF": "a GIMP file", **paintings.KINDS}
PAINTING_KINDS = ("PSD", "XCF", *paintings.KINDS)  # kept at most MAX_INPUT_SIDE on a side, not scaled down
DIGEST = re.compile(r"[0-9a-f]{64}")
# Pictures a run can start from that the gallery does not hold (read here: HEIC made PNG, the others as Pillow reads
# them); the gallery's own are gallery.IMAGE_SUFFIXES
PICTURE_SUFFIXES = (".heic", ".heif", ".jxl", ".bmp", ".tif", ".tiff", ".gif", ".psd", ".psb", ".kra", ".ora", ".xcf")
# Other painting programs' own files, which the app does not read (closed formats): dropped on the window they are
# said so, not taken for models. Their first bytes name some.
FOREIGN_PICTURE_SUFFIXES = (".clip", ".pdn", ".procreate", ".sai", ".sai2")
_FOREIGN = {  # first bytes: the kind, in words, and how its program saves a picture the app reads
    b"CSFCHUNK": ("CLIP", "a Clip Studio Paint file (.clip)",
                  "in Clip Studio Paint choose File ▸ Export (Single Layer) ▸ .png"),
    b"PDN3": ("PDN", "a Paint.NET file (.pdn)", "in Paint.NET choose File ▸ Save As… and save it as PNG"),
}
_PROCREATE = ("PROCREATE", "a Procreate file (.procreate)", "in Procreate choose Share ▸ PNG")
_PROGRAMS = {"PSD": "Photoshop", "XCF": "GIMP", "KRA": "Krita"}  # where a damaged painting may still open
_NEWER_GIMP = ("XCF?", "", "in GIMP choose File ▸ Export As… and export it as PNG")
HELD_IMAGES = 64  # images held in memory only; older ones are forgotten unless kept
HELD_PICTURES = 8  # pictures a pass hands to the next run undecoded (a tile's canvas and mask); older ones forgotten


# Picture formats by the brand of their ISO media file (bytes 8–11): HEIC/HEIF and AVIF.
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")
_AVIF_BRANDS = (b"avif", b"avis")


def _media_kind(data: bytes) -> tuple[str, str] | None:
    """The format of a picture file Pillow may not read, where its first bytes say, and the file in words: a HEIC
    photo (as iPhones take them by default), an AVIF picture or a JPEG XL file; None otherwise."""
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "HEIC", CONVERTED["HEIF"] + " (as iPhones take them)"
    if data[4:8] == b"ftyp" and data[8:12] in _AVIF_BRANDS:
        return "AVIF", CONVERTED["AVIF"]
    if jpegxl.is_jpeg_xl(data):
        return "JPEG XL", "a JPEG XL picture"
    if data[:4] == photoshop.SIGNATURE and len(data) >= 26:
        version, depth = photoshop.header(data)[0], photoshop.header(data)[4]
        if version in (1, 2) and depth in (1, 8, 16, 32):
            return "PSD", CONVERTED["PSD"] if version == 1 else "a large Photoshop document (PSB)"
        return "PSD?", f"a Photoshop file of a kind the app does not know (version {version}, {depth} bits)"
    xcf_version = gimp.version(data)
    if xcf_version is not None:
        if xcf_version > gimp.NEWEST_VERSION:
            return "XCF?", f"a GIMP file saved by a newer GIMP (XCF version {xcf_version}) than the app knows"
        return "XCF", CONVERTED["XCF"]
    foreign = next((kind for start, kind in _FOREIGN.items() if data.startswith(start)), None)
    if foreign or paintings.is_procreate(data):
        return (foreign or _PROCREATE)[:2]
    kind = paintings.painting_kind(data)
    return (kind, CONVERTED[kind]) if kind else None


def is_converted(data: bytes) -> bool:
    """Whether an image file's bytes are of a format kept as PNG (a HEIC photo, AVIF, a painting program's file),
    by their first bytes, or of a picture scaled down to be kept (a panorama): decoding and writing those takes a
    second or more."""
    if (data[4:8] == b"ftyp" and data[8:12] in (*_HEIF_BRANDS, *_AVIF_BRANDS)) or data[:4] == photoshop.SIGNATURE \
            or data.startswith(gimp.SIGNATURE) or jpegxl.is_jpeg_xl(data) or paintings.painting_kind(data) is not None:
        return True
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:  # its header only
            return max(image.size) > MAX_INPUT_SIDE
    except Exception:  # anything Pillow raises for what is no picture: said when it is added
        return False


@cache
def _heif_opener() -> bool:
    """Let Pillow open HEIC and HEIF files (once); False where pi-heif is not installed."""
    try:
        import pi_heif
    except ImportError:
        return False
    pi_heif.register_heif_opener()
    return True


@cache
def read_formats() -> tuple[str, ...]:
    """The picture formats that come in: PNG, JPEG, …, HEIC and AVIF where their decoders are installed, and the
    files of painting programs (Photoshop's, GIMP's, Krita's, OpenRaster's)."""
    from PIL import features

    paintings.register()
    photoshop.register()
    gimp.register()
    return ("PNG", "JPEG", "WebP", "BMP", "TIFF", "GIF", *(("HEIC",) if _heif_opener() else ()),
            *(("AVIF",) if features.check("avif") else ()), *(("JPEG XL",) if jpegxl.register() else ()),
            "PSD", "XCF", "KRA", "ORA")


def read_formats_words(conjunction: str = "or") -> str:
    names = read_formats()
    return f"{', '.join(names[:-1])} {conjunction} {names[-1]}"


def _unread(data: bytes, what: str) -> InputError:
    """The error for bytes Pillow did not open as a picture: what they are where their first bytes say."""
    kind = _media_kind(data)
    if kind is None:
        return InputError(f"{what} cannot be read as an image ({read_formats_words()}).")
    unmerged = paintings.why_unread(data)
    if unmerged:
        return InputError(f"{what} is {unmerged}.")
    name, words = kind
    if name in read_formats():  # a format read here: this file is damaged or cut short
        program = _PROGRAMS.get(name)
        again = f"Open it in {program} and export it as PNG." if program else \
            "Open it in a photo viewer and save it as JPEG or PNG."
        return InputError(f"{what} is {words} that cannot be decoded; it may be damaged or cut short. {again}")
    advice = next((advice for kind, _, advice in (*_FOREIGN.values(), _PROCREATE, _NEWER_GIMP) if kind == name),
                  "save it as JPEG or PNG first")
    return InputError(f"{what} is {words}, which the app cannot read; {advice} "
                      f"({read_formats_words('and')} are read).")


def check_image_bytes(data: bytes, what: str = "The image") -> tuple[str, tuple[int, int]]:
    """The file extension it is kept with and the size of an image file's bytes; `InputError` when they are no
    picture the app reads. A converted format (`CONVERTED`) is kept as PNG (`kept_bytes`)."""
    from PIL import Image, UnidentifiedImageError

    if data[4:8] == b"ftyp":
        _heif_opener()
    if data[:4] == paintings.ZIP_START:
        paintings.register()
    if data[:4] == photoshop.SIGNATURE:
        photoshop.register()
    if data.startswith(gimp.SIGNATURE):
        gimp.register()
    if jpegxl.is_jpeg_xl(data):
        jpegxl.register()
    try:
        with Image.open(io.BytesIO(data)) as image:
            size, kind, mode = image.size, image.format, image.mode
            image.verify()
    except Image.DecompressionBombError:  # Pillow's guard: more than about 179 megapixels
        raise InputError(f"{what} has more pixels than an input can have (about {round(MOST_INPUT_PIXELS / 1e6)} "
                         "megapixels). Scale it down first.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise _unread(data, what) from None
    if kind == "PSD" and not photoshop.merged_saved(data):
        raise InputError(f"{what} is a layered Photoshop file saved without its merged picture; in Photoshop, "
                         "turn on Preferences ▸ File Handling ▸ Maximize PSD and PSB File Compatibility and save "
                         "it again, or export it as PNG.")
    if kind in JPEG_KINDS:
        kind = "JPEG"
    if kind not in CONVERTED and kind not in FORMATS:
        article = "an" if str(kind)[:1] in "AEIO" else "a"  # an ICO, an EPS
        raise InputError(f"{what} is {article} {kind} file; use {read_formats_words()}.")
    if max(size) > MAX_INPUT_SIDE and kind in PAINTING_KINDS:  # its canvas, which a few bytes can claim
        raise InputError(f"{what} is {size[0]} × {size[1]} pixels; a painting program's file can be at most "
                         f"{MAX_INPUT_SIDE} pixels on a side. Export it as PNG, or scale it down first.")
    if max(size) > MAX_INPUT_SIDE or mode == "CMYK":  # kept scaled down; kept as RGB, as it is shown
        return "png", fitted_size(size)
    return ("png" if kind in CONVERTED else FORMATS[kind]), size


def fitted_size(size: tuple[int, int]) -> tuple[int, int]:
    """The size a picture is kept at: its own, or scaled down to `MAX_INPUT_SIDE` on its longer side."""
    scale = MAX_INPUT_SIDE / max(size)
    if scale >= 1:
        return size
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def kept_bytes(data: bytes, what: str = "The image") -> tuple[bytes, str]:
    """What is kept of an image file's bytes, and its extension: the bytes themselves in a format the app keeps,
    or a PNG of the picture upright (its EXIF orientation applied, its colour profile kept) for a converted one
    (a HEIC photo, AVIF, JPEG XL, a painting program's file). `InputError` for bytes that are no picture the app
    reads."""
    extension, _ = check_image_bytes(data, what)
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as image:
        kind = image.format  # before its pixels are read: a stub format's image becomes another
        stored = image.size
        fitted = fitted_size(stored)
        if kind not in CONVERTED and fitted == stored and image.mode != "CMYK":
            return data, extension
        profile = image.info.get("icc_profile")
        try:
            if fitted != stored:
                image.draft(image.mode, fitted)  # a JPEG decoded at a half, a quarter or an eighth of its size
            upright = eight_bit(ImageOps.exif_transpose(image))
            if fitted != stored:  # a panorama, a scan: scaled down to be kept (turned, as it is shown)
                target = fitted if (upright.width > upright.height) == (stored[0] > stored[1]) else fitted[::-1]
                if upright.size != target:
                    upright = upright.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
            profile = profile or upright.info.get("icc_profile")  # a JPEG XL file's: known once it is decoded
            if kind == "PSD":  # Photoshop's merged picture: its colours put over white where transparent
                upright = photoshop.unmatted(upright)
            if upright.mode in ("CMYK", "LAB"):  # a print picture's: its profile is not of the RGB kept
                upright, profile = from_print(upright, profile), None
            elif upright.mode not in ("RGB", "RGBA", "L", "LA"):
                upright = upright.convert("RGBA" if "A" in upright.mode or "transparency" in upright.info else "RGB")
        except (OSError, ValueError, SyntaxError):
            raise _unread(data, what) from None
    buffer = io.BytesIO()
    upright.save(buffer, "PNG", compress_level=1, **({"icc_profile": profile} if profile else {}))
    return buffer.getvalue(), "png"


def png_data(image, quick: bool = False) -> bytes:
    """A PIL image as a PNG file's bytes (a picture the app made: an edge map, a depth map, a mask, an outpainted
    picture), as Pillow writes it by default, or `quick`ly compressed (a phone photo's in about a second)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1 if quick else 6)
    return buffer.getvalue()


def open_any_size(path: Path):
    """An image file opened as Pillow opens one (nothing decoded yet), however many pixels it has. Pillow refuses to
    open one over about 179 megapixels (a 16K² upscale) even for its size and text, as a guard against a small file
    that decodes to gigabytes; its callers decode such an image only at a reduced size (`too_many_pixels`). The
    way past the guard is Pillow's own table of openers (`Image.OPEN`), which `Image.open` walks: Pillow is pinned
    (requirements/constraints.txt), and tests/gallery/test_bad_input.py opens a real 185-megapixel PNG through it, so
    a Pillow that changes the table fails there before it ships."""
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(path)
    except Image.DecompressionBombError:
        pass
    Image.init()
    with open(path, "rb") as stream:
        prefix = stream.read(16)
    for factory, accept in list(Image.OPEN.values()):
        matched = accept(prefix) if accept is not None else True
        if not matched or isinstance(matched, str):  # a string: a warning that the format is not read
            continue
        try:
            return factory(str(path))  # what Image.open does, without its check of the size
        except (SyntaxError, IndexError, TypeError, ValueError, struct.error):
            continue
    raise UnidentifiedImageError(f"cannot identify image file {str(path)!r}")


def png_chunks_after_image_data(path: Path, kinds: tuple[bytes, ...], most: int) -> list[tuple[bytes, bytes]]:
    """The chunks of `kinds` (b"tEXt", b"eXIf", …) a PNG file has after its image data, where some savers put their
    text or EXIF, each of at most `most` bytes: found by walking the chunk list, where Pillow decodes the pixels to
    reach them (13 ms for 1024², 90 ms for a 2000 × 1500 photo)."""
    found = []
    with open(path, "rb") as stream:
        stream.seek(8)
        seen_image_data = False
        while len(header := stream.read(8)) == 8:
            length, kind = int.from_bytes(header[:4], "big"), header[4:]
            if kind == b"IEND":
                break
            seen_image_data = seen_image_data or kind == b"IDAT"
            if seen_image_data and kind in kinds and length <= most:
                found.append((kind, stream.read(length)))
                stream.seek(4, os.SEEK_CUR)
            else:
                stream.seek(length + 4, os.SEEK_CUR)
    return found


def too_many_pixels(image) -> bool:
    """Whether decoding `image` at its size (after any `draft`) would pass Pillow's guard (see `open_any_size`)."""
    from PIL import Image

    return Image.MAX_IMAGE_PIXELS is not None and image.width * image.height > 2 * Image.MAX_IMAGE_PIXELS


def eight_bit(image):
    """`image` with 8 bits a channel where Pillow opens it with more: 16-bit greyscale ("I;16", or "I" in older
    Pillow) and float ("F", from TIFF), whose own conversions clip to white instead of scaling. Other images are
    returned as they are (Pillow opens 16-bit colour PNGs as 8-bit RGB already)."""
    if image.mode not in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return image
    import numpy as np  # here only: the window starts without numpy
    from PIL import Image

    values = np.asarray(image, dtype=np.float64)
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    if image.mode == "F":
        scale = 255.0 if values.max(initial=0.0) <= 1.0 else 1.0  # float images hold 0–1, or 0–255
    else:
        scale = 1 / 257 if image.mode.startswith("I;16") or values.max(initial=0.0) > 255 else 1.0
    return Image.fromarray(np.clip(np.rint(values * scale), 0, 255).astype(np.uint8), "L")


def from_print(picture, profile: bytes | None):
    """A CMYK picture (a print PSD, JPEG or TIFF) as sRGB: through its colour profile, as Photoshop shows it (relative
    colorimetric with black point compensation); without one (or with one LittleCMS cannot read), Pillow's plain
    conversion, which takes each ink for a pure screen colour (cyan as 0, 255, 255). Other modes: made RGB."""
    from PIL import ImageCms

    if picture.mode == "CMYK" and profile:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            if source.profile.xcolor_space.strip() == "CMYK":
                return ImageCms.profileToProfile(picture, source, ImageCms.createProfile("sRGB"),
                                                 ImageCms.Intent.RELATIVE_COLORIMETRIC, "RGB",
                                                 flags=ImageCms.Flags.BLACKPOINTCOMPENSATION)
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # a damaged profile: the plain conversion
    return picture.convert("RGB")


def _in_mode(image, mode: str):
    """`image` in `mode`, its transparent parts white where it becomes RGB (as a canvas would show them)."""
    from PIL import Image

    if image.mode == "CMYK" and mode == "RGB":  # one kept before CMYK pictures were made RGB as they came in
        return from_print(image, image.info.get("icc_profile"))
    if image.mode in ("RGBA", "LA", "P") and mode == "RGB":
        background = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert(mode)


class InputImages:
    """A folder of input images named by the sha256 of their bytes, and the newest few held in memory only."""

    def __init__(self, root: Path, held: int = HELD_IMAGES) -> None:
        self.root = root
        self._held: OrderedDict[str, tuple[str, bytes]] = OrderedDict()  # digest -> (extension, bytes)
        self._pictures: OrderedDict[str, object] = OrderedDict()  # digest -> a PIL image a pass made (`hold_picture`)
        self._most_held = held
        self._lock = threading.Lock()  # the worker holds images on its reader thread and reads them on its job thread

    def add(self, data: bytes, what: str = "The image") -> str:
        """Keep `data` (an image file's bytes) on disk and return its sha256; the same bytes are kept once."""
        digest = self.hold(data, what)
        self.keep(digest)
        return digest

    def hold(self, data: bytes, what: str = "The image") -> str:
        """Hold `data` in memory (not on disk) and return its sha256; `keep` writes it when it is needed. A picture
        in a converted format is held as PNG (`kept_bytes`), named by the PNG's sha256."""
        data, extension = kept_bytes(data, what)
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            self._held[digest] = (extension, data)
            self._held.move_to_end(digest)
            while len(self._held) > self._most_held:
                self._held.popitem(last=False)
        return digest

    def hold_picture(self, picture) -> str:
        """Hold a picture made here for the next run that names it (a Hires fix's first pass, a picture repainted a
        tile at a time, a face's mask) as it is, not encoded: a 4096² canvas would take a second to write as PNG and
        another to read, for each tile. Named by the sha256 of its mode, size and pixels; `read` makes its PNG only
        where a file is asked for. The newest `HELD_PICTURES` are held."""
        picture = picture.copy()
        digest = hashlib.sha256(f"{picture.mode} {picture.size}\n".encode() + picture.tobytes()).hexdigest()
        with self._lock:
            self._pictures[digest] = picture
            self._pictures.move_to_end(digest)
            while len(self._pictures) > HELD_PICTURES:
                self._pictures.popitem(last=False)
        return digest

    def has(self, digest: str) -> bool:
        with self._lock:
            if digest in self._held or digest in self._pictures:
                return True
        return self.find(digest) is not None

    def keep(self, digest: str) -> Path:
        """Write a held image to the folder (an image saved from it names it); its path there."""
        path = self.find(digest)
        if path is not None:
            return path
        with self._lock:
            held, picture = self._held.get(digest), self._pictures.get(digest)
        if held is None and picture is None:
            raise self._missing(digest)
        extension, data = held if held is not None else ("png", png_data(picture))
        path = self.root / f"{digest}.{extension}"
        try:
            write_atomic(path, data)
        except OSError as error:
            raise InputError(f"The picture could not be stored: {why_not_written(error, self.root)}.") from None
        return path

    def add_file(self, path: Path, what: str | None = None, keep: bool = True) -> str:
        """`add` (or with `keep` False, `hold`) a file's bytes."""
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            raise InputError(f"{path} cannot be read: {error.strerror or error}.") from None
        what = what or f"The image {Path(path).name}"
        return self.add(data, what) if keep else self.hold(data, what)

    def find(self, digest: str) -> Path | None:
        if not DIGEST.fullmatch(digest):
            return None
        for extension in FORMATS.values():
            path = self.root / f"{digest}.{extension}"
            if path.is_file():
                return path
        return None

    def read(self, digest: str) -> bytes:
        with self._lock:
            held, picture = self._held.get(digest), self._pictures.get(digest)
        if held is not None:
            return held[1]
        if picture is not None:
            return png_data(picture, quick=True)
        path = self.find(digest)
        if path is None:
            raise self._missing(digest)
        return path.read_bytes()

    @staticmethod
    def _missing(digest: str) -> InputError:
        return InputError(f"The input image {digest[:12]}… is not here; add the image again (it may have been "
                          "removed with its gallery entry).")

    def open(self, digest: str, mode: str = "RGB"):
        """The image as a PIL image in `mode` (RGB, or L for a mask), fully loaded."""
        from PIL import Image, ImageOps

        with self._lock:
            picture = self._pictures.get(digest)
        if picture is not None:
            return _in_mode(picture, mode)
        with Image.open(io.BytesIO(self.read(digest))) as image:
            return _in_mode(eight_bit(ImageOps.exif_transpose(image)), mode)  # a phone photo upright, as shown
