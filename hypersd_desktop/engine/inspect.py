"""What a weights file is, read from its safetensors header alone (no tensors loaded, no torch).

A `.safetensors` file is an 8-byte little-endian header length, a JSON header mapping tensor
names to dtype, shape and byte offsets, then the raw data. The key names and a few shapes say
whether the file is a full checkpoint, a UNet, a VAE, a LoRA or a ControlNet, for SD1.5 or
SDXL, and in which key style. Files for the base models the app does not run (SD2, the SDXL
refiner, SD3, FLUX) are named as such, so they are never taken for SD1.5 or SDXL ones. Pickle
formats are refused before any byte is interpreted.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import re
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hypersd_desktop.core.errors import AppError, InputError, ModelFormatError, UnsafeFileError
from hypersd_desktop.core.vocab import Architecture, WeightsKind
from hypersd_desktop.engine.recipes import recipe_for_checkpoint, recipe_for_file
from hypersd_desktop.engine.upscaler_files import upscaler_layout

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
WEIGHTS_SUFFIXES = (".safetensors", *PICKLE_SUFFIXES)  # what the importer looks for (and refuses, for pickles)
MAX_HEADER_BYTES = 16 * 1024 * 1024  # real headers are under 1 MB; larger is corrupt or hostile
MAX_TENSORS = 100_000  # a full SDXL checkpoint has about 2,500
DTYPE_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}


CROSS_ATTENTION_DIMS = {768: Architecture.SD15, 2048: Architecture.SDXL}
# LyCORIS methods the app cannot fuse, by a tensor only they have (the suffix after the layer's name).
LYCORIS_OTHER_METHODS = {"oft_blocks": "OFT/BOFT", "oft_diag": "OFT", "a1.weight": "GLoRA", "diff": "full (diff)",
                         "on_input": "IA³"}
# The pipeline classes a diffusers folder's model_index.json names: text-to-image ones, and inpainting ones
# (stable-diffusion-inpainting, stable-diffusion-xl-1.0-inpainting-0.1), whose components are the same. (The SDXL
# refiner names StableDiffusionXLImg2ImgPipeline and is told apart by its UNet: `folder_family`.)
PIPELINE_CLASSES = {"StableDiffusionPipeline": Architecture.SD15, "StableDiffusionInpaintPipeline": Architecture.SD15,
                    "StableDiffusionImg2ImgPipeline": Architecture.SD15,
                    "StableDiffusionXLPipeline": Architecture.SDXL, "StableDiffusionXLInpaintPipeline": Architecture.SDXL,
                    "StableDiffusionXLImg2ImgPipeline": Architecture.SDXL}
# Cross-attention widths of the UNets the app does not run: SD2's OpenCLIP-H text, the SDXL refiner's OpenCLIP-G.
OTHER_CROSS_ATTENTION_DIMS = {1024: "SD2", 1280: "the SDXL refiner"}
# Weights people keep beside their models that the app does not run, by their key names (prefixes, fragments), so
# an import of a whole models folder says what each is: named after the tried kinds, so none of those is taken.
OTHER_KINDS = {
    "T2I-Adapter of another kind (a color or style adapter)": (("adapter.body.", "adapter.conv_in."), ()),
    "ControlNet-LLLite": (("lllite_",), ()),
    "AnimateDiff motion module": ((), (".motion_modules.",)),
    "CLIP vision encoder": (("vision_model.",), ()),
    "T5 text encoder": (("encoder.block.", "shared.weight"), ()),
    # ESRGAN files the app's upscaling does not take (`upscaler_files`): ESRGAN+ (`conv1x1`)
    "ESRGAN variant (ESRGAN+)": ((), ("RDB1.", "rdb1.")),
    # upscalers of other architectures: Swin2SR (`residual_group`); DAT, HAT and SwinIR files that do not add up as
    # the ones the app runs (`upscaler_files`: 1× restoration models among them)
    "upscaler of another architecture (Swin2SR) or a DAT, HAT or SwinIR variant": (("before_RG.",),
                                                                                   (".residual_group.",)),
    # SPAN and PLKSR files that do not add up as the ones the app runs (`upscaler_files`): PLKSR (not Real)
    "SPAN or PLKSR variant (PLKSR)": (("block_1.c1_r.", "feats.1.lk."), ()),
}
_UNET_BLOCKS = ("down_blocks_", "up_blocks_", "mid_block_", "input_blocks_", "output_blocks_", "middle_block_")
# Where a UNet-style file keeps its cross-attention key projection, which takes the text encoder's width:
# weights, and the input side of LoRA (kohya, PEFT, diffusers) and LoHa layers.
_CROSS_ATTENTION_KEYS = ("attn2.to_k.weight", "attn2_to_k.lora_down.weight", "attn2.to_k.lora_A.weight",
                         "attn2.to_k.lora.down.weight", "attn2.to_k.lora_down.weight", "attn2_to_k.hada_w1_b",
                         "attn2.to_k.hada_w1_b", "attn2.to_k.down")  # the last: a Control-LoRA's
# Stability's Control-LoRAs: a ControlNet stored as a low-rank change to the base UNet (`<layer>.up`, `.down`)
CONTROL_LORA_FORMAT = "control-lora"
# TencentARC's T2I-Adapters, run where ControlNets are (engine/t2i_adapters.py): diffusers' key names
# (`adapter.body.0.resnets.0.block1`) and the original ones (`body.0.block1`), as A1111's and ComfyUI's folders hold
# them (`t2iadapter_canny_sd14v1`)
T2I_ADAPTER_FORMAT, T2I_ADAPTER_ORIGINAL_FORMAT = "t2i-adapter", "t2i-adapter-original"
T2I_ADAPTER_FORMATS = (T2I_ADAPTER_FORMAT, T2I_ADAPTER_ORIGINAL_FORMAT)
T2I_ADAPTER_CLASS = "T2IAdapter"  # the `_class_name` of a diffusers adapter folder's config
V_PREDICTION = "v_prediction"  # diffusers' name for it
CONTROLNET_CLASSES = ("ControlNetModel", "ControlNetUnionModel")  # the `_class_name`s of ControlNet configs
INPAINTING_CHANNELS = 9  # an inpainting UNet's inputs: the latents (4), the mask (1), the masked image's latents (4)
EDM_FAMILY = "EDM sampling (Playground v2.5, CosXL)"
FLUX_WIDTH = 3072  # FLUX's transformer width; SD3's is 1536 (medium) or 2432 (3.5 large)


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class WeightsInfo:
    """What `inspect_file` found. `format` is the key style: ldm, diffusers, kohya or peft."""

    path: str
    kind: WeightsKind
    architecture: str | None
    format: str | None
    hyper_sd: str | None
    tensor_count: int
    size_bytes: int
    metadata: dict[str, str] = field(default_factory=dict)
    # The base model a file is for when the app does not run it ("FLUX", "SD2", …); `architecture` is then None.
    family: str | None = None
    # A checkpoint trained to predict v, not the noise (NoobAI-XL V-Pred and its merges mark it with an empty
    # `v_pred` tensor, and zero terminal SNR with `ztsnr`, as ComfyUI and reForge read them); None: epsilon.
    prediction: str | None = None
    zero_snr: bool = False
    # The channels a checkpoint's or UNet's first convolution takes: 4 (the latents), 9 for an inpainting model
    # (the latents, the mask and the masked image's latents), 8 for InstructPix2Pix; None for other kinds.
    in_channels: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def refuse_pickle(path: Path) -> None:
    """Raise `UnsafeFileError` for a pickle-based weights file, judged by name or content."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise UnsafeFileError(
            f"{path.name} is a pickle file ({path.suffix}); loading one can run any code it contains, "
            "so it is refused. Use the .safetensors version of this model."
        )
    with path.open("rb") as handle:
        head = handle.read(9)
    # A safetensors header (8-byte length, then "{") can start with any bytes, so only a file
    # whose ninth byte is not "{" is judged by the zip and pickle signatures.
    zip_archive = head.startswith(b"PK\x03\x04")
    pickle_stream = head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")
    if head[8:9] != b"{" and zip_archive and not _holds_pickle(path):
        raise ModelFormatError(f"{path.name} is a ZIP archive, not model weights: unpack it, then import the "
                               ".safetensors file (or the diffusers folder) it holds.")
    if head[8:9] != b"{" and (zip_archive or pickle_stream):
        raise UnsafeFileError(
            f"{path.name} is a pickle (PyTorch zip or pickle protocol) despite its name; it is refused "
            "because loading it can run code. Use a real .safetensors file."
        )


def _holds_pickle(path: Path) -> bool:
    """Whether a ZIP file is PyTorch's (its `data.pkl`, read from the archive's listing alone), or one not read
    as a ZIP at all: either way it is judged a pickle."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith(".pkl") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return True


# Files saved under a model's name that are something else, by their first bytes: what each is, and what to do.
_LFS_POINTER = re.compile(rb"^version https://git-lfs\.github\.com/spec/v1\s+oid sha256:[0-9a-f]{64}\s+size (\d+)")
_WEB_PAGE = re.compile(rb"^(?:\xef\xbb\xbf)?\s*(?:<!doctype html|<html|<head|<body|<\?xml)", re.IGNORECASE)


def _what_else(name: str, head: bytes) -> str | None:
    """What a file named as model weights is instead, from its first bytes (a page the site sent in place of the
    file, a Git LFS pointer, a GGUF or archive file, a JSON or text reply), with what to do; None for bytes that
    say nothing (a damaged file)."""
    pointer = _LFS_POINTER.match(head)
    if pointer:
        return (f"{name} is a Git LFS pointer to the model ({int(pointer[1]):,} bytes), not the model itself: the "
                "repository was cloned without Git LFS. Run `git lfs pull` in its folder, or download the file.")
    if _WEB_PAGE.match(head):
        return (f"{name} is a web page (HTML), not the model: the site sent a page (often a sign-in or error page) "
                "instead of the file. Download it again, signed in where the site asks.")
    if head.startswith(b"GGUF"):
        return (f"{name} is a GGUF file (quantized weights, as llama.cpp and ComfyUI-GGUF read them); this app "
                "reads SD1.5 and SDXL weights as .safetensors.")
    if head.startswith((b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07")):
        return f"{name} is an archive (7-Zip or RAR), not model weights: unpack it, then import what it holds."
    if head.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF8")) or head[:4] + head[8:12] == b"RIFFWEBP":
        return f"{name} is a picture (PNG, JPEG, WebP or GIF), not model weights."
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] in (b"{", b"[") or (text and all(32 <= byte < 127 or byte in b"\t\r\n" for byte in text)):
        said = " ".join(text.decode("ascii", "replace").split())[:80]
        return (f"{name} is text, not model weights (it begins \"{said}\"): the download saved the site's "
                "answer instead of the file. Download it again.")
    return None


def read_header(path: str | os.PathLike[str]) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Read and validate a safetensors header: tensor names to dtype and shape, and metadata.

    Raises `ModelFormatError` for a missing, truncated or malformed file and `UnsafeFileError`
    for a pickle file.
    """
    path = Path(path)
    try:
        if path.is_dir():
            raise ModelFormatError(f"{path} is a folder; name one .safetensors file in it (a diffusers folder's "
                                   "weights are in its unet/, vae/ … subfolders).")
        if not path.is_file():
            raise ModelFormatError(f"{path} does not exist or is not a file.")
        stat = path.stat()
        tensors, metadata = _read_header(str(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
        return dict(tensors), dict(metadata)
    except OSError as error:  # unreadable, a symlink loop, a file that vanished
        raise ModelFormatError(f"{path} cannot be read: {error.strerror or error}.") from None


@functools.lru_cache(maxsize=16)  # a request's model, LoRAs and ControlNets; an SDXL checkpoint's is about 1 MB
def _read_header(path: str, size: int, *_stamp: int) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """`read_header` of the file as it is now (its size, times and inode are the key): every request checks its
    model and LoRA files, and parsing an SDXL checkpoint's or LoRA's header of thousands of tensors took about 10
    ms each time, on the host, before the GPU began. A file written anew is read anew; a failure is not kept."""
    refuse_pickle(Path(path))
    with open(path, "rb") as handle:
        return _parse_header(Path(path).name, handle, size)


def _parse_header(name: str, handle, size: int) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    head = handle.read(512)
    if size < 8:
        raise ModelFormatError(f"{name} is not a safetensors file: it is only {size} bytes long.")
    (header_len,) = struct.unpack("<Q", head[:8])
    handle.seek(8)
    if header_len > MAX_HEADER_BYTES or 8 + header_len > size:
        said = _what_else(name, head)
        if said is not None:
            raise ModelFormatError(said)
    if header_len > MAX_HEADER_BYTES:
        raise ModelFormatError(
            f"{name} declares a {header_len:,}-byte header, far more than any real model; "
            "the file is corrupt or not safetensors."
        )
    if 8 + header_len > size:
        raise ModelFormatError(
            f"{name} is truncated or not safetensors: its header runs past the end of the file "
            f"({8 + header_len:,} bytes declared, {size:,} present). Download it again."
        )
    raw = handle.read(header_len)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
        raise ModelFormatError(f"{name} is not a safetensors file: its header is not JSON.") from None
    if not isinstance(header, dict):
        raise ModelFormatError(f"{name} is not a safetensors file: its header is not a JSON object.")
    metadata = header.pop("__metadata__", None) or {}
    if len(header) > MAX_TENSORS:
        raise ModelFormatError(f"{name} declares {len(header):,} tensors, far more than any real model.")
    data_size = size - 8 - header_len
    tensors: dict[str, TensorInfo] = {}
    spans: list[tuple[int, int, str]] = []
    for key, entry in header.items():
        tensors[key], span = _tensor_info(name, key, entry, data_size)
        spans.append((*span, key))
    _check_layout(name, spans, data_size)
    return tensors, {str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {}


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _tensor_info(name: str, key: str, entry: Any, data_size: int) -> tuple[TensorInfo, tuple[int, int]]:
    """One tensor's dtype and shape, checked, with its byte span in the data section."""
    malformed = ModelFormatError(f"{name} has a malformed header entry for tensor {key!r}.")
    if not isinstance(entry, dict):
        raise malformed
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not (isinstance(shape, list) and all(_is_count(d) for d in shape) and isinstance(offsets, list)
            and len(offsets) == 2 and all(_is_count(o) for o in offsets)):
        raise malformed
    if not isinstance(dtype, str) or dtype not in DTYPE_SIZES:
        raise ModelFormatError(f"{name} stores tensor {key!r} in an unknown dtype {str(dtype)[:40]!r}.")
    begin, end = offsets
    count = 1
    for dim in shape:
        count *= dim
    if end > data_size:
        raise ModelFormatError(
            f"{name} is truncated: tensor {key!r} ends at byte {end:,} of a {data_size:,}-byte data section. "
            "Download the file again."
        )
    if end - begin != count * DTYPE_SIZES[dtype]:
        raise ModelFormatError(f"{name} is corrupt: tensor {key!r} has the wrong byte length for its shape.")
    return TensorInfo(dtype, tuple(shape)), (begin, end)


def _check_layout(name: str, spans: list[tuple[int, int, str]], data_size: int) -> None:
    """The tensors must tile the data section exactly, as the safetensors format requires: no
    overlaps (two tensors sharing bytes), no gaps, nothing left over."""
    position = 0
    for begin, end, key in sorted(spans):
        if begin != position:
            problem = "overlaps the one before it" if begin < position else f"leaves a gap at byte {position:,}"
            raise ModelFormatError(f"{name} is corrupt: tensor {key!r} {problem}.")
        position = end
    if position != data_size:
        raise ModelFormatError(f"{name} is corrupt or truncated: its tensors cover {position:,} bytes of a "
                               f"{data_size:,}-byte data section. Download it again.")


def inspect_file(path: str | os.PathLike[str]) -> WeightsInfo:
    """Say what a `.safetensors` weights file is, from its header. Kept per file as it is now (as its header is):
    each request inspects its base model and LoRAs again."""
    path = Path(path)
    try:
        stat = path.stat() if path.is_file() else None
    except OSError:
        stat = None
    if stat is None:  # read_header says what is wrong
        return _inspect(path)
    info = _inspected(str(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
    return dataclasses.replace(info, metadata=dict(info.metadata))


@functools.lru_cache(maxsize=64)
def _inspected(path: str, *_stamp: int) -> WeightsInfo:
    return _inspect(Path(path))


def _inspect(path: Path) -> WeightsInfo:
    tensors, metadata = read_header(path)
    kind, style = classify(tensors)
    family = other_family(kind, tensors)
    architecture = None if family else detect_architecture(kind, tensors)
    if kind == WeightsKind.TAESD and not family:
        architecture = taesd_architecture(path)
    recipe = recipe_for_checkpoint(path) if kind == WeightsKind.CHECKPOINT else recipe_for_file(path)
    hyper_sd = recipe.id if recipe is not None and (kind == WeightsKind.CHECKPOINT
                                                     or recipe.kind == _recipe_kind(kind)) else None
    v_prediction = kind == WeightsKind.CHECKPOINT and "v_pred" in tensors
    return WeightsInfo(
        path=str(path),
        kind=kind,
        architecture=architecture,
        format=style,
        hyper_sd=hyper_sd,
        tensor_count=len(tensors),
        size_bytes=path.stat().st_size,
        metadata=metadata,
        family=family,
        prediction=V_PREDICTION if v_prediction else None,
        zero_snr=v_prediction and "ztsnr" in tensors,
        in_channels=_in_channels(kind, tensors),
    )


_FIRST_CONVOLUTION = ("model.diffusion_model.input_blocks.0.0.weight", "input_blocks.0.0.weight", "conv_in.weight")


def _in_channels(kind: str, tensors: dict[str, TensorInfo]) -> int | None:
    if kind not in (WeightsKind.CHECKPOINT, WeightsKind.UNET):
        return None
    first = next((tensors[key] for key in _FIRST_CONVOLUTION if key in tensors), None)
    return first.shape[1] if first is not None and len(first.shape) == 4 else None


def _recipe_kind(kind: str) -> str:
    return "unet" if kind == WeightsKind.UNET else kind


def classify(tensors: dict[str, TensorInfo]) -> tuple[str, str | None]:
    """The kind of weights and the key style, from the tensor names."""
    keys = tensors.keys()

    def any_key(*fragments: str) -> bool:
        return any(fragment in key for key in keys for fragment in fragments)

    def any_prefix(*prefixes: str) -> bool:
        return any(key.startswith(prefixes) for key in keys)

    if any_key("lora_down.weight", "lora_up.weight"):
        return WeightsKind.LORA, "kohya"
    if any_key(".hada_w1_a", ".lokr_w1"):
        return WeightsKind.LORA, "lycoris"  # LoHa, LoKr
    if any_prefix("lora_unet_", "lora_te"):
        methods = {method for key in keys for suffix, method in LYCORIS_OTHER_METHODS.items() if key.endswith(f".{suffix}")}
        if methods:
            return WeightsKind.UNKNOWN, f"LyCORIS {' and '.join(sorted(methods))}"
    if any_key("lora_A.weight", "lora_B.weight"):
        return WeightsKind.LORA, "peft"
    embedding = _embedding_format(tensors)
    if embedding:
        return WeightsKind.EMBEDDING, embedding
    if any_key(".lora.down.weight", ".lora.up.weight"):
        return WeightsKind.LORA, "diffusers"
    if "lora_controlnet" in keys:  # the marker tensor of Stability's Control-LoRAs (which also hold input_hint_block)
        return WeightsKind.CONTROLNET, CONTROL_LORA_FORMAT
    if any_prefix("control_model.") or any_key("input_hint_block."):
        return WeightsKind.CONTROLNET, "ldm"
    if "task_embedding" in keys and any_prefix("controlnet_cond_embedding."):
        return WeightsKind.CONTROLNET, "union"  # xinsir's ControlNet Union (ProMax): diffusers names, more parts
    if any_key("controlnet_cond_embedding.", "controlnet_down_blocks."):
        return WeightsKind.CONTROLNET, "diffusers"
    adapter = _t2i_adapter_format(keys)
    if adapter:
        return adapter
    if any_prefix("model.diffusion_model."):
        return WeightsKind.CHECKPOINT, "ldm"
    if any_prefix("input_blocks.") and any_prefix("time_embed."):
        return WeightsKind.UNET, "ldm"
    if any_prefix("down_blocks.") and any_prefix("time_embedding."):
        return WeightsKind.UNET, "diffusers"
    if any_prefix("encoder.layers.", "decoder.layers."):
        return WeightsKind.TAESD, "diffusers"
    half = taesd_half(tensors)
    if half == "decoder":
        return WeightsKind.TAESD, TAESD_DECODER_FORMAT
    if half == "encoder":  # the app only decodes with TAESD
        return WeightsKind.UNKNOWN, "TAESD encoder (the app uses TAESD's decoder file)"
    if any_prefix("encoder.down_blocks.", "decoder.up_blocks."):
        return WeightsKind.VAE, "diffusers"
    if any_prefix("encoder.down.", "decoder.up.", "first_stage_model."):
        return WeightsKind.VAE, "ldm"
    if any_prefix("text_model.", "text_model.encoder."):
        return WeightsKind.TEXT_ENCODER, "diffusers"
    if any_prefix("image_proj.") and any_prefix("ip_adapter."):
        return _ip_adapter_kind(tensors)
    if any_prefix("vision_model.embeddings.") and "visual_projection.weight" in keys:
        return WeightsKind.IMAGE_ENCODER, "transformers"  # CLIPVisionModelWithProjection, as h94 and ComfyUI keep it
    upscaler = upscaler_layout({key: info.shape for key, info in tensors.items()})
    if upscaler is not None:
        return WeightsKind.UPSCALER, upscaler.description
    other = next((name for name, (prefixes, fragments) in OTHER_KINDS.items()
                  if any_prefix(*prefixes) or any_key(*fragments)), None)
    return WeightsKind.UNKNOWN, other


def _t2i_adapter_format(keys) -> tuple[str, str] | None:
    """A T2I-Adapter's kind and layout: a full adapter (what a ControlNet does, read from its image once) is run;
    the color (light) and style adapters, whose blocks are others, are named."""
    if "adapter.conv_in.weight" in keys and "adapter.body.0.resnets.0.block1.weight" in keys:
        return WeightsKind.CONTROLNET, T2I_ADAPTER_FORMAT
    if "conv_in.weight" in keys and "body.0.block1.weight" in keys:
        return WeightsKind.CONTROLNET, T2I_ADAPTER_ORIGINAL_FORMAT
    if "body.0.in_conv.weight" in keys and "body.0.body.0.block1.weight" in keys or "adapter.body.0.out_conv.weight" \
            in keys:
        return WeightsKind.UNKNOWN, "T2I-Adapter of the color (light) kind"
    if "style_embedding" in keys and "ln_post.weight" in keys:
        return WeightsKind.UNKNOWN, "T2I style adapter"
    return None


def t2i_adapter_scale(cin: int) -> tuple[int, int] | None:
    """A full T2I-Adapter's image channels (3, or 1 for a sketch adapter) and how much its first layer shrinks the
    image (8 for SD1.5's, 16 for SDXL's), from its first convolution's inputs, which are the image's channels times
    the shrink squared (pixel unshuffle); None where they are no such product."""
    for channels in (3, 1):
        factor = math.isqrt(cin // channels) if cin % channels == 0 else 0
        if factor > 0 and channels * factor * factor == cin:
            return channels, factor
    return None


SDXL_ADAPTER_SHRINK = 16  # an SDXL T2I-Adapter's first layer's (SD1.5's: 8)


def _adapter_architecture(tensors: dict[str, TensorInfo]) -> str | None:
    first = tensors.get("adapter.conv_in.weight") or tensors.get("conv_in.weight")
    scale = t2i_adapter_scale(first.shape[1]) if first is not None and len(first.shape) == 4 else None
    if scale is None:
        return None
    return Architecture.SDXL if scale[1] == SDXL_ADAPTER_SHRINK else Architecture.SD15


FACEID = "FaceID IP-Adapter (it reads faces with InsightFace, not a CLIP image encoder)"


def is_faceid(tensors: dict[str, TensorInfo]) -> bool:
    """Whether an IP-Adapter's tensors are a FaceID one's (engine/ip_adapter_files.py): its face embedding's
    projection (`proj.0`, `proj.2` and a norm, or a perceiver resampler's), or LoRA layers beside its own."""
    return ("image_proj.proj.0.weight" in tensors and "image_proj.proj.3.weight" not in tensors) \
        or any(key.startswith("image_proj.perceiver_resampler.") for key in tensors) \
        or any(key.startswith("ip_adapter.") and "lora" in key for key in tensors)


def _ip_adapter_kind(tensors: dict[str, TensorInfo]) -> tuple[str, str | None]:
    return (WeightsKind.UNKNOWN, FACEID) if is_faceid(tensors) else (WeightsKind.IP_ADAPTER, "ip-adapter")


# The original TAESD files (madebyollin's `taesd_decoder.safetensors`, `taesdxl_decoder.safetensors`, the ones in
# ComfyUI's vae_approx folder) are each half of the autoencoder as a bare `nn.Sequential`: keys `1.weight`,
# `3.conv.0.weight`. The decoder's first module is a clamp without weights, so its layers are diffusers' `decoder.layers`
# one place on; the encoder's are `encoder.layers` as they are.
TAESD_DECODER_FORMAT = "decoder only"
_SEQUENTIAL_KEY = re.compile(r"\d+\.(?:weight|bias|conv\.\d+\.(?:weight|bias)|skip\.weight)")
_TAESD_HALVES = {"decoder": ("1.weight", "19.weight", 3), "encoder": ("0.weight", "14.weight", 3)}


def taesd_half(tensors: dict[str, TensorInfo]) -> str | None:
    """"decoder" or "encoder" for a file that is one half of TAESD in its original layout; None otherwise."""
    if "3.conv.4.bias" not in tensors or not all(_SEQUENTIAL_KEY.fullmatch(key) for key in tensors):
        return None
    for half, (first, last, image_channels) in _TAESD_HALVES.items():
        if first in tensors and last in tensors and len(tensors[first].shape) == 4:
            rgb_side = tensors[last].shape[0] if half == "decoder" else tensors[first].shape[1]
            if rgb_side == image_channels:
                return half
    return None


def taesd_architecture(path: Path) -> str | None:
    """The architecture a TAESD file decodes for, from its name or its folders' (TAESD's and TAESDXL's weights are
    the same shape): madebyollin names them `taesd_decoder`, `taesdxl_decoder` and the repositories `taesd`,
    `taesdxl`, and people keep those names (ComfyUI's vae_approx folder, the hub's cache folders)."""
    for name in (path.stem, *(parent.name for parent in list(path.parents)[:3])):
        if re.search(r"tae[-_ ]?sd[-_ ]?xl", name, re.IGNORECASE):
            return Architecture.SDXL
        if re.search(r"tae[-_ ]?sd(?![-_ ]?\d)", name, re.IGNORECASE):
            return Architecture.SD15
    return None


def _embedding_format(tensors: dict[str, TensorInfo]) -> str | None:
    """The key style of a textual-inversion embedding: "a1111" (`emb_params`, the vectors × text width),
    "sdxl" (`clip_l` and `clip_g`), "diffusers" (one tensor named by its token, 768 or 1024 wide); None for
    anything else."""
    shapes = {key: tensors[key].shape for key in tensors}
    if {"clip_l", "clip_g"} <= shapes.keys():
        return "sdxl"
    if "emb_params" in shapes and len(shapes) == 1 and len(shapes["emb_params"]) in (1, 2):
        return "a1111"
    if len(shapes) == 1:
        (key, shape), = shapes.items()
        if len(shape) in (1, 2) and shape[-1] in (768, 1024) and not key.startswith(_NOT_A_TOKEN):
            return "diffusers"
    return None


_NOT_A_TOKEN = ("model.", "first_stage_model.", "cond_stage_model.", "text_model.", "encoder.", "decoder.")


def other_family(kind: str, tensors: dict[str, TensorInfo]) -> str | None:
    """The base model a file is for when it is one the app does not run: "FLUX", "SD3", "SD2" or "the SDXL
    refiner"; None for SD1.5 and SDXL files and for files that do not say (text encoders, and VAEs of 4 latent
    channels, which SD1.5, SD2 and SDXL share).

    Judged before SD1.5 and SDXL, whose structural guesses would otherwise claim such files: a kohya FLUX
    LoRA's keys start `lora_unet_`, and an SD2 LoRA has SD1.5's blocks."""
    if kind in (WeightsKind.VAE, WeightsKind.TAESD):  # FLUX's `ae.safetensors` in a ComfyUI vae folder, TAEF1 …
        return latent_family(_latent_channels(tensors))
    if kind in (WeightsKind.TEXT_ENCODER, WeightsKind.UPSCALER, WeightsKind.IMAGE_ENCODER):
        return None
    if kind == WeightsKind.EMBEDDING:
        return "SD2" if _embedding_width(tensors) == 1024 else None
    keys = list(tensors)
    flat = [key.replace(".", "_") for key in keys]

    def has(*fragments: str) -> bool:
        return any(fragment in key for key in flat for fragment in fragments)

    if has("double_blocks_", "single_blocks_", "single_transformer_blocks_"):
        return "FLUX"
    if has("joint_blocks_"):
        return "SD3"
    unet = has(*_UNET_BLOCKS)
    if not unet and has("transformer_blocks_") and has("add_k_proj", "add_q_proj", "context_embedder"):
        width = _cross_attention_dim(keys, tensors, ("attn.to_k.weight", "attn.to_k.lora_A.weight",
                                                     "attn_to_k.lora_down.weight"))  # joint attention: FLUX or SD3
        return "FLUX" if width == FLUX_WIDTH else "SD3"
    if any(key.startswith("cond_stage_model.model.") for key in keys):
        return "SD2"  # its OpenCLIP text encoder, where SD1.5 has `cond_stage_model.transformer.`
    if kind == WeightsKind.CHECKPOINT and ("edm_mean" in tensors or "edm_vpred.sigma_max" in tensors):
        return EDM_FAMILY  # SDXL's shape, but another noise schedule (and Playground's own latent scale)
    if any(key.startswith("conditioner.embedders.0.model.") for key in keys) and not any(
            key.startswith("conditioner.embedders.1.") for key in keys):
        return "the SDXL refiner"  # OpenCLIP-G alone, where SDXL has CLIP-L first
    if kind == WeightsKind.UNKNOWN:
        return None
    width = _cross_attention_dim(keys, tensors, _CROSS_ATTENTION_KEYS) or _lokr_in_features(keys, tensors, "attn2_to_k")
    return OTHER_CROSS_ATTENTION_DIMS.get(width)


SD_LATENT_CHANNELS = 4
LATENT_FAMILIES = {16: "SD3 or FLUX"}  # the VAEs of other base models, by their latent channels
# A VAE decoder's first convolution (original and diffusers names, and TAESD's), which takes the latents.
_DECODER_INPUTS = ("decoder.conv_in.weight", "first_stage_model.decoder.conv_in.weight", "decoder.layers.0.weight",
                   "1.weight")


def latent_family(channels: int | None) -> str | None:
    """The base model a VAE of `channels` latent channels is for, when not SD1.5 and SDXL's (None)."""
    if channels is None or channels == SD_LATENT_CHANNELS:
        return None
    return LATENT_FAMILIES.get(channels, f"a base model whose latents have {channels} channels")


def _latent_channels(tensors: dict[str, TensorInfo]) -> int | None:
    shape = next((tensors[key].shape for key in _DECODER_INPUTS if key in tensors), None)
    return shape[1] if shape is not None and len(shape) == 4 else None


def detect_architecture(kind: str, tensors: dict[str, TensorInfo]) -> str | None:
    """SD1.5 or SDXL from key names and shapes; None when the file does not say (VAEs) or is neither."""
    keys = list(tensors)
    if kind in (WeightsKind.VAE, WeightsKind.TAESD, WeightsKind.TEXT_ENCODER, WeightsKind.UPSCALER,
                WeightsKind.IMAGE_ENCODER, WeightsKind.UNKNOWN):
        return None
    if kind == WeightsKind.IP_ADAPTER:  # its key layers take the text's width (768, 2048), as the UNet's do
        return CROSS_ATTENTION_DIMS.get(_cross_attention_dim(keys, tensors, ("to_k_ip.weight",)))
    if kind == WeightsKind.CHECKPOINT:
        if any(key.startswith("conditioner.embedders.") for key in keys):
            return Architecture.SDXL
        return Architecture.SD15 if any(key.startswith("cond_stage_model.") for key in keys) else _from_unet(keys, tensors)
    if kind == WeightsKind.LORA:
        return _lora_architecture(keys, tensors)
    if kind == WeightsKind.EMBEDDING:  # SD1.5's text is 768 wide (1024 is SD2's); SDXL's files hold both encoders'
        if "clip_g" in tensors:
            return Architecture.SDXL
        return Architecture.SD15 if _embedding_width(tensors) != 1024 else None
    if kind == WeightsKind.CONTROLNET and _t2i_adapter_format(tensors.keys()):
        return _adapter_architecture(tensors)
    return _from_unet(keys, tensors)


def embedding_vectors(tensors: dict[str, TensorInfo]) -> int | None:
    """How many vectors a textual-inversion embedding (its header's tensors) puts in a prompt, as many tokens: its
    first text encoder's, as `embeddings` loads them (`emb_params`, `clip_l`, or the one tensor of a diffusers
    file; one vector when that is a single row); None for a file of no embedding format."""
    layout = _embedding_format(tensors)
    if layout is None:
        return None
    shape = tensors[{"sdxl": "clip_l", "a1111": "emb_params"}.get(layout, next(iter(tensors)))].shape
    return shape[0] if len(shape) == 2 else 1


def _embedding_width(tensors: dict[str, TensorInfo]) -> int | None:
    shape = tensors["clip_l"].shape if "clip_l" in tensors else next(iter(tensors.values())).shape
    return shape[-1] if shape else None


def _cross_attention_dim(keys: list[str], tensors: dict[str, TensorInfo], fragments: tuple[str, ...]) -> int | None:
    for key in keys:
        if any(fragment in key for fragment in fragments) and len(tensors[key].shape) == 2:
            return tensors[key].shape[1]
    return None


def _lokr_in_features(keys: list[str], tensors: dict[str, TensorInfo], layer: str) -> int | None:
    """The input width of a LoKr layer: the product of its two halves' (w1 ⊗ w2). `layer` is flattened with '_'
    and matched so in the keys too (kohya's `attn2_to_k.lokr_w1`, ComfyUI's `attn2.to_k.lokr_w1`)."""
    widths = []
    for half in ("lokr_w1", "lokr_w2"):
        ends = (f"{layer}_{half}", f"{layer}_{half}_b")
        key = next((key for key in keys if key.replace(".", "_").endswith(ends)), None)
        if key is None or len(tensors[key].shape) != 2:
            return None
        widths.append(tensors[key].shape[1])
    return widths[0] * widths[1]


def _from_unet(keys: list[str], tensors: dict[str, TensorInfo]) -> str | None:
    if any("add_embedding." in key or "label_emb." in key for key in keys):
        return Architecture.SDXL
    dim = _cross_attention_dim(keys, tensors, ("attn2.to_k.weight", "attn2.to_k.down"))  # a Control-LoRA: `down`
    if dim is None or dim in OTHER_CROSS_ATTENTION_DIMS:
        return None  # no text width, or SD2's or the refiner's (`other_family` names those)
    return CROSS_ATTENTION_DIMS.get(dim, Architecture.SD15)


def _lora_architecture(keys: list[str], tensors: dict[str, TensorInfo]) -> str | None:
    flat = [key.replace(".", "_") for key in keys]
    dim = _cross_attention_dim(keys, tensors, _CROSS_ATTENTION_KEYS[1:]) or _lokr_in_features(keys, tensors, "attn2_to_k")
    if dim in CROSS_ATTENTION_DIMS:
        return CROSS_ATTENTION_DIMS[dim]
    if any(key.startswith(("lora_te2_", "text_encoder_2", "te2_")) or "label_emb" in key or "add_embedding" in key
           for key in flat):
        return Architecture.SDXL
    # Structure: SD1.5 has attention in its first down block, SDXL does not but stacks
    # several transformer blocks per attention in the deeper ones.
    if any("down_blocks_0_attentions" in key or "input_blocks_1_1_" in key for key in flat):
        return Architecture.SD15
    if any("transformer_blocks_1_" in key for key in flat):
        return Architecture.SDXL
    if any("unet" in key or "down_blocks" in key or "input_blocks" in key for key in flat):
        return Architecture.SD15
    return None


def family_phrase(info: WeightsInfo) -> str:
    """What a file for a base model the app does not run is, in words: "a LoRA for FLUX"."""
    what = "a model file" if info.kind == WeightsKind.UNKNOWN else WeightsKind(info.kind).phrase
    return f"{what} for {info.family}"


def for_other_family(path: Path, info: WeightsInfo) -> str:
    """Why a file for a base model the app does not run cannot be used, in words."""
    return f"{path.name} is {family_phrase(info)}, which this app does not run; it runs SD1.5 and SDXL models."


def unknown_phrase(info: WeightsInfo) -> str:
    """What a file of no kind the app runs is, in words: "an IP-Adapter", "a LyCORIS OFT file", or "no kind of
    weights this app knows"."""
    if not info.format:
        return WeightsKind.UNKNOWN.phrase
    if info.format.startswith("LyCORIS"):
        return f"a {info.format} file"
    return f"{'an' if info.format[0].upper() in 'AEIOU' else 'a'} {info.format}"


def not_the_kind(path: Path, info: WeightsInfo, wanted: str) -> str:
    """Why `path` cannot be used as `wanted` ("a LoRA"): what it is instead, in words."""
    if info.family:
        return for_other_family(path, info)
    if info.kind == WeightsKind.UNKNOWN and info.format and info.format.startswith("LyCORIS"):
        return (f"{path.name} is a {info.format} file, which the app cannot use; LoRA, LoCon, LoHa and LoKr files "
                "work.")
    if info.kind == WeightsKind.UNKNOWN and info.format:
        return f"{path.name} is {unknown_phrase(info)}, which this app does not run, not {wanted}."
    return f"{path.name} is {WeightsKind(info.kind).phrase}, not {wanted}."


# The transformers folders that make control maps from photos, by config.json's model_type: depth estimation
# (engine/depth.py), and pose estimation with the person detector it needs (engine/pose.py).
DEPTH_MODEL_TYPES = ("depth_anything",)
POSE_MODEL_TYPES = ("vitpose",)
PERSON_DETECTOR_TYPES = ("rt_detr", "rt_detr_v2")
MAP_MODEL_FILES = ("config.json", "preprocessor_config.json", "model.safetensors")
DEPTH_MODEL_FILES = MAP_MODEL_FILES


def map_model_type(folder: Path) -> str | None:
    """The model_type of `folder` when it is a transformers folder in safetensors of a kind that makes control maps
    (known by its config, not its name); None otherwise."""
    if not all((folder / name).is_file() for name in MAP_MODEL_FILES):
        return None
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    kind = config.get("model_type") if isinstance(config, dict) else None
    return kind if kind in DEPTH_MODEL_TYPES + POSE_MODEL_TYPES + PERSON_DETECTOR_TYPES else None


def is_depth_model(folder: Path) -> bool:
    """Whether `folder` is a depth-estimation model the app reads (engine/depth.py): Depth Anything."""
    return map_model_type(folder) in DEPTH_MODEL_TYPES


def is_pose_model(folder: Path) -> bool:
    """Whether `folder` is a pose model the app reads (engine/pose.py): ViTPose."""
    return map_model_type(folder) in POSE_MODEL_TYPES


def is_person_detector(folder: Path) -> bool:
    """Whether `folder` is a person detector the pose maps use (engine/pose.py): RT-DETR."""
    return map_model_type(folder) in PERSON_DETECTOR_TYPES


def folder_family(folder: Path) -> str | None:
    """SD2 for a diffusers folder whose UNet takes SD2's text, though the folder names SD1.5's pipeline class (as
    stable-diffusion-2-1's does); None otherwise."""
    try:
        config = json.loads((folder / "unet" / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    width = config.get("cross_attention_dim") if isinstance(config, dict) else None
    return OTHER_CROSS_ATTENTION_DIMS.get(width) if isinstance(width, int) else None


def base_architecture(path: str | Path) -> str:
    """SD1.5 or SDXL for a diffusers folder or a single-file checkpoint; `InputError` otherwise."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"The base model {path} does not exist; check the path or install the model.")
    if path.is_dir():
        index = path / "model_index.json"
        if not index.is_file():
            raise InputError(f"{path} is not a diffusers model folder: it has no model_index.json.")
        try:
            class_name = json.loads(index.read_text(encoding="utf-8")).get("_class_name")
        except (OSError, UnicodeDecodeError, ValueError, RecursionError, AttributeError):
            raise InputError(f"{path.name} is not a usable diffusers model folder: its model_index.json is "
                             "damaged (not a JSON object). Download or export the model again.") from None
        if not isinstance(class_name, str) or class_name not in PIPELINE_CLASSES:
            raise InputError(f"{path.name} is a {class_name}; only SD1.5 and SDXL text-to-image models are supported.")
        family = folder_family(path)
        if family:
            raise InputError(f"{path.name} is a model for {family}, which this app does not run; choose an SD1.5 or "
                             "SDXL model.")
        _check_in_channels(path, base_in_channels(path))
        return PIPELINE_CLASSES[class_name]
    info = inspect_file(path)
    if info.kind != WeightsKind.CHECKPOINT or info.family:
        raise InputError(f"{not_the_kind(path, info, 'a base model checkpoint')} Choose a full SD1.5 or SDXL model.")
    if info.architecture is None:
        raise InputError(f"{path.name} is neither an SD1.5 nor an SDXL checkpoint; choose a full SD1.5 or SDXL model.")
    _check_in_channels(path, info.in_channels or 4)
    return info.architecture


def _check_in_channels(path: Path, channels: int) -> None:
    """Refuse a UNet that takes other inputs than the latents (4) or an inpainting model's (9)."""
    if channels not in (4, INPAINTING_CHANNELS):
        what = " (an InstructPix2Pix model, which edits a picture by instruction)" if channels == 8 else ""
        raise InputError(f"{path.name}'s UNet takes {channels} input channels{what}; this app runs models that take "
                         "4 (text-to-image models) or 9 (inpainting models).")


def base_in_channels(path: str | Path) -> int:
    """The channels a base model's UNet takes: 4, or 9 for an inpainting model (`sd-v1-5-inpainting`, the
    "-inpainting" merges of community models), read from a folder's UNet config or a checkpoint's first
    convolution; 4 where it cannot be read (loading says why)."""
    path = Path(path)
    try:
        if path.is_dir():
            config = json.loads((path / "unet" / "config.json").read_text(encoding="utf-8"))
            channels = config.get("in_channels", 4) if isinstance(config, dict) else 4
            return channels if isinstance(channels, int) and not isinstance(channels, bool) else 4
        stat = path.stat()
        return _file_in_channels(str(path), stat.st_size, stat.st_mtime_ns)
    except (AppError, OSError, UnicodeDecodeError, ValueError, RecursionError):
        return 4


def _header_text(path: str) -> bytes:
    """A safetensors file's JSON header as bytes, unparsed (empty where it has none to read)."""
    with open(path, "rb") as handle:
        head = handle.read(8)
        length = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
        return handle.read(length) if 0 < length <= MAX_HEADER_BYTES else b""


@functools.lru_cache(maxsize=1024)
def _file_in_channels(path: str, _size: int, _mtime_ns: int) -> int:
    """`base_in_channels` of a checkpoint, found in its header's text: the model lists label every checkpoint as
    the window starts, and reading a whole SDXL header into objects takes about 13 ms, this well under one. The
    key is matched with its quotes, so a metadata string (whose quotes are escaped) cannot match; anything
    unexpected falls back to reading the header whole."""
    header = _header_text(path)
    for key in _FIRST_CONVOLUTION:
        at = header.find(b'"' + key.encode() + b'"')
        if at < 0:
            continue
        colon = header.find(b":", at + len(key) + 2)
        try:
            value, _ = json.JSONDecoder().raw_decode(header[colon + 1:colon + 1024].decode("utf-8", "replace").lstrip())
            shape = value["shape"]
            if isinstance(shape, list) and len(shape) == 4 and isinstance(shape[1], int):
                return shape[1]
        except (ValueError, TypeError, KeyError):
            pass
        break
    return _file_info(Path(path)).in_channels or 4


def base_has_vae(path: str | Path) -> bool:
    """Whether a base model brings its own VAE: weights in a folder's `vae` subfolder, a checkpoint's
    `first_stage_model.` weights. Some checkpoints are shared without one ("no VAE" versions), to be used with a VAE
    of one's choice, and a folder fetched in part may lack it. True where it cannot be read (loading says why)."""
    path = Path(path)
    try:
        if path.is_dir():
            return any((path / "vae").glob("*.safetensors")) or any((path / "vae").glob("*.bin"))
        return has_key_prefix(path, VAE_PREFIX) is not False
    except (AppError, OSError):
        return True


VAE_PREFIX = "first_stage_model."
# The text encoder of SD1.x checkpoints saved before transformers 4.21 moved CLIP's layers under `text_model.`
# (AUTOMATIC1111 renames these as it loads them; diffusers does not find them).
OLD_CLIP_PREFIX = "cond_stage_model.transformer.embeddings."


def has_key_prefix(path: str | Path, prefix: str) -> bool | None:
    """Whether a safetensors file has a key that begins with `prefix`, from its header's text as `_file_in_channels`
    reads it (about 0.03 ms for an SDXL-sized header): keys are quoted, so an escaped quote inside a metadata string
    does not count. None for a file without a header to read (loading says why)."""
    stat = Path(path).stat()
    return _file_has_key_prefix(str(path), stat.st_size, stat.st_mtime_ns, prefix)


@functools.lru_cache(maxsize=1024)
def _file_has_key_prefix(path: str, _size: int, _mtime_ns: int, prefix: str) -> bool | None:
    header = _header_text(path)
    if not header:
        return None
    key = b'"' + prefix.encode()
    at = header.find(key)
    while at > 0 and header[at - 1:at] == b"\\":
        at = header.find(key, at + 1)
    return at >= 0


def base_prediction(path: str | Path) -> tuple[str | None, bool]:
    """What a base model predicts and whether its schedule reaches zero terminal SNR: (None, False) for the
    usual noise prediction, ("v_prediction", zero SNR) for a v-prediction model, read from a checkpoint's
    `v_pred` and `ztsnr` tensors or a diffusers folder's scheduler config. (None, False) where it cannot be read:
    loading says why."""
    path = Path(path)
    try:
        if path.is_dir():
            config = json.loads((path / "scheduler" / "scheduler_config.json").read_text(encoding="utf-8"))
            if isinstance(config, dict) and config.get("prediction_type") == V_PREDICTION:
                return V_PREDICTION, config.get("rescale_betas_zero_snr") is True
            return None, False
        info = _file_info(path)
        return info.prediction, info.zero_snr
    except (AppError, OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None, False


def vae_family(path: str | Path) -> str | None:
    """The other base model a VAE file is for ("SD3 or FLUX"); None for SD1.5 and SDXL's, for a folder (its config
    says, when it loads) and for a file that cannot be read (loading says why). Kept by size and time."""
    try:
        return _file_info(Path(path)).family if Path(path).is_file() else None
    except (AppError, OSError):
        return None


def _file_info(path: Path) -> WeightsInfo:
    stat = path.stat()
    return _kept_info(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _kept_info(path: str, _size: int, _mtime_ns: int) -> WeightsInfo:
    """`inspect_file` of a checkpoint, kept by size and time: the window plans on every change of a control,
    and an SDXL checkpoint's header (2,500 tensors) takes about 12 ms to read."""
    return inspect_file(path)


def controlnet_weights(path: Path) -> Path:
    """The weights file of a ControlNet: `path` itself, or a folder's `diffusion_pytorch_model.safetensors` (else
    its first `.safetensors`); `ModelFormatError` for a folder with none."""
    if not path.is_dir():
        return path
    found = sorted(path.glob("*.safetensors"), key=lambda f: (f.name != "diffusion_pytorch_model.safetensors", f.name))
    if not found:
        raise ModelFormatError(f"The ControlNet folder {path} has no .safetensors weights; download it again from "
                               "the Models tab.")
    return found[0]


def folder_name(folder: Path) -> str:
    """A model folder's name as people know it: a Hugging Face cache's snapshot folder
    (`models--lllyasviel--control_v11p_sd15_canny/snapshots/<commit>`) by its repository's name, not the commit."""
    repository = folder.parent.parent.name
    if folder.parent.name == "snapshots" and repository.startswith("models--") and repository.count("--") >= 2:
        return repository.split("--", 2)[2]
    return folder.name


def weights_name(path: Path) -> str:
    """A weights file or folder as people know it: diffusers' generic `diffusion_pytorch_model[_variant]` files
    are named after their folder (`controlnet-union-sdxl-1.0 promax`)."""
    generic = "diffusion_pytorch_model"
    if path.is_dir():
        return folder_name(path)
    if not path.name.lower().startswith(generic) or not path.parent.name:
        return path.name
    variant = path.name.split(".")[0][len(generic) + 1:]
    return f"{folder_name(path.parent)} {variant}".strip()


def is_t2i_adapter(path: str | Path) -> bool:
    """Whether the ControlNet at `path` (a file or a folder) is a T2I-Adapter."""
    try:
        weights = controlnet_weights(Path(path))
        return weights.suffix == ".safetensors" and inspect_file(weights).format in T2I_ADAPTER_FORMATS
    except (AppError, OSError):
        return False


def union_control_types(path: str | Path) -> int | None:
    """How many control types a ControlNet Union model tells apart (6; 8 for ProMax, which adds tile and repaint),
    read off its weights; None for any other ControlNet, or one that cannot be read (loading says why)."""
    try:
        weights = controlnet_weights(Path(path))
        stat = weights.stat()
        return _union_types(str(weights), stat.st_size, stat.st_mtime_ns)
    except (AppError, OSError):
        return None


@functools.lru_cache(maxsize=64)
def _union_types(path: str, _size: int, _mtime_ns: int) -> int | None:
    task = read_header(path)[0].get("task_embedding")
    return task.shape[0] if task is not None and len(task.shape) == 2 else None
