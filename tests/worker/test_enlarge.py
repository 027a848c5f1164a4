"""An image enlarged alone, not repainted (A1111's Extras tab): by an upscaler model (until it covers the size, then
fitted with Lanczos) or by Lanczos; the copy keeps the original's metadata, says how it was enlarged, and joins the
gallery."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps, PngImagePlugin

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.worker.protocol import Enlargement
from tests.tiny_models import save_upscaler

PARAMETERS = ("a lighthouse on a cliff\nNegative prompt: fog\nSteps: 4, Sampler: Euler a, CFG scale: 1.5, Seed: 77, "
              "Size: 48x40, Model: dreamshaper_8")


def _picture(seed: int = 2) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (40, 48, 3), dtype=np.uint8))


def test_an_upscaler_enlarges_an_image_alone_and_the_copy_reads_as_the_original(service, tmp_path):
    from hypersd_desktop.engine.upscalers import load_upscaler, run_tiled
    from hypersd_desktop.gallery.gallery import read_metadata

    source = tmp_path / "20261204-101500-77.png"
    text = PngImagePlugin.PngInfo()
    text.add_text("parameters", PARAMETERS)
    _picture().save(source, pnginfo=text)
    upscaler = save_upscaler(tmp_path / "4x-Tiny.safetensors", "esrgan", scale=4)
    told = []
    made = service.enlarge(Enlargement(str(source), 2.0, str(upscaler)), on_progress=told.append)

    net, _ = load_upscaler(upscaler)
    with torch.no_grad():
        pixels = torch.from_numpy(np.asarray(_picture(), np.float32) / 255).permute(2, 0, 1)[None]
        expected = ImageOps.fit(Image.fromarray(run_tiled(net, 4, pixels)), (96, 80), Image.Resampling.LANCZOS)
    with Image.open(made.path) as image:
        assert image.size == (96, 80)
        assert np.abs(np.asarray(image, np.int16) - np.asarray(expected, np.int16)).max() <= 1
        assert image.text["parameters"] == PARAMETERS
        assert image.text["postprocessing"] == "Postprocess upscale by: 2, Postprocess upscaler: 4x-Tiny"
    assert made.seed == 77 and made.path.name.endswith("-77.png") and made.path.parent == service.paths.images
    metadata, width, height, _ = read_metadata(made.path)
    assert (metadata.prompt, metadata.seed, metadata.width, (width, height)) == ("a lighthouse on a cliff", 77, 48,
                                                                                 (96, 80))
    record = service.gallery.store.get(made.image_id)
    assert record.prompt == "a lighthouse on a cliff"
    assert [(p.stage, p.step, p.total_steps) for p in told] == [("Upscaling (4x-Tiny)", 1, 1)]


def test_without_an_upscaler_lanczos_enlarges_and_a_jpegs_parameters_come_along(service, tmp_path):
    """A1111 keeps a JPEG's parameters in its EXIF UserComment; the enlarged PNG carries them as its text."""
    source = tmp_path / "photo.jpg"  # a name that says no seed: its parameters say 77
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + PARAMETERS.encode("utf-16-be")
    _picture().save(source, quality=95, exif=exif.tobytes())
    made = service.enlarge(Enlargement(str(source), 1.5))
    with Image.open(source) as original, Image.open(made.path) as image:
        expected = original.convert("RGB").resize((72, 60), Image.Resampling.LANCZOS)
        assert np.array_equal(np.asarray(image), np.asarray(expected))
        assert image.text["parameters"] == PARAMETERS
        assert image.text["postprocessing"].endswith("Postprocess upscaler: Lanczos")
    assert made.seed == 77 and made.path.name.endswith("-77.png")


def test_transparency_is_kept_and_what_cannot_be_enlarged_is_refused(service, tmp_path):
    source = tmp_path / "sticker.png"
    picture = _picture().convert("RGBA")
    picture.putalpha(0)
    picture.paste((255, 0, 0, 255), (10, 10, 30, 30))
    picture.save(source)
    made = service.enlarge(Enlargement(str(source), 2.0))
    with Image.open(made.path) as image:
        assert image.mode == "RGBA" and image.getchannel("A").getextrema() == (0, 255)
    with pytest.raises(InputError, match="the most is 8192 pixels a side"):
        huge = tmp_path / "huge.png"
        Image.new("RGB", (2100, 64)).save(huge)
        service.enlarge(Enlargement(str(huge), 4.0))
    with pytest.raises(InputError, match="cannot be read as an image"):
        service.enlarge(Enlargement(str(tmp_path / "gone.png"), 2.0))
    with pytest.raises(InputError, match="above 1 and at most 4"):
        service.enlarge(Enlargement(str(source), 8.0))


@pytest.mark.parametrize("hidden", ["novelai", "a1111"])
def test_a_record_hidden_in_the_pixels_comes_along_as_the_chunks_it_stands_for(service, tmp_path, hidden):
    """NovelAI hides its chunks in the alpha channel, A1111's stealth extension its parameters in the colours' low
    bits, where they survive sites that strip chunks; enlarging resamples those bits away, so the copy carries them
    as the text chunks they stand for, which every tool reads."""
    import gzip
    import json

    from hypersd_desktop.gallery.gallery import read_metadata
    from tests.gallery.test_formats import _hide_in_alpha, _hide_in_rgb

    source = tmp_path / f"{hidden}.png"
    if hidden == "novelai":
        comment = {"prompt": "a cat in space", "uc": "lowres", "steps": 28, "scale": 5.0, "seed": 2253955223,
                   "sampler": "k_euler_ancestral", "width": 48, "height": 40}
        record = {"Description": "a cat in space", "Software": "NovelAI", "Source": "NovelAI Diffusion V3 7BCCAA2C",
                  "Comment": comment}  # as an object: some writers keep it so
        _hide_in_alpha(_picture().convert("RGBA"), gzip.compress(json.dumps(record).encode()),
                       b"stealth_pngcomp").save(source)
    else:
        _hide_in_rgb(_picture(), gzip.compress(PARAMETERS.encode()), b"stealth_rgbcomp").save(source)
    original, *_ = read_metadata(source)
    made = service.enlarge(Enlargement(str(source), 2.0))
    with Image.open(made.path) as image:
        chunks = image.text
    if hidden == "novelai":
        assert chunks["Software"] == "NovelAI" and json.loads(chunks["Comment"]) == comment
    else:
        assert chunks["parameters"] == PARAMETERS
    copy, width, height, _ = read_metadata(made.path)
    assert copy == original and (width, height) == (96, 80) and copy.prompt in ("a cat in space",
                                                                                 "a lighthouse on a cliff")


def test_a_16_bit_grey_picture_is_enlarged_as_it_looks(service, tmp_path):
    """A 16-bit greyscale PNG (a depth map, a scan) opens as Pillow's "I;16", whose own conversion to RGB clips every
    value above 255 to white: it is scaled to 8 bits first, as it looks."""
    ramp = np.linspace(0, 65535, 40 * 48).reshape(40, 48).astype(np.uint16)
    source = tmp_path / "depth16.png"
    Image.fromarray(ramp).save(source)
    with Image.open(source) as image:
        assert image.mode == "I;16"
    made = service.enlarge(Enlargement(str(source), 2.0))
    with Image.open(made.path) as image:
        grey = np.asarray(image.convert("L"), np.int16)
    expected = np.asarray(Image.fromarray((ramp / 257).round().astype(np.uint8)).convert("RGB").resize(
        (96, 80), Image.Resampling.LANCZOS).convert("L"), np.int16)
    assert np.abs(grey - expected).max() <= 2 and 120 < grey.mean() < 136  # not white (255)


def _three_by_three(picture: Image.Image) -> Image.Image:
    """The picture laid three by three, edge to edge: the tiling a seamless image is made for."""
    tiled = Image.new(picture.mode, (picture.width * 3, picture.height * 3))
    for across in range(3):
        for down in range(3):
            tiled.paste(picture, (across * picture.width, down * picture.height))
    return tiled


def _middle(picture: Image.Image) -> Image.Image:
    third = (picture.width // 3, picture.height // 3)
    return picture.crop((third[0], third[1], 2 * third[0], 2 * third[1]))


@pytest.mark.parametrize("upscaler", [None, "compact"])  # compact: its output is the picture, enlarged, and more
def test_a_seamless_images_enlargement_stays_seamless(service, tmp_path, upscaler):
    """An image made with Tiling (A1111's `Tiling: True`) is enlarged as the middle of its copies laid three by
    three would be: the upscaler and Lanczos read past each edge what lies at the other. The same picture without
    the mark is enlarged as before, and differs at its edges."""
    from hypersd_desktop.engine.upscalers import load_upscaler, run_tiled

    plain, seamless = tmp_path / "plain.png", tmp_path / "seamless.png"
    text = PngImagePlugin.PngInfo()
    text.add_text("parameters", PARAMETERS + ", Tiling: True")
    _picture().save(seamless, pnginfo=text)
    _picture().save(plain)
    path = str(save_upscaler(tmp_path / "4x-Tiny.safetensors", upscaler, scale=4)) if upscaler else None
    made = service.enlarge(Enlargement(str(seamless), 2.0, path))
    unmarked = service.enlarge(Enlargement(str(plain), 2.0, path))

    tiled = _three_by_three(_picture())
    if upscaler:
        net, _ = load_upscaler(path)
        with torch.no_grad():
            pixels = torch.from_numpy(np.asarray(tiled, np.float32) / 255).permute(2, 0, 1)[None]
            tiled = Image.fromarray(run_tiled(net, 4, pixels))
    expected = _middle(tiled.resize((96 * 3, 80 * 3), Image.Resampling.LANCZOS))
    with Image.open(made.path) as image, Image.open(unmarked.path) as other:
        ours, theirs = np.asarray(image, np.int16), np.asarray(other, np.int16)
    assert ours.shape == (80, 96, 3)
    assert np.abs(ours - np.asarray(expected, np.int16)).max() <= 1
    edges = np.abs(ours - theirs)[:, [0, -1]]
    assert edges.max() > 8 and np.abs(ours - theirs)[20:60, 30:66].max() <= 1  # the same inside


def test_a_seamless_pictures_wrapped_margins_are_counted_in_the_progress(tmp_path):
    """240 pixels across fit one tile of 256; wrapped with 32 more on each side they take two."""
    from hypersd_desktop.engine.upscalers import load_upscaler, run_passes

    net, layout = load_upscaler(save_upscaler(tmp_path / "2x-Tiny.safetensors", "compact", scale=2))
    picture = Image.fromarray(np.random.default_rng(3).integers(0, 256, (40, 240, 3), dtype=np.uint8))
    told = []
    made = run_passes(net, layout, picture, 1, "cpu", torch.float32, on_progress=lambda *done: told.append(done),
                      wraps=(True, False))
    assert made.size == (480, 80) and told == [(1, 2), (2, 2)]
