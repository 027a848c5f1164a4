"""Write a diffusers SD1.5 or SDXL pipeline as an original-layout single-file checkpoint (test helper).

The inverse of diffusers' single-file conversion, for the UNet, VAE and text encoders of pipelines
of any depth, so a tiny model can be saved the way community checkpoints are distributed:
`model.diffusion_model.*` and `first_stage_model.*`, with SD1.5's CLIP under
`cond_stage_model.transformer.*`, or SDXL's CLIP under `conditioner.embedders.0.transformer.*` and
its OpenCLIP encoder in open_clip's own layout under `conditioner.embedders.1.model.*`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

RESNET = [("in_layers.0", "norm1"), ("in_layers.2", "conv1"), ("out_layers.0", "norm2"), ("out_layers.3", "conv2"),
          ("emb_layers.1", "time_emb_proj"), ("skip_connection", "conv_shortcut")]


def _input_blocks(blocks: int, layers_per_block: int) -> dict[str, str]:
    """diffusers prefix -> original prefix for the down blocks (a UNet's and a ControlNet's alike)."""
    per = layers_per_block + 1
    mapping = {}
    for i in range(blocks):
        for j in range(layers_per_block):
            mapping[f"down_blocks.{i}.resnets.{j}."] = f"input_blocks.{per * i + j + 1}.0."
            mapping[f"down_blocks.{i}.attentions.{j}."] = f"input_blocks.{per * i + j + 1}.1."
        if i < blocks - 1:
            mapping[f"down_blocks.{i}.downsamplers.0.conv."] = f"input_blocks.{per * (i + 1)}.0.op."
    return mapping


def _common(mapping: dict[str, str]) -> dict[str, str]:
    mapping.update({"time_embedding.linear_1.": "time_embed.0.", "time_embedding.linear_2.": "time_embed.2.",
                    "add_embedding.linear_1.": "label_emb.0.0.", "add_embedding.linear_2.": "label_emb.0.2.",
                    "conv_in.": "input_blocks.0.0.", "mid_block.attentions.0.": "middle_block.1.",
                    "mid_block.resnets.0.": "middle_block.0.", "mid_block.resnets.1.": "middle_block.2."})
    return mapping


def unet_key_map(unet) -> dict[str, str]:
    """diffusers prefix -> original prefix, per block."""
    config = unet.config
    per = config.layers_per_block + 1
    blocks = len(config.block_out_channels)
    mapping = _common(_input_blocks(blocks, config.layers_per_block))
    mapping.update({"conv_norm_out.": "out.0.", "conv_out.": "out.2."})
    for i in range(blocks):
        has_attention = "CrossAttn" in config.up_block_types[i]
        for j in range(per):
            mapping[f"up_blocks.{i}.resnets.{j}."] = f"output_blocks.{per * i + j}.0."
            mapping[f"up_blocks.{i}.attentions.{j}."] = f"output_blocks.{per * i + j}.1."
        if i < blocks - 1:
            mapping[f"up_blocks.{i}.upsamplers.0."] = f"output_blocks.{per * i + per - 1}.{2 if has_attention else 1}."
    return mapping


def _ordered(mapping: dict[str, str]) -> list[tuple[str, str]]:
    return sorted(mapping.items(), key=lambda item: -len(item[0]))


def _original(key: str, ordered: list[tuple[str, str]]) -> str:
    """`key` under the original name of the longest block prefix it starts with (resnet layers renamed too)."""
    for source, target in ordered:
        if key.startswith(source):
            new = target + key[len(source):]
            if ".resnets." in source:
                for original, diffusers_name in RESNET:
                    new = new.replace(f".{diffusers_name}.", f".{original}.")
            return new
    return key


def _rename(state: dict[str, torch.Tensor], mapping: dict[str, str], prefix: str) -> dict[str, torch.Tensor]:
    ordered = _ordered(mapping)
    return {prefix + _original(key, ordered): tensor for key, tensor in state.items()}


def convert_unet(unet) -> dict[str, torch.Tensor]:
    return _rename(unet.state_dict(), unet_key_map(unet), "model.diffusion_model.")


def convert_controlnet(state: dict[str, torch.Tensor], layers_per_block: int,
                       prefix: str = "control_model.") -> dict[str, torch.Tensor]:
    """A diffusers ControlNet's state dict in the original layout (lllyasviel's `cldm`: `input_blocks`, `zero_convs`,
    `input_hint_block`, `middle_block_out`), under `prefix`: "control_model." in v1.0 files, none in the v1.1
    safetensors conversions."""
    blocks = len({key.split(".")[1] for key in state if key.startswith("down_blocks.")})
    hint = len({key.split(".")[2] for key in state if key.startswith("controlnet_cond_embedding.blocks.")})
    mapping = _common(_input_blocks(blocks, layers_per_block))
    zero_convs = len({key.split(".")[1] for key in state if key.startswith("controlnet_down_blocks.")})
    mapping.update({"controlnet_mid_block.": "middle_block_out.0.",
                    "controlnet_cond_embedding.conv_in.": "input_hint_block.0.",
                    "controlnet_cond_embedding.conv_out.": f"input_hint_block.{2 * hint + 2}."})
    mapping.update({f"controlnet_cond_embedding.blocks.{n}.": f"input_hint_block.{2 * n + 2}." for n in range(hint)})
    mapping.update({f"controlnet_down_blocks.{n}.": f"zero_convs.{n}.0." for n in range(zero_convs)})
    return _rename(state, mapping, prefix)


def convert_vae(vae) -> dict[str, torch.Tensor]:
    blocks = len(vae.config.block_out_channels)
    mapping = {"encoder.mid_block.attentions.0.": "encoder.mid.attn_1.", "decoder.mid_block.attentions.0.": "decoder.mid.attn_1.",
               "encoder.conv_norm_out.": "encoder.norm_out.", "decoder.conv_norm_out.": "decoder.norm_out."}
    for side in ("encoder", "decoder"):
        for j in range(2):
            mapping[f"{side}.mid_block.resnets.{j}."] = f"{side}.mid.block_{j + 1}."
    for i in range(blocks):
        for j in range(vae.config.layers_per_block):
            mapping[f"encoder.down_blocks.{i}.resnets.{j}."] = f"encoder.down.{i}.block.{j}."
        for j in range(vae.config.layers_per_block + 1):
            mapping[f"decoder.up_blocks.{i}.resnets.{j}."] = f"decoder.up.{blocks - 1 - i}.block.{j}."
        if i < blocks - 1:
            mapping[f"encoder.down_blocks.{i}.downsamplers.0."] = f"encoder.down.{i}.downsample."
            mapping[f"decoder.up_blocks.{i}.upsamplers.0."] = f"decoder.up.{blocks - 1 - i}.upsample."
    ordered = _ordered(mapping)
    attention = [("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."), ("to_v.", "v."), ("to_out.0.", "proj_out.")]
    out = {}
    for key, tensor in vae.state_dict().items():
        new = key
        for source, target in ordered:
            if key.startswith(source):
                new = target + key[len(source):]
                break
        if ".attn_1." in new:
            for diffusers_name, original in attention:
                new = new.replace(f".attn_1.{diffusers_name}", f".attn_1.{original}")
            if tensor.dim() == 2:
                tensor = tensor[:, :, None, None]
        new = new.replace("conv_shortcut", "nin_shortcut")
        out["first_stage_model." + new] = tensor
    return out


OPEN_CLIP_LAYER = [("self_attn.out_proj", "attn.out_proj"), ("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"),
                   ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj")]


def convert_open_clip(text_encoder, prefix: str) -> dict[str, torch.Tensor]:
    """A `CLIPTextModelWithProjection` in open_clip's layout: fused q/k/v (`in_proj_weight`), the
    projection stored transposed."""
    state = text_encoder.state_dict()
    out = {"token_embedding.weight": state["text_model.embeddings.token_embedding.weight"],
           "positional_embedding": state["text_model.embeddings.position_embedding.weight"],
           "ln_final.weight": state["text_model.final_layer_norm.weight"],
           "ln_final.bias": state["text_model.final_layer_norm.bias"],
           "text_projection": state["text_projection.weight"].T}
    for i in range(text_encoder.config.num_hidden_layers):
        source, target = f"text_model.encoder.layers.{i}.", f"transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            out[f"{target}attn.in_proj_{kind}"] = torch.cat([state[f"{source}self_attn.{x}_proj.{kind}"] for x in "qkv"])
            for diffusers_name, original in OPEN_CLIP_LAYER:
                out[f"{target}{original}.{kind}"] = state[f"{source}{diffusers_name}.{kind}"]
    return {prefix + key: tensor for key, tensor in out.items()}


def save_single_file(pipe, path: Path) -> Path:
    state = convert_unet(pipe.unet)
    state.update(convert_vae(pipe.vae))
    sdxl = getattr(pipe, "text_encoder_2", None) is not None
    clip = "conditioner.embedders.0.transformer." if sdxl else "cond_stage_model.transformer."
    for key, tensor in pipe.text_encoder.state_dict().items():
        state[clip + key] = tensor
    if sdxl:
        state.update(convert_open_clip(pipe.text_encoder_2, "conditioner.embedders.1.model."))
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


def kohya_original_names(state: dict[str, torch.Tensor], unet) -> dict[str, torch.Tensor]:
    """A kohya LoRA over `unet` renamed from diffusers' module paths to the original SD block names
    (`lora_unet_input_blocks_4_1_…`, `…_in_layers_2`), as kohya's SDXL trainer writes its files."""
    lookup = {name.replace(".", "_"): name for name, _ in unet.named_modules()}
    ordered = _ordered(unet_key_map(unet))
    out = {}
    for key, tensor in state.items():
        stem, suffix = key.split(".", 1)
        if not stem.startswith("lora_unet_"):
            out[key] = tensor  # text encoder layers keep their names
            continue
        name = _original(lookup[stem.removeprefix("lora_unet_")] + ".", ordered)
        out[f"lora_unet_{name.rstrip('.').replace('.', '_')}.{suffix}"] = tensor
    return out


def kohya_comfyui_names(state: dict[str, torch.Tensor], unet, text_encoders: dict[str, object]) -> dict[str, torch.Tensor]:
    """A kohya LoRA over `unet` in ComfyUI's key style: `diffusion_model.<original path>.lora_down.weight`, and
    text-encoder layers (`text_encoders` maps a kohya prefix such as "lora_te1_" to its model and ComfyUI's name
    for it, "clip_l") as `text_encoders.clip_l.transformer.<path>.…`."""
    ordered = _ordered(unet_key_map(unet))
    models = {"lora_unet_": (unet, None), **text_encoders}
    out = {}
    for key, tensor in state.items():
        stem, suffix = key.split(".", 1)
        prefix = next(prefix for prefix in models if stem.startswith(prefix))
        model, name = models[prefix]
        path = {path.replace(".", "_"): path for path, _ in model.named_modules()}[stem.removeprefix(prefix)]
        if name is None:
            out[f"diffusion_model.{_original(path + '.', ordered)}{suffix}"] = tensor
        else:
            out[f"text_encoders.{name}.transformer.{path}.{suffix}"] = tensor
    return out
