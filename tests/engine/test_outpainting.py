"""Outpainting's inputs (`preprocess.outpainted`): the picture extended on the sides asked, the new parts filled
with the edge drawn out, and the mask that paints them across the seam; an earlier mask is kept."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hypersd_desktop.engine.preprocess import outpainted
from pictures import init_picture, mask_picture


def test_the_picture_grows_on_the_sides_asked_to_multiples_of_8_and_keeps_its_pixels():
    picture = init_picture().resize((100, 60))
    extended, mask = outpainted(picture, None, (0, 0, 30, 0))
    assert extended.size == mask.size == (136, 60)  # 130 made up to a multiple of 8 on the side extended
    pixels, painted = np.asarray(extended, np.int16), np.asarray(mask)
    assert np.array_equal(pixels[:, :100], np.asarray(picture, np.int16))
    assert (painted[:, 100:] == 255).all() and (painted[:, :92] == 0).all()  # the new part, 8 pixels back
    assert (painted[:, 92:100] == 255).all()
    # the new part starts from the edge's colours: beside the edge, about the edge column's
    assert np.abs(pixels[:, 101] - pixels[:, 99]).mean() < 25
    assert np.abs(pixels[:, 101] - pixels[:, 99]).mean() < np.abs(pixels[:, 101] - pixels[:, 0]).mean()

    extended, mask = outpainted(picture, None, (5, 3, 0, 0))  # made up on the side extended most
    assert extended.size == (112, 64)  # 105 and 63 made up to 112 and 64: 12 on the left, 4 on top
    assert np.array_equal(np.asarray(extended, np.int16)[4:, 12:], np.asarray(picture, np.int16))


def test_outpainting_again_keeps_the_mask_it_had():
    extended, mask = outpainted(init_picture(), mask_picture(), (0, 0, 0, 16))
    assert extended.size == (64, 80)
    painted = np.asarray(mask)
    assert np.array_equal(painted[:40], np.asarray(mask_picture())[:40])  # the painted rectangle, kept
    assert (painted[56:] == 255).all()
    again, mask = outpainted(extended, mask, (16, 0, 0, 0))
    painted = np.asarray(mask)
    assert again.size == (80, 80) and (painted[:, :24] == 255).all() and (painted[64:, :] == 255).all()
    assert np.array_equal(painted[:40, 24:], np.asarray(mask_picture())[:40, 8:])


@pytest.mark.parametrize("mode", ["RGBA", "L", "P"])
def test_any_picture_mode_is_extended_as_rgb(mode):
    picture = init_picture().convert(mode)
    extended, mask = outpainted(picture, None, (8, 8, 8, 8))
    assert extended.mode == "RGB" and mask.mode == "L" and extended.size == (80, 80)
    assert isinstance(Image.fromarray(np.asarray(extended)), Image.Image)
