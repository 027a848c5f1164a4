"""Pictures for the image-mode tests, drawn in code: a photo-like init image, a mask, and an edge map; and painting
programs' files (Krita's, OpenRaster's) as those programs write them."""

from __future__ import annotations

import io
import zipfile
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
