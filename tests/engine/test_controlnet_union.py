"""ControlNet Union models (xinsir's controlnet-union-sdxl-1.0 and its ProMax file): one SDXL ControlNet that
follows canny edges, depth, pose, scribbles … as told by each control image's type.

The reference side is diffusers' code for them: the mode's `StableDiffusionXLControlNetUnion…Pipeline` loaded
with `ControlNetUnionModel.from_pretrained`, `control_image=[…]`, `control_mode=[…]`. A tiny Union model is made
from the tiny SDXL UNet (`tiny_models.save_union_controlnet`). Tiny models, fp32, CPU.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.images import InputImages
from hypersd_desktop.core.vocab import ControlType, WeightsKind
from hypersd_desktop.engine import ControlSpec, GenerationRequest, LoraSpec
from hypersd_desktop.engine.inspect import inspect_file, union_control_types
from hypersd_desktop.engine.planning import controlnet_architecture, plan
from hypersd_desktop.engine.torch_engine import TorchEngine
from pictures import SIZE, depth_picture, diffusers_image, edges_picture, init_picture, mask_picture, png

SEED = 31
PROMPT = "a lighthouse on a cliff"
PIPELINES = {"txt2img": "StableDiffusionXLControlNetUnionPipeline",
             "img2img": "StableDiffusionXLControlNetUnionImg2ImgPipeline",
             "inpaint": "StableDiffusionXLControlNetUnionInpaintPipeline"}


@pytest.fixture
def unions(union_controlnets):
    return union_controlnets


def union_image(base, lora, mode, unions, call):
    """The image of diffusers' own Union pipeline for `mode` (`unions`: one folder, or a list for several)."""
    import diffusers
    from diffusers import ControlNetUnionModel, TCDScheduler

    nets = [ControlNetUnionModel.from_pretrained(folder) for folder in unions]
    pipe = getattr(diffusers, PIPELINES[mode]).from_pretrained(base, controlnet=nets[0] if len(nets) == 1 else nets)
    pipe.load_lora_weights(str(lora.parent), weight_name=lora.name)
    pipe.fuse_lora()
    pipe.scheduler = TCDScheduler.from_config(pipe.scheduler.config)
    return diffusers_image(pipe, blur=4 if "mask_image" in call else None, prompt=PROMPT,
                           num_inference_steps=call.pop("steps"), guidance_scale=0, eta=1.0,
                           generator=torch.Generator("cpu").manual_seed(SEED), **call)


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


# id: (mode, steps, strength, [(picture, preprocessor, control type, scale)])
CASES = {
    "txt2img-canny": ("txt2img", 2, None, [("edges", "none", "canny", 0.5)]),  # the model card's SDXL scale
    "img2img-depth": ("img2img", 4, 0.75, [("depth", "none", "depth", 0.8)]),
    "inpaint-scribble": ("inpaint", 4, 0.9, [("drawing", "scribble", None, 1.0)]),  # a scribble is soft edges
    "two-controls": ("txt2img", 2, None, [("edges", "none", "canny", 0.5), ("depth", "none", "depth", 0.7)]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_union_controlnets_give_the_diffusers_image(case, tiny_sdxl, hyper_lora, unions, tmp_path):
    from hypersd_desktop.engine.preprocess import scribble

    mode, steps, strength, controls = CASES[case]
    lora = hyper_lora("Hyper-SDXL-1step-lora")
    store = InputImages(tmp_path / "inputs")
    drawing = Image.new("RGB", (SIZE, SIZE), "white")
    ImageDraw.Draw(drawing).line((6, 56, 32, 6, 58, 56), fill="black", width=3)
    pictures = {"edges": edges_picture(), "depth": depth_picture(), "drawing": drawing}
    seen = {"edges": pictures["edges"], "depth": pictures["depth"], "drawing": scribble(drawing)}
    request = GenerationRequest(prompt=PROMPT, base_model=str(tiny_sdxl), loras=(LoraSpec(str(lora)),), steps=steps,
                                seed=SEED)
    call: dict = {"steps": steps}
    if mode == "txt2img":
        request = request.replace(width=SIZE, height=SIZE)
        call.update(width=SIZE, height=SIZE)
    else:
        request = request.replace(init_image=store.add(png(init_picture())), strength=strength)
        call.update(image=init_picture(), strength=strength)
    if mode == "inpaint":
        request = request.replace(mask_image=store.add(png(mask_picture())), mask_blur=4)
        call.update(mask_image=mask_picture(), width=SIZE, height=SIZE)
    specs = tuple(ControlSpec(str(unions[8]), store.add(png(pictures[name])), scale, preprocessor=preprocessor,
                              control_type=kind) for name, preprocessor, kind, scale in controls)
    request = request.replace(controls=specs)
    types = [ControlType(kind or "softedge").index for _, _, kind, _ in controls]
    scales = [scale for *_, scale in controls]
    call.update(control_image=[seen[name] for name, *_ in controls], control_mode=types,
                controlnet_conditioning_scale=scales[0] if len(scales) == 1 else scales)

    (result,) = TorchEngine(inputs=store).generate(request)
    expected = union_image(tiny_sdxl, lora, mode, [unions[8]] * len(controls), call)
    ours = pixels(result.image)
    assert ours.shape == (SIZE, SIZE, 3) and ours.std() > 5
    assert np.abs(ours - pixels(expected)).max() <= 1
    if case == "txt2img-canny":  # the type is read: the same picture as a depth map steers otherwise
        other = TorchEngine(inputs=store).generate(request.replace(controls=(
            ControlSpec(specs[0].model, specs[0].image, 0.5, control_type="depth"),)))[0]
        assert np.abs(pixels(other.image) - ours).max() > 10


def test_union_files_are_known_and_load_from_any_layout(unions, tiny_sdxl, tmp_path):
    """A folder, its weights file alone or in a folder of its own (the config read off the weights and the base
    UNet), and ProMax's weights beside the first version's config.json (xinsir's repository holds both files) all
    load whole."""
    from safetensors.torch import load_file

    from hypersd_desktop.engine.controlnet_files import load_controlnet

    base_config = json.loads((tiny_sdxl / "unet" / "config.json").read_text())
    weights = unions[8] / "diffusion_pytorch_model.safetensors"
    info = inspect_file(weights)
    assert (info.kind, info.architecture, info.format) == (WeightsKind.CONTROLNET, "sdxl", "union")
    assert controlnet_architecture(weights) == "sdxl"
    assert controlnet_architecture(unions[6]) is None  # the folder is taken (its tiny width names no architecture)
    assert (union_control_types(unions[6]), union_control_types(weights)) == (6, 8)
    mixed = tmp_path / "controlnet-union-sdxl-1.0"
    shutil.copytree(unions[6], mixed)
    shutil.copy(weights, mixed / "diffusion_pytorch_model_promax.safetensors")
    (mixed / "diffusion_pytorch_model.safetensors").unlink()
    alone = shutil.copy(weights, tmp_path / "xinsir-union-promax.safetensors")
    bare = tmp_path / "downloaded"  # a folder with the weights and no config.json
    bare.mkdir()
    shutil.copy(weights, bare / "diffusion_pytorch_model_promax.safetensors")
    assert controlnet_architecture(bare) == "sdxl" and union_control_types(bare) == 8
    expected = load_file(weights)
    for path in (unions[8], alone, mixed, bare):
        model = load_controlnet(path, torch.float32, base_config)
        assert type(model).__name__ == "ControlNetUnionModel" and model.config.num_control_type == 8
        assert model.state_dict().keys() == expected.keys()
        assert all(torch.equal(model.state_dict()[key], value) for key, value in expected.items())
    assert union_control_types(mixed) == 8
    with pytest.raises(InputError, match=r"^controlnet-union-sdxl-1.0 promax is a ControlNet Union model.*"
                                         r"--control MODEL:IMAGE:SCALE:TYPE\)\.$"):
        plan(GenerationRequest(prompt="", base_model=str(tiny_sdxl), controls=(ControlSpec(
            str(mixed / "diffusion_pytorch_model_promax.safetensors"), "0" * 64),)), "sdxl")


def test_union_requests_say_what_is_missing(unions, controlnets, tiny_sdxl, tmp_path):
    store = InputImages(tmp_path / "inputs")
    edges = store.add(png(edges_picture()))
    request = GenerationRequest(prompt=PROMPT, base_model=str(tiny_sdxl), width=SIZE, height=SIZE, steps=2)

    def planned(*controls):
        return plan(request.replace(controls=controls), "sdxl")

    with pytest.raises(InputError, match=r"is a ControlNet Union model.*openpose, depth, softedge, canny, normal, "
                                         r"segment; on the command line"):
        planned(ControlSpec(str(unions[6]), edges))
    with pytest.raises(InputError, match=r"knows 6 control types; \"tile\" \(tile\) needs the ProMax version"):
        planned(ControlSpec(str(unions[6]), edges, control_type="tile"))
    with pytest.raises(InputError, match="cannot steer one image together"):
        planned(ControlSpec(str(unions[6]), edges, control_type="canny"), ControlSpec(str(controlnets["sdxl"]), edges))
    with pytest.raises(InputError, match="Unknown control type 'lineart'"):
        ControlSpec(str(unions[6]), edges, control_type="lineart")
    assert planned(ControlSpec(str(unions[8]), edges, control_type="tile")).steps == 2
    assert planned(ControlSpec(str(unions[6]), edges, preprocessor="scribble")).steps == 2
    assert planned(ControlSpec(str(controlnets["sdxl"]), edges)).steps == 2  # a single-kind one needs no type
    told = [w for w in planned(ControlSpec(str(controlnets["sdxl"]), edges, control_type="depth")).warnings
            if "control type" in w]
    assert told == ['The control type "depth" was ignored: sdxl is a single-kind ControlNet, which follows what it '
                    'was trained on; types are for ControlNet Union models.']
    assert not [w for w in planned(ControlSpec(str(unions[6]), edges, control_type="depth")).warnings
                if "control type" in w]


def test_a_damaged_union_file_says_so(unions, tiny_sdxl, tmp_path):
    from safetensors.torch import load_file, save_file

    from hypersd_desktop.core.errors import ModelFormatError
    from hypersd_desktop.engine.controlnet_files import load_controlnet

    state = load_file(unions[6] / "diffusion_pytorch_model.safetensors")
    state["task_embedding"] = state["task_embedding"].flatten()
    damaged = tmp_path / "union-damaged.safetensors"
    save_file(state, str(damaged))
    base_config = json.loads((tiny_sdxl / "unet" / "config.json").read_text())
    with pytest.raises(ModelFormatError, match="task_embedding is .* the file is damaged"):
        load_controlnet(damaged, torch.float32, base_config)
    assert union_control_types(damaged) is None
