"""Inpainting only the masked area (A1111's "Only masked", diffusers' `padding_mask_crop`): the mask's bounds with
padding around them are made at the run's size and laid back into the whole picture, which keeps its size and every
pixel outside the mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.images import InputImages
from hypersd_desktop.engine import GenerationRequest, LoraSpec
from hypersd_desktop.engine.inputs import masked_area, open_inputs
from hypersd_desktop.engine.torch_engine import TorchEngine
from pictures import init_picture, png

SEED = 21
PROMPT = "a lighthouse on a cliff"
WHOLE = (192, 128)  # the init image: larger than the run, and of another shape


def whole_mask(box=(100, 40, 130, 70)) -> Image.Image:
    mask = Image.new("L", WHOLE, 0)
    ImageDraw.Draw(mask).rectangle(box, fill=255)
    return mask


@pytest.mark.parametrize("box, size, padding", [
    ((100, 40, 130, 70), (64, 64), 8),
    ((2, 2, 30, 10), (64, 64), 32),  # at a corner: moved inside the picture
    ((10, 50, 180, 60), (64, 64), 0),  # wider than tall: grown in height
    ((90, 5, 100, 120), (96, 64), 4),  # taller than the run's shape: grown in width, cut at the picture
])
def test_the_area_is_the_one_diffusers_chooses(box, size, padding):
    from diffusers.image_processor import VaeImageProcessor

    mask = whole_mask(box)
    assert masked_area(mask, size, padding) == VaeImageProcessor.get_crop_region(mask, *size, pad=padding)


def test_an_empty_or_missing_mask_is_refused_saying_why(tmp_path):
    store = InputImages(tmp_path / "inputs")
    init = store.add(png(init_picture().resize(WHOLE)))
    request = GenerationRequest(prompt=PROMPT, base_model="unused", init_image=init,
                                mask_image=store.add(png(Image.new("L", WHOLE, 0))), masked_padding=32)
    with pytest.raises(InputError, match="The mask is empty"):
        open_inputs(request, store, 512, 512)
    with pytest.raises(InputError, match="needs a mask"):
        GenerationRequest(prompt=PROMPT, base_model="unused", init_image=init, masked_padding=32)


@pytest.mark.parametrize("size", [(64, 64), None], ids=["size-named", "model-size"])
def test_the_run_is_of_the_area_and_the_result_is_the_whole_picture(size, tmp_path):
    store = InputImages(tmp_path / "inputs")
    picture = init_picture().resize(WHOLE)
    request = GenerationRequest(prompt=PROMPT, base_model="unused", init_image=store.add(png(picture)),
                                mask_image=store.add(png(whole_mask())), masked_padding=8,
                                width=size[0] if size else None, height=size[1] if size else None)
    sources = open_inputs(request, store, 512, 512)
    # named: that size; else the area (46 × 46 with its padding and blur) at about the model's 512² area
    assert (sources.width, sources.height) == (size or (512, 512))
    assert sources.init.size == sources.mask.size == (sources.width, sources.height)
    made = sources.finish(Image.new("RGB", (sources.width, sources.height), (255, 0, 255)))
    assert made.size == WHOLE
    pixels, original = np.asarray(made), np.asarray(picture)
    assert np.array_equal(pixels[:, :80], original[:, :80]), "outside the masked area, the picture's own pixels"
    assert tuple(pixels[55, 115]) == (255, 0, 255), "inside it, the run's"


def test_the_engine_gives_diffusers_padding_mask_crop_image(tiny_sd15, hyper_lora, tmp_path):
    """The reference is the diffusers inpainting pipeline called with `padding_mask_crop` on the whole picture and
    its blurred mask, as the diffusers docs show it."""
    from diffusers import StableDiffusionInpaintPipeline, TCDScheduler

    lora = hyper_lora("Hyper-SD15-1step-lora")
    store = InputImages(tmp_path / "inputs")
    picture, mask = init_picture().resize(WHOLE), whole_mask()
    request = GenerationRequest(prompt=PROMPT, base_model=str(tiny_sd15), loras=(LoraSpec(str(lora)),), steps=4,
                                seed=SEED, init_image=store.add(png(picture)), mask_image=store.add(png(mask)),
                                strength=0.9, masked_padding=8, width=64, height=64)
    engine = TorchEngine(inputs=store)
    (ours,) = engine.generate(request)

    pipe = StableDiffusionInpaintPipeline.from_pretrained(tiny_sd15)
    pipe.load_lora_weights(str(lora.parent), weight_name=lora.name)
    pipe.fuse_lora()
    pipe.scheduler = TCDScheduler.from_config(pipe.scheduler.config)
    reference = pipe(prompt=PROMPT, image=picture, mask_image=pipe.mask_processor.blur(mask, blur_factor=4),
                     padding_mask_crop=8, width=64, height=64, strength=0.9, num_inference_steps=4, guidance_scale=0,
                     eta=1.0, generator=torch.Generator("cpu").manual_seed(SEED)).images[0]
    assert ours.image.size == reference.size == WHOLE
    difference = np.abs(np.asarray(ours.image, np.int16) - np.asarray(reference, np.int16))
    assert difference.max() <= 1
