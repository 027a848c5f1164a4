"""ComfyUI's UI workflow (the `workflow` chunk), read where an image has no API graph beside it.

ComfyUI's SaveImage writes both; an image that keeps only the workflow (a front end or node that
saves the canvas alone, or a file whose `prompt` chunk was stripped) still says how it was made.
The workflow is turned into the API graph the ComfyUI reader walks (`comfyui.py`): each node's
links become inputs naming the node and slot they come from, and its `widgets_values`, a list by
position, get their names: from the core nodes' order below, or, for other nodes, from the widget
inputs the front end lists. A seed widget is followed by its "control after generate" value
("randomize", or a bool in early workflows), which has no name. Reroutes and bypassed nodes pass
their input through; muted nodes are left out; a primitive node is a node with one `value`.

Subgraphs (ComfyUI's front end since 1.24, mid-2025) are expanded as the front end expands them when
it queues: a node whose type is the id of a definition in `definitions.subgraphs` stands for that
definition's nodes, named "instance:node" ("57:12"; nested, "57:3:12"). A link inside from the
subgraph's input node (-10) continues from the instance's input in the same place; an unlinked one
whose inner end is a widget takes the instance's value for it (`widgets_values` holds one per such
input, in order). A link out through the output node (-20) starts at the inner node feeding it.

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
    "ImageScaleBy": ("upscale_method", "scale_by"),
    "ImageScaleToTotalPixels": ("upscale_method", "megapixels"),
    "UpscaleModelLoader": ("model_name",),  # a Hires fix's upscaler model
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
_SUBGRAPH_INPUT, _SUBGRAPH_OUTPUT = "-10", "-20"  # a subgraph's input and output nodes
_MAX_DEPTH = 64
_MAX_NODES = 10_000


def parse_comfyui_workflow(workflow_json: str) -> ImageMetadata | None:
    graph = workflow_graph(json_object(workflow_json))
    return parse_comfyui_graph(graph) if graph else None


def workflow_graph(workflow: Any) -> dict[str, dict] | None:
    """The API graph of a UI workflow (node id → class_type and inputs), or None for what is no workflow."""
    if not isinstance(workflow, dict) or not isinstance(workflow.get("nodes"), list):
        return None
    graph: dict[str, dict] = {}
    _Scope(workflow, _definitions(workflow)).flatten(graph)
    return graph


class _Value:
    """A value a link resolves to instead of a node's output: an unlinked subgraph input's widget value."""

    def __init__(self, value: Any):
        self.value = value


class _Scope:
    """The root graph, or one subgraph instance's copy of its definition."""

    def __init__(self, graph: dict, definitions: dict[str, dict], instance: dict | None = None,
                 parent: _Scope | None = None, path: tuple[str, ...] = ()):
        self.graph, self.definitions, self.instance, self.parent, self.path = graph, definitions, instance, parent, path
        nodes = graph.get("nodes")
        self.nodes = {str(node["id"]): node for node in nodes if isinstance(node, dict) and "id" in node
                      and isinstance(node.get("type"), str)} if isinstance(nodes, list) else {}
        self.links = _links(graph.get("links"))
        self.chain = (parent.chain if parent else frozenset()) | {str(graph.get("id"))}
        self._children: dict[str, _Scope | None] = {}
        self._promoted: dict[int, Any] | None = None

    def key(self, node_id: str) -> str:
        return ":".join((*self.path, node_id))

    def child(self, node: dict) -> _Scope | None:
        """The scope of a subgraph instance that is not muted; None for any other node."""
        key = str(node["id"])
        if key not in self._children:
            definition = self.definitions.get(node["type"])
            usable = definition is not None and node.get("mode") != _MUTED and node["type"] not in self.chain
            self._children[key] = _Scope(definition, self.definitions, node, self, (*self.path, key)) \
                if usable else None
        return self._children[key]

    def flatten(self, graph: dict[str, dict]) -> None:
        for key, node in self.nodes.items():
            if len(graph) >= _MAX_NODES:  # subgraphs of subgraphs of … multiply
                return
            kind = node["type"]
            if node.get("mode") in (_MUTED, _BYPASSED) or kind in _PASS_THROUGH or kind in _LEFT_OUT:
                continue
            if kind in self.definitions:  # a subgraph; not one inside itself
                inner = self.child(node)
                if inner is not None:
                    inner.flatten(graph)
                continue
            inputs = _widgets(node)
            for entry in _entries(node):
                origin = self.source(entry.get("link")) if entry.get("link") is not None else None
                widget = entry.get("widget")
                name = entry.get("name") or (widget.get("name") if isinstance(widget, dict) else None)
                if origin is not None and isinstance(name, str):
                    inputs[name] = origin.value if isinstance(origin, _Value) else origin
            graph[self.key(key)] = {"class_type": kind, "inputs": inputs}

    def source(self, link: Any) -> list | _Value | None:
        """Where a link comes from: [node, slot] in the flattened graph, through reroutes, bypassed nodes (their
        input of the link's type) and subgraph boundaries; or a promoted widget's value: the outermost instance's
        that has one (an instance shows the value of the one inside until it is given its own)."""
        scope, promoted = self, None
        for _ in range(_MAX_DEPTH):
            origin = scope.links.get(str(link))
            if origin is None:
                return promoted
            node_id, slot, kind = origin
            if node_id == _SUBGRAPH_INPUT:
                if scope.parent is None:
                    return promoted
                link, value = scope.outer_input(slot)
                promoted = value or promoted
                if link is None:
                    return promoted
                scope = scope.parent
                continue
            node = scope.nodes.get(node_id)
            if node is None:
                return None
            if node["type"] in _PASS_THROUGH or node.get("mode") == _BYPASSED:
                entries = [entry for entry in _entries(node) if entry.get("link") is not None]
                same = [entry for entry in entries if entry.get("type") == kind] or entries[:1]
                if not same:
                    return None
                link = same[0]["link"]
                continue
            inner = scope.child(node)
            if inner is None:
                return [scope.key(node_id), slot]
            link = inner.output_link(slot)
            scope = inner
        return None

    def output_link(self, slot: Any) -> Any:
        """The link inside this subgraph that reaches its output `slot`."""
        return next((link for link, target in self.links.targets.items() if target == (_SUBGRAPH_OUTPUT, slot)),
                    None)

    def outer_input(self, slot: Any) -> tuple[Any, _Value | None]:
        """What feeds this subgraph's input `slot` from outside: the instance's link to it (None when unlinked), and
        the instance's value for it where the input is a promoted widget (None where it has none)."""
        if not _is_int(slot):
            return None, None
        declared = self.graph.get("inputs")
        declared = declared if isinstance(declared, list) else []
        name = declared[slot].get("name") if 0 <= slot < len(declared) and isinstance(declared[slot], dict) else None
        entries = _entries(self.instance)
        if len(entries) == len(declared) and 0 <= slot < len(entries):
            entry = entries[slot]  # the instance's inputs are the subgraph's, in order: the front end goes by place
        else:  # an instance saved out of step with its definition: by name
            entry = next((entry for entry in entries if name is not None and entry.get("name") == name), None)
        link = entry.get("link") if entry is not None else None
        if self._promoted is None:
            self._promoted = self._promoted_values(len(declared))
        value = self._promoted.get(slot)
        return link, (_Value(value) if value is not None else None)

    def _promoted_values(self, count: int) -> dict[int, Any]:
        """The instance's widget values by subgraph input: one per input whose inner end is a widget, in input
        order, as a node's widgets by name (a seed's "control after generate" after it, in older front ends)."""
        values = self.instance.get("widgets_values")
        if not isinstance(values, list):
            return {}
        return _by_name(tuple(slot for slot in range(count) if self._feeds_widget(slot)), values)

    def _feeds_widget(self, slot: int) -> bool:
        for link, (origin, origin_slot, _) in self.links.items():
            target = self.links.targets.get(link)
            if origin == _SUBGRAPH_INPUT and origin_slot == slot and target and target[0] in self.nodes:
                entries = _entries(self.nodes[target[0]])
                entry = next((entry for entry in entries if entry.get("link") is not None
                              and str(entry["link"]) == link), None)
                if entry is not None and isinstance(entry.get("widget"), dict):
                    return True
        return False


def _definitions(workflow: dict) -> dict[str, dict]:
    """Every subgraph definition by id, nested ones too."""
    found: dict[str, dict] = {}
    pending = [workflow]
    while pending and len(found) < 1000:
        holder = pending.pop()
        definitions = holder.get("definitions")
        subgraphs = definitions.get("subgraphs") if isinstance(definitions, dict) else None
        for definition in subgraphs if isinstance(subgraphs, list) else ():
            if isinstance(definition, dict) and isinstance(definition.get("id"), str) \
                    and definition["id"] not in found:
                found[definition["id"]] = definition
                pending.append(definition)
    return found


class _Links(dict):
    """Link id → (origin node, origin slot, type); `targets`: link id → (target node, target slot)."""

    def __init__(self):
        super().__init__()
        self.targets: dict[str, tuple[str, Any]] = {}


def _links(links: Any) -> _Links:
    """The links of workflow version 0.4 (lists) or 1 and subgraphs (objects; a list, or a map by id)."""
    found = _Links()
    for link in links.values() if isinstance(links, dict) else links if isinstance(links, list) else ():
        if isinstance(link, list) and len(link) >= 6:
            key = str(link[0])
            found[key] = (str(link[1]), link[2], link[5])
            found.targets[key] = (str(link[3]), link[4])
        elif isinstance(link, dict) and {"id", "origin_id", "origin_slot"} <= link.keys():
            key = str(link["id"])
            found[key] = (str(link["origin_id"]), link["origin_slot"], link.get("type"))
            found.targets[key] = (str(link.get("target_id")), link.get("target_slot"))
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


def _by_name(names: tuple, values: list) -> dict:
    """`values` by the names (or subgraph inputs) they are for, in order, past each seed's "control after
    generate" where there are more values than names."""
    named: dict = {}
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
