"""ByteDance's ComfyUI form of the 1-step SDXL UNet, `Hyper-SDXL-1step-Unet-Comfyui.fp16.safetensors`: a whole SDXL
checkpoint (the UNet with SDXL's text encoders and VAE) that ComfyUI's Load Checkpoint reads. It runs with the 1-step
UNet's recipe (LCM at timestep 800, no guidance), as the UNet on its own does."""

from __future__ import annotations

import numpy as np
import pytest

from hypersd_desktop.core.vocab import Architecture, WeightsKind
from hypersd_desktop.engine import GenerationRequest, LoraSpec
from hypersd_desktop.engine.inspect import inspect_file
from hypersd_desktop.engine.planning import plan
from hypersd_desktop.engine.torch_engine import TorchEngine

COMFYUI_NAME = "Hyper-SDXL-1step-Unet-Comfyui.fp16.safetensors"


@pytest.fixture(scope="module")
def comfyui_checkpoint(tmp_path_factory):
    """A tiny SDXL model's folder, the model as one checkpoint under ByteDance's ComfyUI name, and its UNet as the
    1-step UNet file."""
    from diffusers import StableDiffusionXLPipeline
    from safetensors.torch import save_file

    import ldm_format
    import tiny_models

    root = tmp_path_factory.mktemp("comfyui")
    # SDXL's second text encoder wider than the first, as in the real one (the checkpoint's reader tells them so)
    folder = tiny_models.save_pipeline("sdxl", root / "sdxl", seed=4, text_width_2=48)
    pipe = StableDiffusionXLPipeline.from_pretrained(folder)
    checkpoint = ldm_format.save_single_file(pipe, root / COMFYUI_NAME)
    unet = root / "Hyper-SDXL-1step-Unet.safetensors"
    save_file({key: value.contiguous() for key, value in pipe.unet.state_dict().items()}, str(unet))
    return folder, checkpoint, unet


def test_the_checkpoint_is_named_as_the_1_step_unet_and_planned_with_its_recipe(comfyui_checkpoint, hyper_lora):
    folder, checkpoint, _ = comfyui_checkpoint
    info = inspect_file(checkpoint)
    assert (info.kind, info.architecture, info.hyper_sd) == (WeightsKind.CHECKPOINT, Architecture.SDXL,
                                                             "Hyper-SDXL-1step-Unet")
    planned = plan(GenerationRequest(prompt="a cat", base_model=str(checkpoint)), Architecture.SDXL)
    assert (planned.recipe.id, planned.scheduler, planned.steps, planned.guidance, planned.timesteps) == (
        "Hyper-SDXL-1step-Unet", "lcm", 1, 0.0, (800,))
    assert not any("No Hyper-SD" in warning for warning in planned.warnings)
    # a LoRA on top does not combine with it: said, and the built-in recipe is followed
    with_lora = plan(GenerationRequest(prompt="a cat", base_model=str(checkpoint),
                                       loras=(LoraSpec(str(hyper_lora("Hyper-SDXL-8steps-lora"))),)), Architecture.SDXL)
    assert with_lora.recipe.id == "Hyper-SDXL-1step-Unet" and any("do not combine" in w for w in with_lora.warnings)
    # the same model under another name is a plain model
    plain = plan(GenerationRequest(prompt="a cat", base_model=str(folder)), Architecture.SDXL)
    assert plain.recipe is None


def test_the_checkpoint_makes_the_image_the_1_step_unet_makes_on_its_base_model(comfyui_checkpoint):
    folder, checkpoint, unet = comfyui_checkpoint
    request = GenerationRequest(prompt="a lighthouse", base_model=str(checkpoint), base_config=str(folder), seed=4,
                                width=64, height=64)
    (ours,) = TorchEngine().generate(request)
    (reference,) = TorchEngine().generate(request.replace(base_model=str(folder), base_config=None, unet=str(unet)))
    assert ours.settings.recipe == reference.settings.recipe == "Hyper-SDXL-1step-Unet"
    assert (ours.settings.scheduler, ours.settings.steps) == ("lcm", 1)
    difference = np.abs(np.asarray(ours.image, np.int16) - np.asarray(reference.image, np.int16)).max()
    assert difference <= 1
