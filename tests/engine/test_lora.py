"""LoRA fusing: the exact update, stacking with weights, unfusing, and both key styles."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.engine.lora import apply_layers, load_lora_layers


@pytest.fixture
def unet(tiny_sd15):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_pretrained(tiny_sd15, subfolder="unet")


def expected_delta(state, base: str, module) -> torch.Tensor:
    down, up = state[f"{base}.lora_down.weight"], state[f"{base}.lora_up.weight"]
    rank = down.shape[0]
    alpha = float(state[f"{base}.alpha"])
    if down.dim() == 2:
        return alpha / rank * (up @ down)
    return alpha / rank * torch.einsum("or,rikl->oikl", up[:, :, 0, 0], down)


def test_fusing_adds_scale_alpha_over_rank_up_down(unet, hyper_lora):
    path = hyper_lora("Hyper-SD15-2steps-lora")
    state = load_file(str(path))
    before = {name: p.detach().clone() for name, p in unet.named_parameters()}
    components = {"unet": unet}
    layers, unmatched = load_lora_layers(path, components, dict(unet.config))
    assert unmatched == 0 and len(layers) == len(state) // 3

    apply_layers(components, layers, weight=0.7)

    checked = 0
    for name, module in unet.named_modules():
        key = f"lora_unet_{name.replace('.', '_')}"
        if f"{key}.lora_down.weight" in state:
            delta = expected_delta(state, key, module)
            torch.testing.assert_close(module.weight, before[f"{name}.weight"] + 0.7 * delta, rtol=1e-5, atol=1e-6)
            checked += 1
    assert checked == len(layers)
    assert any(state[k].dim() == 4 for k in state if k.endswith("lora_down.weight")), "conv layers are covered"


def test_stacked_loras_add_and_unfuse_restores(unet, hyper_lora, tiny_root):
    first = hyper_lora("Hyper-SD15-4steps-lora", seed=11)
    second = hyper_lora("Hyper-SD15-8steps-lora", seed=12)
    components = {"unet": unet}
    before = {name: p.detach().clone() for name, p in unet.named_parameters()}
    layers_1, _ = load_lora_layers(first, components, dict(unet.config))
    layers_2, _ = load_lora_layers(second, components, dict(unet.config))
    apply_layers(components, layers_1, 1.0)
    apply_layers(components, layers_2, 0.5)

    s1, s2 = load_file(str(first)), load_file(str(second))
    module_name = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k"
    key = "lora_unet_" + module_name.replace(".", "_")
    module = unet.get_submodule(module_name)
    want = before[f"{module_name}.weight"] + expected_delta(s1, key, module) + 0.5 * expected_delta(s2, key, module)
    torch.testing.assert_close(module.weight, want, rtol=1e-5, atol=1e-6)

    apply_layers(components, layers_2, 0.5, sign=-1)
    apply_layers(components, layers_1, 1.0, sign=-1)
    for name, parameter in unet.named_parameters():
        torch.testing.assert_close(parameter, before[name], rtol=0, atol=1e-6)


def test_peft_key_style_fuses_like_kohya(unet, hyper_lora, tmp_path):
    kohya = hyper_lora("Hyper-SD15-2steps-lora")
    state = load_file(str(kohya))
    lookup = {name.replace(".", "_"): name for name, _ in unet.named_modules()}
    peft = {}
    for key, tensor in state.items():
        stem, _, suffix = key.partition(".")
        module = lookup[stem.removeprefix("lora_unet_")]
        target = {"lora_down": "lora_A.weight", "lora_up": "lora_B.weight", "alpha": "alpha"}[suffix.split(".")[0]]
        peft[f"unet.{module}.{target}"] = tensor
    peft_path = tmp_path / "style-peft.safetensors"
    save_file(peft, str(peft_path))

    twin = type(unet).from_config(unet.config)
    twin.load_state_dict(unet.state_dict())
    for model, path in ((unet, kohya), (twin, peft_path)):
        layers, unmatched = load_lora_layers(path, {"unet": model}, dict(model.config))
        assert unmatched == 0
        apply_layers({"unet": model}, layers, 1.0)
    for (name, a), (_, b) in zip(unet.named_parameters(), twin.named_parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_text_encoder_keys_are_fused(tiny_sd15, tmp_path):
    from diffusers import StableDiffusionPipeline

    import tiny_models

    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd15)
    path = tiny_models.kohya_lora(pipe.unet, tmp_path / "style.safetensors", text_encoder=pipe.text_encoder)
    components = {"unet": pipe.unet, "text_encoder": pipe.text_encoder}
    q_proj = pipe.text_encoder.text_model.encoder.layers[0].self_attn.q_proj
    before = q_proj.weight.detach().clone()
    layers, unmatched = load_lora_layers(path, components, dict(pipe.unet.config))
    apply_layers(components, layers, 1.0)
    assert unmatched == 0
    assert any(layer.component == "text_encoder" for layer in layers)
    assert not torch.equal(q_proj.weight, before)


def test_a_lora_for_other_layers_is_refused(unet, hyper_lora):
    sdxl_lora = hyper_lora("Hyper-SDXL-2steps-lora")
    with pytest.raises(InputError, match="no LoRA layers that match"):
        load_lora_layers(sdxl_lora, {"text_encoder": torch.nn.Linear(2, 2)}, dict(unet.config))


def test_a_peft_dora_lora_fuses_as_peft_merges_it(tiny_sd15, tmp_path):
    """A DoRA LoRA saved by diffusers from a PEFT adapter (`lora_magnitude_vector`), linear and convolution
    layers, against PEFT's own merge of it. Its alphas (2, and 8 for the convolutions, at rank 4) are in no
    tensor: diffusers writes the adapter's config into the file's header."""
    import copy

    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig
    from peft.tuners.lora import LoraLayer
    from peft.utils import get_peft_model_state_dict

    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd15)
    trained = copy.deepcopy(pipe.unet)
    trained.add_adapter(LoraConfig(r=4, lora_alpha=2, alpha_pattern={"conv1": 8}, use_dora=True,
                                   target_modules=["to_k", "to_v", "to_out.0", "conv1"], init_lora_weights="gaussian"))
    generator = torch.Generator().manual_seed(9)
    with torch.no_grad():
        for name, parameter in trained.named_parameters():
            if "lora_" in name:
                parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.1)
    StableDiffusionPipeline.save_lora_weights(tmp_path, unet_lora_layers=get_peft_model_state_dict(trained),
                                              unet_lora_adapter_metadata=trained.peft_config["default"].to_dict())
    path = tmp_path / "pytorch_lora_weights.safetensors"

    unet = copy.deepcopy(pipe.unet)
    layers, unmatched = load_lora_layers(path, {"unet": unet}, dict(unet.config))
    assert unmatched == 0 and all(layer.magnitude is not None for layer in layers)
    apply_layers({"unet": unet}, layers, 1.0)
    merged = 0
    for name, module in trained.named_modules():
        if isinstance(module, LoraLayer):
            module.merge()
            ours = unet.get_submodule(name).weight
            torch.testing.assert_close(ours, module.get_base_layer().weight, rtol=1e-4, atol=1e-5, msg=name)
            merged += 1
    assert merged == len(layers) and any(layer.parts["up"].dim() == 4 for layer in layers)


def test_an_sdxl_lora_with_original_block_names_fuses_as_diffusers_loads_it(tiny_sdxl, tmp_path):
    """kohya's SDXL trainer names layers by the original SD blocks (`lora_unet_input_blocks_4_1_…`, resnets'
    `in_layers_2`, the downsamplers' `op`): every layer is matched, and fused as diffusers' own loader fuses it."""
    import copy

    from diffusers import StableDiffusionXLPipeline

    import ldm_format
    import tiny_models

    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl)
    named = tiny_models.kohya_lora(pipe.unet, tmp_path / "named.safetensors", text_encoder=pipe.text_encoder,
                                   te_prefix="lora_te1")
    original = tmp_path / "original.safetensors"
    save_file(ldm_format.kohya_original_names(load_file(str(named)), pipe.unet), str(original))
    assert any("_input_blocks_" in key and "_in_layers_2." in key for key in load_file(str(original)))

    unet, text_encoder = copy.deepcopy(pipe.unet), copy.deepcopy(pipe.text_encoder)
    components = {"unet": unet, "text_encoder": text_encoder}
    layers, unmatched = load_lora_layers(original, components, dict(unet.config))
    assert unmatched == 0
    apply_layers(components, layers, 1.0)

    pipe.load_lora_weights(str(tmp_path), weight_name=original.name)
    pipe.fuse_lora()
    checked = 0
    for layer in layers:
        theirs = getattr(pipe, layer.component).get_submodule(layer.module)
        theirs = theirs.get_base_layer() if hasattr(theirs, "get_base_layer") else theirs
        ours = components[layer.component].get_submodule(layer.module).weight
        torch.testing.assert_close(ours, theirs.weight, rtol=1e-5, atol=1e-6, msg=layer.module)
        checked += 1
    assert checked == len(load_file(str(original))) // 3
    assert {layer.module.split(".")[0] for layer in layers} >= {"down_blocks", "mid_block", "up_blocks"}


def test_a_lora_in_comfyuis_key_style_fuses_as_the_kohya_file(tiny_sdxl, tmp_path):
    """ComfyUI's LoRA save node writes `diffusion_model.<original path>.lora_down.weight` and
    `text_encoders.clip_l.transformer.…`: the same layers as the kohya file, fused the same."""
    import copy

    from diffusers import StableDiffusionXLPipeline

    import ldm_format
    import tiny_models
    from hypersd_desktop.engine.inspect import inspect_file

    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl)
    kohya = tiny_models.kohya_lora(pipe.unet, tmp_path / "kohya.safetensors", text_encoder=pipe.text_encoder,
                                   te_prefix="lora_te1")
    comfyui = tmp_path / "ComfyUI_extracted_lora_00001_.safetensors"
    save_file(ldm_format.kohya_comfyui_names(load_file(str(kohya)), pipe.unet,
                                             {"lora_te1_": (pipe.text_encoder, "clip_l")}), str(comfyui))
    keys = load_file(str(comfyui))
    assert any(key.startswith("diffusion_model.input_blocks.") and ".in_layers.2." in key for key in keys)
    assert any(key.startswith("text_encoders.clip_l.transformer.text_model.") for key in keys)
    assert inspect_file(comfyui).kind == "lora"

    fused = []
    for path in (kohya, comfyui):
        components = {"unet": copy.deepcopy(pipe.unet), "text_encoder": copy.deepcopy(pipe.text_encoder)}
        layers, unmatched = load_lora_layers(path, components, dict(pipe.unet.config))
        assert unmatched == 0 and len(layers) == len(keys) // 3
        apply_layers(components, layers, 0.8)
        fused.append(components)
    for component in ("unet", "text_encoder"):
        for (name, a), (_, b) in zip(fused[0][component].named_parameters(), fused[1][component].named_parameters()):
            torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_a_2023_diffusers_lora_with_text_encoder_layers_fuses_as_diffusers_loads_it(tiny_sd15, tmp_path):
    """diffusers' training scripts of 2023 (the SDXL DreamBooth LoRA's `pytorch_lora_weights`, many on the hub)
    wrote the UNet's layers as `….lora.down.weight` and the text encoder's as `….lora_linear_layer.down.weight`:
    both are fused, as diffusers' own loader fuses them (the text encoder's were dropped without a word)."""
    import copy

    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd15)
    generator = torch.Generator().manual_seed(5)
    state = {}
    for prefix, model, ends, part in (("unet", pipe.unet, ("attn1.to_q", "attn2.to_v", "attn1.to_out.0"), "lora"),
                                      ("text_encoder", pipe.text_encoder, ("q_proj", "v_proj", "out_proj"),
                                       "lora_linear_layer")):
        for name, module in model.named_modules():
            if name.endswith(ends):
                state[f"{prefix}.{name}.{part}.down.weight"] = torch.randn(4, module.in_features, generator=generator)
                state[f"{prefix}.{name}.{part}.up.weight"] = torch.randn(module.out_features, 4,
                                                                          generator=generator) * 0.1
    path = tmp_path / "pytorch_lora_weights.safetensors"
    save_file(state, str(path))

    components = {"unet": copy.deepcopy(pipe.unet), "text_encoder": copy.deepcopy(pipe.text_encoder)}
    layers, unmatched = load_lora_layers(path, components, dict(pipe.unet.config))
    assert unmatched == 0 and len(layers) == len(state) // 2
    assert {layer.component for layer in layers} == {"unet", "text_encoder"}
    apply_layers(components, layers, 1.0)

    pipe.load_lora_weights(str(tmp_path), weight_name=path.name)
    pipe.fuse_lora()
    for layer in layers:
        theirs = getattr(pipe, layer.component).get_submodule(layer.module)
        theirs = theirs.get_base_layer() if hasattr(theirs, "get_base_layer") else theirs
        ours = components[layer.component].get_submodule(layer.module).weight
        torch.testing.assert_close(ours, theirs.weight, rtol=1e-5, atol=1e-6, msg=layer.module)


def test_layers_in_a_key_style_not_read_are_counted_for_the_warning(unet, tmp_path):
    """Tensors of a layer update the loader does not read (here PEFT's `lora_B.bias`, which `lora_bias=True`
    adapters add) are not dropped without a word: they count as skipped, which the engine warns of."""
    generator = torch.Generator().manual_seed(2)
    state = {}
    for name, module in unet.named_modules():
        if name.endswith(("attn1.to_q", "attn2.to_k")):
            state[f"unet.{name}.lora_A.weight"] = torch.randn(4, module.in_features, generator=generator)
            state[f"unet.{name}.lora_B.weight"] = torch.randn(module.out_features, 4, generator=generator)
            if name.endswith("to_q"):
                state[f"unet.{name}.lora_B.bias"] = torch.randn(module.out_features, generator=generator)
    path = tmp_path / "bias.safetensors"
    save_file(state, str(path))
    layers, unmatched = load_lora_layers(path, {"unet": unet}, dict(unet.config))
    biased = sum(key.endswith("lora_B.bias") for key in state)
    assert biased > 0 and len(layers) == (len(state) - biased) // 2 and unmatched == biased
