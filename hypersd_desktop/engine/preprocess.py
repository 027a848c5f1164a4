"""Control images from what people have: a drawing becomes the scribble a ControlNet was trained on,
a photo its Canny edges.

The scribble ControlNets (`lllyasviel/sd-controlnet-scribble`, the drawing demo's) were trained on
white strokes on black. People draw dark strokes on a light canvas, and a picture to trace is dark
on light too, so a drawing is turned the right way round by its background: a mostly light image is
inverted. Strokes are then stretched to pure white on pure black, as in training: below a faint-noise
floor is paper, the darkest ink is white, and anti-aliased edges fall between. Torch-free: the Draw tab runs it in the window.

Canny edges are OpenCV's, with the Hyper-SD model card's thresholds (100 and 200). OpenCV is part of
the app, not of the compute runtime: the window and the command line make the edge map, and the
request names the edge map itself.
"""

from __future__ import annotations

import math

import numpy as np

from hypersd_desktop.core.vocab import Preprocessor

NOISE_FLOOR = 24  # 8-bit levels; paper texture and JPEG noise below it are no stroke
CANNY_THRESHOLDS = (100, 200)  # the model card's


def scribble(drawing):
    """A drawing (PIL, any mode) as the scribble ControlNet sees it: white strokes on black, RGB. The strokes are
    the dark parts on a light background, the light ones on a dark background, and, for strokes on a transparent
    layer (a drawing exported from an image editor, opened as RGBA), the painted parts whatever their colour."""
    from PIL import Image

    if drawing.mode == "RGBA" and drawing.getchannel("A").getextrema()[0] < 255:
        gray = np.asarray(drawing.getchannel("A"), dtype=np.int32)
    else:
        gray = np.asarray(drawing.convert("L"), dtype=np.int32)
        if np.median(gray) > 127:  # a light background: the strokes are the dark parts
            gray = 255 - gray
    strongest = max(int(gray.max()), NOISE_FLOOR + 1)  # the darkest ink becomes pure white, whatever its colour
    strokes = np.clip((gray - NOISE_FLOOR) * 255 // (strongest - NOISE_FLOOR), 0, 255).astype(np.uint8)
    return Image.fromarray(strokes, "L").convert("RGB")


def canny(picture, low: int = CANNY_THRESHOLDS[0], high: int = CANNY_THRESHOLDS[1]):
    """A picture's (PIL) Canny edges as a canny ControlNet sees them: white edges on black, RGB."""
    import cv2
    from PIL import Image

    edges = cv2.Canny(np.asarray(picture.convert("RGB")), low, high)
    return Image.fromarray(edges, "L").convert("RGB")


def inpaint_control(picture, mask, union: bool) -> np.ndarray:
    """The init image (PIL) as an inpainting ControlNet sees it, with the part the mask (PIL L, or None: nothing)
    paints (above half) left open: -1 in every channel for lllyasviel's `control_v11p_sd15_inpaint`, as its model
    card and A1111's inpaint_only mark it, black for xinsir's ProMax Union model (`union`), as its own inpainting
    code marks it. One image as diffusers takes an array: (1, height, width, 3), float32, 0 to 1 elsewhere."""
    pixels = np.asarray(picture.convert("RGB"), dtype=np.float32) / 255
    if mask is not None:
        pixels[np.asarray(mask.convert("L")) > 127] = 0.0 if union else -1.0
    return pixels[None]


MAX_OUTPAINTED_SIDE = 8192  # an outpainted picture's longest side (the run is made at about the model's size)
FILL_BLUR = 8  # pixels: the blur of an outpainted part's fill, at the size it is blurred at
OUTPAINT_OVERLAP = 1 / 32  # of the picture's longer side, at least 8 pixels: how far the mask reaches back into it


def outpainted(picture, mask, pads: tuple[int, int, int, int]):
    """`picture` (PIL) extended by `pads` pixels (left, top, right, bottom) for outpainting, and the mask that
    repaints the new parts: (picture, mask), PIL RGB and L. A side extended is made longer so that the whole is a
    multiple of 8 wide and high (the run would cut the rest off). The new parts hold the picture's edge drawn out
    and blurred, colours for the run to start from; the mask paints them and reaches a little way back into the
    picture across each new edge, so that the seam is painted over. `mask` (PIL L of the picture's size, or None)
    is an earlier mask, kept: outpainting again extends a picture already extended."""
    import cv2
    from PIL import Image

    left, top, right, bottom = (max(0, int(pad)) for pad in pads)
    width, height = picture.size
    if left or right:
        extra = -(width + left + right) % 8
        right, left = (right + extra, left) if right >= left else (right, left + extra)
    if top or bottom:
        extra = -(height + top + bottom) % 8
        bottom, top = (bottom + extra, top) if bottom >= top else (bottom, top + extra)
    pixels = np.asarray(picture.convert("RGB"))
    drawn_out = cv2.copyMakeBorder(pixels, top, bottom, left, right, cv2.BORDER_REPLICATE)
    sigma = max(left, top, right, bottom, 3) / 3
    # blurred at a size where the blur is 8 pixels wide (a phone photo's quarter: 32 s whole, well under 1 s so)
    shrink = max(1.0, sigma / FILL_BLUR)
    size = drawn_out.shape[1], drawn_out.shape[0]
    small = cv2.resize(drawn_out, (max(1, round(size[0] / shrink)), max(1, round(size[1] / shrink))),
                       interpolation=cv2.INTER_AREA)
    filled = cv2.resize(cv2.GaussianBlur(small, (0, 0), sigma / shrink), size, interpolation=cv2.INTER_LINEAR)
    filled[top:top + height, left:left + width] = pixels
    painted = np.zeros(filled.shape[:2], np.uint8)
    if mask is not None:
        painted[top:top + height, left:left + width] = np.asarray(mask.convert("L"))
    overlap = max(8, round(max(width, height) * OUTPAINT_OVERLAP))
    new = np.ones(filled.shape[:2], bool)
    inner_left, inner_top = left + (overlap if left else 0), top + (overlap if top else 0)
    inner_right, inner_bottom = left + width - (overlap if right else 0), top + height - (overlap if bottom else 0)
    new[inner_top:max(inner_top, inner_bottom), inner_left:max(inner_left, inner_right)] = False
    painted[new] = 255
    return Image.fromarray(filled, "RGB"), Image.fromarray(painted, "L")


def drawing_mode(preprocessor: str) -> str:
    """The mode to open a control picture in for `preprocessor`: RGBA for a drawing made a scribble (its
    transparency says where the strokes are), else RGB (transparent parts laid on white)."""
    return "RGBA" if preprocessor == Preprocessor.SCRIBBLE else "RGB"


def control_image(picture, preprocessor: Preprocessor):
    """What a ControlNet sees of `picture` (PIL) with `preprocessor`: the picture itself for NONE (and for INPAINT,
    whose marks the mode's call adds: `inpaint_control`)."""
    if preprocessor == Preprocessor.SCRIBBLE:
        return scribble(picture)
    return picture.convert("RGB")


def resized_seamless(picture, size: tuple[int, int], wraps: tuple[bool, bool]):
    """`picture` (PIL) resized to `size` with Lanczos as a seamless image is: across (`wraps[0]`) and down
    (`wraps[1]`) the filter reads past each edge what lies at the other, so the result tiles as the picture does.
    Pillow's resize of a box of a larger picture reads the pixels around the box; here those are the picture
    wrapped around, as many as the filter reaches (three source pixels a side, more when shrinking)."""
    from PIL import Image

    width, height = picture.size
    reach = math.ceil(3 * max(1.0, width / size[0], height / size[1])) + 1
    across, down = (reach if wraps[0] else 0), (reach if wraps[1] else 0)
    if not across and not down:
        return picture.resize(size, Image.Resampling.LANCZOS)
    pixels = np.asarray(picture)
    padding = ((down, down), (across, across)) + ((0, 0),) * (pixels.ndim - 2)
    wrapped = Image.fromarray(np.pad(pixels, padding, mode="wrap"))
    return wrapped.resize(size, Image.Resampling.LANCZOS, box=(across, down, across + width, down + height))
