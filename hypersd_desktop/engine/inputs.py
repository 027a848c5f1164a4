"""A request's input images, opened from the input store and checked against the request (torch-free).

The command line checks them before torch is imported; the engine opens them for the run. The run
takes the init image's size unless the request names one; a size that differs from the init image's,
sides that are not multiples of 8, or a mask that is not a grayscale image of the same size are
refused with what to do. A control image with a preprocessor is made here from the picture named, and
the mask is blurred by the request's mask blur (a Gaussian blur, as diffusers' `VaeImageProcessor.blur`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.images import InputImages
from hypersd_desktop.engine.preprocess import control_image
from hypersd_desktop.engine.types import GenerationRequest


@dataclass
class ModeInputs:
    """A request's images, opened and checked, and the size the run has."""

    width: int
    height: int
    init: object = None  # PIL images
    mask: object = None  # grayscale, blurred by the request's mask blur
    controls: list = field(default_factory=list)


def open_inputs(request: GenerationRequest, inputs: InputImages | None, width: int, height: int) -> ModeInputs:
    """The request's images from the input store. The run takes the init image's size unless the request
    names one; a size that differs from the init image's, or a mask of another size, is an error."""
    if not request.input_images():
        return ModeInputs(width, height)
    if inputs is None:
        raise InputError("This request has input images, and this engine was given no input image store.")
    init = mask = None
    if request.init_image is not None:
        init = inputs.open(request.init_image)
        asked = (request.width or init.width, request.height or init.height)
        if asked != init.size:
            raise InputError(f"The init image is {init.width} × {init.height}, and {asked[0]} × {asked[1]} was asked; "
                             "leave the size to the image, or resize the image first.")
        if init.width % 8 or init.height % 8:
            raise InputError(f"The init image is {init.width} × {init.height}; both sides must be multiples of 8. "
                             "Crop or resize it first.")
        width, height = init.size
    if request.mask_image is not None:
        colours = np.asarray(inputs.open(request.mask_image), dtype=np.int16)
        if np.abs(np.diff(colours, axis=-1)).max() > 2:
            raise InputError("The mask has colours; use a grayscale image: white is repainted, black is kept.")
        mask = inputs.open(request.mask_image, mode="L")
        if mask.size != init.size:
            raise InputError(f"The mask is {mask.width} × {mask.height} and the init image {init.width} × "
                             f"{init.height}; the mask must be a grayscale image of the same size.")
        if request.mask_blur:
            from PIL import ImageFilter

            mask = mask.filter(ImageFilter.GaussianBlur(request.mask_blur))
    controls = [control_image(inputs.open(control.image), control.preprocessor) for control in request.controls]
    return ModeInputs(width, height, init, mask, controls)
