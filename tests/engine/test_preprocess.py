"""Scribbles reach the ControlNet the way it was trained: white strokes on black."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from hypersd_desktop.engine.preprocess import scribble


def drawing(background, stroke, size=64):
    image = Image.new("RGB", (size, size), background)
    ImageDraw.Draw(image).line((8, 8, 56, 40), fill=stroke, width=5)
    return image


def test_a_black_on_white_drawing_reaches_the_controlnet_as_white_on_black():
    out = np.asarray(scribble(drawing("white", "black")))
    assert out.shape == (64, 64, 3)
    assert tuple(out[60, 4]) == (0, 0, 0)  # the paper
    assert tuple(out[24, 32]) == (255, 255, 255)  # the stroke (the line passes through x=32, y=24)


def test_a_white_on_black_scribble_keeps_its_polarity_and_an_off_white_paper_is_no_stroke():
    assert tuple(np.asarray(scribble(drawing("black", "white")))[24, 32]) == (255, 255, 255)
    assert tuple(np.asarray(scribble(drawing("black", "white")))[60, 4]) == (0, 0, 0)
    paper = np.asarray(scribble(drawing((240, 236, 228), (30, 30, 60))))  # cream paper, blue-black ink
    assert paper[60, 4].max() == 0 and paper[24, 32].min() == 255


def test_a_transparent_canvas_drawing_reads_as_strokes_on_black():
    canvas = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).line((8, 8, 56, 40), fill=(0, 0, 0, 255), width=5)
    flattened = Image.alpha_composite(Image.new("RGBA", canvas.size, "white"), canvas)  # as the input store opens it
    out = np.asarray(scribble(flattened))
    assert tuple(out[60, 4]) == (0, 0, 0) and tuple(out[24, 32]) == (255, 255, 255)
