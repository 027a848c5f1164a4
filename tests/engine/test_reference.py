"""Every Hyper-SD recipe row: the engine's image equals the model card's diffusers code.

The reference side is the model card's code as written (load_lora_weights, fuse_lora, the
scheduler built from the base scheduler's config, the pipeline call), on the same tiny model,
seed and recipe, fp32 on the CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from hypersd_desktop.engine import GenerationRequest, LoraSpec
from hypersd_desktop.engine.recipes import RECIPES
from hypersd_desktop.engine.torch_engine import TorchEngine

SIZE = 64
SEED = 1234
PROMPT = "a photo of a cat"


def model_card_image(base, recipe, lora_path=None, unet_path=None, steps=None, guidance=None, negative=""):
    from diffusers import DDIMScheduler, DiffusionPipeline, LCMScheduler, TCDScheduler, UNet2DConditionModel
    from safetensors.torch import load_file

    if unet_path is not None:
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(base, subfolder="unet"))
        unet.load_state_dict(load_file(unet_path))
        pipe = DiffusionPipeline.from_pretrained(base, unet=unet)
        pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
        return pipe(prompt=PROMPT, num_inference_steps=1, guidance_scale=0, timesteps=[800], width=SIZE, height=SIZE,
                    generator=torch.Generator("cpu").manual_seed(SEED)).images[0]
    pipe = DiffusionPipeline.from_pretrained(base)
    pipe.load_lora_weights(str(lora_path.parent), weight_name=lora_path.name)
    pipe.fuse_lora()
    generator = torch.Generator("cpu").manual_seed(SEED)
    common = dict(prompt=PROMPT, width=SIZE, height=SIZE, generator=generator)
    if recipe.scheduler == "tcd":
        pipe.scheduler = TCDScheduler.from_config(pipe.scheduler.config)
        return pipe(num_inference_steps=steps, guidance_scale=0, eta=1.0, **common).images[0]
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config, timestep_spacing="trailing")
    if recipe.uses_guidance:
        return pipe(negative_prompt=negative, num_inference_steps=steps, guidance_scale=guidance, **common).images[0]
    return pipe(num_inference_steps=steps, guidance_scale=0, **common).images[0]


def cases():
    for recipe in RECIPES:
        if recipe.unified:
            for steps in (1, 3):
                yield pytest.param(recipe, steps, id=f"{recipe.id}-{steps}")
        else:
            yield pytest.param(recipe, recipe.default_steps, id=recipe.id)


@pytest.mark.parametrize(("recipe", "steps"), list(cases()))
def test_engine_matches_model_card(recipe, steps, tiny_sd15, tiny_sdxl, hyper_lora, tmp_path):
    base = tiny_sdxl if recipe.architecture == "sdxl" else tiny_sd15
    negative = "blurry, low quality" if recipe.uses_guidance else ""
    if recipe.kind == "unet":
        from diffusers import UNet2DConditionModel

        unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
        with torch.no_grad():
            for parameter in unet.parameters():
                parameter.add_(torch.randn_like(parameter) * 0.01)  # a UNet that differs from the base's
        unet_path = tmp_path / recipe.file_name
        save_file({k: v.contiguous() for k, v in unet.state_dict().items()}, str(unet_path))
        expected = model_card_image(base, recipe, unet_path=unet_path)
        request = GenerationRequest(prompt=PROMPT, base_model=str(base), unet=str(unet_path), seed=SEED,
                                    width=SIZE, height=SIZE)
    else:
        lora = hyper_lora(recipe.id)
        expected = model_card_image(base, recipe, lora, steps=steps, guidance=recipe.guidance, negative=negative)
        request = GenerationRequest(prompt=PROMPT, negative_prompt=negative, base_model=str(base),
                                    loras=(LoraSpec(str(lora)),), steps=steps, seed=SEED, width=SIZE, height=SIZE)

    (result,) = TorchEngine().generate(request)

    assert result.settings.recipe == recipe.id
    assert result.settings.scheduler == recipe.scheduler
    assert result.warnings == ()
    ours = np.asarray(result.image, dtype=np.int16)
    theirs = np.asarray(expected, dtype=np.int16)
    assert ours.shape == theirs.shape == (SIZE, SIZE, 3)
    assert ours.std() > 5, "the tiny model should produce a non-flat image"
    assert np.abs(ours - theirs).max() <= 1
