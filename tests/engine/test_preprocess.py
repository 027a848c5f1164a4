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


def test_light_or_coloured_strokes_on_a_transparent_layer_are_the_strokes_through_the_input_store(tmp_path):
    """A drawing exported from an image editor as a layer: white (or yellow) strokes on transparency, which laid
    on white would vanish. The strokes are what is painted, as the run and the window's preview open it."""
    import io

    from hypersd_desktop.core.images import InputImages
    from hypersd_desktop.engine import GenerationRequest
    from hypersd_desktop.engine.inputs import open_inputs
    from hypersd_desktop.engine.types import ControlSpec

    store = InputImages(tmp_path / "inputs")
    for ink in ((255, 255, 255, 255), (250, 220, 40, 255), (0, 0, 0, 255)):
        layer = Image.new("RGBA", (64, 64), (255, 255, 255, 0))
        ImageDraw.Draw(layer).line((8, 8, 56, 40), fill=ink, width=5)
        out = np.asarray(scribble(layer))
        assert tuple(out[60, 4]) == (0, 0, 0) and tuple(out[24, 32]) == (255, 255, 255), ink
        buffer = io.BytesIO()
        layer.save(buffer, format="PNG")
        request = GenerationRequest(prompt="a boat", base_model="unused", width=64, height=64, controls=(
            ControlSpec("unused", store.add(buffer.getvalue()), preprocessor="scribble"),))
        (seen,) = open_inputs(request, store, 64, 64).controls
        assert np.array_equal(np.asarray(seen), out), ink


def photo(size=96):
    """Shapes with soft and hard edges on a gradient, as a photo has both."""
    rng = np.random.default_rng(5)
    image = Image.fromarray((np.linspace(0, 120, size)[None, :, None] + rng.normal(0, 4, (size, size, 3)))
                            .clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.ellipse((10, 10, 50, 50), fill=(220, 180, 40))
    draw.rectangle((55, 40, 90, 85), fill=(30, 90, 200))
    return image


def test_canny_edges_are_the_model_cards_opencv_edges_white_on_black():
    """The model card: np.array(image) → cv2.Canny(image, 100, 200) → three equal channels."""
    import cv2

    from hypersd_desktop.engine.preprocess import canny

    picture = photo()
    edges = cv2.Canny(np.array(picture), 100, 200)[:, :, None]
    expected = np.concatenate([edges, edges, edges], axis=2)
    out = np.asarray(canny(picture))
    assert out.shape == expected.shape and np.array_equal(out, expected)
    assert set(np.unique(out)) == {0, 255} and 0.01 < (out > 0).mean() < 0.3  # thin white edges on black
    assert out[30, 30].max() == 0  # inside the disc: no edge
