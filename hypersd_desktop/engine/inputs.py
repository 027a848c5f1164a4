"""A request's input images, opened from the input store and checked against the request (torch-free).

The command line checks them before torch is imported; the engine opens them for the run. The run
takes the size the request names, else the init image's own (`init_size`: sides cut to multiples of 8,
a picture far larger than the model's size scaled down to it). The init image and its mask are cut
about the centre to that size's aspect ratio and scaled to it, so any picture can start a run; a mask
is a grayscale image of the init image's size, or one with transparency whose alpha channel is the mask
(`mask_of`), and any other is refused with what to do. Control images
are fitted to the run's size the same way (a ControlNet would otherwise get them stretched), and one
with a preprocessor is made here from the picture named. The mask is blurred by the request's mask
blur (a Gaussian blur, as diffusers' `VaeImageProcessor.blur`) at the run's size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.images import InputImages
from hypersd_desktop.engine.preprocess import control_image, drawing_mode
from hypersd_desktop.engine.types import GenerationRequest, init_size


@dataclass
class ModeInputs:
    """A request's images, opened and checked, and the size the run has."""

    width: int
    height: int
    init: object = None  # PIL images
    mask: object = None  # grayscale, blurred by the request's mask blur
    controls: list = field(default_factory=list)


def open_inputs(request: GenerationRequest, inputs: InputImages | None, width: int, height: int) -> ModeInputs:
    """The request's images from the input store, at the run's size. `width` × `height` is the size the run
    would have without an init image (the model's own when the request names none)."""
    if not request.input_images():
        return ModeInputs(width, height)
    if inputs is None:
        raise InputError("This request has input images, and this engine was given no input image store.")
    init = mask = None
    if request.init_image is not None:
        picture = inputs.open(request.init_image)
        own = init_size(picture.size, math.isqrt(width * height))
        width, height = (request.width or own[0], request.height or own[1])
        init = covered(picture, (width, height))
    if request.mask_image is not None:
        mask = mask_of(inputs.open(request.mask_image, mode="RGBA"))
        if mask.size != picture.size:
            raise InputError(f"The mask is {mask.width} × {mask.height} and the init image {picture.width} × "
                             f"{picture.height}; the mask must be a grayscale image of the same size.")
        mask = covered(mask, (width, height))
        if request.mask_blur:
            from PIL import ImageFilter

            mask = mask.filter(ImageFilter.GaussianBlur(request.mask_blur))
    controls = [control_image(covered(inputs.open(control.image, mode=drawing_mode(control.preprocessor)),
                                      (width, height)), control.preprocessor)
                for control in request.controls]
    return ModeInputs(width, height, init, mask, controls)


def mask_of(image):
    """The grayscale mask in a mask file: the image itself (white is repainted, black kept), or, for one with
    transparent parts, its alpha channel, where what is painted is repainted (as AUTOMATIC1111 reads an uploaded
    mask: strokes on a transparent layer, exported from an image editor)."""
    alpha = image.getchannel("A")
    if alpha.getextrema() != (255, 255):
        return alpha
    colours = np.asarray(image.convert("RGB"), dtype=np.int16)
    if np.abs(np.diff(colours, axis=-1)).max() > 2:
        raise InputError("The mask has colours; use a grayscale image (white is repainted, black is kept), or "
                         "strokes on a transparent background.")
    return image.convert("L")


def edge_map(picture, size: tuple[int, int] | None):
    """The Canny edges a ControlNet follows of `picture` (PIL) in a run of `size`: found on the picture fitted to
    that size, as the run fits its control images. Edges found on a picture far larger than the run fade when it
    is scaled down (a phone photo's reached a 512-pixel run at a third of their strength, most of them grey);
    `size` None keeps the picture's own."""
    from hypersd_desktop.engine.preprocess import canny

    return canny(covered(picture, size) if size is not None else picture)


def covered(image, size: tuple[int, int]):
    """`image` cut about its centre to the aspect ratio of `size` and scaled to it (Lanczos; Pillow's
    `ImageOps.fit`): a picture of another shape loses its edges, never its proportions. An image of that
    size is returned as it is."""
    from PIL import Image, ImageOps

    return image if image.size == tuple(size) else ImageOps.fit(image, size, Image.Resampling.LANCZOS)
