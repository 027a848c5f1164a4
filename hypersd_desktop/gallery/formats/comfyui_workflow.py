"""ComfyUI's UI workflow (the `workflow` chunk), read where an image has no API graph beside it.

ComfyUI's SaveImage writes both; an image that keeps only the workflow (a front end or node that
saves the canvas alone, or a file whose `prompt` chunk was stripped) still says how it was made.
The workflow is turned into the API graph the ComfyUI reader walks (`comfyui.py`): each node's
links become inputs naming the node and slot they come from, and its `widgets_values`, a list by
position, get their names: from the core nodes' order below, or, for other nodes, from the widget
inputs the front end lists. A seed widget is followed by its "control after generate" value
("randomize", or a bool in early workflows), which has no name. Reroutes and bypassed nodes pass
their input through; muted nodes are left out; a primitive node is a node with one `value`.

The seed in a workflow is the one the image was made with: the workflow is saved as it was queued,
before "randomize" moves the seed (in every image of the corpus that has both, the workflow's and
the graph's seeds are equal).
"""

from __future__ import annotations

import re
from typing import Any

from hypersd_desktop.gallery.formats.comfyui import parse_comfyui_graph
from hypersd_desktop.gallery.formats.common import ImageMetadata, json_object

# The widgets of the core nodes the reader looks at, in the order ComfyUI lists them in `widgets_values`.
_WIDGETS: dict[str, tuple[str, ...]] = {
    "KSampler": ("seed", "steps", "cfg", "sampler_name", "scheduler", "denoise"),
    "KSamplerAdvanced": ("add_noise", "noise_seed", "steps", "cfg", "sampler_name", "scheduler", "start_at_step",
                         "end_at_step", "return_with_leftover_noise"),
    "SamplerCustom": ("add_noise", "noise_seed", "cfg"),
    "RandomNoise": ("noise_seed",),
    "CFGGuider": ("cfg",),
    "BasicScheduler": ("scheduler", "steps", "denoise"),
    "KSamplerSelect": ("sampler_name",),
    "FluxGuidance": ("guidance",),
    "CLIPTextEncode": ("text",),
    "CLIPTextEncodeSDXL": ("width", "height", "crop_w", "crop_h", "target_width", "target_height", "text_g", "text_l"),
    "CLIPTextEncodeSDXLRefiner": ("ascore", "width", "height", "text"),
    "CLIPTextEncodeFlux": ("clip_l", "t5xxl", "guidance"),
    "CLIPTextEncodeSD3": ("clip_l", "clip_g", "t5xxl", "empty_padding"),
    "StringConcatenate": ("string_a", "string_b", "delimiter"),
    "CLIPSetLastLayer": ("stop_at_clip_layer",),
    "CheckpointLoaderSimple": ("ckpt_name",),
    "CheckpointLoader": ("config_name", "ckpt_name"),
    "ImageOnlyCheckpointLoader": ("ckpt_name",),
    "unCLIPCheckpointLoader": ("ckpt_name",),
    "UNETLoader": ("unet_name", "weight_dtype"),
    "VAELoader": ("vae_name",),
    "LoraLoader": ("lora_name", "strength_model", "strength_clip"),
    "LoraLoaderModelOnly": ("lora_name", "strength_model"),
    "CheckpointLoader|pysssss": ("ckpt_name",),  # pysssss's loaders with preview images
    "LoraLoader|pysssss": ("lora_name", "strength_model", "strength_clip"),
    "Lora Loader Stack (rgthree)": tuple(f"{part}_0{row}" for row in range(1, 5) for part in ("lora", "strength")),
    "EmptyLatentImage": ("width", "height", "batch_size"),
    "EmptySD3LatentImage": ("width", "height", "batch_size"),
    "LatentUpscale": ("upscale_method", "width", "height", "crop"),
    "LatentUpscaleBy": ("upscale_method", "scale_by"),
    "ImageScale": ("upscale_method", "width", "height", "crop"),
    "LoadImage": ("image", "upload"),  # the picture an image-to-image starts from
    "ControlNetLoader": ("control_net_name",),
    "PrimitiveNode": ("value",),
    "PrimitiveInt": ("value",),
    "PrimitiveFloat": ("value",),
    "PrimitiveString": ("value",),
    "PrimitiveStringMultiline": ("value",),
}
_CONTROL = {"fixed", "increment", "decrement", "randomize"}
_PROMPTS = {"text", "text_g", "text_l", "clip_l", "clip_g", "t5xxl"}  # texts the front end strips of comments
_COMMENTS = re.compile(r"/\*[\s\S]*?\*/|//[^\n]*")
_SIZE = re.compile(r"\s*\d+\s*[x×]\s*\d+")
_PASS_THROUGH = {"Reroute"}
_LEFT_OUT = {"Note", "MarkdownNote"}
_MUTED, _BYPASSED = 2, 4
_MAX_DEPTH = 64


def parse_comfyui_workflow(workflow_json: str) -> ImageMetadata | None:
    graph = workflow_graph(json_object(workflow_json))
    return parse_comfyui_graph(graph) if graph else None


def workflow_graph(workflow: Any) -> dict[str, dict] | None:
    """The API graph of a UI workflow (node id → class_type and inputs), or None for what is no workflow."""
    if not isinstance(workflow, dict) or not isinstance(workflow.get("nodes"), list):
        return None
    nodes = {str(node["id"]): node for node in workflow["nodes"]
             if isinstance(node, dict) and "id" in node and isinstance(node.get("type"), str)}
    origins = _links(workflow.get("links"))

    def source(link: Any) -> list | None:
        """Where a link comes from, through reroutes and bypassed nodes (their input of the link's type)."""
        for _ in range(_MAX_DEPTH):
            origin = origins.get(str(link))
            if origin is None or origin[0] not in nodes:
                return None
            node, kind = nodes[origin[0]], origin[2]
            if node["type"] not in _PASS_THROUGH and node.get("mode") != _BYPASSED:
                return [origin[0], origin[1]]
            entries = [entry for entry in _entries(node) if entry.get("link") is not None]
            same = [entry for entry in entries if entry.get("type") == kind] or entries[:1]
            if not same:
                return None
            link = same[0]["link"]
        return None

    graph: dict[str, dict] = {}
    for key, node in nodes.items():
        kind = node["type"]
        if node.get("mode") in (_MUTED, _BYPASSED) or kind in _PASS_THROUGH or kind in _LEFT_OUT:
            continue
        inputs = _widgets(node)
        for entry in _entries(node):
            origin = source(entry.get("link")) if entry.get("link") is not None else None
            widget = entry.get("widget")
            name = entry.get("name") or (widget.get("name") if isinstance(widget, dict) else None)
            if origin is not None and isinstance(name, str):
                inputs[name] = origin
        graph[key] = {"class_type": kind, "inputs": inputs}
    return graph


def _links(links: Any) -> dict[str, tuple[str, int, Any]]:
    """Link id → (origin node, origin slot, type), from the lists of workflow version 0.4 or the objects of 1."""
    found: dict[str, tuple[str, int, Any]] = {}
    for link in links if isinstance(links, list) else ():
        if isinstance(link, list) and len(link) >= 6:
            found[str(link[0])] = (str(link[1]), link[2], link[5])
        elif isinstance(link, dict) and {"id", "origin_id", "origin_slot"} <= link.keys():
            found[str(link["id"])] = (str(link["origin_id"]), link["origin_slot"], link.get("type"))
    return found


def _entries(node: dict) -> list[dict]:
    entries = node.get("inputs")
    return [entry for entry in entries if isinstance(entry, dict)] if isinstance(entries, list) else []


def _widgets(node: dict) -> dict[str, Any]:
    """A node's widget values by name; prompt texts as ComfyUI queues them (without comments)."""
    values = node.get("widgets_values")
    if isinstance(values, dict):  # some custom nodes keep them by name already
        return {name: value for name, value in values.items() if isinstance(name, str)}
    if not isinstance(values, list):
        return {}
    names = _WIDGETS.get(node["type"])
    if names is None:
        names = tuple(entry["widget"]["name"] for entry in _entries(node)
                      if isinstance(entry.get("widget"), dict) and isinstance(entry["widget"].get("name"), str))
    named = _unnamed(node, values) if not names else _by_name(names, values)
    return {name: _without_comments(value) if name in _PROMPTS and isinstance(value, str) else value
            for name, value in named.items()}


def _unnamed(node: dict, values: list) -> dict[str, Any]:
    """The widgets of a custom node the workflow does not name, by position ("widget_0", …), so that a link to the
    node finds the one value of the kind it wants (a seed node's seed, a text box's text); a text encoder's first
    text is its "text", a size written as text ("1216 x 832 (landscape)") its "dimensions", and the LoRA rows of a
    Power Lora Loader its `lora_1`, `lora_2` …, as in the graph."""
    named = {f"widget_{position}": value for position, value in enumerate(values)
             if isinstance(value, (str, int, float)) and not _is_control(value)}
    loras = [value for value in values if isinstance(value, dict) and {"on", "lora"} <= value.keys()]
    named.update({f"lora_{number}": value for number, value in enumerate(loras, 1)})  # rgthree's Power Lora Loader
    texts = [name for name, value in named.items() if isinstance(value, str)]
    if texts and any(entry.get("type") == "CLIP" for entry in _entries(node)):
        named["text"] = named.pop(texts[0])
    sizes = [name for name in texts if name in named and _SIZE.match(named[name])]
    if sizes:
        named["dimensions"] = named.pop(sizes[0])
    return named


def _by_name(names: tuple[str, ...], values: list) -> dict[str, Any]:
    named: dict[str, Any] = {}
    spare = len(values) - len(names)
    position = 0
    for name in names:
        if position >= len(values):
            break
        value = values[position]
        named[name] = value
        position += 1
        if spare > 0 and position < len(values) and _is_control(values[position]) and _is_int(value):
            position += 1  # the seed's "control after generate"
            spare -= 1
    return named


def _without_comments(text: str) -> str:
    """A prompt as ComfyUI's front end queues it: without /* block */ and // line comments."""
    return _COMMENTS.sub("", text)


def _is_control(value: Any) -> bool:
    return isinstance(value, bool) or (isinstance(value, str) and value in _CONTROL)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
