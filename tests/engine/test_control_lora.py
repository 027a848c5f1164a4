"""Stability's Control-LoRAs: a ControlNet stored as a change to the base UNet it was trained from.

The files are tiny ones in the published layout (`tiny_models.save_control_lora`): original key names, the
ControlNet's own parts whole, every convolution and linear layer of the copied UNet part as `<layer>.up` and
`<layer>.down` with its bias whole. The reference is the ControlNet made as ComfyUI makes one, built here from
the same tensors under diffusers' names, so the loader's renaming is checked against names it never saw.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import tiny_models
from hypersd_desktop.core.errors import ArchitectureMismatchError, ModelFormatError
from hypersd_desktop.core.images import InputImages
from hypersd_desktop.core.vocab import WeightsKind
from hypersd_desktop.engine import ControlSpec, GenerationRequest, LoraSpec
from hypersd_desktop.engine.controlnet_files import load_controlnet
from hypersd_desktop.engine.inspect import CONTROL_LORA_FORMAT, inspect_file
from hypersd_desktop.engine.planning import check_controlnet
from hypersd_desktop.engine.torch_engine import TorchEngine
from pictures import SIZE, diffusers_image, edges_picture, png

PROMPT, SEED = "a lighthouse on a cliff", 21


def _unet(layers_per_block: int):
    torch.manual_seed(4)
    return tiny_models.sdxl_unet(64, layers_per_block=layers_per_block).eval()


@pytest.mark.parametrize("layers_per_block", [1, 2])
def test_a_control_lora_loads_as_the_unets_copy_changed_as_its_file_says(layers_per_block, tmp_path):
    unet = _unet(layers_per_block)
    path = tiny_models.save_control_lora(unet, tmp_path / "control-lora-canny-rank128.safetensors")
    info = inspect_file(path)
    assert (info.kind, info.format, info.architecture) == (WeightsKind.CONTROLNET, CONTROL_LORA_FORMAT, "sdxl")
    expected = tiny_models.controlnet_from_control_lora(unet, tiny_models.control_lora_tensors(unet)).state_dict()
    loaded = load_controlnet(path, torch.float32, dict(unet.config), unet).state_dict()
    assert loaded.keys() == expected.keys()
    for key, tensor in expected.items():
        torch.testing.assert_close(loaded[key], tensor, rtol=0, atol=1e-6, msg=key)
    plain = tiny_models.controlnet_from_control_lora(unet, {}).state_dict()
    assert all(not torch.equal(loaded[key], plain[key]) for key in plain)  # nothing kept from the UNet unchanged


def test_a_control_lora_is_made_in_the_unets_dtype_with_each_update_added_in_fp32(tmp_path):
    """Made in bf16 from a bf16 UNet, each weight is the fp32 sum rounded once: the reference made in fp32 from
    the same UNet and then converted."""
    unet = _unet(1).to(torch.bfloat16)
    path = tiny_models.save_control_lora(unet, tmp_path / "control-lora-canny-rank128.safetensors")
    expected = tiny_models.controlnet_from_control_lora(unet, tiny_models.control_lora_tensors(unet))
    loaded = load_controlnet(path, torch.bfloat16, dict(unet.config), unet).state_dict()
    for key, tensor in expected.to(torch.bfloat16).state_dict().items():
        assert loaded[key].dtype == torch.bfloat16 and torch.equal(loaded[key], tensor), key


def test_the_weights_are_those_diffusers_reads_from_the_published_layout(tmp_path):
    """diffusers 0.39 reads Control-LoRAs too (`load_lora_adapter`, for SDXL's layout only: two layers a block and
    the published conditioning embedding). Its merged weights are the loader's. Biases differ: diffusers keeps
    the UNet's, where the file's are taken, as ComfyUI takes them."""
    from diffusers import ControlNetModel
    from peft.tuners.tuners_utils import BaseTunerLayer

    unet = _unet(2)
    hint = (16, 32, 96, 256)
    path = tiny_models.save_control_lora(unet, tmp_path / "control-lora-depth-rank256.safetensors", hint=hint)
    theirs = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=hint)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # PEFT notes a target module it did not use
        theirs.load_lora_adapter(load_file(path), prefix=None, controlnet_config=theirs.config)
    for module in theirs.modules():
        if isinstance(module, BaseTunerLayer):
            module.merge()
    theirs_state = {key.replace(".base_layer", ""): tensor for key, tensor in theirs.state_dict().items()
                    if "lora_" not in key}
    ours = load_controlnet(path, torch.float32, dict(unet.config), unet).state_dict()
    weights = [key for key in ours if key.endswith(".weight")]
    assert len(weights) > 100
    for key in weights:
        torch.testing.assert_close(ours[key], theirs_state[key], rtol=0, atol=1e-5, msg=key)


@pytest.mark.parametrize(("architecture", "lora_name", "file_name"), [
    ("sdxl", "Hyper-SDXL-1step-lora", "control-lora-canny-rank128.safetensors"),
    ("sd15", "Hyper-SD15-1step-lora", "control_lora_rank128_v11p_sd15_canny_fp16.safetensors"),  # ComfyUI's
])
def test_an_image_with_a_control_lora_is_the_diffusers_pipelines_with_that_controlnet(
        architecture, lora_name, file_name, tiny_sd15, tiny_sdxl, hyper_lora, tmp_path):
    """The ControlNet is copied from the UNet as it runs, with the Hyper-SD LoRA fused into it; the reference is
    diffusers' ControlNet pipeline given the ControlNet made from its own fused UNet. Stability published SDXL's;
    ComfyUI's SD1.5 ones (ControlNet 1.1 as rank-128 Control-LoRAs) have the same layout."""
    from diffusers import (
        StableDiffusionControlNetPipeline, StableDiffusionPipeline, StableDiffusionXLControlNetPipeline,
        StableDiffusionXLPipeline, TCDScheduler,
    )

    base = tiny_sdxl if architecture == "sdxl" else tiny_sd15
    lora = hyper_lora(lora_name)
    pipe = (StableDiffusionXLPipeline if architecture == "sdxl" else StableDiffusionPipeline).from_pretrained(base)
    path = tiny_models.save_control_lora(pipe.unet, tmp_path / file_name)
    assert inspect_file(path).architecture == architecture
    tensors = tiny_models.control_lora_tensors(pipe.unet)
    store = InputImages(tmp_path / "inputs")
    picture = edges_picture()
    request = GenerationRequest(prompt=PROMPT, base_model=str(base), loras=(LoraSpec(str(lora)),), steps=2,
                                seed=SEED, width=SIZE, height=SIZE,
                                controls=(ControlSpec(str(path), store.add(png(picture)), 0.8),))
    engine = TorchEngine(inputs=store)
    (result,) = engine.generate(request)
    (plain,) = engine.generate(request.replace(controls=()))

    pipe.load_lora_weights(str(lora.parent), weight_name=lora.name)
    pipe.fuse_lora()
    pipe.unload_lora_weights()  # the fused weights stay, the LoRA's layers go
    controlnet = tiny_models.controlnet_from_control_lora(pipe.unet, tensors)
    control_class = StableDiffusionXLControlNetPipeline if architecture == "sdxl" else StableDiffusionControlNetPipeline
    control_pipe = control_class.from_pipe(pipe, controlnet=controlnet)
    control_pipe.scheduler = TCDScheduler.from_config(pipe.scheduler.config)
    expected = diffusers_image(control_pipe, prompt=PROMPT, num_inference_steps=2, guidance_scale=0, eta=1.0,
                               generator=torch.Generator("cpu").manual_seed(SEED), image=picture,
                               controlnet_conditioning_scale=0.8, width=SIZE, height=SIZE)
    ours, theirs = (np.asarray(image, dtype=np.int16) for image in (result.image, expected))
    assert np.abs(ours - theirs).max() <= 1
    assert np.abs(ours - np.asarray(plain.image, dtype=np.int16)).max() > 10  # the Control-LoRA steered it


def test_a_control_lora_is_made_again_when_the_unet_it_copies_changes(tmp_path):
    """Another set of LoRAs fused into the UNet is another ControlNet; the same one is kept."""
    from hypersd_desktop.engine.modes import ControlNets

    unet = _unet(1)
    path = str(tiny_models.save_control_lora(unet, tmp_path / "control-lora-sketch-rank128-metadata.safetensors"))
    cache = ControlNets()
    config = dict(unet.config)
    [first] = cache.get([path], "cpu", torch.float32, config, unet=unet, unet_weights=("base", ()))
    assert cache.get([path], "cpu", torch.float32, config, unet=unet, unet_weights=("base", ())) == [first]
    with torch.no_grad():
        unet.conv_in.weight.add_(1.0)  # a style LoRA fused
    [second] = cache.get([path], "cpu", torch.float32, config, unet=unet, unet_weights=("base", ("style",)))
    assert second is not first
    torch.testing.assert_close(second.conv_in.weight - first.conv_in.weight, torch.ones_like(first.conv_in.weight))


def test_a_control_lora_that_does_not_fit_the_base_model_says_so(tmp_path):
    unet = _unet(1)
    path = tiny_models.save_control_lora(unet, tmp_path / "control-lora-canny-rank128.safetensors")
    with pytest.raises(ModelFormatError, match="loads with a base model"):
        load_controlnet(path, torch.float32)
    with pytest.raises(ModelFormatError, match="does not fit this base model's UNet as a Control-LoRA"):
        load_controlnet(path, torch.float32, dict(_unet(2).config), _unet(2))  # another block layout
    state = load_file(path)
    damaged = tmp_path / "damaged.safetensors"
    save_file({key: value for key, value in state.items() if not key.startswith("zero_convs.1.")}, damaged)
    with pytest.raises(ModelFormatError, match="2 missing"):
        load_controlnet(damaged, torch.float32, dict(unet.config), unet)
    check_controlnet(path, "sdxl")
    with pytest.raises(ArchitectureMismatchError, match="is for SDXL; the base model is SD1.5"):
        check_controlnet(path, "sd15")


def test_a_layer_with_a_whole_weight_and_an_update_is_the_files_weight_plus_the_update(tmp_path):
    """As ComfyUI writes a Control-LoRA into its ControlNet: a whole weight replaces the UNet's, and the update is
    added to it."""
    import ldm_format

    unet = _unet(1)
    tensors = tiny_models.control_lora_tensors(unet)
    layer = "down_blocks.1.attentions.0.proj_in"
    whole = torch.randn(tuple(unet.down_blocks[1].attentions[0].proj_in.weight.shape))
    tensors[f"{layer}.weight"] = whole
    path = tmp_path / "control-lora-canny-rank128.safetensors"
    save_file({**ldm_format.convert_controlnet(tensors, 1, prefix=""), "lora_controlnet": torch.zeros(1)}, path)
    loaded = load_controlnet(path, torch.float32, dict(unet.config), unet).state_dict()
    update = tensors[f"{layer}.up"].flatten(1) @ tensors[f"{layer}.down"].flatten(1)
    torch.testing.assert_close(loaded[f"{layer}.weight"], whole + update.reshape(whole.shape), rtol=0, atol=1e-6)


def test_an_inpainting_model_is_refused_with_what_to_use_instead(tmp_path):
    unet = _unet(1)
    path = tiny_models.save_control_lora(unet, tmp_path / "control-lora-canny-rank128.safetensors")
    inpainting = tiny_models.sdxl_unet(64, in_channels=9)
    with pytest.raises(ModelFormatError, match="this base model is an inpainting model .* Use a whole ControlNet"):
        load_controlnet(path, torch.float32, dict(inpainting.config), inpainting)
