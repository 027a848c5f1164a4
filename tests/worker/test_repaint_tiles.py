"""Repainting in tiles (the Ultimate SD Upscale extension's way): an enlarged init image or a Hires fix's second
pass made one tile at a time. The reference makes the same inpaintings a user would ask for (the picture enlarged,
each tile's mask, only the masked area with 32 pixels around it, mask blur 8, the image's seed), one after the
other. Tiny models, fp32, CPU."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.images import png_data
from hypersd_desktop.engine.inputs import covered, masked_size
from hypersd_desktop.engine.repaint_tiles import tile_boxes, tile_edges, tile_mask, tile_run_size
from hypersd_desktop.engine.types import GenerationRequest, LoraSpec
from hypersd_desktop.gallery.metadata import read_request

SEED = 21


def test_tiles_are_the_fewest_as_even_as_multiples_of_8_allow():
    assert tile_edges(2048, 1024) == [0, 1024, 2048]
    assert tile_edges(1920, 1024) == [0, 960, 1920]  # two of 960, not 1024 and a sliver
    assert tile_edges(1000, 1024) == [0, 1000]
    assert tile_edges(3000, 1024) == [0, 1000, 2000, 3000]
    assert all(edge % 8 == 0 for edge in tile_edges(4096, 1000)[:-1])
    assert tile_boxes((512, 384), 256) == [(0, 0, 256, 192), (256, 0, 512, 192), (0, 192, 256, 384),
                                           (256, 192, 512, 384)]
    mask = np.asarray(tile_mask((512, 384), (256, 0, 512, 192)))
    assert mask[:192, 256:].min() == 255 and mask.sum() == 255 * 256 * 192
    # the tile, its blur's reach (16) and the padding (32) on the sides inside the picture
    assert masked_size(tile_mask((512, 384), (256, 0, 512, 192)), 8, 32) == (256 + 16 + 32, 192 + 16 + 32)
    # read from the tile's neighbourhood, the size is the whole mask's, at the picture's edges and inside it
    for size, tile in (((512, 384), 256), ((1920, 1080), 512), ((200, 136), 64)):
        for box in tile_boxes(size, tile):
            for blur, padding in ((8, 32), (0, 0), (3, 5)):
                assert tile_run_size(size, box, blur, padding) == masked_size(tile_mask(size, box), blur, padding)


@pytest.fixture
def base(tiny_sd15, hyper_lora):
    lora = hyper_lora("Hyper-SD15-1step-lora")
    return GenerationRequest(prompt="a harbour at dawn", base_model=str(tiny_sd15), loras=(LoraSpec(str(lora)),),
                             steps=4, seed=SEED, device="cpu")


def tiled_by_hand(service, request: GenerationRequest, picture: Image.Image, seed: int, tile: int) -> Image.Image:
    """`picture` enlarged to the request's size (Lanczos), then each tile inpainted in turn as a user asks for it."""
    size = (request.width, request.height)
    image = covered(picture, size)
    for box in tile_boxes(size, tile):
        mask = tile_mask(size, box)
        width, height = masked_size(mask, 8, 32)
        ask = GenerationRequest(prompt=request.prompt, base_model=request.base_model, loras=request.loras, steps=4,
                                seed=seed, device="cpu", strength=request.strength, width=width, height=height,
                                init_image=service.inputs.hold(png_data(image)),
                                mask_image=service.inputs.hold(png_data(mask)), masked_padding=32, mask_blur=8)
        (result,) = service.generate(ask)
        image = result.image
    return image


def test_an_enlarged_init_image_is_repainted_tile_by_tile(service, base):
    picture = Image.fromarray(np.random.default_rng(4).integers(0, 255, (32, 48, 3), dtype=np.uint8))
    request = base.replace(init_image=service.inputs.hold(png_data(picture)), strength=0.5, width=192, height=128,
                           repaint_tile=96, batch_size=2)
    progress = []
    saved = service.run(request, on_progress=progress.append)
    assert [s.result.seed for s in saved] == [SEED, SEED + 1]
    assert all(s.result.image.size == (192, 128) and s.result.settings.width == 192 for s in saved)
    expected = tiled_by_hand(service, request, picture, SEED + 1, 96)  # the second image: its own seed, all tiles
    assert np.array_equal(np.asarray(saved[1].result.image), np.asarray(expected))
    with Image.open(saved[0].path) as png:
        settings = png.text["parameters"].splitlines()[-1]
    assert ("Ultimate SD upscale upscaler: Lanczos, Ultimate SD upscale tile_width: 96, Ultimate SD upscale "
            "tile_height: 96, Ultimate SD upscale mask_blur: 8, Ultimate SD upscale padding: 32") in settings
    assert "Size: 192x128" in settings and "Mask blur" not in settings
    assert GenerationRequest.from_dict(read_request(saved[0].path)) == request.replace(batch_size=1)
    stages = [p.stage for p in progress if p.stage.startswith("Repainting")]
    assert stages[0] == "Repainting in tiles (1 of 4)" and stages[-1] == "Repainting in tiles (4 of 4)"

    whole = request.replace(batch_size=1)
    (plain,) = service.generate(whole.replace(repaint_tile=None))
    assert not np.array_equal(np.asarray(plain.image), np.asarray(saved[0].result.image))  # no whole repaint
    (small,) = service.generate(whole.replace(width=96, height=64))  # no larger than a tile: made whole
    (small_plain,) = service.generate(whole.replace(width=96, height=64, repaint_tile=None))
    assert np.array_equal(np.asarray(small.image), np.asarray(small_plain.image))


def test_a_hires_fixs_second_pass_is_repainted_in_tiles(service, base):
    request = base.replace(width=96, height=64, hires_scale=2.0, hires_strength=0.5, repaint_tile=96)
    (made,) = service.generate(request)
    (first,) = service.generate(request.replace(hires_scale=None, repaint_tile=None))
    second = request.replace(hires_scale=None, repaint_tile=None, width=192, height=128, strength=0.5)
    expected = tiled_by_hand(service, second, first.image, SEED, 96)
    assert made.image.size == (192, 128)
    assert np.array_equal(np.asarray(made.image), np.asarray(expected))
    assert made.settings.width == 96 and made.request == request  # reported as A1111 reports a Hires fix


@pytest.mark.parametrize("changes, message", [
    ({"repaint_tile": 56}, "64 to 2048 pixels a side"),
    ({"repaint_tile": 260}, "a multiple of 8"),
    ({"init_image": None}, "choose a Hires fix scale or an init image"),
    ({"mask_image": "a" * 64}, "An inpainting repaints only where its mask is painted"),
    ({"tiling": "both"}, "A seamless image is repainted whole"),
])
def test_tiles_that_cannot_be_are_refused(base, changes, message):
    with pytest.raises(InputError, match=message):
        base.replace(**{"init_image": "b" * 64, "width": 512, "height": 512, "repaint_tile": 256, **changes})
