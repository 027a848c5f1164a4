"""A request's input images, opened from the input store and checked against the request (torch-free).

The command line checks them before torch is imported; the engine opens them for the run. The run
takes the size the request names, else the init image's own (`init_size`: sides cut to multiples of 8,
a picture far larger than the model's size scaled down to it). The init image and its mask are cut
about the centre to that size's aspect ratio and scaled to it, so any picture can start a run; a mask
is a grayscale image of the init image's size, or one with transparency whose alpha channel is the mask
(`mask_of`), and any other is refused with what to do. Control images are fitted to the run's size the same
way (a ControlNet would otherwise get them stretched; when only the masked area is made, that area is cut out
of them too), and one with a preprocessor is made here from the picture named (an inpainting ControlNet's is
the run's init image, marked where the mask paints by the mode's call). The mask is blurred by the request's
mask blur (a Gaussian blur, as diffusers' `VaeImageProcessor.blur`) at the run's size. An IP-Adapter's picture
is taken whole: its image encoder scales and crops it to its own square.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.images import InputImages
from hypersd_desktop.core.vocab import Preprocessor, Tiling
from hypersd_desktop.engine.preprocess import control_image, drawing_mode
from hypersd_desktop.engine.types import GenerationRequest, area_size, init_size


@dataclass(frozen=True)
class Overlay:
    """How an inpainted image goes back into the init image, so that only what the mask paints changes, as A1111,
    InvokeAI and Fooocus lay it back (diffusers' `apply_overlay`): the pipeline's image of the unpainted part is a
    round trip through the VAE, which softens it and shifts its colours, more with each inpainting of a result.
    With "Only masked" the image is of the masked area and is scaled into its place in the whole picture."""

    picture: object  # the whole init image (PIL, RGB)
    mask: object  # the whole mask, blurred (PIL, L)
    box: tuple[int, int, int, int]  # the area that was made: left, top, right, bottom

    def paste(self, image):
        """`image` (a run's result) scaled to the area and laid into the whole picture where the mask is painted,
        blended along its blurred edge; the rest of the picture is the init image's own pixels."""
        from PIL import Image

        left, top, right, bottom = self.box
        made = self.picture.copy()
        made.paste(image.convert("RGB").resize((right - left, bottom - top), Image.Resampling.LANCZOS), (left, top))
        return Image.composite(made, self.picture, self.mask)


@dataclass
class ModeInputs:
    """A request's images, opened and checked, and the size the run has."""

    width: int
    height: int
    init: object = None  # PIL images
    mask: object = None  # grayscale, blurred by the request's mask blur
    controls: list = field(default_factory=list)
    overlay: Overlay | None = None  # set when inpainting
    references: list = field(default_factory=list)  # the IP-Adapters' pictures, whole (their encoder crops them)

    def finish(self, image):
        """A run's result as the request asked for it: an inpainted image laid into the init image (into the whole
        picture when only the masked area was made), others as they are."""
        return self.overlay.paste(image) if self.overlay is not None else image


def open_inputs(request: GenerationRequest, inputs: InputImages | None, width: int, height: int,
                enlarge: Callable | None = None) -> ModeInputs:
    """The request's images from the input store, at the run's size. `width` × `height` is the size the run
    would have without an init image (the model's own when the request names none). `enlarge(picture, size)`, when
    given, enlarges an init image (or the masked area of one) smaller than the run to cover the run's size (an
    upscaler model); it is then fitted to it as any picture is."""
    if not request.input_images():
        return ModeInputs(width, height)
    if inputs is None:
        raise InputError("This request has input images, and this engine was given no input image store.")
    init = mask = overlay = None
    if request.init_image is not None:
        picture = inputs.open(request.init_image)
        if request.masked_padding is None:  # else the masked area sets the size, below
            own = init_size(picture.size, math.isqrt(width * height))
            width, height = (request.width or own[0], request.height or own[1])
            init = _fitted(_enlarged(picture, (width, height), enlarge), (width, height), request.tiling)
    if request.mask_image is not None:
        mask = mask_of(inputs.open(request.mask_image, mode="RGBA"))
        if mask.size != picture.size:
            raise InputError(f"The mask is {mask.width} × {mask.height} and the init image {picture.width} × "
                             f"{picture.height}; the mask must be a grayscale image of the same size.")
        if request.masked_padding is None:
            mask = _blurred(covered(mask, (width, height)), request.mask_blur)
            overlay = Overlay(init, mask, (0, 0, width, height))
        else:
            whole = _blurred(mask, request.mask_blur)
            if request.width and request.height:
                width, height = request.width, request.height
            else:  # the masked area at about the model's own size, as the whole picture would be
                left, top, right, bottom = _padded_bounds(whole, request.masked_padding)
                width, height = area_size((right - left, bottom - top), math.isqrt(width * height))
            box = masked_area(whole, (width, height), request.masked_padding)
            init = covered(_enlarged(picture.crop(box), (width, height), enlarge), (width, height))
            mask = covered(whole.crop(box), (width, height))
            overlay = Overlay(picture, whole, box)
    area = (picture.size, overlay.box) if request.masked_padding is not None else None
    controls = [init if control.preprocessor == Preprocessor.INPAINT else
                control_image(_control_picture(inputs.open(control.image, mode=drawing_mode(control.preprocessor)),
                                               (width, height), area), control.preprocessor)
                for control in request.controls]
    references = [inputs.open(adapter.image, mode="RGB") for adapter in request.ip_adapters]
    return ModeInputs(width, height, init, mask, controls, overlay, references)


def _control_picture(picture, size: tuple[int, int], area: tuple[tuple[int, int], tuple] | None):
    """A control picture fitted to the run as the init image is: whole, or, when only the masked area is made
    (`area`: the init image's size and the area's box in it), fitted to the whole init image, the area cut out
    and fitted to the run, so that it lies over the part of the picture made (as sd-webui-controlnet crops its
    control images for "Only masked")."""
    if area is not None:
        whole, box = area
        picture = covered(picture, whole).crop(box)
    return covered(picture, size)


def _fitted(picture, size: tuple[int, int], tiling: str):
    """The init image fitted to the run: for a seamless request, of the run's shape (a Hires fix's first pass is),
    resized wrapping around its edges (`preprocess.resized_seamless`), so it stays seamless; else `covered`."""
    wraps = Tiling(tiling).wraps
    same_shape = abs(picture.width * size[1] - picture.height * size[0]) < size[1]  # fit would crop under a pixel
    if any(wraps) and same_shape and picture.size != tuple(size):
        from hypersd_desktop.engine.preprocess import resized_seamless

        return resized_seamless(picture, size, wraps)
    return covered(picture, size)


def enlarged_to(picture, size: tuple[int, int], enlarge: Callable | None):
    """An init image at the run's `size`, as a run fits it: enlarged by `enlarge` (an upscaler model) where it is
    smaller, then `covered`."""
    return covered(_enlarged(picture, size, enlarge), size)


def _enlarged(picture, size: tuple[int, int], enlarge: Callable | None):
    """`picture` enlarged by `enlarge` where it is smaller than `size` on either side; else as it is."""
    smaller = picture.width < size[0] or picture.height < size[1]
    return enlarge(picture, size) if enlarge is not None and smaller else picture


def _blurred(mask, radius: int):
    """The mask with its edge softened (a Gaussian blur, as diffusers' `VaeImageProcessor.blur`)."""
    from PIL import ImageFilter

    return mask.filter(ImageFilter.GaussianBlur(radius)) if radius else mask


def _padded_bounds(mask, padding: int) -> tuple[int, int, int, int]:
    bounds = mask.getbbox()
    if bounds is None:
        raise InputError("The mask is empty: paint the part of the picture to repaint (white in a mask file).")
    left, top, right, bottom = bounds
    return max(left - padding, 0), max(top - padding, 0), min(right + padding, mask.width), min(bottom + padding,
                                                                                                 mask.height)


def masked_size(mask, blur: int, padding: int) -> tuple[int, int]:
    """The size that makes only the masked area of `mask` (blurred `blur` pixels, `padding` around it) at its own
    pixels: its sides cut to multiples of 8."""
    left, top, right, bottom = _padded_bounds(_blurred(mask, blur), padding)
    return max(8, (right - left) // 8 * 8), max(8, (bottom - top) // 8 * 8)


def masked_area(mask, size: tuple[int, int], padding: int) -> tuple[int, int, int, int]:
    """The part of the picture made when only the masked area is inpainted: the painted pixels' bounds with
    `padding` around them, grown about their centre to the run's shape (`size`) and moved to lie inside the picture,
    as diffusers' `padding_mask_crop` and A1111 choose it."""
    left, top, right, bottom = _padded_bounds(mask, padding)
    shape = size[0] / size[1]
    if (right - left) / (bottom - top) > shape:
        top, bottom = _grown(top, bottom, int((right - left) / shape - (bottom - top)), mask.height)
    else:
        left, right = _grown(left, right, int((bottom - top) * shape - (right - left)), mask.width)
    return left, top, right, bottom


def _grown(start: int, end: int, grow: int, limit: int) -> tuple[int, int]:
    """The span `start`–`end` grown by `grow` about its centre, moved back inside 0–`limit`, cut at it if longer."""
    start, end = start - grow // 2, end + grow - grow // 2
    if end >= limit:
        start, end = start - (end - limit), limit
    if start < 0:
        start, end = 0, end - start
    return start, min(end, limit)


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
