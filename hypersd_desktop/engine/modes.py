"""Image-to-image, inpainting and ControlNet on the torch backend, on the weights already loaded.

Each mode is a diffusers pipeline class. `DiffusionPipeline.from_pipe` builds it from the loaded
text-to-image pipeline's components, so switching modes shares the UNet, VAE and text encoders (and
the fused LoRAs and recorded graphs with them) instead of loading a second copy. ControlNets are
loaded once and kept while requests use them.

| mode (+ ControlNet) | SD1.5 | SDXL |
| --- | --- | --- |
| txt2img | StableDiffusion(ControlNet)Pipeline | StableDiffusionXL(ControlNet)Pipeline |
| img2img | StableDiffusion(ControlNet)Img2ImgPipeline | StableDiffusionXL(ControlNet)Img2ImgPipeline |
| inpaint | StableDiffusion(ControlNet)InpaintPipeline | StableDiffusionXL(ControlNet)InpaintPipeline |

The call's image arguments follow each class: img2img and inpaint take the init image as `image` (and
the mask as `mask_image`); ControlNet text-to-image takes the control image as `image`, the others as
`control_image`.

An inpainting model (a UNet of 9 input channels) runs every request in the mode's inpainting pipeline: an
image-to-image request with a mask over all of the init image, a text-to-image one from mid-grey at full
strength with that mask, as A1111 conditions an inpainting model in txt2img.

A ControlNet Union model (SDXL) runs in the `StableDiffusionXLControlNetUnion…Pipeline` of each mode, which
takes the control images as `control_image` and what each is as `control_mode` (the type's number). Each
control is its own copy of the model in the call (`MultiControlNetUnionModel` for several), with its own
scale and range, as single-kind ControlNets are; the copies share the loaded weights.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Hashable
from functools import partial
from pathlib import Path

import torch

from hypersd_desktop.core.vocab import Architecture, Mode, Preprocessor
from hypersd_desktop.engine.controlnet_files import CONFIG_FROM_UNET, load_controlnet
from hypersd_desktop.engine.devices import lay_out
from hypersd_desktop.engine.inspect import CONTROL_LORA_FORMAT, INPAINTING_CHANNELS, controlnet_weights, inspect_file
from hypersd_desktop.engine.inputs import ModeInputs
from hypersd_desktop.engine.preprocess import inpaint_control
from hypersd_desktop.engine.types import GenerationRequest

STEM = {Architecture.SD15: "StableDiffusion", Architecture.SDXL: "StableDiffusionXL"}
MODE_PART = {Mode.TEXT_TO_IMAGE: "", Mode.IMAGE_TO_IMAGE: "Img2Img", Mode.INPAINT: "Inpaint"}


def pipeline_class_name(architecture: str, mode: Mode, controlnet: bool, union: bool = False) -> str:
    """The diffusers class of the table above, e.g. StableDiffusionXLControlNetInpaintPipeline."""
    control = ("ControlNetUnion" if union else "ControlNet") if controlnet else ""
    return f"{STEM[Architecture(architecture)]}{control}{MODE_PART[mode]}Pipeline"


def is_control_lora(path: str) -> bool:
    """Whether the ControlNet at `path` is a Control-LoRA (a change to the base UNet, not a network of its own)."""
    weights = controlnet_weights(Path(path))
    return weights.suffix == ".safetensors" and inspect_file(weights).format == CONTROL_LORA_FORMAT


def is_union(controlnet) -> bool:
    return type(controlnet).__name__ == "ControlNetUnionModel"


class ControlNets:
    """Loaded ControlNets by path and the base model's UNet config, kept while requests use them."""

    def __init__(self) -> None:
        self._loaded: dict[tuple, torch.nn.Module] = {}

    def get(self, paths: list[str], device: str, dtype: torch.dtype, base_unet_config: dict,
            channels_last: bool = False, unet=None, unet_weights: Hashable = None) -> list[torch.nn.Module]:
        """The ControlNets at `paths` on `device`, their weights `channels_last` or not; `base_unet_config` (the
        base model's UNet's) completes the config of a single file that brings none, so a ControlNet is kept per
        base UNet config (what it takes from it). A Control-LoRA is a change to `unet` (the UNet as it runs,
        LoRAs fused), so one is kept while `unet_weights` (what says which weights it holds) is the same."""
        taken = (*CONFIG_FROM_UNET, "block_out_channels", "cross_attention_dim")
        base = json.dumps({key: base_unet_config.get(key) for key in taken}, sort_keys=True, default=str)
        wanted = [(path, device, dtype, base, channels_last, unet_weights if is_control_lora(path) else None)
                  for path in paths]
        for key in list(self._loaded):
            if key not in wanted:
                del self._loaded[key]  # a ControlNet the requests moved away from: free it
        for key in wanted:
            if key not in self._loaded:
                model = load_controlnet(Path(key[0]), dtype, base_unet_config, unet)
                self._loaded[key] = lay_out(model.to(device), channels_last)
        return [self._loaded[key] for key in wanted]

    def clear(self) -> None:
        self._loaded.clear()


def is_inpainting(unet) -> bool:
    """Whether a UNet is an inpainting model's: it takes the mask and the masked image's latents beside the
    latents (9 input channels)."""
    return unet.config.in_channels == INPAINTING_CHANNELS


def pipeline_mode(request: GenerationRequest, inpainting: bool) -> Mode:
    """The mode whose pipeline runs the request: an inpainting model runs every request as inpainting."""
    return Mode.INPAINT if inpainting else request.mode


def mode_pipeline(base, architecture: str, request: GenerationRequest, controlnets: list):
    """The pipeline for the request's mode, sharing `base`'s components; `base` itself for plain text-to-image."""
    import diffusers

    with_control = bool(controlnets)
    mode = pipeline_mode(request, is_inpainting(base.unet))
    if mode == Mode.TEXT_TO_IMAGE and not with_control:
        return base
    union = any(is_union(controlnet) for controlnet in controlnets)
    cls = getattr(diffusers, pipeline_class_name(architecture, mode, with_control, union))
    extra = {}
    if with_control:
        # diffusers 0.39 raises where the old path, diffusers.pipelines.controlnet, is used
        from diffusers.models import MultiControlNetModel, MultiControlNetUnionModel

        several = MultiControlNetUnionModel if union else MultiControlNetModel
        extra["controlnet"] = controlnets[0] if len(controlnets) == 1 else several(controlnets)
    # torch_dtype=None: from_pipe's default (fp32) would move every shared part, fp16 UNet included, to fp32
    pipe = cls.from_pipe(base, torch_dtype=None, **extra)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@contextlib.contextmanager
def vae_as_placed(vae):
    """While a mode pipeline runs, its VAE keeps the dtype and the weights the engine gave it.

    diffusers' SDXL image-to-image and inpainting pipelines move a VAE marked `force_upcast` (the stock SDXL
    VAE) to fp32 to encode the init image, then to the pipeline's dtype: on CUDA the VAE would end in fp16, where
    it overflows (black images from then on), its weights would be new tensors (a recorded decode graph reads the
    old ones) and, in bf16, every later image would decode in fp32. Here the mark is off for the call and the
    VAE encodes in its own dtype (`Placement.vae_dtype`, chosen for that overflow); the latents come back in the
    caller's dtype, as diffusers' fp32 encode gives them. That also lets SD1.5's pipelines, which never upcast,
    encode with a VAE kept in another dtype than the UNet's (MPS keeps it in fp32)."""
    upcast = vae.config.get("force_upcast", False)
    own = vae.__dict__.get("encode")
    if upcast:
        vae.register_to_config(force_upcast=False)
    vae.encode = partial(_encode_in_own_dtype, vae, own or type(vae).encode.__get__(vae))
    try:
        yield
    finally:
        if own is None:
            del vae.encode
        else:
            vae.encode = own
        if upcast:
            vae.register_to_config(force_upcast=True)


def _encode_in_own_dtype(vae, encode, pixels: torch.Tensor, *args, **kwargs):
    """`encode` on `pixels` cast to the VAE's dtype, its latents (sampled or the mode) cast back to the pixels'."""
    own, wanted = vae.dtype, pixels.dtype
    output = encode(pixels.to(own), *args, **kwargs)
    if own == wanted:
        return output
    from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKLOutput

    distribution = _LatentsIn(output[0] if isinstance(output, tuple) else output.latent_dist, wanted)
    return (distribution,) if isinstance(output, tuple) else AutoencoderKLOutput(latent_dist=distribution)


class _LatentsIn:
    """A VAE's latent distribution whose samples and mode come out in `dtype`; sampled in the VAE's own dtype, so
    the noise drawn is the one an encode in that dtype draws."""

    def __init__(self, distribution, dtype: torch.dtype) -> None:
        self.distribution, self.dtype = distribution, dtype

    def sample(self, generator=None) -> torch.Tensor:
        return self.distribution.sample(generator).to(self.dtype)

    def mode(self) -> torch.Tensor:
        return self.distribution.mode().to(self.dtype)

    def __getattr__(self, name):
        return getattr(self.distribution, name)


def mode_arguments(request: GenerationRequest, images: ModeInputs, union: bool = False,
                   inpainting: bool = False) -> dict:
    """The keyword arguments of the mode pipeline's call for the request's images; `union`: its ControlNets are
    ControlNet Union models; `inpainting`: the model is an inpainting model, which is given a mask everywhere
    where the request has none, and for text-to-image a mid-grey picture at full strength, as A1111 gives one
    (its masked-image latents are then those of grey, as A1111's are)."""
    from PIL import Image

    kwargs: dict = {}
    controls = request.controls
    mode = pipeline_mode(request, inpainting)
    if mode == Mode.TEXT_TO_IMAGE:
        kwargs.update(width=images.width, height=images.height)
    elif request.mode == Mode.TEXT_TO_IMAGE:
        kwargs.update(image=Image.new("RGB", (images.width, images.height), (128, 128, 128)), strength=1.0)
    else:
        kwargs.update(image=images.init, strength=request.strength)
    if mode == Mode.INPAINT:
        mask = images.mask if images.mask is not None else Image.new("L", (images.width, images.height), 255)
        kwargs.update(mask_image=mask, width=images.width, height=images.height)
    seen = [inpaint_control(picture, images.mask, union) if control.preprocessor == Preprocessor.INPAINT else picture
            for control, picture in zip(controls, images.controls)]
    if controls and union:  # one image and type per copy of the model: lists even for one
        kwargs["control_image"] = seen
        kwargs["control_mode"] = [control.union_type.index for control in controls]
    elif controls:
        control_images = seen[0] if len(controls) == 1 else seen
        kwargs["image" if mode == Mode.TEXT_TO_IMAGE else "control_image"] = control_images
    if controls:
        one = len(controls) == 1
        kwargs["controlnet_conditioning_scale"] = controls[0].scale if one else [c.scale for c in controls]
        kwargs["control_guidance_start"] = controls[0].start if one else [c.start for c in controls]
        kwargs["control_guidance_end"] = controls[0].end if one else [c.end for c in controls]
    return kwargs
