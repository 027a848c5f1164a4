"""Variation seeds (A1111's): the starting noise of an image made from the prompt, turned towards a second seed's.

The reference is diffusers' own pipeline given that noise as `latents`, its generator having drawn the seed's noise
first, as the pipeline itself would have (so the scheduler's noise, TCD's at eta 1, is the seed's). Tiny models,
fp32, CPU; the ONNX backend against the torch one.
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np
import pytest
import torch

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.images import InputImages
from hypersd_desktop.engine import GenerationRequest, LoraSpec
from hypersd_desktop.engine.torch_engine import TorchEngine
from hypersd_desktop.engine.variation import slerp
from pictures import SIZE, init_picture, png

PROMPT = "a lighthouse on a cliff"
SEED, OTHER = 41, 977


def pixels(result) -> np.ndarray:
    return np.asarray(result.image, dtype=np.int16)


def request_for(base, lora, **changes) -> GenerationRequest:
    return GenerationRequest(prompt=PROMPT, base_model=str(base), loras=(LoraSpec(str(lora)),), steps=2, seed=SEED,
                             width=SIZE, height=SIZE, **changes)


def test_slerp_keeps_the_seeds_noise_at_zero_and_the_length_of_noise_between():
    generator = np.random.default_rng(0)
    low, high = (generator.standard_normal((2, 4, 8, 8)).astype(np.float32) for _ in range(2))
    assert np.array_equal(slerp(0.0, low, high), low)
    assert np.allclose(slerp(1.0, low, high), high, atol=1e-5)
    half = slerp(0.5, low, high)
    lengths = np.linalg.norm(half.reshape(2, -1), axis=1)
    assert np.allclose(lengths, np.linalg.norm(low.reshape(2, -1), axis=1), rtol=0.1)  # a straight line's halves:
    assert (lengths > 1.3 * np.linalg.norm(((low + high) / 2).reshape(2, -1), axis=1)).all()  # about 0.71 as long
    assert np.array_equal(slerp(0.3, low, low), low)  # one direction: the straight line, which is the noise itself


@pytest.mark.parametrize("architecture", ["sd15", "sdxl"])
def test_a_variation_gives_diffusers_image_from_the_varied_noise(architecture, tiny_sd15, tiny_sdxl, hyper_lora):
    from diffusers import AutoPipelineForText2Image, TCDScheduler
    from diffusers.utils.torch_utils import randn_tensor

    base = tiny_sdxl if architecture == "sdxl" else tiny_sd15
    lora = hyper_lora("Hyper-SDXL-1step-lora" if architecture == "sdxl" else "Hyper-SD15-1step-lora")
    request = request_for(base, lora, variation_seed=OTHER, variation_strength=0.3, batch_size=2)
    engine = TorchEngine()
    results = engine.generate(request)
    assert [(r.seed, r.variation_seed) for r in results] == [(SEED, OTHER), (SEED, OTHER + 1)]

    pipe = AutoPipelineForText2Image.from_pretrained(base)
    pipe.load_lora_weights(str(lora.parent), weight_name=lora.name)
    pipe.fuse_lora()
    pipe.scheduler = TCDScheduler.from_config(pipe.scheduler.config)
    for result in results:
        shape = (1, 4, SIZE // pipe.vae_scale_factor, SIZE // pipe.vae_scale_factor)
        generator = torch.Generator("cpu").manual_seed(SEED)
        noise = randn_tensor(shape, generator=generator)  # the seed's, as the pipeline draws it: the generator
        other = randn_tensor(shape, generator=torch.Generator("cpu").manual_seed(result.variation_seed))  # goes on
        latents = torch.from_numpy(slerp(0.3, noise.numpy(), other.numpy()))
        expected = pipe(PROMPT, num_inference_steps=2, guidance_scale=0, eta=1.0, width=SIZE, height=SIZE,
                        generator=generator, latents=latents).images[0]
        assert np.abs(pixels(result) - np.asarray(expected, np.int16)).max() <= 1
        again = engine.generate(result.image_request())[0]  # the one-image request the PNG keeps (batched, the
        assert np.abs(pixels(again) - pixels(result)).max() <= 1  # sums may round otherwise)

    plain = engine.generate(request.replace(variation_strength=0.0, batch_size=1))[0]
    close = engine.generate(request.replace(variation_strength=0.05, batch_size=1))[0]
    far = np.abs(pixels(results[0]) - pixels(plain)).mean()
    assert far > 5 and np.abs(pixels(close) - pixels(plain)).mean() < far / 2  # small strengths stay close
    same = engine.generate(request.replace(variation_seed=SEED, variation_strength=0.6, batch_size=1))[0]
    assert np.abs(pixels(same) - pixels(plain)).max() <= 1  # the seed's own noise and generator, as a plain run's


def test_an_inpainting_models_image_from_the_prompt_is_varied_too(tiny_sd15, hyper_lora, tmp_path):
    """An inpainting model makes an image from the prompt as inpainting of grey at strength 1: its starting noise
    is the first thing drawn, so the variation of the seed by itself is the seed's image."""
    import tiny_models

    model = tiny_models.save_inpainting_pipeline(tiny_sd15, tmp_path / "sd15-inpainting")
    request = request_for(model, hyper_lora("Hyper-SD15-1step-lora"), variation_seed=OTHER, variation_strength=0.5)
    engine = TorchEngine()
    plain, varied = engine.generate(request.replace(variation_strength=0.0))[0], engine.generate(request)[0]
    itself = engine.generate(request.replace(variation_seed=SEED))[0]
    assert np.abs(pixels(varied) - pixels(plain)).mean() > 5
    assert np.abs(pixels(itself) - pixels(plain)).max() <= 1


# id: (mode, strength, with a ControlNet): each mode's pipeline is a module of its own, whose noise is varied
PICTURE_CASES = {"img2img": ("img2img", 0.75, False), "inpaint": ("inpaint", 0.9, False),
                 "controlnet-img2img": ("img2img", 0.75, True)}


@contextlib.contextmanager
def noise_added_varied(scheduler, strength: float, other: torch.Tensor):
    """The reference's variation of a picture's noise: wherever the scheduler adds noise to latents (the picture's,
    and inpainting's kept part after each step), the noise is turned towards `other` first."""
    add = scheduler.add_noise

    def varied(original, noise, timesteps):
        return add(original, torch.from_numpy(slerp(strength, noise.numpy(), other.numpy())), timesteps)

    scheduler.add_noise = varied
    try:
        yield
    finally:
        scheduler.add_noise = add


@pytest.mark.parametrize("architecture", ["sd15", "sdxl"])
@pytest.mark.parametrize("case", list(PICTURE_CASES))
def test_a_variation_of_an_image_from_a_picture_varies_the_noise_added_to_it(case, architecture, tiny_sd15,
                                                                             tiny_sdxl, hyper_lora, controlnets,
                                                                             tmp_path):
    """As A1111's img2img: the noise added to the picture's latents is the seed's turned towards the variation
    seed's; the picture's sampled latents and the scheduler's noise stay the seed's. The reference is diffusers'
    pipeline of the mode with its scheduler's `add_noise` given the varied noise."""
    import diffusers
    from diffusers import ControlNetModel, TCDScheduler
    from diffusers.utils.torch_utils import randn_tensor

    from pictures import diffusers_image, edges_picture, mask_picture
    from hypersd_desktop.engine import ControlSpec

    mode, strength, with_control = PICTURE_CASES[case]
    base = tiny_sdxl if architecture == "sdxl" else tiny_sd15
    lora = hyper_lora("Hyper-SDXL-1step-lora" if architecture == "sdxl" else "Hyper-SD15-1step-lora")
    store = InputImages(tmp_path / "inputs")
    init, mask, edges = init_picture(), mask_picture(), edges_picture()
    request = request_for(base, lora, init_image=store.add(png(init)), strength=strength, variation_seed=OTHER,
                          variation_strength=0.4).replace(steps=4)
    call = dict(image=init, strength=strength)
    if mode == "inpaint":
        request = request.replace(mask_image=store.add(png(mask)), mask_blur=4)
        call.update(mask_image=mask, width=SIZE, height=SIZE)
    extra = {}
    if with_control:
        request = request.replace(controls=(ControlSpec(str(controlnets[architecture]), store.add(png(edges)), 0.8),))
        call.update(control_image=edges, controlnet_conditioning_scale=0.8)
        extra["controlnet"] = ControlNetModel.from_pretrained(controlnets[architecture])
    engine = TorchEngine(inputs=store)
    (result,) = engine.generate(request)

    stem = "StableDiffusionXL" if architecture == "sdxl" else "StableDiffusion"
    kind = f"{'ControlNet' if with_control else ''}{'Inpaint' if mode == 'inpaint' else 'Img2Img'}"
    pipe = getattr(diffusers, f"{stem}{kind}Pipeline").from_pretrained(base, **extra)
    pipe.load_lora_weights(str(lora.parent), weight_name=lora.name)
    pipe.fuse_lora()
    pipe.scheduler = TCDScheduler.from_config(pipe.scheduler.config)
    shape = (1, 4, SIZE // pipe.vae_scale_factor, SIZE // pipe.vae_scale_factor)
    other = randn_tensor(shape, generator=torch.Generator("cpu").manual_seed(OTHER))
    with noise_added_varied(pipe.scheduler, 0.4, other):
        expected = diffusers_image(pipe, blur=4 if mode == "inpaint" else None, prompt=PROMPT, num_inference_steps=4,
                                   guidance_scale=0, eta=1.0, generator=torch.Generator("cpu").manual_seed(SEED),
                                   **call)
    assert np.abs(pixels(result) - np.asarray(expected, np.int16)).max() <= 1

    plain = engine.generate(request.replace(variation_strength=0.0))[0]
    assert np.abs(pixels(result) - pixels(plain)).mean() > 3  # the variation changes the image
    itself = engine.generate(request.replace(variation_seed=SEED))[0]
    if mode == "img2img":  # the picture's latents are sampled from the seed's generator first: the noise is its
        assert np.abs(pixels(itself) - pixels(plain)).mean() > 1  # second draw, so the seed by itself is not it
    if mode == "inpaint":  # only what the mask paints changes
        from PIL import ImageFilter

        kept = np.asarray(mask.filter(ImageFilter.GaussianBlur(4))) == 0
        assert np.array_equal(pixels(result)[kept], np.asarray(init, np.int16)[kept])


def test_variations_are_refused_where_they_cannot_apply_saying_why(tmp_path):
    digest = InputImages(tmp_path / "inputs").add(png(init_picture()))
    base = GenerationRequest(prompt=PROMPT, base_model="unused")
    varied = base.replace(init_image=digest, variation_seed=3, variation_strength=0.2)  # from a picture: varied too
    assert varied.varied and varied.advanced(1).variation_seed == 4
    with pytest.raises(InputError, match="needs a variation seed"):
        base.replace(variation_strength=0.2)
    for strength in (-0.1, 1.5, float("nan")):
        with pytest.raises(InputError, match="variation strength must be between 0 and 1"):
            base.replace(variation_seed=3, variation_strength=strength)
    with pytest.raises(InputError, match="variation seed must be between"):
        base.replace(variation_seed=-1)
    varied = base.replace(variation_seed=2**63 - 1, variation_strength=0.2, seed=5)
    assert (varied.advanced(1).seed, varied.advanced(1).variation_seed) == (5, 0)  # the seed stays, as in A1111
    assert base.replace(seed=7).advanced(2).seed == 9
    assert dataclasses.replace(base, seed=2**63 - 1).advanced(1).seed == 0


@pytest.fixture(scope="module")
def onnx_exports(tmp_path_factory):
    """One ONNX export of the tiny model for every start below (an export takes seconds)."""
    return tmp_path_factory.mktemp("onnx")


@pytest.mark.parametrize("start", ["prompt", "picture", "inpaint"])
def test_the_onnx_backend_varies_as_the_torch_backend(start, tiny_sd15, hyper_lora, onnx_exports, tmp_path):
    from pictures import mask_picture
    from hypersd_desktop.core.hashes import sha256_file
    from hypersd_desktop.engine.onnx.engine import OnnxEngine
    from hypersd_desktop.engine.onnx.export import ExportCache

    store = InputImages(tmp_path / "inputs")
    request = request_for(tiny_sd15, hyper_lora("Hyper-SD15-1step-lora"), variation_seed=OTHER,
                          variation_strength=0.4, batch_size=2, device="cpu", dtype="fp32")
    if start != "prompt":
        request = request.replace(init_image=store.add(png(init_picture())), strength=0.75, steps=4)
    if start == "inpaint":
        request = request.replace(mask_image=store.add(png(mask_picture())))
    theirs = TorchEngine(inputs=store).generate(request)
    onnx = OnnxEngine(ExportCache(onnx_exports, hash_of=sha256_file), inputs=store)
    ours = onnx.generate(request.replace(backend="onnx"))
    assert [(r.seed, r.variation_seed) for r in ours] == [(r.seed, r.variation_seed) for r in theirs]
    for image, expected in zip(ours, theirs):
        assert np.abs(pixels(image) - pixels(expected)).max() <= 2
    plain = TorchEngine(inputs=store).generate(request.replace(variation_strength=0.0))
    assert np.abs(pixels(ours[0]) - pixels(plain[0])).mean() > 3
