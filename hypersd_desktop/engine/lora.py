"""LoRA files: key styles mapped onto the pipeline's layers, fused into the weights and unfused.

A LoRA adds `weight · alpha/rank · up @ down` to a layer's weight. Fusing writes that into the
weight once, so generation costs nothing extra per step; unfusing subtracts it again. Supported
key styles: kohya (`lora_unet_<path with _>.lora_down.weight`, including the original-SD block
names of SDXL files, and `lora_te`/`lora_te1`/`lora_te2` text-encoder keys) and PEFT
(`<path>.lora_A.weight` / `lora_B.weight`, optionally prefixed `unet.`, `text_encoder.` …).

Why by hand and not diffusers' `load_lora_weights` + `fuse_lora`: both give the same weights
(bench/lora_fuse.py: identical checksums), but the engine swaps style LoRAs between requests by
unfusing and fusing. After `fuse_lora` diffusers can only unfuse while the adapter layers stay
loaded (the LoRA's weights kept in memory and every layer wrapped); once `unload_lora_weights`
drops them, the base weights are lost until a reload. Here the update is read back from the file
and subtracted, so nothing is kept. Measured on the full-size SD1.5 UNet (859.5 M parameters,
fp32, CPU) with a 269 MB rank-64 Hyper-SD LoRA, it is faster at a little more peak memory:
9.2 s and 678 MiB above the UNet, against 13.2 s and 542 MiB for diffusers' load + fuse + unload.
diffusers is used for one thing: mapping SDXL files' original-SD block names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from hypersd_desktop.core.errors import InputError, ModelFormatError

KOHYA_PREFIXES = {"lora_unet_": "unet", "lora_te1_": "text_encoder", "lora_te2_": "text_encoder_2", "lora_te_": "text_encoder"}
PEFT_PREFIXES = {"unet.": "unet", "text_encoder.": "text_encoder", "text_encoder_2.": "text_encoder_2"}


@dataclass
class LoraLayer:
    """One layer's low-rank update: `scale` is alpha/rank."""

    component: str
    module: str
    down: torch.Tensor
    up: torch.Tensor
    scale: float

    def delta(self) -> torch.Tensor:
        down, up = self.down.float(), self.up.float()
        if down.dim() == 2:
            return (up @ down) * self.scale
        if up.shape[2:] != (1, 1):
            raise ModelFormatError(f"LoRA layer {self.module} has a {tuple(up.shape[2:])} up kernel; only 1×1 is supported.")
        out = up.flatten(1) @ down.flatten(1)
        return out.reshape(up.shape[0], *down.shape[1:]) * self.scale


def load_lora_layers(path: str | Path, components: dict[str, torch.nn.Module], unet_config: dict) -> tuple[list[LoraLayer], int]:
    """Read a LoRA file and map its keys onto the modules of `components` ("unet", "text_encoder"…).

    Returns the layers and the number of LoRA layers that matched nothing (for a warning).
    Raises `InputError` when no key matches: the file is not a LoRA for these models.
    """
    state = load_file(str(path), device="cpu")
    if any(key.startswith("lora_unet_input_blocks") or key.startswith("lora_unet_middle_block") for key in state):
        from diffusers.loaders.lora_conversion_utils import _maybe_map_sgm_blocks_to_diffusers

        state = _maybe_map_sgm_blocks_to_diffusers(state, unet_config)
    groups = _group(state)
    lookups = {name: _module_lookup(module) for name, module in components.items()}
    layers: list[LoraLayer] = []
    unmatched = 0
    for (component, flat_name), parts in groups.items():
        lookup = lookups.get(component)
        module_name = lookup.get(flat_name) if lookup is not None else None
        if module_name is None or "down" not in parts or "up" not in parts:
            unmatched += 1
            continue
        down, up = parts["down"], parts["up"]
        rank = down.shape[0]
        alpha = float(parts["alpha"]) if "alpha" in parts else float(rank)
        layers.append(LoraLayer(component, module_name, down, up, alpha / rank))
    if not layers:
        raise InputError(
            f"{Path(path).name} has no LoRA layers that match this base model; it is not a LoRA in a "
            "supported key style (kohya or PEFT) for this architecture."
        )
    return layers, unmatched


def _group(state: dict[str, torch.Tensor]) -> dict[tuple[str, str], dict[str, torch.Tensor]]:
    """Group tensors by (component, layer name with '.' as '_') into down/up/alpha."""
    groups: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        parsed = _parse_key(key)
        if parsed is None:
            continue
        component, layer, part = parsed
        groups.setdefault((component, layer.replace(".", "_")), {})[part] = tensor
    return groups


def _parse_key(key: str) -> tuple[str, str, str] | None:
    for suffix, part in ((".lora_down.weight", "down"), (".lora_up.weight", "up"), (".alpha", "alpha")):
        if key.endswith(suffix) and key.startswith("lora_"):
            stem = key[: -len(suffix)]
            for prefix, component in KOHYA_PREFIXES.items():
                if stem.startswith(prefix):
                    return component, stem[len(prefix):], part
            return None
    for suffix, part in (
        (".lora_A.weight", "down"), (".lora_B.weight", "up"), (".lora.down.weight", "down"),
        (".lora.up.weight", "up"), (".alpha", "alpha"),
    ):
        if key.endswith(suffix):
            stem = key[: -len(suffix)].removeprefix("base_model.model.")
            component = "unet"
            for prefix, name in PEFT_PREFIXES.items():
                if stem.startswith(prefix):
                    component, stem = name, stem[len(prefix):]
                    break
            # the old diffusers attention-processor layout: attn1.processor.to_q_lora -> attn1.to_q
            stem = stem.replace(".processor.", ".").replace("to_out_lora", "to_out.0").replace("_lora", "")
            return component, stem, part
    return None


def _module_lookup(root: torch.nn.Module) -> dict[str, str]:
    return {
        name.replace(".", "_"): name
        for name, module in root.named_modules()
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d))
    }


def apply_layers(components: dict[str, torch.nn.Module], layers: list[LoraLayer], weight: float, sign: int = 1) -> None:
    """Add (`sign`=1) or subtract (-1) `weight` times each layer's update to the model weights."""
    with torch.no_grad():
        for layer in layers:
            module = components[layer.component].get_submodule(layer.module)
            target = module.weight
            delta = layer.delta().to(target.device)
            if delta.shape != target.shape:
                raise InputError(
                    f"LoRA layer {layer.module} has shape {tuple(delta.shape)} but the model's layer is "
                    f"{tuple(target.shape)}; the LoRA is for a different model."
                )
            fused = target.float() + (sign * weight) * delta
            target.copy_(fused.to(target.dtype))
