"""IP-Adapters on the torch backend, in the loaded pipeline (what they are: `ip_adapter_files`).

diffusers runs an IP-Adapter inside the UNet: `load_ip_adapter` gives each cross-attention an attention processor
with the adapter's key and value layers and the UNet the adapter's image projection, and the pipelines encode
`ip_adapter_image` with the pipeline's `image_encoder`. Here diffusers reads the adapter from its safetensors file
and the app loads the encoder from its folder or its weights alone, for the first request that names them; they
are kept while the following ones name the same (the Draw tab's requests come one after another); a request that
names none or others takes them out of the UNet again (`unload_ip_adapter`: the plain attention processors, no
projection), so the LoRAs fused into the same UNet are untouched. Its scale is set for each request.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from hypersd_desktop.engine.ip_adapter_files import encoder_config, encoder_weights
from hypersd_desktop.engine.inspect import read_header
from hypersd_desktop.engine.types import GenerationRequest, IPAdapterSpec


def load_encoder(path: str, dtype: torch.dtype, device: str):
    """The CLIP image encoder at `path`: a folder as transformers saves it (its config.json says its shape), or its
    weights alone (their shapes say it)."""
    from safetensors.torch import load_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    folder = Path(path)
    weights = encoder_weights(folder)
    if folder.is_dir():
        config = CLIPVisionConfig.from_json_file(str(folder / "config.json"))
    else:
        tensors, _ = read_header(weights)
        config = CLIPVisionConfig(**encoder_config(weights.name, tensors))
    state = load_file(str(weights))
    state.pop("vision_model.embeddings.position_ids", None)  # a buffer older transformers saved
    model = CLIPVisionModelWithProjection.from_pretrained(None, config=config, state_dict=state, torch_dtype=dtype)
    return model.to(device).eval()


def _stamp(path: str) -> tuple[str, int, int]:
    weights = encoder_weights(path)
    stat = os.stat(weights)
    return str(weights), stat.st_size, stat.st_mtime_ns


class IPAdapters:
    """The IP-Adapters in the loaded pipeline's UNet, and the image encoder beside them."""

    def __init__(self) -> None:
        self._key: tuple | None = None  # what is in the UNet: its id, each adapter's file, the encoder's

    def apply(self, pipe, request: GenerationRequest, device: str, dtype: torch.dtype, offloaded: bool) -> None:
        """Put the request's IP-Adapters into `pipe` (its UNet, its image encoder), or take them out where it names
        none. `offloaded`: the pipeline's parts are moved to the GPU as they run (`enable_model_cpu_offload`), the
        encoder then among them."""
        specs = request.ip_adapters
        key = (id(pipe.unet), *(_stamp(spec.model) for spec in specs), _stamp(specs[0].encoder)) if specs else None
        if key != self._key:
            self.remove(pipe)
            if specs:
                self._load(pipe, specs, device, dtype, offloaded)
                self._key = key
        elif specs:
            pipe.set_ip_adapter_scale([spec.scale for spec in specs])

    def remove(self, pipe) -> None:
        """Take the IP-Adapters out of `pipe`'s UNet and drop the encoder; nothing where there are none."""
        if self._key is None:
            return
        self._key = None
        if getattr(pipe.unet, "encoder_hid_proj", None) is not None:
            pipe.unload_ip_adapter()

    def forget(self) -> None:
        """The pipeline they were in is gone."""
        self._key = None

    @staticmethod
    def _load(pipe, specs: tuple[IPAdapterSpec, ...], device: str, dtype: torch.dtype, offloaded: bool) -> None:
        from transformers import CLIPImageProcessor

        encoder = load_encoder(specs[0].encoder, dtype, "cpu" if offloaded else device)
        size = encoder.config.image_size
        pipe.register_modules(image_encoder=encoder, feature_extractor=CLIPImageProcessor(size=size, crop_size=size))
        files = [Path(spec.model) for spec in specs]
        try:
            # read with safetensors from the file's folder, never the hub; its layers take the UNet's device and dtype
            pipe.load_ip_adapter([str(file.parent) for file in files], subfolder=[""] * len(files),
                                 weight_name=[file.name for file in files], image_encoder_folder=None,
                                 local_files_only=True)
            pipe.set_ip_adapter_scale([spec.scale for spec in specs])
        except Exception:
            pipe.unload_ip_adapter()  # the encoder too, which would otherwise stay in memory with nothing to use it
            raise
        if offloaded:
            pipe.enable_model_cpu_offload()  # its hooks again, the encoder's among them


def call_arguments(request: GenerationRequest, pictures: list) -> dict:
    """The pipeline call's IP-Adapter arguments: one picture per adapter."""
    return {"ip_adapter_image": list(pictures)} if request.ip_adapters else {}
