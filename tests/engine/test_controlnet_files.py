"""ControlNets as people have them: diffusers folders, bare diffusers files and original-layout files.

The files are the tiny ControlNets of the image-mode tests written in each real layout: the original one
is lllyasviel's key naming (`input_blocks`, `zero_convs`, `input_hint_block`, with and without the
`control_model.` prefix, fp16 as the v1.1 safetensors conversions are). Each must load to the very same
weights, and give the same image as the diffusers folder it came from. The configs read off the weights
are checked against diffusers' own configs, full size, on the meta device.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from hypersd_desktop.core.errors import InputError, ModelFormatError
from hypersd_desktop.core.images import InputImages
from hypersd_desktop.core.vocab import WeightsKind
from hypersd_desktop.engine import ControlSpec, GenerationRequest, LoraSpec
from hypersd_desktop.engine.controlnet_files import config_from_weights, load_controlnet
from hypersd_desktop.engine.inspect import inspect_file
from hypersd_desktop.engine.loading import bundled_config, part_config
from hypersd_desktop.engine.planning import check_controlnet
from hypersd_desktop.engine.torch_engine import TorchEngine
from pictures import SIZE, edges_picture, png


def _layouts(folder, tmp_path, architecture):
    """The ControlNet in `folder` written as the single files people have: name -> (path, dtype of the file)."""
    import json

    import ldm_format

    state = load_file(folder / "diffusion_pytorch_model.safetensors")
    layers = json.loads((folder / "config.json").read_text())["layers_per_block"]
    half = {key: tensor.half() for key, tensor in state.items()}
    files = {
        "diffusers-keys, no config": (state, "diffusers_xl_canny_full.safetensors"),
        "original, control_model. prefix": (ldm_format.convert_controlnet(state, layers),
                                            "control_sd15_canny.safetensors"),
        "original, bare, fp16": (ldm_format.convert_controlnet(half, layers, prefix=""),
                                 "control_v11p_sd15_canny_fp16.safetensors"),
    }
    paths = {}
    for name, (tensors, filename) in files.items():
        (tmp_path / architecture / name).mkdir(parents=True)
        paths[name] = tmp_path / architecture / name / filename
        save_file(tensors, paths[name])
    return paths


@pytest.mark.parametrize("architecture", ["sd15", "sdxl"])
def test_single_file_controlnets_load_to_the_same_weights(architecture, controlnets, tiny_sd15, tiny_sdxl, tmp_path):
    base = tiny_sdxl if architecture == "sdxl" else tiny_sd15
    expected = load_file(controlnets[architecture] / "diffusion_pytorch_model.safetensors")
    reference = load_controlnet(controlnets[architecture], torch.float32)
    for name, path in _layouts(controlnets[architecture], tmp_path, architecture).items():
        info = inspect_file(path)
        assert (info.kind, info.architecture) == (WeightsKind.CONTROLNET, architecture), name
        assert info.format == ("ldm" if name.startswith("original") else "diffusers"), name
        model = load_controlnet(path, torch.float32, part_config(base, None, architecture, "unet"))
        state = model.state_dict()
        assert state.keys() == expected.keys(), name
        for key, tensor in expected.items():
            wanted = tensor.half().float() if "fp16" in name else tensor
            assert torch.equal(state[key], wanted), (name, key)
        for field in ("attention_head_dim", "down_block_types", "mid_block_type",
                      "use_linear_projection", "conditioning_embedding_out_channels", "addition_embed_type"):
            assert list(np.atleast_1d(model.config[field])) == list(np.atleast_1d(reference.config[field])), field


def test_an_original_layout_controlnet_gives_the_folder_s_image(controlnets, tiny_sd15, hyper_lora, tmp_path):
    store = InputImages(tmp_path / "inputs")
    control = store.add(png(edges_picture()))
    request = GenerationRequest(prompt="a lighthouse", base_model=str(tiny_sd15), steps=1, seed=5, width=SIZE,
                                height=SIZE, loras=(LoraSpec(str(hyper_lora("Hyper-SD15-1step-lora"))),))
    path = _layouts(controlnets["sd15"], tmp_path, "sd15")["original, control_model. prefix"]
    engine = TorchEngine(inputs=store)
    images = [np.asarray(engine.generate(request.replace(controls=(ControlSpec(str(model), control, 1.0),)))[0].image,
                         dtype=np.int16) for model in (controlnets["sd15"], path)]
    plain = np.asarray(engine.generate(request)[0].image, dtype=np.int16)
    assert np.array_equal(images[0], images[1])
    assert np.abs(images[0] - plain).max() > 10  # the ControlNet was used


def _meta_controlnet(config: dict):
    from diffusers import ControlNetModel

    with torch.device("meta"):
        return ControlNetModel.from_config(config)


# The published full-size layouts: SD1.5 (control_v11p_sd15_*), SDXL (controlnet-canny-sdxl-1.0), and the
# smaller SDXL ControlNets (-mid: no transformer blocks in the middle resolution; -small: no attention there).
FULL_SIZE = {
    "sd15": ("sd15", {}),
    "sdxl": ("sdxl", {}),
    "sdxl-mid": ("sdxl", {"transformer_layers_per_block": [0, 0, 1]}),
    "sdxl-small": ("sdxl", {"down_block_types": ["DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"],
                            "transformer_layers_per_block": [1, 1, 1]}),
}


@pytest.mark.parametrize("name", list(FULL_SIZE))
def test_configs_read_off_full_size_weights_build_the_same_controlnet(name):
    import json

    from diffusers import ControlNetModel, UNet2DConditionModel

    architecture, changes = FULL_SIZE[name]
    unet = json.loads((bundled_config(architecture) / "unet" / "config.json").read_text())
    with torch.device("meta"):
        published = ControlNetModel.from_unet(UNet2DConditionModel.from_config(unet), load_weights_from_unet=False)
    config = dict(published.config) | changes
    original = _meta_controlnet(config)
    shapes = {key: tuple(tensor.shape) for key, tensor in original.state_dict().items()}
    derived = config_from_weights(original.state_dict(), unet)
    rebuilt = _meta_controlnet(derived)
    assert {key: tuple(tensor.shape) for key, tensor in rebuilt.state_dict().items()} == shapes
    for field in ("attention_head_dim", "cross_attention_dim", "use_linear_projection", "addition_embed_type",
                  "projection_class_embeddings_input_dim", "down_block_types", "block_out_channels"):
        assert list(np.atleast_1d(rebuilt.config[field])) == list(np.atleast_1d(config[field])), field


def test_files_that_are_no_controlnet_this_app_can_run_say_so(controlnets, tiny_sd15, tmp_path):
    import ldm_format

    state = load_file(controlnets["sd15"] / "diffusion_pytorch_model.safetensors")
    original = ldm_format.convert_controlnet(state, 1, prefix="")
    damaged = tmp_path / "damaged.safetensors"
    save_file({key: value for key, value in original.items() if not key.startswith("zero_convs.1.")}, damaged)
    with pytest.raises(ModelFormatError, match="damaged"):
        load_controlnet(damaged, torch.float32, part_config(tiny_sd15, None, "sd15", "unet"))
    sd21 = tmp_path / "controlnet-sd21-canny.safetensors"  # an SD2.1 ControlNet: 1024-wide text
    save_file({"input_hint_block.0.weight": torch.zeros(16, 3, 3, 3),
               "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": torch.zeros(320, 1024)}, sd21)
    assert inspect_file(sd21).kind == WeightsKind.CONTROLNET and inspect_file(sd21).architecture is None
    with pytest.raises(InputError, match="is a ControlNet for SD2, which this app does not run"):
        check_controlnet(sd21, "sd15")
    sd21_folder = tmp_path / "sd21-folder"
    sd21_folder.mkdir()
    (sd21_folder / "config.json").write_text(json.dumps({"_class_name": "ControlNetModel", "cross_attention_dim": 1024}))
    with pytest.raises(InputError, match="is a ControlNet for SD2, which this app does not run"):
        check_controlnet(sd21_folder, "sd15")
    lone = tmp_path / "alone" / "diffusion_pytorch_model.safetensors"
    lone.parent.mkdir()
    save_file(state, lone)
    with pytest.raises(ModelFormatError, match="no config.json"):
        load_controlnet(lone, torch.float32)


def test_a_lone_controlnet_file_is_kept_per_base_model_config(controlnets, tiny_sd15, tmp_path):
    """What a lone file's config takes from the base model (head counts, say) differs between base models: one
    loaded for the first base model is not reused for a second with other heads."""
    from hypersd_desktop.engine.modes import ControlNets

    path = _layouts(controlnets["sd15"], tmp_path, "sd15")["original, bare, fp16"]
    base = part_config(tiny_sd15, None, "sd15", "unet")
    other_heads = base | {"attention_head_dim": 4}
    assert other_heads["attention_head_dim"] != base["attention_head_dim"]
    cache = ControlNets()
    [first] = cache.get([str(path)], "cpu", torch.float32, base)
    assert cache.get([str(path)], "cpu", torch.float32, dict(base)) == [first]  # the same config: kept
    [second] = cache.get([str(path)], "cpu", torch.float32, other_heads)
    assert second is not first
    assert list(np.atleast_1d(second.config["attention_head_dim"])) == [4]
