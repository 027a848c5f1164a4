"""IP-Adapters and the CLIP image encoders they read pictures with, told apart by their headers (torch-free).

An IP-Adapter (Tencent AI Lab's, `h94/IP-Adapter`) steers an image by a picture: a CLIP image encoder reads the
picture, the adapter's image projection turns what it read into a few tokens, and the adapter's own key and value
layers beside each cross-attention of the UNet attend to them as the UNet attends to the prompt. Its file holds
`image_proj.*` and `ip_adapter.<n>.to_k_ip.weight` / `to_v_ip.weight` (n = 1, 3, 5 … over the UNet's
cross-attentions), whose input width is the text's: 768 for SD1.5, 2048 for SDXL.

Which encoder an adapter needs is in the shape of its projection's first layer:
- the plain adapters (`ip-adapter_sd15`, `ip-adapter_sdxl`, `…_vit-h`) project the encoder's image embedding
  (`image_proj.proj.weight`, its input the encoder's projection width: 1024 for OpenCLIP ViT-H/14, 1280 for
  ViT-bigG/14);
- the Plus and Full Face ones read the encoder's hidden states (`image_proj.proj_in.weight` of a resampler,
  `image_proj.proj.0.weight` of an MLP; the input is the encoder's hidden width: 1280 for ViT-H, 1664 for bigG);
- the FaceID ones read a face embedding from InsightFace instead of a CLIP encoder: the app does not run them.

The encoders are transformers' `CLIPVisionModelWithProjection`: the folder `h94/IP-Adapter` keeps beside the
adapters (`models/image_encoder`: config.json, model.safetensors) or its weights alone, as ComfyUI keeps them
(`clip_vision/CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors`), whose shapes give the config (`encoder_config`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from hypersd_desktop.core.errors import InputError, ModelFormatError
from hypersd_desktop.engine.inspect import FACEID, TensorInfo, is_faceid, read_header

ENCODER_FILE = "model.safetensors"  # the weights of an encoder folder, beside its config.json
ENCODER_MODEL_TYPE = "clip_vision_model"
# Encoders by their projection width, as people know them; their hidden widths are 1024, 1280 and 1664.
ENCODER_NAMES = {768: "CLIP ViT-L/14", 1024: "OpenCLIP ViT-H/14", 1280: "OpenCLIP ViT-bigG/14"}
HIDDEN_NAMES = {1024: "CLIP ViT-L/14", 1280: "OpenCLIP ViT-H/14", 1664: "OpenCLIP ViT-bigG/14"}
_LAYER = re.compile(r"vision_model\.encoder\.layers\.(\d+)\.")
HEADS = 16  # OpenCLIP ViT-L/14, ViT-H/14 and ViT-bigG/14 alike


@dataclass(frozen=True)
class EncoderNeed:
    """What an IP-Adapter takes from the image encoder: its image embedding (`hidden` False), `width` wide, or its
    second-to-last hidden states (`hidden` True), `width` wide."""

    width: int
    hidden: bool

    @property
    def encoder(self) -> str:
        """The encoder's name, "OpenCLIP ViT-H/14", or its width where it is none of the known ones."""
        names = HIDDEN_NAMES if self.hidden else ENCODER_NAMES
        return names.get(self.width, f"a CLIP image encoder {self.width} wide")


# Where h94/IP-Adapter keeps each encoder, as a link the model library downloads (`models download LINK`)
ENCODER_LINKS = {"OpenCLIP ViT-H/14": "https://huggingface.co/h94/IP-Adapter/blob/main/models/image_encoder/"
                                      "model.safetensors",
                 "OpenCLIP ViT-bigG/14": "https://huggingface.co/h94/IP-Adapter/blob/main/sdxl_models/image_encoder/"
                                         "model.safetensors"}
# The encoders the catalog (resources/catalog.json) offers, by its entry ids
ENCODER_ENTRIES = {"OpenCLIP ViT-H/14": ("clip-vit-h-14-image-encoder", "OpenCLIP ViT-H/14 image encoder")}


def no_encoder(adapter: str | Path, need: EncoderNeed, how: str) -> str:
    """What to do where no installed image encoder is the one the IP-Adapter at `adapter` reads with; `how` names
    the other way (choosing one)."""
    link = ENCODER_LINKS.get(need.encoder)
    where = f" (h94/IP-Adapter's: download {link} in the Models tab's address box or with `hypersd-desktop models " \
            f"download`)" if link else ""
    if need.encoder in ENCODER_ENTRIES:
        entry_id, name = ENCODER_ENTRIES[need.encoder]
        where = f" (the Models tab's {name}, or `hypersd-desktop models download {entry_id}`)"
    return (f"The IP-Adapter {Path(adapter).name} reads pictures with {need.encoder}, and no such image encoder is "
            f"installed: install it{where}, or {how}.")


@dataclass(frozen=True)
class EncoderShape:
    """An image encoder's widths: of its hidden states and of its image embedding (projection)."""

    hidden: int
    projection: int

    def serves(self, need: EncoderNeed) -> bool:
        return (self.hidden if need.hidden else self.projection) == need.width

    @property
    def known(self) -> str | None:
        """The encoder's name, "OpenCLIP ViT-H/14", where it is one of the known ones."""
        return ENCODER_NAMES.get(self.projection) or HIDDEN_NAMES.get(self.hidden)

    @property
    def name(self) -> str:
        return self.known or f"a CLIP image encoder {self.projection} wide"


def webui_module(encoder: str | Path) -> str:
    """The preprocessor sd-webui-controlnet names for an IP-Adapter unit reading with `encoder`: ip-adapter_clip_h
    (ViT-H/14), ip-adapter_clip_g (ViT-bigG/14); "ip-adapter_clip" where the encoder is another or unreadable."""
    try:
        projection = encoder_shape(encoder).projection
    except (OSError, ModelFormatError):
        return "ip-adapter_clip"
    return {1024: "ip-adapter_clip_h", 1280: "ip-adapter_clip_g"}.get(projection, "ip-adapter_clip")


def adapter_need(path: str | Path) -> EncoderNeed:
    """What the IP-Adapter file at `path` takes from its image encoder; `ModelFormatError` for a file that is no
    IP-Adapter the app runs (a FaceID one among them)."""
    path = Path(path)
    tensors, _ = read_header(path)
    return need_of(path.name, tensors)


def need_of(name: str, tensors: dict[str, TensorInfo]) -> EncoderNeed:
    def shape(key: str) -> tuple[int, ...]:
        info = tensors.get(f"image_proj.{key}")
        return info.shape if info is not None else ()

    if is_faceid(tensors):
        raise ModelFormatError(f"{name} is a {FACEID}; the app runs the plain, Plus and Full Face IP-Adapters.")
    if len(shape("proj.weight")) == 2:  # the plain adapters: an image embedding projected to tokens
        return EncoderNeed(shape("proj.weight")[1], hidden=False)
    for key in ("proj_in.weight", "proj.0.weight"):  # Plus (a resampler), Full Face (an MLP): hidden states
        if len(shape(key)) == 2:
            return EncoderNeed(shape(key)[1], hidden=True)
    raise ModelFormatError(f"{name} is no IP-Adapter the app reads: it has no image projection it knows "
                           "(image_proj.proj, proj_in or proj.0).")


def encoder_weights(path: str | Path) -> Path:
    """The weights file of an image encoder: the file itself, or a folder's model.safetensors."""
    path = Path(path)
    return path / ENCODER_FILE if path.is_dir() else path


def is_encoder_folder(folder: Path) -> bool:
    """Whether `folder` is a CLIP image encoder as transformers saves it (config.json of model_type
    clip_vision_model, and model.safetensors)."""
    if not (folder / "config.json").is_file() or not (folder / ENCODER_FILE).is_file():
        return False
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(config, dict) and config.get("model_type") == ENCODER_MODEL_TYPE


def encoder_shape(path: str | Path) -> EncoderShape:
    """The widths of the image encoder at `path` (a folder or its weights alone), from its header."""
    weights = encoder_weights(path)
    tensors, _ = read_header(weights)
    config = encoder_config(weights.name, tensors)
    return EncoderShape(config["hidden_size"], config["projection_dim"])


def encoder_config(name: str, tensors: dict[str, TensorInfo]) -> dict:
    """transformers' `CLIPVisionConfig` arguments for the weights of a `CLIPVisionModelWithProjection`, from their
    shapes (the heads are not in them: OpenCLIP's ViT-L, H and bigG have 16, and GELU, as h94's configs say)."""
    def shape(key: str) -> tuple[int, ...]:
        info = tensors.get(key)
        if info is None:
            raise ModelFormatError(f"{name} is no CLIP image encoder the app reads: it has no {key}. Use the encoder "
                                   "h94/IP-Adapter has beside the adapters (models/image_encoder).")
        return info.shape

    patch = shape("vision_model.embeddings.patch_embedding.weight")
    positions = shape("vision_model.embeddings.position_embedding.weight")
    projection = shape("visual_projection.weight")
    intermediate = shape("vision_model.encoder.layers.0.mlp.fc1.weight")
    layers = {int(match.group(1)) for key in tensors if (match := _LAYER.match(key))}
    if len(patch) != 4 or len(positions) != 2 or len(projection) != 2 or len(intermediate) != 2:
        raise ModelFormatError(f"{name}: its tensors are not shaped as a CLIP image encoder's.")
    hidden = patch[0]
    side = round((positions[0] - 1) ** 0.5)
    return dict(hidden_size=hidden, intermediate_size=intermediate[0], projection_dim=projection[0],
                num_hidden_layers=max(layers) + 1, num_attention_heads=HEADS if hidden % HEADS == 0 else 1,
                num_channels=patch[1], patch_size=patch[2], image_size=side * patch[2], hidden_act="gelu",
                layer_norm_eps=1e-5)


def adapter_text_width(path: str | Path) -> int | None:
    """The width of the text the IP-Adapter at `path` was trained beside (its key layers' input): 768 for SD1.5,
    2048 for SDXL."""
    tensors, _ = read_header(Path(path))
    shape = next((info.shape for key, info in tensors.items() if key.endswith(".to_k_ip.weight")), ())
    return shape[1] if len(shape) == 2 else None


def unet_text_width(base_model: str | Path, unet: str | Path | None = None) -> int | None:
    """The width of the text the UNet a request runs reads (its cross-attention's key input): the UNet file's where
    one replaces the base model's, a diffusers folder's unet config, a checkpoint's header; None where none says."""
    path = Path(unet or base_model)
    try:
        if path.is_dir():
            config = json.loads((path / "unet" / "config.json").read_text(encoding="utf-8"))
            width = config.get("cross_attention_dim") if isinstance(config, dict) else None
            return width if isinstance(width, int) else None
        tensors, _ = read_header(path)
    except (OSError, ValueError, RecursionError, ModelFormatError):
        return None
    shape = next((info.shape for key, info in tensors.items() if key.endswith("attn2.to_k.weight")), ())
    return shape[1] if len(shape) == 2 else None


def check_pair(adapter: str | Path, encoder: str | Path) -> None:
    """`InputError` saying what to do where the encoder at `encoder` is not the one the adapter reads with."""
    need, shape = adapter_need(adapter), encoder_shape(encoder)
    if not shape.serves(need):
        raise InputError(f"The IP-Adapter {Path(adapter).name} reads pictures with {need.encoder}; the image "
                         f"encoder {Path(encoder).name} is {shape.name}. Install {need.encoder} (h94/IP-Adapter "
                         "has it beside the adapters) and choose it.")
