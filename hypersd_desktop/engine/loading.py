"""Loading base models, UNet and VAE overrides and TAESD from local files only.

Nothing is fetched: a diffusers folder brings its own configs, and a single-file checkpoint is
read with the diffusers config folder bundled in `resources/configs/<architecture>` (or the one
the request names); an inpainting checkpoint's UNet (9 input channels) is read with that config widened to
them. A checkpoint that marks itself as predicting v (`inspect.base_prediction`)
gets a v-prediction scheduler, with zero terminal SNR where it says so. Weights are read only
from safetensors.
"""

from __future__ import annotations

import json
import re
from functools import partial
from pathlib import Path

import torch

from hypersd_desktop.core.errors import InputError, ModelFormatError
from hypersd_desktop.core.resources import resources_dir
from hypersd_desktop.core.vocab import Architecture, WeightsKind, architecture_label
from hypersd_desktop.engine.devices import built_with
from hypersd_desktop.engine.inspect import (
    OLD_CLIP_PREFIX, TAESD_DECODER_FORMAT, base_in_channels, base_prediction, has_key_prefix, inspect_file,
    latent_family, not_the_kind,
)

# The parts diffusers names by class when a checkpoint lacks them, in words.
_PART_WORDS = {"CLIPText": "text encoder", "UNet": "UNet", "Autoencoder": "VAE"}


def bundled_config(architecture: str) -> Path:
    return resources_dir() / "configs" / architecture


def _pipeline_class(architecture: str):
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    return StableDiffusionXLPipeline if architecture == Architecture.SDXL else StableDiffusionPipeline


def _variant(folder: Path) -> str | None:
    unet = folder / "unet"
    if (unet / "diffusion_pytorch_model.fp16.safetensors").exists() and not (
        unet / "diffusion_pytorch_model.safetensors"
    ).exists():
        return "fp16"
    return None


def load_base_pipeline(path: str | Path, architecture: str, dtype: torch.dtype, config: str | None = None, unet=None,
                       vae=None):
    """A diffusers pipeline for a base model folder or a single-file checkpoint, on the CPU; `unet` and `vae`, when
    given, are used instead of the model's own (and a checkpoint without a VAE needs one)."""
    path = Path(path)
    cls = _pipeline_class(architecture)
    extra = {name: part for name, part in (("unet", unet), ("vae", vae)) if part is not None}
    if architecture == Architecture.SD15:
        extra.update(safety_checker=None, requires_safety_checker=False, feature_extractor=None)
    if path.is_dir():
        for weights in path.glob("*/*.bin"):
            raise InputError(f"{weights} is a pickle file; this model folder must be converted to safetensors first.")
        return cls.from_pretrained(
            path, torch_dtype=dtype, local_files_only=True, use_safetensors=True, variant=_variant(path), **extra
        )
    config_dir = Path(config) if config else bundled_config(architecture)
    if not (config_dir / "model_index.json").is_file():
        raise InputError(f"The config folder {config_dir} for single-file loading has no model_index.json.")
    if architecture == Architecture.SD15 and has_key_prefix(path, OLD_CLIP_PREFIX):
        extra["text_encoder"] = _old_layout_text_encoder(path, config_dir, dtype)
    channels = base_in_channels(path)
    if unet is None and channels != 4:  # an inpainting checkpoint: the config folder's UNet takes 4 channels
        from diffusers import UNet2DConditionModel

        extra["unet"] = UNet2DConditionModel.from_single_file(
            str(path), config=str(config_dir), subfolder="unet", in_channels=channels, local_files_only=True,
            torch_dtype=dtype)
    from diffusers.loaders.single_file_utils import SingleFileComponentError

    try:
        pipe = cls.from_single_file(str(path), config=str(config_dir), local_files_only=True, torch_dtype=dtype,
                                    **extra)
    except SingleFileComponentError as error:  # diffusers' message tells a programmer what to pass it
        found = re.search(r"Failed to load (\w+)", str(error))
        part = next((words for prefix, words in _PART_WORDS.items() if found and found.group(1).startswith(prefix)),
                    "parts")
        encoders = "text encoders" if architecture == Architecture.SDXL else "text encoder"
        raise ModelFormatError(
            f"{path.name} has no weights for its {part}: it is not a whole {architecture_label(architecture)} "
            f"checkpoint, which holds the UNet, the {encoders} and the VAE. Use the whole model's file.") from None
    prediction, zero_snr = base_prediction(path)
    if prediction is not None:  # the config folder is an epsilon model's: the checkpoint says otherwise
        from diffusers import EulerDiscreteScheduler

        pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config, prediction_type=prediction,
                                                            rescale_betas_zero_snr=zero_snr)
    return pipe


def _old_layout_text_encoder(path: Path, config_dir: Path, dtype: torch.dtype):
    """The text encoder of an SD1.x checkpoint saved before transformers 4.21, whose CLIP layers are not under
    `text_model.`: renamed as AUTOMATIC1111 renames them when it loads such a file."""
    from safetensors import safe_open
    from transformers import CLIPTextConfig, CLIPTextModel

    prefix = "cond_stage_model.transformer."
    model = CLIPTextModel(CLIPTextConfig.from_pretrained(config_dir / "text_encoder", local_files_only=True))
    inner = "text_model." if hasattr(model, "text_model") else ""  # later transformers drop the wrapper
    with safe_open(str(path), framework="pt") as weights:
        state = {inner + key[len(prefix):].removeprefix("text_model."): weights.get_tensor(key)
                 for key in weights.keys() if key.startswith(prefix)}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [key for key in missing if not key.endswith("position_ids")]  # a buffer, absent from many files
    if missing or unexpected:
        raise ModelFormatError(f"{path.name}'s text encoder does not fit an SD1.5 one ({len(missing)} missing and "
                               f"{len(unexpected)} unexpected weights); it may be damaged.")
    return model.to(dtype)


def part_config(base: str | Path, config: str | None, architecture: str, part: str) -> dict:
    """The config of a base model's `part` ("unet", "vae"): its folder's, or for a checkpoint (or a folder without
    that part) the config folder's."""
    base = Path(base)
    folder = Path(config) if config else bundled_config(architecture)
    if base.is_dir() and (base / part / "config.json").is_file():
        folder = base
    return json.loads((folder / part / "config.json").read_text(encoding="utf-8"))


def load_unet_override(path: str | Path, config: dict, architecture: str, dtype: torch.dtype):
    """A full UNet from a safetensors state dict (diffusers or original key names) on the base model's config."""
    from diffusers import UNet2DConditionModel
    from safetensors.torch import load_file

    from hypersd_desktop.engine.planning import check_unet_file

    path = Path(path)
    info = check_unet_file(path, architecture)
    if info.in_channels is not None:  # its own first convolution's (the Hyper-SDXL UNet on an inpainting base)
        config = {**config, "in_channels": info.in_channels}
    state = load_file(str(path))
    if info.format == "ldm":
        from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

        state = convert_ldm_unet_checkpoint(state, config)
    unet, misfit = built_with(partial(UNet2DConditionModel.from_config, config), state, dtype)
    if unet is None:
        raise ModelFormatError(f"{path.name} does not fit the base model's UNet ({misfit.counts()}).")
    return unet


def load_vae_override(path: str | Path, dtype: torch.dtype, base_vae_config: dict):
    """A VAE from a diffusers folder or a safetensors file (diffusers or original key names)."""
    from diffusers import AutoencoderKL
    from safetensors.torch import load_file

    path = Path(path)
    if path.is_dir():
        family = latent_family(AutoencoderKL.load_config(path, local_files_only=True).get("latent_channels"))
        if family is not None:
            raise InputError(f"{path.name} is a VAE for {family}, which this app does not run; it runs SD1.5 and "
                             "SDXL models.")
        return AutoencoderKL.from_pretrained(path, torch_dtype=dtype, local_files_only=True, use_safetensors=True)
    info = inspect_file(path)
    if info.kind != WeightsKind.VAE or info.family:
        raise InputError(not_the_kind(path, info, "a VAE"))
    state = load_file(str(path))
    if info.format == "ldm":
        from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

        state = convert_ldm_vae_checkpoint(state, base_vae_config)
    vae, _ = built_with(partial(AutoencoderKL.from_config, base_vae_config), state, dtype)
    if vae is None:
        raise ModelFormatError(f"{path.name} does not fit the base model's VAE (its weights have other names or "
                               "shapes); it may be damaged, or be a VAE of another kind.")
    return vae


def load_taesd(path: str | Path, dtype: torch.dtype, device: str):
    """The tiny TAESD/TAESDXL autoencoder from a diffusers folder, its weights file, or the decoder file as
    madebyollin and ComfyUI's vae_approx folder have it (`taesd_decoder.safetensors`: only decoding is asked of
    TAESD, so the encoder stays unloaded)."""
    from diffusers import AutoencoderTiny
    from safetensors.torch import load_file

    path = Path(path)
    if path.is_dir():
        return AutoencoderTiny.from_pretrained(path, torch_dtype=dtype, local_files_only=True,
                                               use_safetensors=True).to(device)
    if not path.is_file():
        raise InputError(f"TAESD weights {path} not found; install TAESD from the model manager.")
    info = inspect_file(path)
    if info.kind != WeightsKind.TAESD or info.family:
        raise InputError(not_the_kind(path, info, "a TAESD decoder"))
    state = load_file(str(path))
    if info.format == TAESD_DECODER_FORMAT:
        state = {_diffusers_decoder_key(key): tensor for key, tensor in state.items()}
    model = AutoencoderTiny()  # TAESD's and TAESDXL's shape: diffusers' defaults, as their config.json says
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError:  # misshapen weights
        missing, unexpected = [], ["(a weight of another shape)"]
    if info.format == TAESD_DECODER_FORMAT:
        missing = [key for key in missing if key.startswith("decoder.")]
    if missing or unexpected:
        raise ModelFormatError(f"{path.name} does not fit TAESD (its weights have other names or shapes); it may be "
                               "damaged, or be a tiny autoencoder of another kind.")
    return model.to(device=device, dtype=dtype)


def _diffusers_decoder_key(key: str) -> str:
    """`3.conv.0.weight` of an original TAESD decoder as diffusers names it: `decoder.layers.2.conv.0.weight`."""
    index, rest = key.split(".", 1)
    return f"decoder.layers.{int(index) - 1}.{rest}"
