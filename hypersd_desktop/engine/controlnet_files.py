"""ControlNet weights as people have them, loaded offline from safetensors.

Four layouts are met in the wild:

- a diffusers folder (`config.json` + `diffusion_pytorch_model[.fp16].safetensors`), as the
  Models tab downloads it;
- a single file with diffusers key names and no config beside it (`diffusers_xl_canny_full.safetensors`
  of the sd_control_collection, or a downloaded weights file renamed);
- a single file in the original ControlNet layout (`control_v11p_sd15_canny_fp16.safetensors`,
  with or without the `control_model.` prefix), as AUTOMATIC1111 and ComfyUI folders hold them;
- a Control-LoRA (Stability's `control-lora-canny-rank128.safetensors`): the original layout with the
  marker tensor `lora_controlnet`, storing the part copied from the UNet as low-rank changes to it
  (`load_control_lora`).

A ControlNet Union model (xinsir's controlnet-union-sdxl-1.0, its ProMax file) comes in diffusers' layout
with more parts (`task_embedding`, `transformer_layes`, `spatial_ch_projs`) and is built as diffusers'
`ControlNetUnionModel`; how many control types it knows is read off its weights.

A config is never fetched. When the file brings none, it is read off the weights: the block
layout, transformer depths, conditioning embedding and projections come from the tensor names
and shapes; what weights cannot tell (attention head counts, time embedding details) comes from
the base model's UNet, which a ControlNet is trained from.
"""

from __future__ import annotations

import json
import re
from functools import partial
from pathlib import Path

import torch

from hypersd_desktop.core.errors import ModelFormatError
from hypersd_desktop.engine.devices import built_with
from hypersd_desktop.engine.inspect import CONTROLNET_CLASSES, controlnet_weights

#: A diffusers ControlNet config's keys copied from the base UNet's config (as `ControlNetModel.from_unet`).
CONFIG_FROM_UNET = (
    "flip_sin_to_cos", "freq_shift", "only_cross_attention", "downsample_padding", "mid_block_scale_factor",
    "act_fn", "norm_num_groups", "norm_eps", "attention_head_dim", "num_attention_heads", "class_embed_type",
    "num_class_embeds", "upcast_attention", "resnet_time_scale_shift", "addition_embed_type",
    "addition_time_embed_dim", "encoder_hid_dim", "encoder_hid_dim_type",
)


# The tensors of a Control-LoRA's layers: a low-rank update's halves, whole weights and biases.
CONTROL_LORA_PARTS = ("up", "down", "weight", "bias")
LATENT_CHANNELS = 4  # what a text-to-image UNet, and every ControlNet, takes


def load_controlnet(path: Path, dtype: torch.dtype, base_unet_config: dict | None = None, unet=None):
    """A ControlNet from a diffusers folder or one safetensors file, in `dtype`, on the CPU.

    `base_unet_config` is the config of the base model's UNet; it is needed only for a file that brings no
    config of its own. `unet` is the base model's UNet, which a Control-LoRA is a change to."""
    from diffusers import ControlNetModel, ControlNetUnionModel
    from safetensors.torch import load_file

    weights = controlnet_weights(path)
    state = load_file(weights)
    if "lora_controlnet" in state:
        if unet is None:
            raise ModelFormatError(f"{weights.name} is a Control-LoRA: it loads with a base model.")
        return load_control_lora(weights.name, state, unet, dtype).eval()
    diffusers_layout = any(key.startswith("controlnet_cond_embedding.") for key in state)
    config = _folder_config(weights.parent) if diffusers_layout else None
    if not diffusers_layout:
        state = from_original_layout(state)
    if config is None:
        if base_unet_config is None:
            raise ModelFormatError(f"{weights.name} has no config.json beside it; load it with a base model.")
        config = config_from_weights(state, base_unet_config, global_pool="shuffle" in weights.stem.lower())
    union = "task_embedding" in state
    if union:  # the types it knows are its weights' (a ProMax file beside the first version's config.json has 8)
        config = {**config, "_class_name": "ControlNetUnionModel", **union_config(state)}
        config.pop("mid_block_type", None)
    try:
        model, misfit = built_with(partial((ControlNetUnionModel if union else ControlNetModel).from_config, config),
                                   state, dtype)
    except (TypeError, ValueError, KeyError, IndexError) as error:
        raise ModelFormatError(f"{weights.name} is not a ControlNet this app can build ({error}).") from error
    if model is None:
        raise ModelFormatError(f"{weights.name} does not fit a ControlNet of its kind ({misfit.counts()}); it may be "
                               "damaged, or for a base model other than SD1.5 and SDXL.")
    return model.eval()


def _folder_config(folder: Path) -> dict | None:
    """The ControlNet config in `folder`'s config.json; None when there is none (or it is another model's)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return config if isinstance(config, dict) and config.get("_class_name") in CONTROLNET_CLASSES else None


def from_original_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original ControlNet key names (`input_blocks`, `zero_convs`, `input_hint_block`, …) to diffusers'.

    diffusers' converter does the blocks. It assumes the published conditioning embedding (conv_out at
    `input_hint_block.14`) and skips SDXL's `label_emb`, so those two are renamed here."""
    from diffusers.loaders.single_file_utils import convert_controlnet_checkpoint

    state = {key.removeprefix("control_model."): tensor for key, tensor in state.items()}
    names = _hint_names(state)
    renamed: dict[str, torch.Tensor] = {}
    label = {"label_emb.0.0": "add_embedding.linear_1", "label_emb.0.2": "add_embedding.linear_2"}
    rest = {}
    for key, tensor in state.items():
        parts = key.split(".")
        if parts[0] == "input_hint_block":
            renamed[f"controlnet_cond_embedding.{names[int(parts[1])]}.{parts[2]}"] = tensor
        elif key.rsplit(".", 1)[0] in label:
            renamed[f"{label[key.rsplit('.', 1)[0]]}.{parts[-1]}"] = tensor
        else:
            rest[key] = tensor
    inputs = {int(key.split(".")[1]) for key in rest if key.startswith("input_blocks.")}
    downsamplers = {key for key in rest if re.fullmatch(r"input_blocks\.\d+\.0\.op\.weight", key)}
    layers_per_block = (len(inputs) - 1 - len(downsamplers)) // (len(downsamplers) + 1)
    converted = convert_controlnet_checkpoint(rest, {"layers_per_block": layers_per_block})
    return {key: tensor for key, tensor in converted.items() if tensor is not None} | renamed


def _hint_names(state: dict[str, torch.Tensor]) -> dict[int, str]:
    """The conditioning embedding's layers (`input_hint_block.<index>`, convolutions between activations) by
    index: their names under diffusers' `controlnet_cond_embedding`."""
    hint = sorted({int(key.split(".")[1]) for key in state if re.match(r"input_hint_block\.\d+\.", key)})
    if len(hint) < 2:
        raise ModelFormatError("The ControlNet has no conditioning embedding (input_hint_block): it is damaged or "
                               "not a ControlNet.")
    return {hint[0]: "conv_in", hint[-1]: "conv_out"} | {index: f"blocks.{n}" for n, index in enumerate(hint[1:-1])}


def load_control_lora(name: str, state: dict[str, torch.Tensor], unet, dtype: torch.dtype) -> torch.nn.Module:
    """A ControlNet from a Control-LoRA (Stability's `control-lora-canny-rank128.safetensors`) and the base UNet.

    A Control-LoRA stores a ControlNet as a change to the UNet it was trained from. The ControlNet's own parts
    (`input_hint_block`, `zero_convs`, `middle_block_out`) are whole; the part a ControlNet copies from the UNet
    (`input_blocks`, `middle_block`, the time and size embeddings) holds, per convolution or linear layer, a
    low-rank update (`<layer>.up`, `<layer>.down`, no alpha) added to the UNet's weight, and whole biases and
    norms. The copy is made of `unet` as it runs, with the LoRAs fused into it, as ComfyUI copies the patched
    model for a Control-LoRA.

    It is built where `unet` is, in `dtype`, with no weights made first (each is the UNet's or the file's), and
    each update is added in fp32. Full size SDXL on the CPU in bf16 (bench/loading_parts.py): 2.5–4.2 s, against
    8.6 s when it was built in fp32 from random weights and then converted."""
    from diffusers import ControlNetModel

    from hypersd_desktop.engine.lora import original_module_names

    if unet.config.in_channels != LATENT_CHANNELS:  # the ControlNet would take the mask and masked image too
        raise ModelFormatError(f"{name} is a Control-LoRA, which is made from a text-to-image model's UNet; this base "
                               f"model is an inpainting model (its UNet takes {unet.config.in_channels} channels). "
                               "Use a whole ControlNet with it, or a text-to-image base model.")
    hint = _hint_names(state)
    ordered = sorted(hint)
    first = state.get(f"input_hint_block.{ordered[0]}.weight")
    if first is None or first.dim() != 4:
        raise ModelFormatError(f"{name}'s conditioning embedding has no first convolution: the file is damaged.")
    # the embedding's widths: its first convolution's, then each stride-2 one's (every other block)
    widths = [first.shape[0], *(state[f"input_hint_block.{index}.weight"].shape[0]
                                for index in ordered[1:-1][1::2] if f"input_hint_block.{index}.weight" in state)]
    try:
        with torch.device("meta"):  # no weights are made: every one comes from the UNet or the file
            controlnet = ControlNetModel.from_unet(unet, conditioning_channels=first.shape[1],
                                                   conditioning_embedding_out_channels=tuple(widths),
                                                   load_weights_from_unet=False)
    except (TypeError, ValueError) as error:
        raise ModelFormatError(f"{name} is not a Control-LoRA this app can build ({error}).") from error
    controlnet = controlnet.to(dtype=dtype).to_empty(device=next(unet.parameters()).device)
    names = set(controlnet.state_dict())
    with torch.no_grad():
        from_unet, _ = controlnet.load_state_dict({key: tensor for key, tensor in unet.state_dict().items()
                                                   if key in names}, strict=False)  # returns what it lacked
    own = {f"input_hint_block.{index}": f"controlnet_cond_embedding.{part}" for index, part in hint.items()}
    own |= {f"zero_convs.{n}.0": f"controlnet_down_blocks.{n}" for n in range(len(controlnet.controlnet_down_blocks))}
    own["middle_block_out.0"] = "controlnet_mid_block"
    copied = original_module_names(controlnet, dict(unet.config))
    layers: dict[str, dict[str, torch.Tensor]] = {}
    unknown = []
    for key, tensor in state.items():
        module, _, part = key.rpartition(".")
        if part not in CONTROL_LORA_PARTS or "__" in key:  # the marker `lora_controlnet`; ComfyUI reads only these
            continue
        target = own.get(module) or copied.get(module.replace(".", "_"))
        if target is None:
            unknown.append(key)
        else:
            layers.setdefault(target, {})[part] = tensor
    modules = dict(controlnet.named_modules())
    misfits = [*unknown, *(f"{target}.{part}" for target, tensors in layers.items() for part in
                           _apply_control_lora_layer(modules[target], tensors))]
    unset = set(from_unet) - {f"{target}.{part}" for target, tensors in layers.items() for part in tensors}
    if misfits or unset:
        raise ModelFormatError(f"{name} does not fit this base model's UNet as a Control-LoRA ({len(misfits)} weights "
                               f"that fit nothing, {len(unset)} missing); it may be damaged, or for "
                               "another base model.")
    return controlnet


def _apply_control_lora_layer(module: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> list[str]:
    """Write one layer's tensors of a Control-LoRA into `module`: whole weights, biases and norms copied, then the
    update `up · down` added to its weight (to the file's own weight where it has one, as ComfyUI adds it).
    Returns the parts that do not fit (an unknown name, another shape)."""
    misfits = []
    up, down = tensors.get("up"), tensors.get("down")
    with torch.no_grad():
        for part, tensor in tensors.items():
            if part in ("up", "down"):
                continue
            parameter = getattr(module, part, None)
            if not isinstance(parameter, torch.nn.Parameter) or parameter.shape != tensor.shape:
                misfits.append(part)
            else:
                parameter.copy_(tensor)
        if up is not None or down is not None:
            weight = getattr(module, "weight", None)
            if up is None or down is None or weight is None or up.dim() < 2 or down.dim() < 2 \
                    or up.shape[0] != weight.shape[0] or down[0].numel() != weight[0].numel() \
                    or up[0].numel() != down.shape[0]:
                misfits.extend(part for part in ("up", "down") if part in tensors)
            else:
                halves = (half.flatten(1).to(weight.device, torch.float32) for half in (up, down))
                update = torch.mm(*halves).reshape(weight.shape)
                weight.copy_(weight.float() + update)  # added in fp32, then rounded once to the weight's dtype
    return misfits


def union_config(state: dict[str, torch.Tensor]) -> dict:
    """The parts of a ControlNet Union config that its weights say: the control types, and the transformer that
    mixes the control images' features (`transformer_layes`, as diffusers spells it). Its head count cannot be
    read off the weights; every published one has diffusers' default, 8."""
    if state["task_embedding"].dim() != 2:
        raise ModelFormatError(f"The ControlNet Union model's task_embedding is {tuple(state['task_embedding'].shape)}, "
                               "not one row per control type: the file is damaged.")
    types, channels = state["task_embedding"].shape
    projection = state.get("spatial_ch_projs.weight")
    layers = {int(match.group(1)) for key in state if (match := re.match(r"transformer_layes\.(\d+)\.", key))}
    return {"num_control_type": types, "num_trans_channel": channels, "num_trans_layer": len(layers),
            "num_proj_channel": projection.shape[0] if projection is not None else channels}


def config_from_weights(state: dict[str, torch.Tensor], base_unet_config: dict, global_pool: bool = False) -> dict:
    """A diffusers ControlNet config for weights in diffusers' layout: the structure read off the tensors, the
    rest from the base model's UNet config."""

    def shape(key: str) -> tuple[int, ...]:
        if key not in state:
            raise ModelFormatError(f"The ControlNet lacks {key}: it is damaged or not a ControlNet.")
        return tuple(state[key].shape)

    def indices(pattern: str) -> list[int]:
        found = {int(match.group(1)) for key in state if (match := re.match(pattern, key))}
        return sorted(found)

    blocks = indices(r"down_blocks\.(\d+)\.")
    block_out = [shape(f"down_blocks.{i}.resnets.0.conv1.weight")[0] for i in blocks]
    down_types, depths = [], []
    for i in blocks:
        attends = bool(indices(rf"down_blocks\.{i}\.attentions\.(\d+)\."))
        down_types.append("CrossAttnDownBlock2D" if attends else "DownBlock2D")
        depths.append(len(indices(rf"down_blocks\.{i}\.attentions\.0\.transformer_blocks\.(\d+)\.")) if attends else 1)
    mid_attends = bool(indices(r"mid_block\.attentions\.(\d+)\."))
    mid_depth = len(indices(r"mid_block\.attentions\.0\.transformer_blocks\.(\d+)\."))
    if mid_attends and depths[-1] != mid_depth:
        if down_types[-1] == "CrossAttnDownBlock2D":
            raise ModelFormatError("The ControlNet's middle block is deeper than its last down block, a layout "
                                   "diffusers cannot build.")
        depths[-1] = mid_depth
    cond = [shape("controlnet_cond_embedding.conv_in.weight")[0]]
    cond += [shape(f"controlnet_cond_embedding.blocks.{n}.weight")[0]
             for n in indices(r"controlnet_cond_embedding\.blocks\.(\d+)\.")[1::2]]
    cross = next((tensor.shape[1] for key, tensor in state.items() if key.endswith("attn2.to_k.weight")),
                 base_unet_config.get("cross_attention_dim"))
    proj_in = next((tensor for key, tensor in state.items() if key.endswith(".proj_in.weight")), None)
    config = {key: base_unet_config[key] for key in CONFIG_FROM_UNET if key in base_unet_config}
    if list(base_unet_config.get("block_out_channels", ())) != block_out:
        # Another width than the base model's: SD1.5's 8 heads, SDXL's 64-wide heads.
        xl = "add_embedding.linear_1.weight" in state
        config.update(attention_head_dim=[c // 64 for c in block_out] if xl else 8, num_attention_heads=None)
    if "add_embedding.linear_1.weight" in state:
        config["projection_class_embeddings_input_dim"] = shape("add_embedding.linear_1.weight")[1]
    else:
        config.update(addition_embed_type=None, addition_time_embed_dim=None)
    config.update(
        _class_name="ControlNetModel",
        in_channels=shape("conv_in.weight")[1],
        conditioning_channels=shape("controlnet_cond_embedding.conv_in.weight")[1],
        conditioning_embedding_out_channels=cond,
        block_out_channels=block_out,
        down_block_types=down_types,
        layers_per_block=len(indices(r"down_blocks\.0\.resnets\.(\d+)\.")),
        transformer_layers_per_block=depths,
        mid_block_type="UNetMidBlock2DCrossAttn" if mid_attends else "UNetMidBlock2D",
        cross_attention_dim=cross,
        use_linear_projection=proj_in is not None and proj_in.dim() == 2,
        global_pool_conditions=global_pool,
    )
    return config
