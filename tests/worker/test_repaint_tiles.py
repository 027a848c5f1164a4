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
from hypersd_desktop.engine.repaint_tiles import seams, tile_boxes, tile_edges, tiles
from hypersd_desktop.engine.types import GenerationRequest, LoraSpec, SeamsFix
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
    # each tile's mask is the tile; the size it is made at, read from the tile's neighbourhood, is the whole
    # mask's, at the picture's edges and inside it
    for size, tile in (((512, 384), 256), ((1920, 1080), 512), ((200, 136), 64)):
        for blur, padding in ((8, 32), (0, 0), (3, 5)):
            for patch in tiles(size, tile, padding, blur):
                assert np.array_equal(np.asarray(patch.mask(size)), np.asarray(tile_mask(size, patch.box)))
                assert patch.run_size(size) == masked_size(tile_mask(size, patch.box), blur, padding)
    assert [patch.box for patch in tiles((512, 384), 256, 32, 8)] == tile_boxes((512, 384), 256)


def tile_mask(size, box):
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask


def test_seams_are_fixed_where_the_tiles_meet():
    """The extension's three seams fixes on a picture of 3 × 2 tiles (columns of 64, 72, 64; rows of 64): a band
    across each seam, the picture's length; a tile's size from the middle of one tile to the next's; and those with
    one where four tiles meet."""
    size, fix = (200, 128), SeamsFix("band", width=32, padding=16)
    assert tile_edges(200, 72) == [0, 64, 136, 200] and tile_edges(128, 72) == [0, 64, 128]
    band = seams(size, 72, fix)
    assert [(patch.box, patch.shape, patch.blur) for patch in band] == [
        ((48, 0, 80, 128), "across", 0), ((120, 0, 152, 128), "across", 0), ((0, 48, 200, 80), "down", 0)]
    mask = np.asarray(band[0].mask(size)).astype(int)
    assert mask[:, :48].max() == 0 and mask[:, 80:].max() == 0  # only the band
    assert (mask == mask[0]).all()  # the same all down the picture
    assert mask[0, 63] == mask[0, 64] == 247 and mask[0, 48] == 8  # white at the seam, black at its edges
    assert (np.diff(mask[0, 48:64]) > 0).all() and (np.diff(mask[0, 64:80]) < 0).all()
    across = np.asarray(band[2].mask(size)).astype(int)
    assert (across.T == across.T[0]).all() and across[63, 0] == 247 and across[:48].max() == 0

    half = seams(size, 72, SeamsFix("half-tile", mask_blur=2, padding=8))
    assert [(patch.box, patch.shape) for patch in half] == [
        ((0, 32, 64, 96), "down"), ((64, 32, 136, 96), "down"), ((136, 32, 200, 96), "down"),  # rows' seams first
        ((32, 0, 100, 64), "across"), ((100, 0, 168, 64), "across"),
        ((32, 64, 100, 128), "across"), ((100, 64, 168, 128), "across")]
    assert {(patch.padding, patch.blur) for patch in half} == {(8, 2)}
    corners = seams(size, 72, SeamsFix("half-tile+corners", mask_blur=2, padding=8))
    assert corners[:len(half)] == half
    assert [(patch.box, patch.shape, patch.padding) for patch in corners[len(half):]] == [
        ((32, 32, 100, 96), "round", 0), ((100, 32, 168, 96), "round", 0)]
    round_mask = np.asarray(corners[-1].mask(size)).astype(int)
    assert round_mask[64, 134] == round_mask.max() > 240  # white where the four tiles meet
    assert round_mask[32, 100] == 0 and round_mask[:32].max() == 0  # nothing past the circle
    assert seams((64, 64), 72, fix) == [] and seams((64, 64), 72, SeamsFix("half-tile+corners")) == []
    with pytest.raises(InputError, match="Unknown seams fix 'chess'; choose one of band, half-tile, half-tile"):
        SeamsFix("chess")

    # the size each is made at is its whole mask's (`masked_size`), read from its neighbourhood
    for patch in [*band, *corners]:
        assert patch.run_size(size) == masked_size(patch.mask(size), patch.blur, patch.padding)


@pytest.fixture
def base(tiny_sd15, hyper_lora):
    lora = hyper_lora("Hyper-SD15-1step-lora")
    return GenerationRequest(prompt="a harbour at dawn", base_model=str(tiny_sd15), loras=(LoraSpec(str(lora)),),
                             steps=4, seed=SEED, device="cpu")


def tiled_by_hand(service, request: GenerationRequest, picture: Image.Image, seed: int, tile: int, padding: int = 32,
                  blur: int = 8) -> Image.Image:
    """`picture` enlarged to the request's size (Lanczos), then each tile inpainted in turn as a user asks for it,
    with `padding` pixels of the picture around it (only the masked area), its mask blurred `blur` pixels."""
    size = (request.width, request.height)
    image = covered(picture, size)
    for box in tile_boxes(size, tile):
        mask = tile_mask(size, box)
        width, height = masked_size(mask, blur, padding)
        ask = GenerationRequest(prompt=request.prompt, base_model=request.base_model, loras=request.loras, steps=4,
                                seed=seed, device="cpu", strength=request.strength, width=width, height=height,
                                init_image=service.inputs.hold(png_data(image)),
                                mask_image=service.inputs.hold(png_data(mask)), masked_padding=padding,
                                mask_blur=blur)
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


def test_the_tiles_padding_and_mask_blur_are_the_requests_and_the_png_says_them_as_the_extension(service, base):
    """The extension's "padding" and "mask blur" other than its 32 and 8: each tile made with that much of the
    picture around it and laid back along an edge blurred so, as a user would ask for each; the PNG says them in
    the extension's words, which reuse reads back."""
    from hypersd_desktop.gallery.formats import parse_a1111
    from hypersd_desktop.gallery.formats.common import tile_surround

    picture = Image.fromarray(np.random.default_rng(5).integers(0, 255, (32, 48, 3), dtype=np.uint8))
    request = base.replace(init_image=service.inputs.hold(png_data(picture)), strength=0.5, width=192, height=128,
                           repaint_tile=96, tile_padding=16, tile_mask_blur=4)
    (saved,) = service.run(request)
    expected = tiled_by_hand(service, request, picture, SEED, 96, padding=16, blur=4)
    assert np.array_equal(np.asarray(saved.result.image), np.asarray(expected))
    assert not np.array_equal(np.asarray(expected), np.asarray(tiled_by_hand(service, request, picture, SEED, 96)))
    with Image.open(saved.path) as png:
        text = png.text["parameters"]
    assert "Ultimate SD upscale mask_blur: 4, Ultimate SD upscale padding: 16" in text
    assert tile_surround(parse_a1111(text)) == (16, 4)
    assert GenerationRequest.from_dict(read_request(saved.path)) == request
    with pytest.raises(InputError, match="The picture around a tile is 0 to 128 pixels; got 129"):
        request.replace(tile_padding=129)
    with pytest.raises(InputError, match="A tile's mask blur is 0 to 64 pixels; got -1"):
        request.replace(tile_mask_blur=-1)


def test_the_seams_between_tiles_are_fixed_after_them(service, base):
    """A band pass: after the four tiles, a band 32 pixels across the seam between the columns, then one across the
    seam between the rows, each inpainted through a mask white on the seam and black at the band's edges (no blur),
    16 pixels around it, at the seams fix's strength, with the image's seed: as a user would ask for them."""
    picture = Image.fromarray(np.random.default_rng(5).integers(0, 255, (32, 48, 3), dtype=np.uint8))
    fix = SeamsFix("band", strength=0.3, width=32, padding=16)
    request = base.replace(init_image=service.inputs.hold(png_data(picture)), strength=0.5, width=192, height=128,
                           repaint_tile=96, seams_fix=fix)
    progress = []
    (saved,) = service.run(request, on_progress=progress.append)
    image = tiled_by_hand(service, request, picture, SEED, 96)
    ramp = np.round((1 - np.abs((np.arange(32) + 0.5) / 16 - 1)) * 255).astype(np.uint8)  # 0 → 255 → 0
    for axis, seam in ((1, 96), (0, 64)):  # the columns' seam, then the rows'
        values = np.zeros((128, 192), np.uint8)
        if axis:
            values[:, seam - 16:seam + 16] = ramp
        else:
            values[seam - 16:seam + 16, :] = ramp[:, None]
        mask = Image.fromarray(values)
        width, height = masked_size(mask, 0, 16)
        ask = GenerationRequest(prompt=request.prompt, base_model=request.base_model, loras=request.loras, steps=4,
                                seed=SEED, device="cpu", strength=0.3, width=width, height=height,
                                init_image=service.inputs.hold(png_data(image)),
                                mask_image=service.inputs.hold(png_data(mask)), masked_padding=16, mask_blur=0)
        (result,) = service.generate(ask)
        image = result.image
    assert np.array_equal(np.asarray(saved.result.image), np.asarray(image))
    (unfixed,) = service.generate(request.replace(seams_fix=None))
    seams_only = np.abs(np.asarray(unfixed.image, int) - np.asarray(image, int)).max(axis=2)
    assert seams_only.max() > 0 and seams_only[:40, :72].max() == 0  # the rest of the picture as the tiles left it
    stages = [p.stage for p in progress if p.stage.startswith("Fixing")]
    assert stages[0] == "Fixing the tiles' seams (1 of 2)" and stages[-1] == "Fixing the tiles' seams (2 of 2)"
    with Image.open(saved.path) as png:
        settings = png.text["parameters"].splitlines()[-1]
    assert ("Ultimate SD upscale seams_fix_type: Band pass, Ultimate SD upscale seams_fix_denoise: 0.3, Ultimate SD "
            "upscale seams_fix_width: 32, Ultimate SD upscale seams_fix_mask_blur: 4, Ultimate SD upscale "
            "seams_fix_padding: 16") in settings
    assert GenerationRequest.from_dict(read_request(saved.path)) == request
    (one_step,) = service.generate(request.replace(steps=1))  # too few steps at its strength: the warning says whose
    assert any(warning.startswith("Seams fix: Strength 0.3 × 1 step") for warning in one_step.warnings), \
        one_step.warnings


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
    ({"repaint_tile": None, "seams_fix": SeamsFix()}, "A seams fix repaints the seams between a repaint's tiles"),
    ({"seams_fix": SeamsFix(strength=0)}, "The seams fix's strength must be above 0"),
    ({"seams_fix": SeamsFix(width=4)}, "band is 8 to 256 pixels wide"),
    ({"seams_fix": SeamsFix(mask_blur=65)}, "mask blur must be between 0 and 64"),
    ({"seams_fix": SeamsFix(padding=-1)}, "padding around a seam"),
])
def test_tiles_that_cannot_be_are_refused(base, changes, message):
    with pytest.raises(InputError, match=message):
        base.replace(**{"init_image": "b" * 64, "width": 512, "height": 512, "repaint_tile": 256, **changes})
