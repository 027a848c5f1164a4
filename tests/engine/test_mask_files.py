"""Mask files as people make them: a black-and-white picture (grayscale, or saved as RGB), or strokes on a
transparent layer exported from an image editor, whose alpha channel is the mask (as AUTOMATIC1111 reads an
uploaded mask)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.images import InputImages
from hypersd_desktop.engine import GenerationRequest
from hypersd_desktop.engine.inputs import open_inputs

SIZE = (96, 64)
SQUARE = (16, 8, 56, 40)  # the painted part: left, top, right, bottom


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def painted(mode: str, background, stroke) -> Image.Image:
    image = Image.new(mode, SIZE, background)
    image.paste(stroke, SQUARE)
    return image


def read_mask(tmp_path, mask: Image.Image) -> np.ndarray:
    store = InputImages(tmp_path / "inputs")
    request = GenerationRequest(prompt="a boat", base_model="unused", init_image=store.add(png(Image.new("RGB", SIZE))),
                                mask_image=store.add(png(mask)), mask_blur=0, width=SIZE[0], height=SIZE[1])
    sources = open_inputs(request, store, *SIZE)
    assert sources.mask.mode == "L" and sources.mask.size == SIZE
    return np.asarray(sources.mask)


def expected() -> np.ndarray:
    left, top, right, bottom = SQUARE
    wanted = np.zeros(SIZE[::-1], np.uint8)
    wanted[top:bottom, left:right] = 255
    return wanted


@pytest.mark.parametrize("mask", [
    painted("L", 0, 255),
    painted("RGB", "black", (255, 255, 255)),  # saved from a paint program as RGB
    painted("RGBA", (0, 0, 0, 255), (255, 255, 255, 255)),  # RGBA, but opaque all over: its colours are the mask
    painted("RGBA", (0, 0, 0, 0), (255, 255, 255, 255)),  # white strokes on a transparent layer
    painted("RGBA", (255, 255, 255, 0), (0, 0, 0, 255)),  # black strokes on a transparent layer: painted is painted
    painted("RGBA", (0, 0, 0, 0), (230, 20, 20, 255)),  # red strokes on a transparent layer: the colour does not count
    painted("LA", (0, 0), (128, 255)),
], ids=["gray", "rgb", "opaque-rgba", "white-on-transparent", "black-on-transparent", "red-on-transparent", "la"])
def test_the_mask_is_the_picture_or_for_one_with_transparency_its_alpha(mask, tmp_path):
    assert np.array_equal(read_mask(tmp_path, mask), expected())


def test_a_palette_mask_with_a_transparent_colour_reads_its_transparency(tmp_path):
    mask = painted("RGBA", (0, 0, 0, 0), (255, 255, 255, 255)).convert("P")  # a tRNS chunk, as GIF-style tools save
    assert "transparency" in Image.open(io.BytesIO(png(mask))).info
    assert np.array_equal(read_mask(tmp_path, mask), expected())


def test_an_opaque_mask_with_colours_is_refused_saying_what_a_mask_is(tmp_path):
    with pytest.raises(InputError, match="The mask has colours; use a grayscale image .* or strokes on a transparent"):
        read_mask(tmp_path, painted("RGB", "black", (230, 20, 20)))
