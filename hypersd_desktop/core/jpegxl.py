"""JPEG XL pictures (`.jxl`) through libjxl's decoder (pylibjxl, BSD 3-Clause).

`register()` makes them a Pillow format ("JXL"): opening one reads its header for its size; its pixels are decoded
when asked for, 8 bits a channel, upright (libjxl turns them as the header says, so the EXIF kept in the file, whose
orientation a JPEG transcoded by `cjxl` still names, is not handed on to be applied twice), with the colour profile
the pixels are in. An animation gives its first frame. The app keeps the picture as PNG when it comes in
(`images.kept_bytes`), as it does a HEIC photo.
"""

from __future__ import annotations

from functools import cache

from hypersd_desktop.core.stub_formats import StubLoader

SIGNATURES = (b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")  # a bare codestream; the ISO media container
HEADER_BYTES = 1 << 16  # enough for the header of nearly every file; the whole file is read where it is not


class JpegXlError(SyntaxError):
    """Not a JPEG XL file (Pillow then tries its other formats), or one that cannot be decoded."""


def is_jpeg_xl(data: bytes) -> bool:
    return data.startswith(SIGNATURES)


def _decoded(im):
    """The picture of the opened JPEG XL file `im`, 8 bits a channel, upright, with its colour profile."""
    import pylibjxl
    from PIL import Image

    try:
        im.fp.seek(0)
        pixels, metadata = pylibjxl.decode(im.fp.read(), metadata=True)
    except RuntimeError as error:  # libjxl's "Decoder error during pixel decode": damaged or cut short
        raise JpegXlError(f"a JPEG XL file that cannot be decoded: {error}") from None
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    mode = {2: "L", 3: {2: "LA", 3: "RGB", 4: "RGBA"}.get(pixels.shape[-1])}.get(pixels.ndim)
    if mode is None:
        raise JpegXlError(f"pixels of shape {pixels.shape}")
    picture = Image.fromarray(pixels, mode)
    profile = metadata.get("icc") or metadata.get("icc_profile")
    if profile:
        picture.info["icc_profile"] = bytes(profile)
    return picture


@cache
def register() -> bool:
    """Let Pillow open JPEG XL files (once); False where pylibjxl is not installed (a source install on a Mac
    older than macOS 14, which its wheels need)."""
    try:
        import pylibjxl
    except ImportError:
        return False
    from PIL import Image, ImageFile

    class JpegXlFile(ImageFile.StubImageFile):
        format = "JXL"
        format_description = "JPEG XL"

        def _open(self) -> None:
            head = self.fp.read(HEADER_BYTES)
            if not is_jpeg_xl(head):
                raise JpegXlError("not a JPEG XL file")
            try:
                try:
                    info = pylibjxl.probe(head)
                except RuntimeError:  # boxes (EXIF, XMP) before the codestream, past the first bytes
                    self.fp.seek(0)
                    info = pylibjxl.probe(self.fp.read())
            except RuntimeError as error:
                raise JpegXlError(f"a JPEG XL file that cannot be decoded: {error}") from None
            grey, alpha = info["color_channels"] == 1, info["has_alpha"]
            self._mode = ("LA" if alpha else "L") if grey else ("RGBA" if alpha else "RGB")
            self._size = (info["width"], info["height"])  # upright, as libjxl gives them
            self.n_frames, self.is_animated = 1, False  # the first frame only
            self._handler = StubLoader(_decoded)

    Image.register_open("JXL", JpegXlFile, is_jpeg_xl)
    Image.register_extensions("JXL", [".jxl"])
    return True
