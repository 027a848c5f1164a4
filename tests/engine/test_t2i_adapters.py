"""T2I-Adapters: a control picture steers the image as diffusers' adapter pipelines have it steer, from a diffusers
folder, its weights alone or the original layout A1111's and ComfyUI's folders hold; over part of the steps as the
adapter pipeline's conditioning factor; beside a ControlNet; and in modes diffusers has no adapter pipeline for.

The reference side is the diffusers docs' code: `StableDiffusion(XL)AdapterPipeline` from the base folder with
`T2IAdapter.from_pretrained`, the Hyper-SD LoRA fused, TCD, `adapter_conditioning_scale` and
`adapter_conditioning_factor` in the call. Tiny models (`tiny_models.save_t2i_adapter`), fp32, CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from hypersd_desktop.core.images import InputImages
from hypersd_desktop.core.vocab import Architecture, WeightsKind
from hypersd_desktop.engine import ControlSpec, GenerationRequest, LoraSpec
from hypersd_desktop.engine.inspect import (
    T2I_ADAPTER_FORMAT, T2I_ADAPTER_ORIGINAL_FORMAT, inspect_file, is_t2i_adapter,
)
from hypersd_desktop.engine.planning import controlnet_architecture
from hypersd_desktop.engine.torch_engine import TorchEngine
from pictures import SIZE, depth_picture, diffusers_image, edges_picture, init_picture, png

SEED = 31
PROMPT = "a lighthouse on a cliff"
RECIPES = {"sd15": "Hyper-SD15-1step-lora", "sdxl": "Hyper-SDXL-1step-lora"}


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    import tiny_models

    root = tmp_path_factory.mktemp("adapters")
    return {"sd15": tiny_models.save_t2i_adapter(root / "t2iadapter-canny-sd15", "sd15"),
            "sdxl": tiny_models.save_t2i_adapter(root / "t2i-adapter-canny-sdxl", "sdxl"),
            "sketch": tiny_models.save_t2i_adapter(root / "t2iadapter-sketch-sd15", "sd15", channels=1, seed=29)}


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def adapter_image(base, lora, adapter, picture, steps: int, scale: float, factor: float = 1.0):
    """diffusers' own adapter pipeline's image."""
    import diffusers
    from diffusers import T2IAdapter, TCDScheduler

    architecture = "sdxl" if "xl" in base.name else "sd15"
    plain = {"sd15": "StableDiffusionPipeline", "sdxl": "StableDiffusionXLPipeline"}[architecture]
    pipe = getattr(diffusers, plain).from_pretrained(base)
    pipe.load_lora_weights(str(lora.parent), weight_name=lora.name)  # SD1.5's adapter pipeline loads no LoRA itself
    pipe.fuse_lora()
    pipe = getattr(diffusers, plain.replace("Pipeline", "AdapterPipeline")).from_pipe(
        pipe, adapter=T2IAdapter.from_pretrained(adapter))
    pipe.scheduler = TCDScheduler.from_config(pipe.scheduler.config)
    return diffusers_image(pipe, prompt=PROMPT, image=picture, num_inference_steps=steps, guidance_scale=0, eta=1.0,
                           width=SIZE, height=SIZE, adapter_conditioning_scale=scale,
                           **({"adapter_conditioning_factor": factor} if factor != 1.0 else {}),  # SDXL's only
                           generator=torch.Generator("cpu").manual_seed(SEED))


def request_for(base, lora, store, controls, steps: int = 2) -> GenerationRequest:
    return GenerationRequest(prompt=PROMPT, base_model=str(base), loras=(LoraSpec(str(lora)),), steps=steps,
                             seed=SEED, width=SIZE, height=SIZE, controls=tuple(controls))


# id: (architecture, adapter, steps, scale, end)
CASES = {
    "sd15": ("sd15", "sd15", 2, 0.8, 1.0),
    "sdxl": ("sdxl", "sdxl", 2, 1.0, 1.0),
    "sketch-gray": ("sd15", "sketch", 2, 1.0, 1.0),  # one channel: the picture read as gray
    "half-the-steps": ("sdxl", "sdxl", 4, 1.0, 0.5),  # SDXL's adapter pipeline's adapter_conditioning_factor
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_adapter_gives_the_diffusers_adapter_pipelines_image(case, tiny_sd15, tiny_sdxl, hyper_lora, adapters,
                                                                tmp_path):
    architecture, which, steps, scale, end = CASES[case]
    base = tiny_sdxl if architecture == "sdxl" else tiny_sd15
    lora = hyper_lora(RECIPES[architecture])
    store = InputImages(tmp_path / "inputs")
    picture = edges_picture()
    control = ControlSpec(str(adapters[which]), store.add(png(picture)), scale, end=end)
    (result,) = TorchEngine(inputs=store).generate(request_for(base, lora, store, [control], steps))
    # a one-channel adapter is given a gray picture, as the diffusers docs give a sketch adapter
    expected = adapter_image(base, lora, adapters[which], picture.convert("L") if which == "sketch" else picture,
                             steps, scale, end)
    ours = pixels(result.image)
    assert ours.shape == (SIZE, SIZE, 3) and ours.std() > 5
    assert np.abs(ours - pixels(expected)).max() <= 1
    plain = TorchEngine(inputs=store).generate(request_for(base, lora, store, [], steps))[0]
    assert np.abs(pixels(plain.image) - ours).max() > 10  # the adapter steers


def test_adapter_files_are_known_in_every_layout_and_load_to_the_same_image(adapters, tiny_sd15, hyper_lora,
                                                                           tmp_path):
    """The folder, its weights file alone (the config read off the weights) and the original layout (A1111's and
    ComfyUI's `t2iadapter_*` files) are the same adapter."""
    import tiny_models

    weights = adapters["sd15"] / "diffusion_pytorch_model.safetensors"
    alone = tmp_path / "t2iadapter_canny.safetensors"
    alone.write_bytes(weights.read_bytes())
    original = tmp_path / "t2iadapter_canny_sd14v1.safetensors"
    save_file(tiny_models.t2i_adapter_original(load_file(weights)), original)
    for path, layout in ((weights, T2I_ADAPTER_FORMAT), (alone, T2I_ADAPTER_FORMAT),
                         (original, T2I_ADAPTER_ORIGINAL_FORMAT)):
        info = inspect_file(path)
        assert (info.kind, info.format, info.architecture) == (WeightsKind.CONTROLNET, layout, Architecture.SD15)
        assert is_t2i_adapter(path) and controlnet_architecture(path) == Architecture.SD15
    assert is_t2i_adapter(adapters["sd15"]) and controlnet_architecture(adapters["sdxl"]) == Architecture.SDXL

    lora = hyper_lora("Hyper-SD15-1step-lora")
    store = InputImages(tmp_path / "inputs")
    picture = store.add(png(edges_picture()))
    images = [TorchEngine(inputs=store).generate(request_for(tiny_sd15, lora, store,
                                                             [ControlSpec(str(path), picture, 0.8)]))[0].image
              for path in (adapters["sd15"], alone, original)]
    assert all(np.array_equal(pixels(images[0]), pixels(image)) for image in images[1:])


def test_real_adapter_headers_say_their_base_model_and_other_adapters_are_named(tmp_path):
    """The shapes of TencentARC's files: SD1.5's first layer takes 3 × 8² channels (a sketch adapter 1 × 8²),
    SDXL's 3 × 16²; the color (light) and style adapters, which are other networks, are named and not taken."""
    def header_only(name: str, tensors: dict[str, tuple[int, ...]]):
        path = tmp_path / name
        save_file({key: torch.zeros(shape, dtype=torch.float16) for key, shape in tensors.items()}, path)
        return inspect_file(path)

    for cin, architecture in ((192, Architecture.SD15), (64, Architecture.SD15), (768, Architecture.SDXL),
                              (256, Architecture.SDXL)):
        info = header_only(f"adapter-{cin}.safetensors", {"adapter.conv_in.weight": (320, cin, 3, 3),
                                                          "adapter.body.0.resnets.0.block1.weight": (320, 320, 3, 3)})
        assert (info.kind, info.architecture) == (WeightsKind.CONTROLNET, architecture)
        original = header_only(f"original-{cin}.safetensors", {"conv_in.weight": (320, cin, 3, 3),
                                                              "body.0.block1.weight": (320, 320, 3, 3)})
        assert (original.format, original.architecture) == (T2I_ADAPTER_ORIGINAL_FORMAT, architecture)
    color = header_only("t2iadapter_color_sd14v1.safetensors", {"body.0.in_conv.weight": (320, 192, 1, 1),
                                                                 "body.0.body.0.block1.weight": (320, 320, 3, 3)})
    style = header_only("t2iadapter_style_sd14v1.safetensors", {"style_embedding": (1, 8, 1024),
                                                                 "ln_post.weight": (1024,)})
    assert (color.kind, style.kind) == (WeightsKind.UNKNOWN, WeightsKind.UNKNOWN)
    assert "color" in color.format and "style" in style.format


def test_an_adapter_runs_beside_a_controlnet_and_in_image_to_image(adapters, controlnets, tiny_sd15, hyper_lora,
                                                                    tmp_path):
    """Modes diffusers has no adapter pipeline for: with a ControlNet the adapter adds to its image (at scale 0 it
    adds nothing: the ControlNet's image alone), and from an init image likewise."""
    lora = hyper_lora("Hyper-SD15-1step-lora")
    store = InputImages(tmp_path / "inputs")
    edges, depth = store.add(png(edges_picture())), store.add(png(depth_picture()))
    net = ControlSpec(str(controlnets["sd15"]), depth, 0.9)
    engine = TorchEngine(inputs=store)
    alone = pixels(engine.generate(request_for(tiny_sd15, lora, store, [net]))[0].image)
    idle = pixels(engine.generate(request_for(tiny_sd15, lora, store,
                                              [ControlSpec(str(adapters["sd15"]), edges, 0.0), net]))[0].image)
    both = pixels(engine.generate(request_for(tiny_sd15, lora, store,
                                              [ControlSpec(str(adapters["sd15"]), edges, 1.0), net]))[0].image)
    assert np.abs(idle - alone).max() <= 1 and np.abs(both - alone).max() > 10

    init = request_for(tiny_sd15, lora, store, []).replace(init_image=store.add(png(init_picture())), strength=0.75,
                                                           steps=4)
    plain = pixels(engine.generate(init)[0].image)
    steered = pixels(engine.generate(init.replace(controls=(ControlSpec(str(adapters["sd15"]), edges, 1.0),)))[0]
                     .image)
    assert np.abs(steered - plain).max() > 10


def test_at_a_size_not_a_multiple_of_its_squares_the_picture_is_stretched_to_cover_the_unets_blocks(tmp_path):
    """SDXL's adapters read the image in squares of 16 pixels (pixel unshuffle); a Hires fix of SDXL can make 1080
    pixels. The picture is stretched to the next multiple, as ComfyUI does, so the features have the sides the
    UNet's blocks have there (they round up: 1080 / 8 = 135 latents, 68 after the first block)."""
    from diffusers import T2IAdapter
    from PIL import Image

    from hypersd_desktop.engine import t2i_adapters

    folder = tmp_path / "t2i-adapter-sketch-sdxl"
    T2IAdapter(in_channels=3, channels=[32, 64, 64, 64], num_res_blocks=1, downscale_factor=16,
               adapter_type="full_adapter_xl").save_pretrained(folder, safe_serialization=True)
    adapter = t2i_adapters.load_adapter(folder, torch.float32)
    control = ControlSpec(str(folder), "0" * 64, 0.5)
    (unit,) = t2i_adapters.units([adapter], [control], [Image.new("RGB", (1080, 808), "white")], 1080, 808)
    latents = (808 // 8, 1080 // 8)
    first = tuple(-(-side // 2) for side in latents)  # SDXL's first block halves them, rounding up
    third = tuple(-(-side // 2) for side in first)
    assert [tuple(feature.shape[-2:]) for feature in unit.features] == [first, first, third, third]
    with torch.no_grad():
        whole = adapter(t2i_adapters.adapter_input(Image.new("RGB", (1088, 816), "white"), 3, "cpu", torch.float32))
    assert all(torch.equal(feature, 0.5 * expected) for feature, expected in zip(unit.features, whole))
