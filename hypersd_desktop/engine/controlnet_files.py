"""ControlNet weights as people have them, loaded offline from safetensors.

Three layouts are met in the wild:

- a diffusers folder (`config.json` + `diffusion_pytorch_model[.fp16].safetensors`), as the
  Models tab downloads it;
- a single file with diffusers key names and no config beside it (`diffusers_xl_canny_full.safetensors`
  of the sd_control_collection, or a downloaded weights file renamed);
- a single file in the original ControlNet layout (`control_v11p_sd15_canny_fp16.safetensors`,
  with or without the `control_model.` prefix), as AUTOMATIC1111 and ComfyUI folders hold them.

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
from pathlib import Path

import torch

from hypersd_desktop.core.errors import ModelFormatError
from hypersd_desktop.engine.inspect import CONTROLNET_CLASSES, controlnet_weights

#: A diffusers ControlNet config's keys copied from the base UNet's config (as `ControlNetModel.from_unet`).
CONFIG_FROM_UNET = (
    "flip_sin_to_cos", "freq_shift", "only_cross_attention", "downsample_padding", "mid_block_scale_factor",
    "act_fn", "norm_num_groups", "norm_eps", "attention_head_dim", "num_attention_heads", "class_embed_type",
    "num_class_embeds", "upcast_attention", "resnet_time_scale_shift", "addition_embed_type",
    "addition_time_embed_dim", "encoder_hid_dim", "encoder_hid_dim_type",
)


def load_controlnet(path: Path, dtype: torch.dtype, base_unet_config: dict | None = None):
    """A ControlNet from a diffusers folder or one safetensors file, in `dtype`, on the CPU.

    `base_unet_config` is the config of the base model's UNet; it is needed only for a file that brings no
    config of its own."""
    from diffusers import ControlNetModel, ControlNetUnionModel
    from safetensors.torch import load_file

    weights = controlnet_weights(path)
    state = load_file(weights)
    if "lora_controlnet" in state:
        raise ModelFormatError(f"{weights.name} is a Control-LoRA, which this app cannot run; use a full ControlNet "
                               "(for SDXL canny, diffusers' controlnet-canny-sdxl-1.0 from the Models tab).")
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
        model = (ControlNetUnionModel if union else ControlNetModel).from_config(config)
    except (TypeError, ValueError, KeyError, IndexError) as error:
        raise ModelFormatError(f"{weights.name} is not a ControlNet this app can build ({error}).") from error
    missing, unexpected = model.load_state_dict(state, strict=False)
    mismatched = [key for key, tensor in model.state_dict().items()
                  if key in state and tuple(state[key].shape) != tuple(tensor.shape)]
    if missing or unexpected or mismatched:
        raise ModelFormatError(f"{weights.name} does not fit a ControlNet of its kind ({len(missing)} missing, "
                               f"{len(unexpected)} unexpected and {len(mismatched)} misshapen weights); it may be "
                               "damaged, or for a base model other than SD1.5 and SDXL.")
    return model.to(dtype=dtype).eval()


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
    hint = sorted({int(key.split(".")[1]) for key in state if key.startswith("input_hint_block.")})
    if len(hint) < 2:
        raise ModelFormatError("The ControlNet has no conditioning embedding (input_hint_block): it is damaged or "
                               "not a ControlNet.")
    renamed: dict[str, torch.Tensor] = {}
    names = {hint[0]: "conv_in", hint[-1]: "conv_out"} | {index: f"blocks.{n}" for n, index in enumerate(hint[1:-1])}
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
