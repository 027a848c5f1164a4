"""Inpainting models (sd-v1-5-inpainting, SDXL's inpainting-0.1, the "-inpainting" versions of community models):
a UNet of 9 input channels, the latents beside the mask and the masked image's latents.

They load from a diffusers folder and from a single-file checkpoint (read with the bundled config, whose UNet
takes 4 channels). Inpainting gives diffusers' own inpainting pipeline's image (the model card's way of running
one). Text to image runs as A1111 runs such a model: the whole picture masked, its masked image mid-grey, from
noise; image to image masks the whole init image. LoRAs for the text-to-image model widen to the first
convolution as A1111 widens them. Tiny models, fp32, CPU.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cli_process import run_cli
from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.images import InputImages
from hypersd_desktop.engine import GenerationRequest, LoraSpec
from hypersd_desktop.engine.inspect import base_architecture, base_in_channels, inspect_file
from hypersd_desktop.engine.torch_engine import TorchEngine
from pictures import SIZE, diffusers_image, init_picture, mask_picture, png

SEED = 41
PROMPT = "a lighthouse on a cliff"
INPAINT_PIPELINES = {"sd15": "StableDiffusionInpaintPipeline", "sdxl": "StableDiffusionXLInpaintPipeline"}
LORAS = {"sd15": "Hyper-SD15-1step-lora", "sdxl": "Hyper-SDXL-1step-lora"}


@pytest.fixture(scope="module")
def inpainting(tmp_path_factory, tiny_sd15):
    """Per architecture: a tiny text-to-image model (its config reads checkpoints, as the bundled ones do), an
    inpainting model made from it as a diffusers folder and as one checkpoint, and a Hyper-SD LoRA for it. SDXL's
    second text encoder is wider than the first, as in the real model, so the checkpoint's two are told apart."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline, UNet2DConditionModel

    import ldm_format
    import tiny_models

    root = tmp_path_factory.mktemp("inpainting")
    made = {}
    for architecture, cls in (("sd15", StableDiffusionPipeline), ("sdxl", StableDiffusionXLPipeline)):
        base = tiny_sd15 if architecture == "sd15" else tiny_models.save_pipeline("sdxl", root / "sdxl", seed=4,
                                                                                    text_width_2=48)
        folder = tiny_models.save_inpainting_pipeline(base, root / f"{architecture}-inpainting")
        checkpoint = ldm_format.save_single_file(cls.from_pretrained(folder), root / f"{architecture}-inpainting.safetensors")
        lora = tiny_models.kohya_lora(UNet2DConditionModel.from_pretrained(base, subfolder="unet"),
                                      root / architecture / f"{LORAS[architecture]}.safetensors")
        made[architecture] = (base, folder, checkpoint, lora)
    return made


def diffusers_inpainting(folder, lora, architecture, call):
    import diffusers
    from diffusers import TCDScheduler

    pipe = getattr(diffusers, INPAINT_PIPELINES[architecture]).from_pretrained(folder)
    pipe.load_lora_weights(str(lora.parent), weight_name=lora.name)
    pipe.fuse_lora()
    pipe.scheduler = TCDScheduler.from_config(pipe.scheduler.config)
    return diffusers_image(pipe, prompt=PROMPT, num_inference_steps=4, guidance_scale=0, eta=1.0,
                           generator=torch.Generator("cpu").manual_seed(SEED), width=SIZE, height=SIZE, **call)


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


@pytest.mark.parametrize("architecture", ["sd15", "sdxl"])
@pytest.mark.parametrize("mode", ["inpaint", "img2img", "txt2img"])
def test_an_inpainting_model_gives_the_diffusers_inpainting_image(mode, architecture, inpainting, tmp_path,
                                                                   monkeypatch):
    config, folder, checkpoint, lora = inpainting[architecture]
    store = InputImages(tmp_path / "inputs")
    white = Image.new("L", (SIZE, SIZE), 255)
    request = GenerationRequest(prompt=PROMPT, base_model=str(folder), loras=(LoraSpec(str(lora)),), steps=4,
                                seed=SEED, width=SIZE, height=SIZE)
    if mode == "inpaint":
        request = request.replace(init_image=store.add(png(init_picture())), strength=0.9,
                                  mask_image=store.add(png(mask_picture())), mask_blur=4)
        call = dict(image=init_picture(), mask_image=mask_picture(), strength=0.9, blur=4)
    elif mode == "img2img":
        request = request.replace(init_image=store.add(png(init_picture())), strength=0.75)
        call = dict(image=init_picture(), mask_image=white, strength=0.75)
    else:  # A1111's txt2img conditioning of an inpainting model: all masked, the masked image mid-grey
        call = dict(image=Image.new("RGB", (SIZE, SIZE), (128, 128, 128)), mask_image=white, strength=1.0)
    inputs = []
    from diffusers import UNet2DConditionModel

    forward = UNet2DConditionModel.forward
    monkeypatch.setattr(UNet2DConditionModel, "forward",
                        lambda unet, sample, *args, **kwargs: inputs.append(sample) or forward(unet, sample, *args,
                                                                                                  **kwargs))
    (from_folder,) = TorchEngine(inputs=store).generate(request)
    seen, inputs[:] = list(inputs), []
    (from_file,) = TorchEngine(inputs=store).generate(request.replace(base_model=str(checkpoint),
                                                                       base_config=str(config)))
    expected = diffusers_inpainting(folder, lora, architecture, call)
    ours = pixels(from_folder.image)
    assert ours.shape == (SIZE, SIZE, 3) and ours.std() > 5
    assert np.abs(ours - pixels(expected)).max() <= 1
    assert np.abs(pixels(from_file.image) - ours).max() <= 1, "the checkpoint is the same model"
    assert all(sample.shape[1] == 9 for sample in seen)
    if mode != "inpaint":  # the mask channel covers everything, and the masked image does not change
        assert all(torch.equal(sample[:, 4], torch.ones_like(sample[:, 4])) for sample in seen)
        assert all(torch.equal(sample[:, 5:], seen[0][:, 5:]) for sample in seen)


def test_a_checkpoint_says_it_is_an_inpainting_model_and_other_inputs_are_refused(inpainting, tiny_sd15, tmp_path):
    import shutil

    _, folder, checkpoint, _ = inpainting["sd15"]
    assert inspect_file(checkpoint).in_channels == 9 and base_in_channels(checkpoint) == 9
    assert base_in_channels(folder) == 9 and base_in_channels(tiny_sd15) == 4
    pix2pix = tmp_path / "instruct-pix2pix"  # its UNet takes the latents and the picture's: 8 channels
    shutil.copytree(tiny_sd15, pix2pix)
    config = json.loads((pix2pix / "unet" / "config.json").read_text())
    (pix2pix / "unet" / "config.json").write_text(json.dumps({**config, "in_channels": 8}))
    with pytest.raises(InputError, match=r"instruct-pix2pix's UNet takes 8 input channels \(an InstructPix2Pix model"):
        base_architecture(pix2pix)
    assert base_architecture(checkpoint) == "sd15"
    # folders named as the published ones: stable-diffusion-inpainting's class, SDXL inpainting-0.1's
    assert (base_architecture(folder), base_architecture(inpainting["sdxl"][1])) == ("sd15", "sdxl")
    refiner = tmp_path / "stable-diffusion-xl-refiner-1.0"  # named an img2img pipeline too, told apart by its UNet
    shutil.copytree(inpainting["sdxl"][0], refiner)
    index = json.loads((refiner / "model_index.json").read_text())
    (refiner / "model_index.json").write_text(json.dumps({**index, "_class_name": "StableDiffusionXLImg2ImgPipeline"}))
    config = json.loads((refiner / "unet" / "config.json").read_text())
    (refiner / "unet" / "config.json").write_text(json.dumps({**config, "cross_attention_dim": 1280}))
    with pytest.raises(InputError, match="is a model for the SDXL refiner"):
        base_architecture(refiner)
    said = run_cli("inspect", checkpoint)
    assert said.returncode == 0, said.stderr
    said = said.stdout
    assert "An inpainting model: its UNet also reads the mask" in said


def test_a_lora_widens_to_an_inpainting_models_first_convolution(inpainting, tmp_path):
    """A LoCon trained on the text-to-image model changes the first convolution's 4 latent channels; the mask's
    and the masked image's 5 are left as they are."""
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    from hypersd_desktop.engine.lora import apply_layers, load_lora_layers

    unet = UNet2DConditionModel.from_pretrained(inpainting["sd15"][1], subfolder="unet")
    generator = torch.Generator().manual_seed(3)
    down, up = torch.randn(2, 4, 3, 3, generator=generator), torch.randn(32, 2, 1, 1, generator=generator)
    path = tmp_path / "locon.safetensors"
    save_file({"lora_unet_conv_in.lora_down.weight": down, "lora_unet_conv_in.lora_up.weight": up,
               "lora_unet_conv_in.alpha": torch.tensor(1.0)}, str(path))
    before = unet.conv_in.weight.detach().clone()
    layers, unmatched = load_lora_layers(path, {"unet": unet}, dict(unet.config))
    apply_layers({"unet": unet}, layers, weight=0.5)
    change = unet.conv_in.weight.detach() - before
    expected = (up.flatten(1) @ down.flatten(1)).reshape(32, 4, 3, 3) * (1.0 / 2) * 0.5
    assert unmatched == 0
    assert torch.allclose(change[:, :4], expected, atol=1e-6)
    assert torch.equal(change[:, 4:], torch.zeros_like(change[:, 4:]))


def test_a_full_unet_replaces_an_inpainting_models_own(inpainting, tmp_path):
    """The Hyper-SDXL 1-step UNet (4 input channels) on an inpainting model's folder: it takes the UNet's place, and
    the run is text-to-image with the folder's text encoders and VAE."""
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    base, folder, _, _ = inpainting["sdxl"]
    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
    path = tmp_path / "Hyper-SDXL-1step-Unet.safetensors"
    save_file({key: value.contiguous() for key, value in unet.state_dict().items()}, str(path))
    request = GenerationRequest(prompt=PROMPT, base_model=str(folder), unet=str(path), seed=SEED, width=SIZE,
                                height=SIZE)
    (ours,) = TorchEngine().generate(request)
    (plain,) = TorchEngine().generate(request.replace(base_model=str(base)))  # the same UNet on its own model
    assert ours.settings.recipe == "Hyper-SDXL-1step-Unet"
    assert np.abs(pixels(ours.image) - pixels(plain.image)).max() <= 1


def test_the_quick_read_of_a_checkpoints_channels_agrees_with_the_whole_header(inpainting, tmp_path):
    """The model lists read each checkpoint's input channels from its header's text; it must say what reading the
    header whole says, also when a metadata string quotes the key or the key is absent."""
    from safetensors.torch import load_file, save_file

    from hypersd_desktop.engine.inspect import _file_in_channels

    def quick(path):
        stat = path.stat()
        return _file_in_channels(str(path), stat.st_size, stat.st_mtime_ns)

    sd15, sdxl = inpainting["sd15"][2], inpainting["sdxl"][2]
    key = "model.diffusion_model.input_blocks.0.0.weight"
    tensors = load_file(str(sd15))
    plain = tmp_path / "plain.safetensors"  # 4 channels, with the key quoted in its metadata
    save_file({**tensors, key: tensors[key][:, :4].contiguous()}, str(plain),
              metadata={"note": json.dumps({key: {"shape": [32, 9, 3, 3]}})})
    lora = tmp_path / "lora.safetensors"
    save_file({"lora_unet_x.lora_down.weight": torch.zeros(2, 2)}, str(lora))
    for path, channels in ((sd15, 9), (sdxl, 9), (plain, 4), (lora, 4)):
        assert quick(path) == channels == (inspect_file(path).in_channels or 4)
