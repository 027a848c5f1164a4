"""Pictures for the image-mode tests, drawn in code: a photo-like init image, a mask, and an edge map."""

from __future__ import annotations

import io

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
