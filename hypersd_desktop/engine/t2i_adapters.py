"""T2I-Adapters (TencentARC's): a control image read once by a small network whose features are added to the UNet's
down blocks at each step of their range, where a ControlNet runs a copy of half the UNet at every step.

They are chosen where ControlNets are (a control with a model, a picture, a scale, a start and an end), as A1111's
ControlNet extension and ComfyUI offer them, and run beside ControlNets in any mode: `adding` hands the features to
the UNet through `down_intrablock_additional_residuals`, as diffusers' adapter pipelines do, so an image equals
`StableDiffusion(XL)AdapterPipeline`'s where those run (text-to-image; their `adapter_conditioning_factor` is the end).
Several adapters add their features, each times its scale (diffusers' `MultiAdapter`), each over its own range.

Layouts met in the wild: a diffusers folder (`config.json` naming `T2IAdapter` + weights) or its weights file
alone, and the original layout (`conv_in`, `body.N.block1`) of `t2iadapter_canny_sd14v1` and the like in A1111's
and ComfyUI's folders (their `.pth` pickles are refused; safetensors copies of them load). With no config, the shape
is read off the weights: the image's channels (1 for sketch adapters) and how much the first layer shrinks the image
(8: SD1.5's `full_adapter`; 16: SDXL's `full_adapter_xl`).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from hypersd_desktop.core.errors import ModelFormatError
from hypersd_desktop.engine.devices import built_with, lay_out
from hypersd_desktop.engine.inspect import (
    SDXL_ADAPTER_SHRINK, T2I_ADAPTER_CLASS, controlnet_weights, t2i_adapter_scale, weights_name,
)
from hypersd_desktop.engine.types import ControlSpec

PREFIX = "adapter."


def from_original_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The original key names (`body.K.block1`, `body.K.in_conv`, `conv_in`) as diffusers names them: the K-th
    residual block is block K // n's (K % n)-th, n blocks a level; a level's first block changes the width
    (`in_conv`), so the first K with one is n (every published adapter has 2)."""
    widened = sorted(int(key.split(".")[1]) for key in state if key.startswith("body.") and ".in_conv." in key)
    per_level = widened[0] if widened else 2
    renamed = {}
    for key, tensor in state.items():
        parts = key.split(".")
        if parts[0] == "body" and len(parts) == 4 and parts[1].isdigit():
            index = int(parts[1])
            level, block = divmod(index, per_level)
            name = (f"body.{level}.in_conv.{parts[3]}" if parts[2] == "in_conv"
                    else f"body.{level}.resnets.{block}.{parts[2]}.{parts[3]}")
            renamed[PREFIX + name] = tensor
        else:
            renamed[PREFIX + key] = tensor
    return renamed


def config_from_weights(state: dict[str, torch.Tensor], name: str) -> dict:
    """diffusers' `T2IAdapter` config for a full adapter's weights (diffusers' names)."""
    first = state.get(PREFIX + "conv_in.weight")
    scale = t2i_adapter_scale(first.shape[1]) if first is not None and first.dim() == 4 else None
    if scale is None:
        raise ModelFormatError(f"{name} is not a T2I-Adapter this app can build: its first layer takes "
                               f"{first.shape[1] if first is not None else 'no'} channels.")
    levels = sorted({int(key.split(".")[2]) for key in state if key.startswith(PREFIX + "body.")})
    blocks = {int(key.split(".")[4]) for key in state if key.startswith(PREFIX + "body.0.resnets.")}
    second = state.get(PREFIX + "body.0.resnets.0.block2.weight")
    if second is not None and second.shape[-1] != 1:
        raise ModelFormatError(f"{name} is a T2I-Adapter whose blocks end in {second.shape[-1]}×{second.shape[-1]} "
                               "convolutions, a variant diffusers' adapter (which the app runs) does not build.")
    if any(".skep." in key or ".down_opt." in key for key in state):
        raise ModelFormatError(f"{name} is a T2I-Adapter variant (skip or strided convolutions) that diffusers' "
                               "adapter, which the app runs, does not build.")
    channels, shrink = scale
    return {"in_channels": channels, "channels": [state[f"{PREFIX}body.{level}.resnets.0.block1.weight"].shape[0]
                                                  for level in levels],
            "num_res_blocks": len(blocks), "downscale_factor": shrink,
            "adapter_type": "full_adapter_xl" if shrink == SDXL_ADAPTER_SHRINK else "full_adapter"}


def _folder_config(folder: Path) -> dict | None:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return config if isinstance(config, dict) and config.get("_class_name") == T2I_ADAPTER_CLASS else None


def load_adapter(path: Path, dtype: torch.dtype):
    """A T2I-Adapter from a diffusers folder or one safetensors file, in `dtype`, on the CPU."""
    from diffusers import T2IAdapter
    from safetensors.torch import load_file

    weights = controlnet_weights(path)
    state = load_file(weights)
    name = weights_name(weights)
    if not any(key.startswith(PREFIX) for key in state):
        state = from_original_layout(state)
    config = _folder_config(weights.parent) or config_from_weights(state, name)
    try:
        model, misfit = built_with(partial(T2IAdapter.from_config, config), state, dtype)
    except (TypeError, ValueError, KeyError, IndexError) as error:
        raise ModelFormatError(f"{name} is not a T2I-Adapter this app can build ({error}).") from error
    if model is None:
        raise ModelFormatError(f"{name} does not fit a T2I-Adapter of its kind ({misfit.counts()}); it may be damaged.")
    return model.eval()


class Adapters:
    """Loaded T2I-Adapters by path, kept while requests use them."""

    def __init__(self) -> None:
        self._loaded: dict[tuple, torch.nn.Module] = {}

    def get(self, paths: list[str], device: str, dtype: torch.dtype, channels_last: bool = False) -> list:
        wanted = [(path, device, dtype, channels_last) for path in paths]
        for key in list(self._loaded):
            if key not in wanted:
                del self._loaded[key]
        for key in wanted:
            if key not in self._loaded:
                self._loaded[key] = lay_out(load_adapter(Path(key[0]), dtype).to(device), channels_last)
        return [self._loaded[key] for key in wanted]

    def clear(self) -> None:
        self._loaded.clear()


@dataclass
class AdapterUnit:
    """One adapter's features for the run (times its scale) and the part of the steps they are added at."""

    features: list[torch.Tensor]
    start: float
    end: float

    def active(self, step: int, total: int) -> bool:
        """As diffusers keeps a ControlNet at a step (`control_guidance_start`/`_end`); from the start, the adapter
        pipeline's `adapter_conditioning_factor` rule."""
        return not (step / total < self.start or (step + 1) / total > self.end)


def adapter_input(picture, channels: int, device, dtype) -> torch.Tensor:
    """A control picture (at the run's size) as diffusers' adapter pipelines give it to the adapter: values 0 to 1,
    gray for an adapter of one channel."""
    pixels = np.asarray(picture.convert("L" if channels == 1 else "RGB"), dtype=np.float32) / 255.0
    pixels = pixels[None, None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)[None]
    return torch.from_numpy(np.ascontiguousarray(pixels)).to(device=device, dtype=dtype)


def units(adapters: list, controls: list[ControlSpec], pictures: list, width: int, height: int) -> list[AdapterUnit]:
    """Each adapter's features of its picture, times its control's scale. An adapter reads the picture in squares
    of the pixels its first layer folds into one (8; SDXL's 16): at a size that is not a multiple of that (SDXL's
    1080 of a Hires fix), the picture is stretched to the next multiple, as ComfyUI gives it, so its features cover
    the UNet's blocks (whose sides round up too)."""
    made = []
    for adapter, control, picture in zip(adapters, controls, pictures):
        shrink = adapter.downscale_factor
        covering = (-(-width // shrink) * shrink, -(-height // shrink) * shrink)
        if picture.size != covering:
            picture = picture.resize(covering, Image.Resampling.LANCZOS)
        features = adapter(adapter_input(picture, adapter.config.in_channels, adapter.device, adapter.dtype))
        made.append(AdapterUnit([feature * control.scale for feature in features], control.start, control.end))
    return made


@contextlib.contextmanager
def adding(unet, adapters: list[AdapterUnit], total: int, step):
    """While the pipeline runs, each UNet call adds the features of the adapters active at `step()` (the index of
    the step being run, of `total`), repeated over the call's batch (its images, and the unguided half)."""
    if not adapters:
        yield
        return

    def pre_hook(_module, args, kwargs):
        index = step()
        active = [unit.features for unit in adapters if unit.active(index, total)]
        if not active:
            return None
        summed = list(active[0])
        for features in active[1:]:
            summed = [total_ + feature for total_, feature in zip(summed, features)]
        sample = args[0] if args else kwargs["sample"]
        kwargs["down_intrablock_additional_residuals"] = [
            feature.repeat(sample.shape[0] // feature.shape[0], 1, 1, 1) for feature in summed]
        return args, kwargs

    handle = unet.register_forward_pre_hook(pre_hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()
