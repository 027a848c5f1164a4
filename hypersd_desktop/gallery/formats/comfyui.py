"""ComfyUI's API graph (the `prompt` chunk, or "Prompt: {…}" in a JPEG/WebP's EXIF).

The graph is walked from the sampler that made the image back along links: to the texts, the
seed, steps, guidance, sampler and scheduler, the latent size, the model loader and the LoRA
loaders on the model's path. Any node is followed generically: a value that is a link is looked
up on the node it points to, by the same name or a common one ("value", "seed", "text", …), so
primitive, seed and text nodes of custom packs resolve without knowing them.

Which sampler's settings describe the image: the final sampler is the last in a chain (one whose
output no other sampler refines; of several, the longest chain, then the newest node). Walking
back along its latent, the first pass of that chain is the one reported, as A1111 reports the
first pass of a Hires fix; where passes merge (latent composition) the final sampler is.
"""

from __future__ import annotations

import re
from typing import Any

from hypersd_desktop.gallery.formats.common import (
    ImageMetadata, adetailer_suffix, json_object, size_of, stem, to_float, to_int,
)

_MAX_DEPTH = 64
MAX_SIDE = 65_536  # pixels on a side: a size past it in a graph is no picture's
_MAX_TEXT = 100_000  # characters of a joined text: far past a prompt the model reads
_VALUE_NAMES = ("value", "int", "float", "number", "seed", "noise_seed", "string", "text", "Text", "STRING", "INT",
                "FLOAT", "prompt", "populated_text", "wildcard_text", "text_positive")
_TEXT_NAMES = ("text", "text_g", "text_l", "prompt", "positive", "string", "populated_text", "wildcard_text",
               "Text", "text_positive", "value",
               "clip_l", "clip_g", "t5xxl")  # the encoders of FLUX and SD3 (CLIPTextEncodeFlux, CLIPTextEncodeSD3)
_NOT_CONDITIONING = {"clip", "model", "vae", "image", "images", "mask", "control_net", "pixels", "samples",
                     "clip_vision", "style_model", "upscale_model", "latent", "latent_image"}
# Nodes whose conditioning has no text: a FLUX, Z-Image or Qwen workflow's "negative" is its prompt zeroed out.
_ZEROED = {"ConditioningZeroOut"}
_SIDES = (("text_positive", "text_negative"), ("positive_prompt", "negative_prompt"))  # a node's two prompt outputs
_LORA_WEIGHTS = ("strength_model", "strength", "lora_model_strength")
_MODEL_NAMES = ("ckpt_name", "unet_name", "model_name", "base_ckpt_name", "model_path", "gguf_name")


def is_comfyui_graph(data: Any) -> bool:
    """Node ids mapping to objects with a class_type and inputs."""
    return isinstance(data, dict) and bool(data) and any(
        isinstance(node, dict) and "class_type" in node and "inputs" in node for node in data.values())


class _Graph:
    def __init__(self, data: dict):
        self.nodes = {str(key): node for key, node in data.items()
                      if isinstance(node, dict) and isinstance(node.get("inputs"), dict)}
        self._joins: dict[str, str | None] = {}  # the texts of concatenating nodes, by node

    def node(self, link: Any) -> dict | None:
        if isinstance(link, list) and len(link) == 2 and str(link[0]) in self.nodes:
            return self.nodes[str(link[0])]
        return None

    def value(self, raw: Any, names: tuple[str, ...], kind: type | tuple[type, ...], depth: int = 0) -> Any:
        """A literal of `kind`: `raw` itself, or what a chain of links leads to. A node giving both prompts (the
        SDXL Prompt Styler's `text_positive` and `text_negative`) gives the one of the output linked: the first,
        or the second; a node joining texts (ComfyUI's StringConcatenate, WAS's Text Concatenate) their join."""
        for _ in range(_MAX_DEPTH):
            if isinstance(raw, dict) and "content" in raw:  # pysssss's loaders: {"content": name, "image": preview}
                raw = raw["content"]
            if isinstance(raw, kind) and not isinstance(raw, bool):
                return raw
            node = self.node(raw)
            if node is None:
                return None
            inputs = node["inputs"]
            if kind is str and "concat" in str(node.get("class_type", "")).lower():
                key = str(raw[0])
                if key not in self._joins:  # once per node: a cycle, or a join reached twice, costs nothing more
                    self._joins[key] = None
                    self._joins[key] = self._joined(inputs, names, depth + 1) if depth < _MAX_DEPTH else None
                return self._joins[key]
            sides = next((pair for pair in _SIDES if pair[0] in inputs and pair[1] in inputs), None)
            if sides is not None:
                found = inputs[sides[1] if raw[1] == 1 else sides[0]]
            else:  # the first of `names` that holds a value of the kind, or a link (a seed is no text)
                found = next((inputs[name] for name in names if name in inputs and (
                    (isinstance(inputs[name], kind) and not isinstance(inputs[name], bool))
                    or self.node(inputs[name]) is not None)), None)
            if found is None:
                literals = [v for v in inputs.values() if isinstance(v, kind) and not isinstance(v, bool)]
                links = [v for v in inputs.values() if self.node(v) is not None]
                found = literals[0] if len(literals) == 1 else (links[0] if links else None)
            raw = found
        return None

    def _joined(self, inputs: dict, names: tuple[str, ...], depth: int) -> str | None:
        """The texts a concatenating node joins (`string_a`, `string_b` …; `text_a` … or `text1` …), in order, by
        its `delimiter` (none given: nothing between them, as ComfyUI's own node has it)."""
        parts = [name for name in inputs if re.fullmatch(r"(string|text)_?([a-z]|\d+)", name)]
        texts = [self.value(inputs[name], names, str, depth) for name in sorted(parts, key=_natural)]
        texts = [text for text in texts if isinstance(text, str) and text]
        delimiter = inputs.get("delimiter", "")
        delimiter = {"\\n": "\n", "comma": ", ", "space": " ", "none": ""}.get(delimiter, delimiter) \
            if isinstance(delimiter, str) else ""
        return delimiter.join(texts)[:_MAX_TEXT] if texts else None  # a join of joins doubles at each one

    def texts(self, link: Any, role: str = "positive") -> list[str]:
        """Every prompt text feeding a conditioning input, through combine/area/concat nodes. A node that takes or
        holds both prompts (ControlNetApplyAdvanced and the like, Efficiency's Efficient Loader) is followed along
        the one of `role`, "positive" or "negative"."""
        found: list[str] = []
        seen: set[str] = set()
        stack = [link]
        while stack and len(seen) < 500:
            current = stack.pop()
            if not (isinstance(current, list) and len(current) == 2) or str(current[0]) in seen:
                continue
            seen.add(str(current[0]))
            node = self.node(current)
            if node is None or node.get("class_type") in _ZEROED:
                continue
            inputs = node["inputs"]
            if {"positive", "negative"} <= inputs.keys() and self.node(inputs[role]) is not None:
                stack.append(inputs[role])  # both prompts pass through: only this one's side is its text
                continue
            names = [role] if {"positive", "negative"} <= inputs.keys() else [name for name in _TEXT_NAMES
                                                                                if name in inputs]
            if "wildcard_text" in names and self.value(inputs.get("populated_text"), _VALUE_NAMES, str):
                names.remove("wildcard_text")  # Impact's wildcard nodes: the text as populated is what ran
            texts = [self.value(inputs[name], _VALUE_NAMES, str) for name in names]
            texts = [t.strip() for t in texts if isinstance(t, str) and t.strip()]
            if texts:
                for text in dict.fromkeys(texts):  # SDXL encoders repeat text_g in text_l
                    found.append(text)
                continue
            for name, value in reversed(list(inputs.items())):
                if name not in _NOT_CONDITIONING and self.node(value) is not None:
                    stack.append(value)
        return found

    def upstream(self, link: Any, through: tuple[str, ...]) -> list[dict]:
        """Nodes reached from `link` following only inputs named in `through`."""
        chain: list[dict] = []
        node = self.node(link)
        while node is not None and len(chain) < _MAX_DEPTH:
            chain.append(node)
            node = next((self.node(node["inputs"][name]) for name in through if self.node(node["inputs"].get(name))),
                        None)
        return chain

    def ancestors(self, key: str) -> set[str]:
        seen: set[str] = set()
        stack = [key]
        while stack:
            node = self.nodes.get(stack.pop())
            for value in (node or {}).get("inputs", {}).values():
                if self.node(value) is not None and str(value[0]) not in seen:
                    seen.add(str(value[0]))
                    stack.append(str(value[0]))
        return seen


def _natural(name: str) -> tuple:
    """`text_2` before `text_10`."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def _is_sampler(node: dict) -> bool:
    inputs = node["inputs"]
    kind = str(node.get("class_type", ""))
    return "Sampler" in kind and "Select" not in kind and ("latent_image" in inputs or "latent" in inputs) and (
        any(name in inputs for name in ("positive", "guider", "model", "conditioning")))


_NOT_LATENT = {"model", "clip", "vae", "positive", "negative", "conditioning", "clip_vision", "control_net",
               "upscale_model", "mask", "guider", "sampler", "sigmas", "noise"}


def _latent_sources(graph: _Graph, key: str) -> set[str]:
    """The samplers whose output reaches sampler `key`'s latent, through upscales, decodes,
    re-encodes and composites (but not through another sampler)."""
    found: set[str] = set()
    inputs = graph.nodes[key]["inputs"]
    stack = [inputs.get("latent_image", inputs.get("latent"))]
    seen: set[str] = set()
    while stack:
        link = stack.pop()
        node = graph.node(link)
        if node is None or str(link[0]) in seen:
            continue
        seen.add(str(link[0]))
        if _is_sampler(node):
            found.add(str(link[0]))
            continue
        stack.extend(value for name, value in node["inputs"].items() if name not in _NOT_LATENT)
    return found


def _generating_sampler(graph: _Graph) -> list[str] | None:
    """The samplers of the chain that ends in the final image, the last first: the last of the list (the first
    pass) is the one whose settings describe the image, the one before it a Hires fix's or refiner's second pass;
    when passes merge (latent composition), the final sampler alone."""
    samplers = {key: node for key, node in graph.nodes.items() if _is_sampler(node)}
    if not samplers:
        return None
    upstream = {key: graph.ancestors(key) & samplers.keys() for key in samplers}
    refined = set().union(*upstream.values())
    finals = [key for key in samplers if key not in refined] or list(samplers)

    def order(key: str):
        # A node inside a subgraph is queued as "instance:node" ("57:12", nested "57:3:12").
        numbers = tuple(number if (number := to_int(part)) is not None else -1 for part in key.split(":"))
        return len(upstream[key]), numbers
    final = max(finals, key=order)
    chain = [final]
    while True:
        sources = _latent_sources(graph, chain[-1])
        if not sources:
            return chain
        if len(sources) > 1 or not sources.isdisjoint(chain):
            return [final]
        chain.append(sources.pop())


def parse_comfyui(prompt_json: str) -> ImageMetadata | None:
    return parse_comfyui_graph(json_object(prompt_json))


def parse_comfyui_graph(data: Any) -> ImageMetadata | None:
    """What an API graph (node id → class_type and inputs) says of the image its sampler made."""
    if not is_comfyui_graph(data):
        return None
    graph = _Graph(data)
    _unpipe(graph)
    chain = _generating_sampler(graph)
    if chain is None:
        return None
    sampler_node = chain[-1]
    inputs = _sampler_inputs(graph, sampler_node)

    def number(names: tuple[str, ...], kind) -> Any:
        return _number(graph, inputs, names, kind)

    seed = number(("seed", "noise_seed"), int)
    steps = number(("steps",), (int, float))
    guidance = number(("cfg", "guidance"), (int, float))
    sampler_name = number(("sampler_name", "sampler"), str)
    model_name, loras = _model(graph, inputs.get("model"))
    width, height = _size(graph, inputs.get("latent_image", inputs.get("latent")))
    extra = {}
    clip_skip = None
    for node in map(graph.nodes.get, graph.ancestors(sampler_node)):  # CLIPSetLastLayer's -2 is A1111's clip skip 2
        if isinstance(node, dict) and node.get("class_type") == "CLIPSetLastLayer":
            layer = graph.value(node["inputs"].get("stop_at_clip_layer"), ("stop_at_clip_layer", *_VALUE_NAMES), int)
            clip_skip = -layer if isinstance(layer, int) and layer < 0 else clip_skip
        elif isinstance(node, dict) and "clip_skip" in node["inputs"]:  # a loader's own (Efficiency's: -2)
            layer = graph.value(node["inputs"]["clip_skip"], ("clip_skip", *_VALUE_NAMES), int)
            clip_skip = -layer if isinstance(layer, int) and layer < 0 else clip_skip
    scheduler = number(("scheduler",), str)
    if scheduler:
        extra["scheduler"] = scheduler
    extra.update(_pictures_in(graph, inputs, to_float(number(("denoise",), (int, float)))))
    found = ImageMetadata(
        format="comfyui", prompt="\n".join(graph.texts(inputs.get("positive"))),
        negative_prompt="\n".join(graph.texts(inputs.get("negative"), "negative")), steps=to_int(steps),
        sampler=sampler_name,
        guidance=to_float(guidance), seed=to_int(seed), width=width, height=height, model_name=model_name,
        loras=tuple(loras), clip_skip=clip_skip, vae_name=_vae(graph, sampler_node), extra=extra,
    )
    if len(chain) > 1 and width and height:  # the picture it made, enlarged and made again: a Hires fix
        second = _second_pass(graph, sampler_node, chain[-2], found)
        extra.update({key: value for key, value in second.items() if key not in extra})
    elif "script" in inputs:  # Efficiency Nodes' KSampler runs its HighRes-Fix Script itself
        extra.update({key: value for key, value in _highres_script(graph, inputs["script"]).items()
                      if key not in extra})
    if width and height:
        made = size_of(extra.get("Hires size")) if "Hires size" in extra else (width, height)
        extra.update(_enlarged_after(graph, chain[0], made))
    return found


def enlarged_picture(data: Any, size: tuple[int, int]) -> dict[str, str]:
    """What a graph that only enlarges a loaded picture (Civitai's Upscale) did to a picture of `size`, in the words
    of A1111's Extras tab (see `_enlarged_after`)."""
    if not is_comfyui_graph(data):
        return {}
    graph = _Graph(data)
    loads = [key for key, node in graph.nodes.items() if str(node.get("class_type")).startswith("LoadImage")]
    return next(filter(None, (_enlarged_after(graph, key, size) for key in loads)), {})


def _enlarged_after(graph: _Graph, final: str, size: tuple[int, int]) -> dict[str, str]:
    """The final sampler's picture enlarged on its way to the image saved (an upscaler model, a resize), in the
    words A1111's Extras tab writes: `Postprocess upscale by`, `Postprocess upscaler`."""
    outputs = [node for node in graph.nodes.values() if isinstance(node["inputs"].get("images"), list)
               and any(word in str(node.get("class_type")) for word in ("Save", "Preview"))]
    outputs.sort(key=lambda node: "Save" not in str(node.get("class_type")))  # a saved image before a preview
    for node in outputs:
        between = _between(graph, node["inputs"]["images"], final)
        enlarged = _enlarged(graph, between, size) if between is not None else None
        if enlarged is not None and enlarged[0] > size[0]:
            return {"Postprocess upscale by": f"{round(enlarged[0] / size[0], 4):g}",
                    "Postprocess upscaler": _enlarged_by(graph, between)}
    return {}


def _sampler_inputs(graph: _Graph, key: str) -> dict:
    """A sampler's inputs, with those of the nodes SamplerCustomAdvanced links to (its seed, guidance, sampler and
    schedule sit there)."""
    inputs = dict(graph.nodes[key]["inputs"])
    for part in ("noise", "guider", "sampler", "sigmas"):
        node = graph.node(inputs.get(part))
        if node is not None:
            for name, value in node["inputs"].items():
                inputs.setdefault(name, value)
    if "conditioning" in inputs and "positive" not in inputs:  # BasicGuider: one conditioning, no negative
        inputs["positive"] = inputs["conditioning"]
    return inputs


def _number(graph: _Graph, inputs: dict, names: tuple[str, ...], kind) -> Any:
    """The first of `names` among `inputs`, its value followed through the nodes that give it."""
    raw = next((inputs[name] for name in names if name in inputs), None)
    return graph.value(raw, (*names, *_VALUE_NAMES), kind)


# The inputs a picture passes through between two samplers: decoded, enlarged, encoded again
_PICTURE_INPUTS = ("samples", "latent", "latent_image", "latents", "LATENT", "pixels", "image", "images")


def _second_pass(graph: _Graph, first: str, second: str, made: ImageMetadata) -> dict[str, str]:
    """A sampler after the first pass that repaints its picture enlarged, in A1111's words for a Hires fix: the
    size (`Hires upscale`, `Hires size`), how it was enlarged (`Hires upscaler`: the upscaler model's name, else
    "Latent" or the resampling), the share repainted (`Denoising strength`), the steps it ran (`Hires steps`) and
    what it had of its own (`Hires prompt`, `Hires CFG Scale`, `Hires sampler`, `Hires checkpoint`). None where the
    picture was not enlarged, or repainted whole."""
    inputs = _sampler_inputs(graph, second)
    between = _between(graph, inputs.get("latent_image", inputs.get("latent")), first)
    size = _enlarged(graph, between, (made.width, made.height)) if between is not None else None
    if size is None or size[0] <= made.width:
        return {}
    steps = to_int(_number(graph, inputs, ("steps",), (int, float)))
    start = to_int(_number(graph, inputs, ("start_at_step",), (int, float)))
    if start is not None and steps:  # KSamplerAdvanced: the steps after `start_at_step` of its schedule
        end = to_int(_number(graph, inputs, ("end_at_step",), (int, float)))
        denoise, ran = (steps - start) / steps, min(end if end is not None else steps, steps) - start
    else:  # KSampler, or a custom sampler's BasicScheduler: the last `steps` of a schedule `denoise` long
        denoise, ran = to_float(_number(graph, inputs, ("denoise",), (int, float))), steps
    if denoise is None or not 0 < denoise < 1:
        return {}
    found = {"Hires upscale": f"{round(size[0] / made.width, 4):g}", "Hires size": f"{size[0]}x{size[1]}",
             "Hires upscaler": _enlarged_by(graph, between), "Denoising strength": f"{round(denoise, 4):g}"}
    if ran and ran > 0:
        found["Hires steps"] = str(ran)
    texts = ("\n".join(graph.texts(inputs.get("positive"))), "\n".join(graph.texts(inputs.get("negative"), "negative")))
    for key, own, first_pass in (("Hires prompt", texts[0], made.prompt),
                                 ("Hires negative prompt", texts[1], made.negative_prompt)):
        if own.strip() and own.strip() != first_pass.strip():
            found[key] = own
    guidance = to_float(_number(graph, inputs, ("cfg", "guidance"), (int, float)))
    if guidance is not None and guidance != made.guidance:
        found["Hires CFG Scale"] = f"{guidance:g}"
    sampler = _number(graph, inputs, ("sampler_name", "sampler"), str)
    if sampler and sampler != made.sampler:
        found["Hires sampler"] = sampler
    model = _model(graph, inputs.get("model"))[0]
    if model and model != made.model_name:
        found["Hires checkpoint"] = model
    return found


def _highres_script(graph: _Graph, link: Any) -> dict[str, str]:
    """Efficiency Nodes' HighRes-Fix Script (among the scripts chained to its KSampler's `script` input) in A1111's
    Hires words: it enlarges the sampler's latent (`latent`: a latent upscale; `pixel` or `both`: its upscaler model)
    `upscale_by` times and samples it again for `hires_steps` at `denoise`, with its own checkpoint unless "(use
    same)". Run for more than one iteration, it is more than one Hires fix: not read."""
    for node in graph.upstream(link, ("script",)):
        if node.get("class_type") != "HighRes-Fix Script":
            continue
        inputs = node["inputs"]

        def value(name: str, kind) -> Any:
            return graph.value(inputs.get(name), (name, *_VALUE_NAMES), kind)

        scale = to_float(value("upscale_by", (int, float)))
        denoise = to_float(value("denoise", (int, float)))
        iterations = to_int(value("iterations", (int, float)))
        if scale is None or scale <= 1 or denoise is None or not 0 < denoise <= 1 or iterations not in (None, 1):
            return {}
        pixels = value("upscale_type", str) in ("pixel", "both")
        upscaler = stem(value("pixel_upscaler", str)) if pixels else None
        found = {"Hires upscale": f"{round(scale, 4):g}", "Hires upscaler": upscaler or "Latent",
                 "Denoising strength": f"{round(denoise, 4):g}"}
        steps = to_int(value("hires_steps", (int, float)))
        if steps and steps > 0:
            found["Hires steps"] = str(steps)
        checkpoint = value("hires_ckpt_name", str)
        if checkpoint and checkpoint != "(use same)":
            found["Hires checkpoint"] = stem(checkpoint) or checkpoint
        return found
    return {}


def _between(graph: _Graph, link: Any, first: str) -> list[dict] | None:
    """The nodes a picture passes through from sampler `first` to `link`, in that order; None where `link` does
    not come from it."""
    nodes: list[dict] = []
    while (node := graph.node(link)) is not None and len(nodes) < _MAX_DEPTH:
        if str(link[0]) == first:
            return nodes[::-1]
        nodes.append(node)
        link = next((node["inputs"][name] for name in _PICTURE_INPUTS if graph.node(node["inputs"].get(name))), None)
    return None


def _enlarged(graph: _Graph, nodes: list[dict], size: tuple[int, int]) -> tuple[int, int] | None:
    """The size a picture of `size` has after `nodes` (upscales, resizes, decodes and encodes), or None where an
    upscaler model's scale cannot be told from its name and no resize after it says the size."""
    width, height = size
    known = True
    for node in nodes:
        inputs = node["inputs"]

        def number(name: str) -> float | None:  # a size or scale: a side of 0 keeps the other's ratio
            value = to_float(graph.value(inputs.get(name), (name, *_VALUE_NAMES), (int, float)))
            return value if value is not None and 0 <= value <= MAX_SIDE else None
        if "scale_by" in inputs and number("scale_by"):  # ImageScaleBy, LatentUpscaleBy
            width, height = width * number("scale_by"), height * number("scale_by")
        elif "upscale_model" in inputs:  # ImageUpscaleWithModel: the model's own scale
            factor = _model_scale(graph, inputs["upscale_model"])
            known = factor is not None
            width, height = (width * factor, height * factor) if factor else (width, height)
        elif "width" in inputs and "height" in inputs:  # ImageScale, LatentUpscale (0: the other side's ratio)
            across, down = number("width"), number("height")
            if across is None or down is None:  # worked out by nodes of their own: not known here
                known = False
            elif across or down:
                width, height = (across or width * down / height), (down or height * across / width)
                known = True
        elif "megapixels" in inputs and number("megapixels"):  # ImageScaleToTotalPixels
            factor = (number("megapixels") * 1024 * 1024 / (width * height)) ** 0.5
            width, height, known = width * factor, height * factor, True
        if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):  # no picture this size was made
            return None
    return (round(width), round(height)) if known else None


_MODEL_SCALE = re.compile(r"(?<![0-9a-z])([1-8])x|x([1-8])(?![0-9])")


def _model_scale(graph: _Graph, link: Any) -> int | None:
    """An upscaler model's scale, from its file's name as people name them (`4x-UltraSharp`, `RealESRGAN_x4plus`,
    `SwinIR_4x`)."""
    name = _upscaler_name(graph, link)
    found = _MODEL_SCALE.search(name.lower()) if name else None
    return int(found[1] or found[2]) if found else None


def _upscaler_name(graph: _Graph, link: Any) -> str | None:
    node = graph.node(link)
    name = graph.value(node["inputs"].get("model_name"), ("model_name", *_VALUE_NAMES), str) if node else None
    return name if isinstance(name, str) else None


def _enlarged_by(graph: _Graph, nodes: list[dict]) -> str:
    """What enlarged the picture, as A1111 names it: the upscaler model's file name, else "Latent", else the
    resampling ("Lanczos", "Bilinear")."""
    for node in nodes:
        if "upscale_model" in node["inputs"]:
            name = _upscaler_name(graph, node["inputs"]["upscale_model"]) or ""
            air = re.search(r"civitai:\d+@(\d+)$", name)  # Civitai's generator names its files by AIR
            return f"Civitai's upscaler {air[1]}" if air else stem(name) or "an upscaler model"
    if any("Latent" in str(node.get("class_type")) and "Upscale" in str(node.get("class_type")) for node in nodes):
        return "Latent"
    method = next((node["inputs"]["upscale_method"] for node in nodes
                   if isinstance(node["inputs"].get("upscale_method"), str)), "")
    return method.replace("-", " ").replace("_", " ").capitalize() or "Lanczos"


_MASKED = ("VAEEncodeForInpaint", "SetLatentNoiseMask", "InpaintModelConditioning")  # an inpainting's encoders


def _pictures_in(graph: _Graph, inputs: dict, denoise: float | None) -> dict[str, str]:
    """What the sampler started from besides its prompts, in A1111's words, for reuse to say it does not repeat
    them: a picture its latent encodes (`Denoising strength`, the picture's file as `Init image`, `Mask` when
    inpainting) and the ControlNets its positive prompt passes through (`ControlNet N`: their models)."""
    found: dict[str, str] = {}
    link = inputs.get("latent_image", inputs.get("latent"))
    latent = [graph.node(link), *map(graph.nodes.get, graph.ancestors(str(link[0])) if graph.node(link) else ())]
    kinds = {str(node.get("class_type")) for node in latent if isinstance(node, dict)}
    masked = next((kind for kind in _MASKED if kind in kinds), None)
    if any("VAEEncode" in kind or kind == "InpaintModelConditioning" for kind in kinds) and (
            masked or denoise is not None and denoise < 1):
        found["Denoising strength"] = f"{denoise if denoise is not None else 1:g}"
        pictures = [node["inputs"].get("image") for node in latent
                    if isinstance(node, dict) and str(node.get("class_type")).startswith("LoadImage")]
        if pictures and isinstance(pictures[0], str):
            found["Init image"] = pictures[0]
        if masked:
            found["Mask"] = masked
    positive = inputs.get("positive")
    nodes = [graph.node(positive), *map(graph.nodes.get, graph.ancestors(str(positive[0])) if graph.node(positive)
                                        else ())]
    models = [graph.value(node["inputs"].get("control_net"), ("control_net_name", *_VALUE_NAMES), str)
              for node in nodes if isinstance(node, dict) and "ControlNetApply" in str(node.get("class_type"))]
    for number, model in enumerate(models):
        found[f"ControlNet {number}"] = f"Model: {stem(model)}" if model else "Model: unknown"
    model_link = inputs.get("model")
    on_model = [graph.node(model_link), *map(graph.nodes.get, graph.ancestors(str(model_link[0]))
                                             if graph.node(model_link) else ())]
    kinds = [str(node.get("class_type")) for node in on_model if isinstance(node, dict)]
    if any("IPAdapter" in kind and not kind.endswith("Loader") for kind in kinds):  # IPAdapter Plus's nodes
        files = [stem(node["inputs"].get("ipadapter_file")) or node["inputs"].get("preset") for node in on_model
                 if isinstance(node, dict) and str(node.get("class_type")).startswith("IPAdapter")
                 and isinstance(node["inputs"].get("ipadapter_file") or node["inputs"].get("preset"), str)]
        found["IP-Adapter"] = ", ".join(dict.fromkeys(files)) or "IPAdapter"
    tiled = [node for node in graph.nodes.values() if str(node.get("class_type")).startswith("UltimateSDUpscale")
             and isinstance(node.get("inputs"), dict)]
    if tiled:  # the Ultimate SD Upscale node repaints the image it is given in tiles, as the A1111 extension does
        upscaler = graph.value(tiled[0]["inputs"].get("upscale_model"), ("model_name", *_VALUE_NAMES), str)
        found.update((f"Ultimate SD upscale {key}", f"{value:g}") for key, value in (
            (key, tiled[0]["inputs"].get(field)) for key, field in (
                ("tile_width", "tile_width"), ("tile_height", "tile_height"), ("mask_blur", "mask_blur"),
                ("padding", "tile_padding")))  # in the A1111 extension's words
            if isinstance(value, (int, float)) and not isinstance(value, bool))
        found["Ultimate SD upscale upscaler"] = stem(upscaler) if upscaler else "None"
        mode = tiled[0]["inputs"].get("seam_fix_mode")
        if isinstance(mode, str) and mode.lower() != "none":  # its seams fix, in the A1111 extension's names
            found["Ultimate SD upscale seams_fix_type"] = mode
            found.update((f"Ultimate SD upscale seams_fix_{key}", f"{value:g}") for key, value in (
                (key, tiled[0]["inputs"].get(f"seam_fix_{key}")) for key in ("denoise", "width", "mask_blur",
                                                                             "padding"))
                if isinstance(value, (int, float)) and not isinstance(value, bool))
    detailers = [node for node in graph.nodes.values() if node.get("class_type") in _DETAILERS]
    if detailers:  # Impact Pack's detailers redo what a detector finds in the image the sampler made
        detectors = [stem(node["inputs"].get("model_name")) for node in graph.nodes.values()
                     if str(node.get("class_type")).startswith("UltralyticsDetectorProvider")
                     and isinstance(node["inputs"].get("model_name"), str)]
        found["Detailer"] = ", ".join(dict.fromkeys(name for name in detectors if name)) or "FaceDetailer"
        found.update(_face_detailers(graph))
    return found


def _face_detailers(graph: _Graph) -> dict[str, str]:
    """Each FaceDetailer node (Impact Pack) with its detector, in the order the image goes through them, in the
    shape ADetailer writes its passes (`Detailer model`, `Detailer denoising strength`, `Detailer confidence`; the
    second's keys ending " 2nd" …: `common.detail_pass` reads them): its denoise, its detector's threshold, the
    steps and CFG scale it samples with (its own, as ADetailer's "use separate steps" and "CFG scale"), its bbox
    dilation (OpenCV's dilation or erosion by a square that many pixels across, as ADetailer's "dilate erode") and
    the feathering of the edge it pastes each face back along (as ADetailer's "mask blur")."""
    faced = {key: node for key, node in graph.nodes.items() if node.get("class_type") == "FaceDetailer"}
    order = sorted(faced, key=lambda key: (len(graph.ancestors(key) & faced.keys()), key))  # along the chain
    found: dict[str, str] = {}
    for key in order:
        inputs = faced[key]["inputs"]
        provider = graph.node(inputs.get("bbox_detector"))
        model = provider["inputs"].get("model_name") if provider is not None else None
        if not isinstance(model, str) or not stem(model):
            continue
        ending = adetailer_suffix(sum(1 for name in found if name.startswith("Detailer model")))
        found[f"Detailer model{ending}"] = stem(model)
        for name, field in (("denoising strength", "denoise"), ("confidence", "bbox_threshold"),
                            ("steps", "steps"), ("CFG scale", "cfg"), ("dilate erode", "bbox_dilation"),
                            ("mask blur", "feather")):
            value = inputs.get(field)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                found[f"Detailer {name}{ending}"] = f"{value:g}"
                if field in ("steps", "cfg"):  # a FaceDetailer samples with its own, always
                    found[f"Detailer use separate {name}{ending}"] = "True"
    return found


_DETAILERS = {"FaceDetailer", "FaceDetailerPipe", "DetailerForEach", "DetailerForEachPipe", "DetailerForEachDebug",
              "DetailerForEachDebugPipe"}


def _unpipe(graph: _Graph) -> None:
    """Easy-Use's pipes (from tinyterra's): a loader (`easy a1111Loader`, `easy fullLoader` …) holds the model,
    prompts, size, clip skip and VAE and passes them on as one `pipe`; a pre-sampling node (`easy preSampling`,
    `easy fullkSampler` …) adds the seed, steps, guidance and sampler. Such a node is given the links a sampler
    has, to the loader's outputs in the order its pipe carries them, and is walked as one. Impact Pack's
    `KSampler (pipe)` takes the model and prompts packed by ToBasicPipe as its `basic_pipe`."""
    for name, node in list(graph.nodes.items()):
        inputs = node["inputs"]
        packed = graph.node(inputs.get("basic_pipe"))  # Impact Pack's: ToBasicPipe's model, prompts …
        if "steps" in inputs and packed is not None and {"model", "positive", "negative"} <= packed["inputs"].keys():
            graph.nodes[name] = {**node, "inputs": {**{part: packed["inputs"][part] for part in
                                                       ("model", "positive", "negative")}, **inputs}}
            continue
        if "steps" not in inputs or "sampler_name" not in inputs or graph.node(inputs.get("pipe")) is None:
            continue
        loader = next((link for link in _pipe_links(graph, inputs["pipe"])
                       if {"positive", "negative"} <= graph.node(link)["inputs"].keys()), None)
        if loader is not None and "latent_image" not in inputs:
            key = str(loader[0])
            graph.nodes[name] = {  # a copy: the caller's graph stays as it was
                "class_type": f"{node.get('class_type')} (as a KSampler)",  # so that it is taken for a sampler
                "inputs": {**inputs, "model": [key, 0], "positive": [key, 1], "negative": [key, 2],
                           "latent_image": [key, 3], "optional_vae": [key, 4]}}


def _pipe_links(graph: _Graph, link: Any) -> list:
    """The links along a chain of pipes, from `link` back."""
    found = []
    while graph.node(link) is not None and len(found) < _MAX_DEPTH:
        found.append(link)
        link = graph.node(link)["inputs"].get("pipe")
    return found


def _vae(graph: _Graph, sampler_node: str) -> str | None:
    """The VAE file a VAE Decode of the sampler's result reads, when a loader of its own gives it rather than the
    checkpoint (a `VAELoader`'s `vae_name`); for a sampler that decodes itself (Efficiency's), the VAE it takes."""
    decoders = [node["inputs"].get("vae") for key, node in graph.nodes.items()
                if str(node.get("class_type", "")).startswith("VAEDecode") and sampler_node in graph.ancestors(key)]
    sampler = graph.nodes[sampler_node]["inputs"]
    for link in [*decoders, sampler.get("optional_vae")]:
        for source in graph.upstream(link, ("vae", "VAE")):
            name = graph.value(source["inputs"].get("vae_name"), ("vae_name", *_VALUE_NAMES), str)
            if name and name != "Baked VAE":
                return name
    return None


def _model(graph: _Graph, link: Any) -> tuple[str | None, list[tuple[str, float, None]]]:
    """The loader at the end of the model path, and the LoRAs applied along it (base first): LoRA loaders, the
    rows of rgthree's Power Lora Loader (those switched on) and Lora Loader Stack, and the stacks (Comfyroll's,
    Efficiency's) an applier or loader on the path takes."""
    loras = []
    for node in graph.upstream(link, ("model", "unet", "base_model", "MODEL")):
        inputs = node["inputs"]
        found = []
        if "lora_name" in inputs:  # a LoRA loader's, or Efficiency's Efficient Loader's own ("None": none)
            name = graph.value(inputs["lora_name"], ("lora_name", *_VALUE_NAMES), str)
            weight = next((inputs[key] for key in _LORA_WEIGHTS if key in inputs), 1.0)
            weight = graph.value(weight, (*_LORA_WEIGHTS, *_VALUE_NAMES), (int, float))
            if name and name != "None" and stem(name):
                found.append((stem(name), to_float(weight) if weight is not None else 1.0, None))
        found += _stacked(graph, inputs.get("lora_stack", inputs.get("optional_lora_stack")))
        found += _row_loras(graph, inputs)
        loras.extend(reversed(found))
        for name in _MODEL_NAMES:
            if name in inputs:
                value = graph.value(inputs[name], (name, *_VALUE_NAMES), str)
                return stem(value), loras[::-1]
    return None, loras[::-1]


def _row_loras(graph: _Graph, inputs: dict) -> list[tuple[str, float, None]]:
    """LoRAs in numbered rows: rgthree's Power Lora Loader (`lora_1`, `lora_2` … each {"on", "lora",
    "strength"}) and its Lora Loader Stack (`lora_01` with `strength_01` …; "None" for an empty row)."""
    found = []
    for key in sorted((key for key in inputs if re.fullmatch(r"lora_\d+", key)),
                      key=lambda key: to_int(key.removeprefix("lora_")) or 0):
        entry = inputs[key]
        if isinstance(entry, dict):
            name, strength, on = entry.get("lora"), to_float(entry.get("strength")), entry.get("on") is True
        else:
            name = graph.value(entry, (key, *_VALUE_NAMES), str)
            strength_key = f"strength_{key.removeprefix('lora_')}"
            strength = to_float(graph.value(inputs.get(strength_key), (strength_key, *_VALUE_NAMES), (int, float)))
            on = strength != 0
        if on and isinstance(name, str) and stem(name) and name != "None":
            found.append((stem(name), strength if strength is not None else 1.0, None))
    return found


def _stacked(graph: _Graph, link: Any) -> list[tuple[str, float, None]]:
    """The LoRAs of a stack and the stacks it extends (theirs first): Comfyroll's CR LoRA Stack (`switch_N`,
    `lora_name_N`, `model_weight_N`), Efficiency's LoRA Stacker (`lora_count`, `lora_name_N`, `lora_wt_N` or in
    its advanced mode `model_str_N`)."""
    found: list[tuple[str, float, None]] = []
    for node in graph.upstream(link, ("lora_stack",)):
        inputs = node["inputs"]
        count = to_int(graph.value(inputs.get("lora_count"), ("lora_count", *_VALUE_NAMES), int))
        own = []
        for key in sorted((key for key in inputs if key.startswith("lora_name_")),
                          key=lambda key: to_int(key.removeprefix("lora_name_")) or 0):
            number = key.removeprefix("lora_name_")
            if count is not None and (to_int(number) or 0) > count:
                continue
            name = graph.value(inputs[key], (key, *_VALUE_NAMES), str)
            switch = graph.value(inputs.get(f"switch_{number}", "On"), (f"switch_{number}", *_VALUE_NAMES), str)
            weight = next((graph.value(inputs[weight], (weight, *_VALUE_NAMES), (int, float))
                           for weight in (f"model_weight_{number}", f"model_str_{number}", f"lora_wt_{number}")
                           if weight in inputs and (weight != f"model_str_{number}" or inputs.get("input_mode")
                                                    == "advanced")), None)
            if name and name != "None" and stem(name) and switch != "Off":
                own.append((stem(name), to_float(weight) if weight is not None else 1.0, None))
        found = own + found  # a stack's own LoRAs come after those of the stack it extends
    return found


def _size(graph: _Graph, link: Any) -> tuple[int | None, int | None]:
    """The size the sampler ran at: an empty latent's, an upscale's, or, for img2img, that of a
    resize before the encode (a loaded image's own size is not in the graph)."""
    for node in graph.upstream(link, ("samples", "latent", "latent_image", "latents", "LATENT", "pixels", "image",
                                      "images")):
        inputs = node["inputs"]
        if "empty_latent_width" in inputs and isinstance(inputs.get("resolution"), str) \
                and (size := size_of(inputs["resolution"]))[0]:  # Easy-Use's loaders: a preset, else the widths
            return size
        for across, down in (("width", "height"), ("empty_latent_width", "empty_latent_height")):  # Efficiency's
            if across in inputs and down in inputs:
                width = graph.value(inputs[across], (across, *_VALUE_NAMES), (int, float))
                height = graph.value(inputs[down], (down, *_VALUE_NAMES), (int, float))
                if to_int(width) and to_int(height):
                    return to_int(width), to_int(height)
        for name in ("dimensions", "resolution", "aspect_ratio"):
            if isinstance(inputs.get(name), str) and (size := size_of(inputs[name]))[0]:
                return size
    return None, None
