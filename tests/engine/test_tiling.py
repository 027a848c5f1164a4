"""Seamless images (A1111's Tiling, InvokeAI's seamless X and Y) on the torch backend.

Both ways, the reference is A1111's way: diffusers' pipeline with `padding_mode = "circular"` set on every Conv2d
of the UNet, VAE and ControlNet. One way, the reference pads each convolution by hand (wrapped across, zeros down),
and a one-step image of it is shown to tile: its starting noise rolled across rolls the image across with it, which
a convolution that pads with zeros at the edge does not do. Tiny models, fp32, CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.images import InputImages
from hypersd_desktop.engine import ControlSpec, GenerationRequest, LoraSpec
from hypersd_desktop.engine.torch_engine import TorchEngine
from pictures import SIZE, edges_picture, init_picture, png

PROMPT = "a mossy stone wall"
SEED = 12


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def reference_pipeline(kind: str, base, lora, controlnet=None):
    import diffusers
    from diffusers import ControlNetModel, TCDScheduler

    extra = {"controlnet": ControlNetModel.from_pretrained(controlnet)} if controlnet else {}
    pipe = getattr(diffusers, kind).from_pretrained(base, **extra)
    pipe.load_lora_weights(str(lora.parent), weight_name=lora.name)
    pipe.fuse_lora()
    pipe.scheduler = TCDScheduler.from_config(pipe.scheduler.config)
    return pipe


def a1111_circular(pipe) -> None:
    """A1111's Tiling: every Conv2d of the model pads by wrapping around."""
    for part in (pipe.unet, pipe.vae, getattr(pipe, "controlnet", None)):
        for layer in part.modules() if part is not None else ():
            if isinstance(layer, torch.nn.Conv2d):
                layer.padding_mode = "circular"


class AcrossOnly(torch.nn.Module):
    """A Conv2d that wraps around across and pads with zeros down, written out: the columns of the other edge
    concatenated on each side, then zero rows."""

    def __init__(self, conv: torch.nn.Conv2d) -> None:
        super().__init__()
        self.conv, self.down, self.across = conv, *conv.padding

    def forward(self, x):
        if self.across:
            x = torch.cat([x[..., -self.across:], x, x[..., :self.across]], dim=-1)
        x = F.pad(x, (0, 0, self.down, self.down))
        c = self.conv
        return F.conv2d(x, c.weight, c.bias, c.stride, 0, c.dilation, c.groups)


def across_only(pipe) -> None:
    for part in (pipe.unet, pipe.vae):
        for name, layer in list(part.named_modules()):
            if isinstance(layer, torch.nn.Conv2d) and any(layer.padding):
                parent = part.get_submodule(name.rpartition(".")[0]) if "." in name else part
                setattr(parent, name.rpartition(".")[2], AcrossOnly(layer))


def request_for(base, lora, **changes) -> GenerationRequest:
    fields = dict(prompt=PROMPT, base_model=str(base), loras=(LoraSpec(str(lora)),), steps=1, seed=SEED, width=SIZE,
                  height=SIZE)
    return GenerationRequest(**{**fields, **changes})


@pytest.mark.parametrize("architecture", ["sd15", "sdxl"])
def test_tiling_both_ways_gives_a1111s_circular_image(architecture, tiny_sd15, tiny_sdxl, hyper_lora):
    base = tiny_sdxl if architecture == "sdxl" else tiny_sd15
    lora = hyper_lora("Hyper-SDXL-1step-lora" if architecture == "sdxl" else "Hyper-SD15-1step-lora")
    engine = TorchEngine()
    request = request_for(base, lora, steps=2, tiling="both")
    (result,) = engine.generate(request)
    kind = "StableDiffusionXLPipeline" if architecture == "sdxl" else "StableDiffusionPipeline"
    pipe = reference_pipeline(kind, base, lora)
    a1111_circular(pipe)
    expected = pipe(PROMPT, num_inference_steps=2, guidance_scale=0, eta=1.0, width=SIZE, height=SIZE,
                    generator=torch.Generator("cpu").manual_seed(SEED)).images[0]
    assert pixels(result.image).std() > 5
    assert np.abs(pixels(result.image) - pixels(expected)).max() <= 1
    assert result.request.tiling == "both"

    plain = engine.generate(request.replace(tiling="off"))[0]  # the convolutions are given back after the run
    again = TorchEngine().generate(request.replace(tiling="off"))[0]
    assert np.abs(pixels(plain.image) - pixels(again.image)).max() <= 1
    assert np.abs(pixels(plain.image) - pixels(result.image)).mean() > 2


def test_tiling_one_way_wraps_across_only_and_its_image_tiles_across(tiny_sd15, hyper_lora):
    lora = hyper_lora("Hyper-SD15-1step-lora")
    engine = TorchEngine()
    (across,) = engine.generate(request_for(tiny_sd15, lora, tiling="x"))
    (down,) = engine.generate(request_for(tiny_sd15, lora, tiling="y"))
    (both,) = engine.generate(request_for(tiny_sd15, lora, tiling="both"))

    pipe = reference_pipeline("StableDiffusionPipeline", tiny_sd15, lora)
    across_only(pipe)
    shape = (1, 4, SIZE // pipe.vae_scale_factor, SIZE // pipe.vae_scale_factor)
    from diffusers.utils.torch_utils import randn_tensor

    noise = randn_tensor(shape, generator=torch.Generator("cpu").manual_seed(SEED))

    def one_step(latents):
        return pixels(pipe(PROMPT, num_inference_steps=1, guidance_scale=0, width=SIZE, height=SIZE,
                           generator=torch.Generator("cpu").manual_seed(SEED), latents=latents).images[0])

    expected = one_step(noise)
    assert np.abs(pixels(across.image) - expected).max() <= 1
    shift = 4  # latent columns: a multiple of the UNet's downsampling, 2 × its VAE's pixels
    rolled = one_step(torch.roll(noise, shift, dims=-1))
    moved = np.roll(expected, shift * pipe.vae_scale_factor, axis=1)
    assert np.abs(rolled - moved).max() <= 2  # the image tiles across: rolled with its noise, seam and all
    rolled_down = one_step(torch.roll(noise, shift, dims=-2))
    assert np.abs(rolled_down - np.roll(expected, shift * pipe.vae_scale_factor, axis=0)).max() > 20  # not down
    assert min(np.abs(pixels(a.image) - pixels(b.image)).mean() for a, b in
               ((across, down), (across, both), (down, both))) > 2


@pytest.mark.parametrize("case", ["img2img", "controlnet"])
def test_tiling_wraps_the_init_images_encoding_and_the_controlnet_too(case, tiny_sd15, hyper_lora, controlnets,
                                                                       tmp_path):
    lora = hyper_lora("Hyper-SD15-1step-lora")
    store = InputImages(tmp_path / "inputs")
    init, edges = init_picture(), edges_picture()
    request = request_for(tiny_sd15, lora, steps=4, tiling="both")
    call = dict(width=SIZE, height=SIZE)
    if case == "img2img":
        request = request.replace(init_image=store.add(png(init)), strength=0.75)
        pipe = reference_pipeline("StableDiffusionImg2ImgPipeline", tiny_sd15, lora)
        call = dict(image=init, strength=0.75)
    else:
        request = request.replace(controls=(ControlSpec(str(controlnets["sd15"]), store.add(png(edges)), 0.8),))
        pipe = reference_pipeline("StableDiffusionControlNetPipeline", tiny_sd15, lora, controlnets["sd15"])
        call.update(image=edges, controlnet_conditioning_scale=0.8)
    (result,) = TorchEngine(inputs=store).generate(request)
    a1111_circular(pipe)
    expected = pipe(PROMPT, num_inference_steps=4, guidance_scale=0, eta=1.0,
                    generator=torch.Generator("cpu").manual_seed(SEED), **call).images[0]
    assert np.abs(pixels(result.image) - pixels(expected)).max() <= 1


@pytest.mark.filterwarnings("ignore")
def test_onnx_exports_of_their_own_make_seamless_images_as_torch_does(tiny_sd15, hyper_lora, tmp_path):
    """The ONNX backend (DirectML's) makes a seamless image from an export of its own, its convolutions traced
    wrapping around: the torch backend's image (fp32, CPU provider), one way and both ways, from the prompt and from
    an init image (the VAE's encoder wraps too), and TAESD's decode alike. On the CPU, "auto" leaves seamless images
    to PyTorch, which needs no export for them."""
    from diffusers import AutoencoderTiny

    from hypersd_desktop.core.hashes import sha256_file
    from hypersd_desktop.engine.backend import resolve
    from hypersd_desktop.engine.onnx.backend import declines
    from hypersd_desktop.engine.onnx.engine import OnnxEngine
    from hypersd_desktop.engine.onnx.export import ExportCache, ExportSpec, export_key

    request = request_for(tiny_sd15, hyper_lora("Hyper-SD15-1step-lora"), tiling="y", device="cpu")
    assert GenerationRequest.from_json(request.to_json()) == request
    assert GenerationRequest.from_dict({"prompt": "a", "base_model": "m"}).tiling == "off"  # an older request's
    with pytest.raises(InputError, match="Unknown tiling 'sideways'"):
        request.replace(tiling="sideways")
    assert "seamless images on the CPU are PyTorch's" in declines(request)
    assert declines(request.replace(tiling="off")) is None
    assert resolve("auto", "cpu", request=request)[0].name == "torch"  # auto passes over the ONNX backend for it

    cache = ExportCache(tmp_path / "onnx", hash_of=sha256_file)
    keys = {export_key(ExportSpec.for_request(request.replace(tiling=way), "sd15"), sha256_file)
            for way in ("off", "x", "y", "both")}
    assert len(keys) == 4  # an export of its own for each way
    store = InputImages(tmp_path / "inputs")
    init = store.add(png(init_picture()))
    torch.manual_seed(0)
    taesd = tmp_path / "taesd"
    AutoencoderTiny(encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8), num_encoder_blocks=(1, 1),
                    num_decoder_blocks=(1, 1)).save_pretrained(taesd)
    onnx = OnnxEngine(cache, inputs=store)
    for case in (request, request.replace(tiling="both"), request.replace(tiling="x", init_image=init, strength=0.5,
                                                                          steps=2)):
        (expected,) = TorchEngine(inputs=store).generate(case)
        events = []
        (made,) = onnx.generate(case.replace(backend="onnx"), on_progress=events.append)
        assert made.settings.backend == "onnx" and made.request.tiling == case.tiling
        if case is request:  # the first seamless image exports the model again, and says why
            assert any(event.stage.startswith("Exporting the model to ONNX (first seamless image of this model and "
                                              "LoRA set): ") for event in events)
        assert np.abs(pixels(made.image) - pixels(expected.image)).max() <= 2, case.tiling
    (plain,) = onnx.generate(request.replace(backend="onnx", tiling="off"))
    assert np.abs(pixels(plain.image) - pixels(made.image)).max() > 20  # the seamless exports are not the plain one
    assert {entry.title.rpartition(", ")[2] for entry in cache.entries()} >= {"seamless (top to bottom)",
                                                                              "seamless (both ways)"}
    fast = request.replace(backend="onnx", decoder="taesd", taesd=str(taesd))
    (expected,) = TorchEngine().generate(fast.replace(backend="torch"))
    (made,) = onnx.generate(fast)
    (unwrapped,) = onnx.generate(fast.replace(tiling="off"))
    assert np.abs(pixels(made.image) - pixels(expected.image)).max() <= 2
    assert np.abs(pixels(made.image) - pixels(unwrapped.image)).max() > 20


def test_a_seamless_requests_smaller_init_image_is_enlarged_wrapping_around(tmp_path):
    """A Hires fix's second pass starts from the first pass enlarged: for a seamless image, Lanczos reads past each
    edge what lies at the other (as the middle of its copies laid three by three is enlarged), one way only where
    it tiles one way; an init image of another shape is fitted as any is."""
    from PIL import Image

    from hypersd_desktop.engine.inputs import covered, open_inputs

    store = InputImages(tmp_path / "inputs")
    small = Image.fromarray(np.random.default_rng(4).integers(0, 256, (24, 32, 3), dtype=np.uint8))
    request = GenerationRequest(prompt=PROMPT, base_model="unused", init_image=store.add(png(small)), width=96,
                                height=72)
    tiled = Image.new("RGB", (96, 72))
    for across in range(3):
        for down in range(3):
            tiled.paste(small, (32 * across, 24 * down))
    both = np.asarray(tiled.resize((288, 216), Image.Resampling.LANCZOS).crop((96, 72, 192, 144)), np.int16)
    wrapped = np.asarray(open_inputs(request.replace(tiling="both"), store, 96, 72).init, np.int16)
    plain = np.asarray(open_inputs(request, store, 96, 72).init, np.int16)
    assert np.array_equal(plain, np.asarray(covered(small, (96, 72)), np.int16))
    assert np.abs(wrapped - both).max() <= 1 and np.abs(plain - both).max() > 10
    across = np.asarray(open_inputs(request.replace(tiling="x"), store, 96, 72).init, np.int16)
    assert np.abs(across - both)[10:62].max() <= 1  # away from the top and bottom: as both ways
    assert np.abs(across - plain)[:, 10:86].max() <= 1  # away from the sides: as the plain one
    other_shape = request.replace(tiling="both", width=64, height=64)
    assert np.array_equal(np.asarray(open_inputs(other_shape, store, 64, 64).init, np.int16),
                          np.asarray(covered(small, (64, 64)), np.int16))
