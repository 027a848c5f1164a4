"""Generation parameters in PNG files, in the layout other tools read.

The `parameters` text chunk follows AUTOMATIC1111 (prompt line, `Negative prompt:` line, then
`Steps: …, Sampler: …, CFG scale: …, Seed: …, Size: WxH, Model hash: …, Model: …`), which
Civitai, A1111, Forge and most gallery tools read. The full request goes beside it as JSON in
the `hypersd` chunk, so reusing an image's settings is exact.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from hypersd_desktop import __version__
from hypersd_desktop.core.files import write_atomic
from hypersd_desktop.core.prompt_tags import network_tags
from hypersd_desktop.core.vocab import Scheduler

PARAMETERS_CHUNK = "parameters"
REQUEST_CHUNK = "hypersd"

SAMPLER_NAMES = {Scheduler.DDIM_TRAILING: "DDIM", Scheduler.TCD: "TCD", Scheduler.LCM: "LCM", Scheduler.BASE: "Default"}


@dataclass(frozen=True)
class ImageParameters:
    """What is written into a generated PNG, with hashes as A1111 writes them (see `core.hashes`): the model's
    10 digits of its sha256, a LoRA's 12 of its LoRA hash, an embedding's 12 of its sha256."""

    prompt: str
    negative_prompt: str
    steps: int
    sampler: str
    guidance: float
    seed: int
    width: int
    height: int
    model_name: str
    model_hash: str | None
    loras: tuple[tuple[str, float, str | None], ...]  # (name, weight, hash)
    embeddings: tuple[tuple[str, str], ...] = ()  # (name, hash) of the textual-inversion embeddings used
    extra: tuple[tuple[str, str], ...] = ()
    request: dict[str, Any] | None = None
    recipe: str | None = None  # the Hyper-SD recipe's id (written among `extra` as "Hyper-SD")


def a1111_parameters(params: ImageParameters) -> str:
    """The AUTOMATIC1111 `parameters` text."""
    lines = [with_lora_tags(params.prompt, params.loras)]
    if params.negative_prompt:
        lines.append(f"Negative prompt: {params.negative_prompt}")
    fields: list[tuple[str, str]] = [
        ("Steps", str(params.steps)),
        ("Sampler", SAMPLER_NAMES.get(params.sampler, params.sampler)),
        ("CFG scale", f"{params.guidance:g}"),
        ("Seed", str(params.seed)),
        ("Size", f"{params.width}x{params.height}"),
    ]
    if params.model_hash:
        fields.append(("Model hash", params.model_hash))
    fields.append(("Model", params.model_name))
    hashed = [(name, digest) for name, _, digest in params.loras if digest]
    if hashed:
        fields.append(("Lora hashes", _quote(", ".join(f"{name}: {digest}" for name, digest in hashed))))
    untagged = [(name, weight) for name, weight, _ in params.loras if not _taggable(name)]
    if untagged:  # names a tag cannot hold; readers of this app's older files know the field
        fields.append(("Lora weights", _quote(", ".join(f"{name}: {weight:g}" for name, weight in untagged))))
    if params.embeddings:  # A1111 drops the two characters that would break the list
        fields.append(("TI hashes", _quote(", ".join(
            f"{name.replace(':', '').replace(',', '')}: {digest}" for name, digest in params.embeddings))))
    fields.extend((key, _quote(value)) for key, value in params.extra)  # a Hires prompt's commas
    fields.append(("Version", f"HyperSD Desktop {__version__}"))
    lines.append(", ".join(f"{key}: {value}" for key, value in fields))
    return "\n".join(lines)


def with_lora_tags(prompt: str, loras: tuple[tuple[str, float, str | None], ...]) -> str:
    """`prompt` with a `<lora:NAME:WEIGHT>` tag for each LoRA it does not tag already, as A1111 writes a prompt:
    its PNG Info sends the tags, not `Lora hashes`, to txt2img, so without them the image would be remade there
    without the LoRAs. A tag that names a LoRA (in any case) is left as written."""
    tagged = {name.lower() for kind, name, _ in network_tags(prompt) if kind in ("lora", "lyco")}
    tags = [f"<lora:{name}:{weight:g}>" for name, weight, _ in loras
            if _taggable(name) and name.lower() not in tagged]
    return " ".join(part for part in (prompt, *tags) if part)


def _taggable(name: str) -> bool:
    """Whether A1111's tag pattern reads `name` whole (it ends a name at `:` or `>`)."""
    return bool(name.strip()) and not any(c in name for c in ":<>\n")


def _quote(value: str) -> str:
    """A field's value as A1111 writes one that would not read back whole: in JSON's quotes."""
    return json.dumps(value, ensure_ascii=False) if any(c in value for c in ",:\"\n") else value


def encode_png(image: Image.Image, params: ImageParameters) -> bytes:
    """`image` as PNG bytes with its parameters (`parameters` text and the `hypersd` request)."""
    info = PngInfo()
    info.add_text(PARAMETERS_CHUNK, a1111_parameters(params))
    if params.request is not None:
        info.add_itxt(REQUEST_CHUNK, json.dumps(params.request, sort_keys=True, ensure_ascii=False))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def write_png(image: Image.Image, path: Path, params: ImageParameters) -> bytes:
    """Write `image` with its parameters to `path` atomically; returns the bytes written."""
    data = encode_png(image, params)
    write_atomic(path, data)
    return data


def read_png_text(path: Path | BinaryIO) -> dict[str, str]:
    """The text chunks of a PNG (tEXt, zTXt and iTXt), from a file or a stream of its bytes."""
    with Image.open(path) as image:
        return {str(k): str(v) for k, v in getattr(image, "text", {}).items()}


def read_request(path: Path | BinaryIO) -> dict[str, Any] | None:
    """The full generation request stored by this app, or None."""
    text = read_png_text(path).get(REQUEST_CHUNK)
    return json.loads(text) if text else None
