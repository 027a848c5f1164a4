"""ControlNets in inpainting: an inpainting ControlNet sees the init image with the masked part left open, and any
ControlNet follows the same area of its picture as the init image's when only the masked area is made.

The reference side is the code that comes with each model: the diffusers docs' `make_inpaint_condition` for
lllyasviel's `control_v11p_sd15_inpaint` (masked pixels -1), xinsir's ProMax inpainting script (masked pixels black,
control type 7, repaint), and diffusers' ControlNet inpainting pipeline with `padding_mask_crop`, which cuts the
control image with the init image. Tiny models, fp32, CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.images import InputImages
from hypersd_desktop.engine import ControlSpec, GenerationRequest, LoraSpec
from hypersd_desktop.engine.inputs import open_inputs
from hypersd_desktop.engine.planning import check_controls
from hypersd_desktop.engine.torch_engine import TorchEngine
from pictures import SIZE, edges_picture, init_picture, mask_picture, png

SEED = 12
PROMPT = "a lighthouse on a cliff"
WHOLE = (160, 96)  # larger than the run, and of another shape


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def reference_pipe(pipeline: str, base, lora, controlnet):
    import diffusers
    from diffusers import TCDScheduler

    pipe = getattr(diffusers, pipeline).from_pretrained(base, controlnet=controlnet)
    pipe.load_lora_weights(str(lora.parent), weight_name=lora.name)
    pipe.fuse_lora()
    pipe.scheduler = TCDScheduler.from_config(pipe.scheduler.config)
    return pipe


def reference_image(pipe, init, mask, **call):
    """The pipeline's image laid into the init image where the mask paints, as the docs keep the rest. (diffusers'
    ControlNet inpainting takes a scale of 0.5 when given none; the request's is 1.)"""
    image = pipe(prompt=PROMPT, image=init, mask_image=mask, strength=0.9, num_inference_steps=4, guidance_scale=0,
                 eta=1.0, generator=torch.Generator("cpu").manual_seed(SEED), controlnet_conditioning_scale=1.0,
                 **call).images[0]
    return pipe.image_processor.apply_overlay(mask, init, image)


def inpainting(store: InputImages, base, lora, controlnet, preprocessor: str = "inpaint") -> GenerationRequest:
    init = store.add(png(init_picture()))
    return GenerationRequest(prompt=PROMPT, base_model=str(base), loras=(LoraSpec(str(lora)),), steps=4, seed=SEED,
                             init_image=init, mask_image=store.add(png(mask_picture())), mask_blur=0, strength=0.9,
                             controls=(ControlSpec(str(controlnet), init, 1.0, preprocessor=preprocessor),))


def test_an_inpainting_controlnet_sees_the_init_image_with_the_mask_open(tiny_sd15, hyper_lora, controlnets,
                                                                         tmp_path):
    """The diffusers docs' code for control_v11p_sd15_inpaint: the masked pixels of the init image set to -1."""
    from diffusers import ControlNetModel

    lora = hyper_lora("Hyper-SD15-1step-lora")
    store = InputImages(tmp_path / "inputs")
    request = inpainting(store, tiny_sd15, lora, controlnets["sd15"])
    (result,) = TorchEngine(inputs=store).generate(request)

    init, mask = init_picture(), mask_picture()
    condition = np.asarray(init, dtype=np.float32) / 255.0
    condition[np.asarray(mask, dtype=np.float32) / 255.0 > 0.5] = -1.0
    control = torch.from_numpy(condition[None].transpose(0, 3, 1, 2))
    pipe = reference_pipe("StableDiffusionControlNetInpaintPipeline", tiny_sd15, lora,
                          ControlNetModel.from_pretrained(controlnets["sd15"]))
    expected = reference_image(pipe, init, mask, control_image=control)
    ours = pixels(result.image)
    assert ours.shape == (SIZE, SIZE, 3) and ours.std() > 5
    assert np.abs(ours - pixels(expected)).max() <= 1

    # the marks are what the ControlNet reads: the init image as it is steers otherwise
    unmarked = TorchEngine(inputs=store).generate(request.replace(controls=(
        ControlSpec(request.controls[0].model, request.init_image, 1.0),)))[0]
    assert np.abs(pixels(unmarked.image) - ours).max() > 10


def test_the_promax_union_model_repaints_the_init_image_with_the_mask_black(tiny_sdxl, hyper_lora,
                                                                             union_controlnets, tmp_path):
    """xinsir's ProMax inpainting: the masked pixels black, control type 7 (repaint), which the inpaint
    preprocessor names by itself; the first Union model, which has no such type, is refused saying why."""
    from diffusers import ControlNetUnionModel

    lora = hyper_lora("Hyper-SDXL-1step-lora")
    store = InputImages(tmp_path / "inputs")
    request = inpainting(store, tiny_sdxl, lora, union_controlnets[8])
    (result,) = TorchEngine(inputs=store).generate(request)

    init, mask = init_picture(), mask_picture()
    control = np.array(init)
    control[np.asarray(mask) > 0] = 0
    pipe = reference_pipe("StableDiffusionXLControlNetUnionInpaintPipeline", tiny_sdxl, lora,
                          ControlNetUnionModel.from_pretrained(union_controlnets[8]))
    expected = reference_image(pipe, init, mask, control_image=[Image.fromarray(control)], control_mode=[7],
                               width=SIZE, height=SIZE)
    ours = pixels(result.image)
    assert ours.std() > 5
    assert np.abs(ours - pixels(expected)).max() <= 1

    first = request.replace(controls=(ControlSpec(str(union_controlnets[6]), request.init_image,
                                                  preprocessor="inpaint"),))
    with pytest.raises(InputError, match="knows 6 control types; \"repaint\".*needs the ProMax version"):
        check_controls(first, "sdxl")


def test_an_inpainting_controlnet_needs_the_init_image(tmp_path):
    store = InputImages(tmp_path / "inputs")
    init, other = store.add(png(init_picture())), store.add(png(edges_picture()))
    inpaint = ControlSpec("unused", init, preprocessor="inpaint")
    with pytest.raises(InputError, match="An inpainting ControlNet repaints the init image"):
        GenerationRequest(prompt=PROMPT, base_model="unused", width=SIZE, height=SIZE, controls=(inpaint,))
    with pytest.raises(InputError, match="its picture is the init image"):
        GenerationRequest(prompt=PROMPT, base_model="unused", init_image=other, controls=(inpaint,))
    request = GenerationRequest(prompt=PROMPT, base_model="unused", init_image=init, controls=(inpaint,))
    assert request.controls[0].union_type == "repaint"
    # without a mask nothing is left open: the ControlNet sees the init image as it is
    opened = open_inputs(request, store, SIZE, SIZE)
    assert opened.controls[0] is opened.init


def whole_mask() -> Image.Image:
    mask = Image.new("L", WHOLE, 0)
    mask.paste(255, (96, 30, 130, 62))
    return mask


def test_only_the_masked_area_cuts_the_same_area_out_of_control_pictures(tmp_path):
    """A control picture of the init image's size lies over it pixel for pixel: the area made is cut out of it as
    out of the init image (one of another size is fitted to the init image first)."""
    store = InputImages(tmp_path / "inputs")
    picture = init_picture().resize(WHOLE)
    init = store.add(png(picture))
    request = GenerationRequest(prompt=PROMPT, base_model="unused", init_image=init, mask_image=store.add(
        png(whole_mask())), masked_padding=16, width=SIZE, height=SIZE,
        controls=(ControlSpec("unused", init), ControlSpec("unused", store.add(png(picture.resize((320, 192))))),
                  ControlSpec("unused", init, preprocessor="inpaint")))
    opened = open_inputs(request, store, 512, 512)
    assert opened.overlay.box != (0, 0, *WHOLE)
    assert pixels(opened.controls[0]).tolist() == pixels(opened.init).tolist()
    assert np.abs(pixels(opened.controls[1]) - pixels(opened.init)).mean() < 2  # twice the size, fitted back
    assert opened.controls[2] is opened.init


def test_a_controlnet_with_only_the_masked_area_gives_the_diffusers_image(tiny_sd15, hyper_lora, controlnets,
                                                                          tmp_path):
    """diffusers' ControlNet inpainting with `padding_mask_crop` cuts the control image with the init image."""
    from diffusers import ControlNetModel

    lora = hyper_lora("Hyper-SD15-1step-lora")
    store = InputImages(tmp_path / "inputs")
    picture, mask, edges = init_picture().resize(WHOLE), whole_mask(), edges_picture().resize(WHOLE)
    request = GenerationRequest(prompt=PROMPT, base_model=str(tiny_sd15), loras=(LoraSpec(str(lora)),), steps=4,
                                seed=SEED, init_image=store.add(png(picture)), mask_image=store.add(png(mask)),
                                strength=0.9, masked_padding=8, width=SIZE, height=SIZE,
                                controls=(ControlSpec(str(controlnets["sd15"]), store.add(png(edges)), 0.8),))
    (ours,) = TorchEngine(inputs=store).generate(request)

    pipe = reference_pipe("StableDiffusionControlNetInpaintPipeline", tiny_sd15, lora,
                          ControlNetModel.from_pretrained(controlnets["sd15"]))
    blurred = pipe.mask_processor.blur(mask, blur_factor=4)
    reference = pipe(prompt=PROMPT, image=picture, mask_image=blurred, control_image=edges,
                     controlnet_conditioning_scale=0.8, padding_mask_crop=8, width=SIZE, height=SIZE, strength=0.9,
                     num_inference_steps=4, guidance_scale=0, eta=1.0,
                     generator=torch.Generator("cpu").manual_seed(SEED)).images[0]
    assert ours.image.size == reference.size == WHOLE
    assert np.abs(pixels(ours.image) - pixels(reference)).max() <= 1
    plain = TorchEngine(inputs=store).generate(request.replace(controls=()))[0]
    assert np.abs(pixels(plain.image) - pixels(ours.image)).max() > 10
