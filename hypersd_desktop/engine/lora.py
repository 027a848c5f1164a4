"""LoRA files: key styles mapped onto the pipeline's layers, fused into the weights and unfused.

A LoRA adds `weight · alpha/rank · ΔW` to a layer's weight. Fusing writes that into the weight
once, so generation costs nothing extra per step; unfusing subtracts it again. What ΔW is made of:

| kind | tensors per layer | ΔW |
| --- | --- | --- |
| LoRA, LoCon | `lora_down`, `lora_up` (PEFT: `lora_A`, `lora_B`), LoCon's CP core `lora_mid` | up · down |
| LoHa (LyCORIS) | `hada_w1_a/b`, `hada_w2_a/b`, Tucker cores `hada_t1/t2` | (w1_a · w1_b) ⊙ (w2_a · w2_b) |
| LoKr (LyCORIS) | `lokr_w1` or `lokr_w1_a/b`, `lokr_w2` or `lokr_w2_a/b`, Tucker core `lokr_t2` | w1 ⊗ w2 |

rank is the inner size of the factored halves (`lora_down`, `hada_w1_b`, or LoKr's factored
half); with no alpha, or a LoKr of two whole matrices, the scale is 1, as in the tools that
train and run them (LyCORIS's training pass, AUTOMATIC1111, ComfyUI). A DoRA layer
(`dora_scale`, PEFT's `lora_magnitude_vector`) also rescales the updated weight to its trained
magnitude m per output row (or input column): W' = m · (W + ΔW) / ‖W + ΔW‖, at weight s
W + s · (W' − W). That cannot be subtracted again, so a DoRA LoRA is unfused by reloading.

Key styles: kohya (`lora_unet_<path with _>.<tensor>`, including the original-SD block names of
SDXL files, and `lora_te`/`lora_te1`/`lora_te2` text-encoder keys; LyCORIS writes these too, and its
own wrapper `lycoris_<UNet path with _>`, as ComfyUI reads them),
PEFT (`<path>.lora_A.weight` / `lora_B.weight`, optionally prefixed `unet.`, `text_encoder.` …) and
ComfyUI's (`diffusion_model.<original path>.lora_down.weight`, `text_encoders.clip_l.transformer.…`).
A PEFT-style file keeps its alpha in no tensor: diffusers writes the adapter's config (`lora_alpha`,
`alpha_pattern`, rsLoRA) into the file's header, and PEFT's scale is taken from there.

Why by hand and not diffusers' `load_lora_weights` + `fuse_lora`: both give the same weights
(bench/lora_fuse.py: identical checksums), but the engine swaps style LoRAs between requests by
unfusing and fusing. After `fuse_lora` diffusers can only unfuse while the adapter layers stay
loaded (the LoRA's weights kept in memory and every layer wrapped); once `unload_lora_weights`
drops them, the base weights are lost until a reload. Here the update is read back from the file
and subtracted, so nothing is kept. Measured on the full-size SD1.5 UNet (859.5 M parameters,
fp32, CPU) with a 269 MB rank-64 Hyper-SD LoRA (bench/lora_fuse.py, three runs), it takes about
as long at a little more peak memory: 4.1–5.0 s and 626–700 MiB above the UNet, against 3.9–4.2 s
and 552–658 MiB for diffusers' load + fuse + unload.

Original-SD block names (`lora_unet_input_blocks_4_1_…`, `…_output_blocks_2_0_in_layers_2`), which
kohya's SDXL trainer writes, are matched by giving every UNet layer its original name as well,
worked out from the UNet's config as diffusers' single-file conversion lays the blocks out.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from hypersd_desktop.core.errors import InputError, ModelFormatError
from hypersd_desktop.engine.inspect import LYCORIS_OTHER_METHODS

KOHYA_PREFIXES = {"lora_unet_": "unet", "lora_te1_": "text_encoder", "lora_te2_": "text_encoder_2", "lora_te_": "text_encoder",
                  "lycoris_": "unet"}  # LyCORIS's own wrapper (SimpleTuner and other diffusers trainers): the UNet
_KOHYA_STYLE = ("lora_", "lycoris_")  # keys of a layer path joined with '_', then '.' and the part
PEFT_PREFIXES = {"unet.": "unet", "text_encoder.": "text_encoder", "text_encoder_2.": "text_encoder_2"}
# A kohya-style layer's tensors by the suffix after its name; LyCORIS's keep their own names.
KOHYA_PARTS = {"lora_down.weight": "down", "lora_up.weight": "up", "lora_mid.weight": "mid", "alpha": "alpha",
               "dora_scale": "dora_scale"}
LYCORIS_PARTS = ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2",
                 "lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t2")
PEFT_PARTS = {".lora_A.weight": "down", ".lora_B.weight": "up", ".lora.down.weight": "down", ".lora.up.weight": "up",
              # the text encoders of diffusers' 2023 training scripts (SDXL DreamBooth LoRA `pytorch_lora_weights`)
              ".lora_linear_layer.down.weight": "down", ".lora_linear_layer.up.weight": "up",
              ".alpha": "alpha", ".lora_magnitude_vector": "magnitude", ".lora_magnitude_vector.weight": "magnitude"}
# ComfyUI's own key style (its LoRA save node): the layer's original-SD path under the model's prefix in ComfyUI,
# then any of the parts above.
COMFYUI_PREFIXES = {"diffusion_model.": "unet", "text_encoders.clip_l.transformer.": "text_encoder",
                    "text_encoders.clip_g.transformer.": "text_encoder_2"}
_PART_SUFFIXES = sorted({**{f".{suffix}": part for suffix, part in KOHYA_PARTS.items()},
                         **{f".{suffix}": suffix for suffix in (*LYCORIS_PARTS, *LYCORIS_OTHER_METHODS)},
                         **PEFT_PARTS}.items(), key=lambda item: -len(item[0]))


@dataclass
class LoraLayer:
    """One layer's update: its tensors from the file, by part ("down", "up", "alpha", "hada_w1_a", …)."""

    component: str
    module: str
    parts: dict[str, torch.Tensor]

    @property
    def kind(self) -> str:
        if "hada_w1_a" in self.parts:
            return "LoHa"
        return "LoKr" if any(name.startswith("lokr_") for name in self.parts) else "LoRA"

    @property
    def magnitude(self) -> torch.Tensor | None:
        """DoRA's trained magnitudes, or None for a plain update. PEFT's (`magnitude`) are per output row;
        LyCORIS's (`dora_scale`) per output row, shaped (out, 1, …), or per input column, shaped (1, in, …)."""
        return self.parts.get("magnitude", self.parts.get("dora_scale"))

    def magnitude_per_output(self, weight_shape: torch.Size) -> bool:
        """Whether the DoRA magnitudes are per output row (else per input column) of a weight of `weight_shape`."""
        magnitude = self.magnitude
        if "magnitude" in self.parts:
            return True
        return magnitude.shape[0] == weight_shape[0] and magnitude.numel() == weight_shape[0]

    def scale(self) -> float:
        """alpha / rank, or 1 where the file gives no alpha or the update has no rank."""
        parts = self.parts
        if self.kind == "LoRA":
            rank = parts["down"].shape[0]
        elif self.kind == "LoHa":
            rank = parts["hada_w1_b"].shape[0]
        else:
            factored = [parts[name] for name in ("lokr_w2_b", "lokr_w1_b") if name in parts]
            rank = factored[0].shape[0] if factored else None
        alpha = parts.get("alpha")
        return float(alpha) / rank if alpha is not None and rank else 1.0

    def delta(self, shape: torch.Size) -> torch.Tensor:
        """ΔW · scale, in float32, shaped as the layer's weight `shape`."""
        rebuild = {"LoRA": self._lora, "LoHa": self._loha, "LoKr": self._lokr}[self.kind]
        update = _widened(rebuild(), shape)
        if update.shape[0] != shape[0] or update.numel() != shape.numel():
            raise InputError(f"LoRA layer {self.module} makes an update of {tuple(update.shape)} but the model's "
                             f"layer is {tuple(shape)}; the LoRA is for a different model.")
        return update.reshape(shape) * self.scale()

    def _part(self, name: str) -> torch.Tensor:
        return self.parts[name].float()

    def _lora(self) -> torch.Tensor:
        up, down = self._part("up"), self._part("down")
        if "mid" in self.parts:  # LoCon's CP decomposition of a convolution: the kernel is the core's
            return torch.einsum("nmkl,in,mj->ijkl", self._part("mid"), up.flatten(1), down.flatten(1))
        if up.dim() == 4 and up.shape[2:] != (1, 1):
            raise ModelFormatError(f"LoRA layer {self.module} has a {tuple(up.shape[2:])} up kernel; only 1×1 is "
                                   "supported.")
        return up.flatten(1) @ down.flatten(1)

    def _tucker(self, core: str, up: str, down: str) -> torch.Tensor:
        """A Tucker-decomposed convolution kernel: the core (rank × rank × k × k) between the two factors."""
        return torch.einsum("ij...,jr,ip->pr...", self._part(core), self._part(down), self._part(up))

    def _loha(self) -> torch.Tensor:
        halves = []
        for n in (1, 2):
            if f"hada_t{n}" in self.parts:
                halves.append(self._tucker(f"hada_t{n}", f"hada_w{n}_a", f"hada_w{n}_b").flatten(1))
            else:
                halves.append(self._part(f"hada_w{n}_a") @ self._part(f"hada_w{n}_b").flatten(1))
        if halves[0].shape != halves[1].shape:
            raise ModelFormatError(f"The LoHa layer {self.module} has halves of different sizes; the file is damaged.")
        return halves[0] * halves[1]  # output rows × the rest of the weight

    def _lokr(self) -> torch.Tensor:
        parts = self.parts
        w1 = self._part("lokr_w1") if "lokr_w1" in parts else self._part("lokr_w1_a") @ self._part("lokr_w1_b")
        if "lokr_w2" in parts:
            w2 = self._part("lokr_w2")
        elif "lokr_t2" in parts:
            w2 = self._tucker("lokr_t2", "lokr_w2_a", "lokr_w2_b")
        else:
            down = self._part("lokr_w2_b")
            w2 = (self._part("lokr_w2_a") @ down.flatten(1)).reshape(-1, *down.shape[1:])
        while w1.dim() < w2.dim():  # a convolution's kernel comes from w2 alone
            w1 = w1.unsqueeze(-1)
        return torch.kron(w1, w2.contiguous())


def load_lora_layers(path: str | Path, components: dict[str, torch.nn.Module], unet_config: dict) -> tuple[list[LoraLayer], int]:
    """Read a LoRA file and map its keys onto the modules of `components` ("unet", "text_encoder"…).

    Returns the layers and the number of LoRA layers that matched nothing, or whose key style is not read (for
    a warning: the LoRA applies in part). Raises `InputError` when no key matches: the file is not a LoRA for
    these models.
    """
    groups, unread = _group(load_file(str(path), device="cpu"))
    adapters = _adapter_configs(path)
    lookups = {name: _module_lookup(module) for name, module in components.items()}
    if "unet" in lookups:
        lookups["unet"].update(_original_names(lookups["unet"], unet_config))
    layers: list[LoraLayer] = []
    unmatched = len(unread)
    others: set[str] = set()
    for (component, flat_name), parts in groups.items():
        lookup = lookups.get(component)
        module_name = lookup.get(flat_name) if lookup is not None else None
        if module_name is None or not _complete(parts):
            unmatched += 1
            others.update(method for part, method in LYCORIS_OTHER_METHODS.items() if part in parts)
            continue
        if "alpha" not in parts and component in adapters and "down" in parts:
            parts["alpha"] = torch.tensor(_peft_alpha(adapters[component], module_name, parts["down"].shape[0]))
        layers.append(LoraLayer(component, module_name, parts))
    if not layers:
        if others:
            raise InputError(f"{Path(path).name} is a LyCORIS {' and '.join(sorted(others))} file, which the app "
                             "cannot fuse; LoRA, LoCon, LoHa and LoKr files work.")
        raise InputError(
            f"{Path(path).name} has no LoRA layers that match this base model; it is not a LoRA in a "
            "supported key style (kohya, LyCORIS, PEFT or ComfyUI) for this architecture."
        )
    return layers, unmatched


def has_dora(path: str | Path) -> bool:
    """Whether the LoRA file holds DoRA magnitudes (read from its header alone)."""
    with safe_open(str(path), framework="pt") as opened:
        return any(key.endswith(("dora_scale", "lora_magnitude_vector", "lora_magnitude_vector.weight"))
                   for key in opened.keys())


def _adapter_configs(path: str | Path) -> dict[str, dict]:
    """The PEFT adapter configs diffusers writes into a LoRA file's header (`lora_adapter_metadata`), by component:
    they hold the alpha that PEFT-style files carry in no tensor."""
    with safe_open(str(path), framework="pt") as opened:
        raw = (opened.metadata() or {}).get("lora_adapter_metadata")
    try:
        flat = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    configs: dict[str, dict] = {}
    for key, value in flat.items() if isinstance(flat, dict) else ():
        component, _, name = key.partition(".")
        if component in PEFT_PREFIXES.values() and name:
            configs.setdefault(component, {})[name] = value
    return {component: config for component, config in configs.items() if "lora_alpha" in config}


def _peft_alpha(config: dict, module: str, rank: int) -> float:
    """A layer's alpha as PEFT scales it: `alpha_pattern`'s, matched as PEFT matches it (the pattern ends the
    module's path), else `lora_alpha`; with rsLoRA, PEFT divides by √rank, not rank."""
    alpha = config["lora_alpha"]
    for pattern, value in (config.get("alpha_pattern") or {}).items():
        if re.match(rf"(.*\.)?({pattern})$", module):
            alpha = value
            break
    return float(alpha) * (math.sqrt(rank) if config.get("use_rslora") else 1.0)


def _complete(parts: dict[str, torch.Tensor]) -> bool:
    """Whether a layer's tensors make an update of a kind the app fuses."""
    if "down" in parts and "up" in parts:
        return True
    if all(f"hada_w{n}_{side}" in parts for n in (1, 2) for side in "ab"):
        return True
    halves = [f"lokr_w{n}" in parts or (f"lokr_w{n}_a" in parts and f"lokr_w{n}_b" in parts) for n in (1, 2)]
    return all(halves)


_LORA_TOKENS = ("lora", "hada_", "lokr_", "dora_scale")  # in the names of the tensors of a layer's update


def _group(state: dict[str, torch.Tensor]) -> tuple[dict[tuple[str, str], dict[str, torch.Tensor]], set[str]]:
    """Tensors grouped by (component, layer name with '.' as '_') into their parts; and the layers whose tensors
    look like a LoRA's update but are in a key style not read."""
    groups: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    unread: set[str] = set()
    for key, tensor in state.items():
        parsed = _parse_key(key)
        if parsed is not None:
            component, layer, part = parsed
            groups.setdefault((component, layer.replace(".", "_")), {})[part] = tensor
        elif any(token in key for token in _LORA_TOKENS):
            unread.add(key.split(".")[0] if key.startswith(_KOHYA_STYLE) else key.rsplit(".", 3)[0])
    return groups, unread


def _parse_key(key: str) -> tuple[str, str, str] | None:
    for prefix, component in COMFYUI_PREFIXES.items():
        if key.startswith(prefix):
            layer = key[len(prefix):]
            return next(((component, layer[: -len(suffix)], part) for suffix, part in _PART_SUFFIXES
                         if layer.endswith(suffix)), None)
    if key.startswith(_KOHYA_STYLE) and "." in key:
        stem, suffix = key.split(".", 1)  # kohya layer names join their path with '_'
        for prefix, component in KOHYA_PREFIXES.items():
            if stem.startswith(prefix):
                part = KOHYA_PARTS.get(suffix, suffix if suffix in LYCORIS_PARTS else None)
                if part is None and suffix in LYCORIS_OTHER_METHODS:
                    part = suffix  # kept, to name the method when nothing else in the file can be fused
                return (component, stem[len(prefix):], part) if part is not None else None
        return None
    for suffix, part in PEFT_PARTS.items():
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


# A resnet's layers under their original names.
_ORIGINAL_RESNET = {"norm1": "in_layers_0", "conv1": "in_layers_2", "norm2": "out_layers_0", "conv2": "out_layers_3",
                    "time_emb_proj": "emb_layers_1", "conv_shortcut": "skip_connection"}


def _original_blocks(config: dict) -> dict[str, str]:
    """UNet block prefixes (flattened with '_'): diffusers' name -> the original SD name, for a UNet of any depth."""
    per = config["layers_per_block"] + 1
    blocks = len(config["block_out_channels"])
    names = {"conv_in": "input_blocks_0_0", "time_embedding_linear_1": "time_embed_0",
             "time_embedding_linear_2": "time_embed_2", "add_embedding_linear_1": "label_emb_0_0",
             "add_embedding_linear_2": "label_emb_0_2", "conv_norm_out": "out_0", "conv_out": "out_2",
             "mid_block_resnets_0": "middle_block_0", "mid_block_attentions_0": "middle_block_1",
             "mid_block_resnets_1": "middle_block_2"}
    for i in range(blocks):
        for j in range(per - 1):
            names[f"down_blocks_{i}_resnets_{j}"] = f"input_blocks_{per * i + j + 1}_0"
            names[f"down_blocks_{i}_attentions_{j}"] = f"input_blocks_{per * i + j + 1}_1"
        if i < blocks - 1:
            names[f"down_blocks_{i}_downsamplers_0_conv"] = f"input_blocks_{per * (i + 1)}_0_op"
        for j in range(per):
            names[f"up_blocks_{i}_resnets_{j}"] = f"output_blocks_{per * i + j}_0"
            names[f"up_blocks_{i}_attentions_{j}"] = f"output_blocks_{per * i + j}_1"
        if i < blocks - 1:
            upsampler = 2 if "CrossAttn" in config["up_block_types"][i] else 1
            names[f"up_blocks_{i}_upsamplers_0"] = f"output_blocks_{per * i + per - 1}_{upsampler}"
    return names


def original_module_names(root: torch.nn.Module, unet_config: dict) -> dict[str, str]:
    """Every module of `root` (a UNet, or a ControlNet made from one) that holds weights, under its original-SD name
    flattened with '_' (`input_blocks_1_0_in_layers_0`), to its name in `root`; `unet_config` is the UNet's."""
    lookup = {name.replace(".", "_"): name for name, module in root.named_modules()
              if next(module.parameters(recurse=False), None) is not None}
    return _original_names(lookup, unet_config)


def _original_names(lookup: dict[str, str], config: dict) -> dict[str, str]:
    """The UNet's layers under their original-SD names (flattened), to the module names `lookup` gives."""
    try:
        blocks = sorted(_original_blocks(config).items(), key=lambda item: -len(item[0]))
    except (KeyError, TypeError):
        return {}  # not a UNet config (a ControlNet's or none): no original names
    original = {}
    for flat, module in lookup.items():
        for prefix, target in blocks:
            if flat == prefix or flat.startswith(prefix + "_"):
                rest = flat[len(prefix) + 1:]
                if "_resnets_" in prefix:
                    rest = _ORIGINAL_RESNET.get(rest, rest)
                original["_".join(filter(None, (target, rest)))] = module
                break
    return original


def _widened(update: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """The update of a convolution taking 4 input channels, zero-padded for one taking more: an inpainting
    model's first convolution also reads the mask and the masked image (9 channels), which a LoRA trained on a
    text-to-image model leaves as they are (A1111 pads it so)."""
    if len(shape) != 4 or update.shape[0] != shape[0] or update.numel() == shape.numel():
        return update
    per_channel = shape[0] * shape[2] * shape[3]
    channels, rest = divmod(update.numel(), per_channel)
    if rest or not 0 < channels < shape[1]:
        return update
    return torch.nn.functional.pad(update.reshape(shape[0], channels, *shape[2:]), (0, 0, 0, 0, 0, shape[1] - channels))


def apply_layers(components: dict[str, torch.nn.Module], layers: list[LoraLayer], weight: float, sign: int = 1) -> None:
    """Add (`sign`=1) or subtract (-1) `weight` times each layer's update to the model weights. A DoRA layer
    cannot be subtracted (`ValueError`): the caller reloads the weights instead."""
    if sign < 0 and any(layer.magnitude is not None for layer in layers):
        raise ValueError("a DoRA update cannot be subtracted; reload the weights")
    with torch.no_grad():
        for layer in layers:
            target = components[layer.component].get_submodule(layer.module).weight
            base = target.float()
            change = layer.delta(target.shape).to(target.device)
            if layer.magnitude is not None:  # DoRA: the change is that of the rescaled weight
                change = _rescaled(base + change, layer.magnitude.float().to(target.device),
                                   layer.magnitude_per_output(target.shape), layer.module) - base
            target.copy_((base + (sign * weight) * change).to(target.dtype))


def _rescaled(weight: torch.Tensor, magnitude: torch.Tensor, per_output: bool, module: str) -> torch.Tensor:
    """DoRA: `weight` scaled to the trained magnitude of each output row, or of each input column."""
    rows, columns = weight.shape[0], weight.shape[1]
    extra = [1] * (weight.dim() - 1)
    if per_output and magnitude.numel() == rows:
        norm = weight.reshape(rows, -1).norm(dim=1).reshape(rows, *extra)
        magnitude = magnitude.reshape(rows, *extra)
    elif not per_output and magnitude.numel() == columns:
        norm = weight.transpose(0, 1).reshape(columns, -1).norm(dim=1).reshape(1, columns, *extra[1:])
        magnitude = magnitude.reshape(1, columns, *extra[1:])
    else:
        raise InputError(f"LoRA layer {module} has DoRA magnitudes of {tuple(magnitude.shape)} for a weight of "
                         f"{tuple(weight.shape)}; the LoRA is for a different model.")
    return weight * (magnitude / (norm + torch.finfo(weight.dtype).eps))
