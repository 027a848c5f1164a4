"""Reading generation parameters other tools write into images, one small reader per tool.

`READERS` is the registry: each reader says which chunk it reads and how it recognises its
tool, and they are tried in this order. JSON is recognised by its keys, never by being JSON (many
tools write JSON into the same `parameters` chunk). When several readers find something, the
rule is: this app's own request first; otherwise the first reader whose record has a prompt (an
image saver's placeholder `parameters` beside the graph that made the image loses to the
graph); otherwise the first record found.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from hypersd_desktop.gallery.formats.a1111 import parse_a1111
from hypersd_desktop.gallery.formats.comfyui import enlarged_picture, is_comfyui_graph, parse_comfyui
from hypersd_desktop.gallery.formats.comfyui_workflow import parse_comfyui_workflow
from hypersd_desktop.gallery.formats.common import ImageMetadata, civitai_airs, json_object, merged, sampler_key
from hypersd_desktop.gallery.formats.fooocus import FOOOCUS_KEYS, parse_fooocus, parse_ruinedfooocus
from hypersd_desktop.gallery.formats.invokeai import parse_dream, parse_invokeai, parse_sd_metadata
from hypersd_desktop.gallery.formats.midjourney import parse_midjourney
from hypersd_desktop.gallery.formats.mochi import parse_mochi
from hypersd_desktop.gallery.formats.novelai import is_novelai, parse_novelai, stealth_chunks
from hypersd_desktop.gallery.formats.others import (
    parse_civitai_extra, parse_diffusers_json, parse_draw_things, parse_draw_things_json, parse_easy_diffusion, parse_stability_matrix,
    parse_swarmui, parse_tensorart,
)

__all__ = ["FOOOCUS_KEYS", "READERS", "ImageMetadata", "is_comfyui_graph", "parse_a1111", "parse_chunks",
           "parse_comfyui", "parse_dream", "parse_text", "sampler_key", "tool_title"]

# The tools each `ImageMetadata.format` stands for, as the gallery's "Made with" filter names them
TOOL_TITLES = {
    "hypersd": "HyperSD Desktop", "a1111": "A1111, Forge, SD.Next", "comfyui": "ComfyUI", "fooocus": "Fooocus",
    "ruinedfooocus": "RuinedFooocus", "invokeai": "InvokeAI", "swarmui": "SwarmUI", "novelai": "NovelAI",
    "midjourney": "Midjourney", "drawthings": "Draw Things", "easydiffusion": "Easy Diffusion",
    "mochi": "Mochi Diffusion", "stabilitymatrix": "Stability Matrix", "tensorart": "Tensor.Art",
    "diffusers": "Hugging Face demos", "none": "No generation data",
}


def tool_title(format_name: str) -> str:
    """The name of the tool that wrote an image's data, for a `format` (a format of a newer version: itself)."""
    return TOOL_TITLES.get(format_name, format_name)


MAX_PASTED = 1024 * 1024  # characters of pasted generation data read (an A1111 text is ~1 kB, a workflow ~100 kB)


@dataclass(frozen=True)
class Reader:
    tool: str
    read: Callable[[dict[str, str]], ImageMetadata | None]


def _chunk(key: str, parse: Callable[[str], ImageMetadata | None]) -> Callable[[dict[str, str]], ImageMetadata | None]:
    return lambda chunks: parse(chunks[key]) if key in chunks else None


def _novelai_stealth(chunks: dict[str, str]) -> ImageMetadata | None:
    """The stealth record of NovelAI is its chunks as JSON (`Comment` itself JSON text or an object)."""
    record = json_object(chunks.get("stealth"))
    return parse_novelai(stealth_chunks(record)) if record is not None else None


def _graph(chunks: dict[str, str]) -> ImageMetadata | None:
    """A ComfyUI graph; Civitai's carries its generation record as `extraMetadata`, which fills
    what the graph lacks (an upscale-only graph has no sampler at all). Image savers write A1111
    text beside the graph, with the hashes a graph does not have: they fill what is left."""
    if "prompt" not in chunks:
        return None
    graph = parse_comfyui(chunks["prompt"])
    extra = json_object(chunks["prompt"])
    record = parse_civitai_extra(extra.get("extraMetadata")) if extra else None
    if graph is None and record is not None and record.width and record.height:  # the record's picture enlarged
        enlarged = enlarged_picture(extra, (record.width, record.height))
        record = ImageMetadata(**{**record.__dict__, "extra": {**record.extra, **enlarged}})
    graph = merged(graph, record, "comfyui")
    airs = civitai_airs((extra.get("extra") or {}).get("airs")) if extra and isinstance(extra.get("extra"), dict) else ()
    if graph is not None and airs:  # Civitai's generator names its resources by AIR
        graph = ImageMetadata(**{**graph.__dict__, "civitai": airs})
    text = parse_a1111(chunks.get("parameters", ""))
    if graph is None or text is None:
        return graph
    hashes = {name: digest for name, _, digest in text.loras if digest}
    loras = tuple((name, weight, digest or hashes.get(name)) for name, weight, digest in graph.loras)
    return merged(ImageMetadata(**{**graph.__dict__, "loras": loras}), text, "comfyui")


def _stability_matrix(chunks: dict[str, str]) -> ImageMetadata | None:
    """Stability Matrix's `parameters-json`; its ComfyUI graph says the sampler, the first pass's size (the record
    gives the final size) and what else ran (its Hires fix)."""
    record = parse_stability_matrix(chunks["parameters-json"]) if "parameters-json" in chunks else None
    if record is None:
        return None
    graph = parse_comfyui(chunks.get("prompt", ""))
    if graph is not None:
        record = ImageMetadata(**{**record.__dict__, "sampler": graph.sampler or record.sampler,
                                  "width": graph.width or record.width, "height": graph.height or record.height,
                                  "extra": {**graph.extra, **record.extra}})
    return record


def _tensorart(chunks: dict[str, str]) -> ImageMetadata | None:
    record = parse_tensorart(chunks["generation_data"]) if "generation_data" in chunks else None
    return merged(record, parse_comfyui(chunks.get("prompt", "")), "tensorart") if record else None


READERS: tuple[Reader, ...] = (
    Reader("SwarmUI", _chunk("parameters", parse_swarmui)),
    Reader("Stability Matrix", _stability_matrix),
    Reader("TensorArt", _tensorart),
    Reader("RuinedFooocus", _chunk("parameters", parse_ruinedfooocus)),
    Reader("Hugging Face demos", _chunk("parameters", parse_diffusers_json)),
    Reader("Fooocus", _chunk("parameters", parse_fooocus)),
    Reader("Fooocus (Comment)", lambda c: parse_fooocus(c["Comment"]) if "Comment" in c and not is_novelai(c) else None),
    Reader("NovelAI", parse_novelai),
    Reader("Easy Diffusion (JSON)", lambda c: parse_easy_diffusion(json_object(c.get("parameters")) or {})),
    Reader("ComfyUI", _graph),  # before the A1111 text an image saver writes beside the graph
    Reader("Mochi Diffusion", parse_mochi),  # before A1111's reader, which would take its caption for a prompt
    Reader("Midjourney", parse_midjourney),
    Reader("AUTOMATIC1111", _chunk("parameters", parse_a1111)),
    Reader("InvokeAI", _chunk("invokeai_metadata", parse_invokeai)),
    Reader("InvokeAI 2", _chunk("sd-metadata", parse_sd_metadata)),
    Reader("InvokeAI Dream", _chunk("Dream", parse_dream)),
    Reader("Easy Diffusion", parse_easy_diffusion),
    Reader("Draw Things", _chunk("XML:com.adobe.xmp", parse_draw_things)),
    Reader("Draw Things (UserComment)", _chunk("parameters", parse_draw_things_json)),
    Reader("AUTOMATIC1111 (stealth)", _chunk("stealth", parse_a1111)),
    Reader("NovelAI (stealth)", _novelai_stealth),
    # last: the text an image saver writes beside it says what ran (its prompts with wildcards and {a|b} chosen)
    Reader("ComfyUI (workflow)", lambda c: parse_comfyui_workflow(c["workflow"]) if "workflow" in c else None),
)


def parse_chunks(chunks: dict[str, str]) -> ImageMetadata | None:
    """The best description of an image from its text chunks, or None when it has none."""
    if "hypersd" in chunks:
        try:
            request = json.loads(chunks["hypersd"])
        except ValueError:
            request = None
        base = parse_a1111(chunks.get("parameters", ""), "hypersd")
        if isinstance(request, dict):  # the prompts as typed: the text's has the LoRAs' tags for A1111
            prompts = {key: value for key in ("prompt", "negative_prompt")
                       if isinstance(value := request.get(key), str)}
            base = base or ImageMetadata("hypersd", prompt="")
            return ImageMetadata(**{**base.__dict__, **prompts, "format": "hypersd", "request": request})
    data = json_object(chunks.get("parameters"))
    if "prompt" not in chunks and data is not None:
        if is_comfyui_graph(data):  # a ComfyUI graph in the UserComment (Civitai)
            chunks = {**chunks, "prompt": chunks["parameters"]}
        elif is_comfyui_graph(data.get("prompt")):  # {"prompt": graph, "workflow": …} (SaveImagePlus)
            chunks = {**chunks, "prompt": json.dumps(data["prompt"])}
    found = [parsed for reader in READERS if (parsed := reader.read(chunks)) is not None]
    return next((parsed for parsed in found if parsed.prompt.strip()), found[0] if found else None)


def parse_text(text: str) -> ImageMetadata | None:
    """Generation data as people copy it as text, or None for text that holds no settings (a prompt alone), or no
    prompt:
    - A1111's text (its own and Forge's "parameters", Civitai's "Copy generation data", a sidecar `.txt`);
    - a ComfyUI graph (API format, or {"prompt": graph, …}) or UI workflow, as a workflow file holds it;
    - another tool's JSON record (SwarmUI, Fooocus, InvokeAI, NovelAI, Stability Matrix, TensorArt …);
    - Midjourney's prompt line with its job's id."""
    text = text.strip().replace("\r\n", "\n")[:MAX_PASTED]
    data = json_object(text)
    if data is None:  # A1111's text, Midjourney's line
        chunks = {"parameters": text, "Description": text}
    elif isinstance(data.get("nodes"), list):
        chunks = {"workflow": text}
    elif is_comfyui_graph(data):
        chunks = {"prompt": text}
    elif "uc" in data and "scale" in data:  # NovelAI's settings (its `Comment`)
        chunks = {"Comment": text, "Software": "NovelAI"}
    else:  # a record in the chunk its tool writes it to, which its reader recognises by its keys
        chunks = dict.fromkeys(("parameters", "invokeai_metadata", "sd-metadata", "parameters-json", "generation_data"),
                               text)
    found = parse_chunks(chunks)
    # a prompt and two settings, not words that happen to look like one ("a red fox, Steps: 20")
    settings = ("steps", "sampler", "guidance", "seed", "width", "model_name", "model_hash")
    if found is None or not found.prompt.strip() or \
            sum(getattr(found, name) not in (None, "") for name in settings) < 2:
        return None
    return found
