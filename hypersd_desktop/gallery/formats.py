"""Reading generation parameters that other tools write into PNG text chunks.

AUTOMATIC1111/Forge (`parameters` text), ComfyUI (`prompt` API graph and `workflow`), InvokeAI
(`invokeai_metadata` JSON), Fooocus (`parameters` as JSON with `fooocus_scheme`), NMKD and the
old "dream" format (`Dream` text), and this app's own (`hypersd` request JSON + `parameters`).
Each reader returns `ImageMetadata` or None; nothing here raises on odd input.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

# A1111's own pattern for `key: value` pairs, values optionally JSON-quoted.
_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_SIZE = re.compile(r"^(\d+)x(\d+)$")


@dataclass(frozen=True)
class ImageMetadata:
    """What an image says about how it was made. `request` is this app's exact request, if present."""

    format: str
    prompt: str = ""
    negative_prompt: str = ""
    steps: int | None = None
    sampler: str | None = None
    guidance: float | None = None
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    model_name: str | None = None
    model_hash: str | None = None
    loras: tuple[tuple[str, float, str | None], ...] = ()  # (name, weight, hash)
    recipe: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    request: dict[str, Any] | None = None


def _int(value: Any) -> int | None:
    """An integer from metadata text or JSON: exact for integers of any size (seeds go to 2^64 - 1),
    truncated for decimals ("4.0"), None for anything else (including inf and nan)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        pass
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def parse_a1111(text: str, format_name: str = "a1111") -> ImageMetadata | None:
    """The `parameters` text: prompt lines, `Negative prompt:` lines, then the settings line."""
    lines = text.strip().split("\n")
    if not lines or not lines[-1].lstrip().startswith("Steps:") and "Steps: " not in lines[-1]:
        return None
    settings_line = lines.pop()
    prompt_lines, negative_lines, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:"):].strip()
        (negative_lines if in_negative else prompt_lines).append(line)
    fields: dict[str, str] = {}
    for key, value in _PARAM.findall(settings_line):
        value = value.strip()
        if value.startswith('"') and value.endswith('"'):
            try:
                value = json.loads(value)
            except ValueError:
                value = value.strip('"')
        fields[key.strip()] = value
    by_key = {key.lower(): value for key, value in fields.items()}  # "CFG Scale" (image savers) is "CFG scale"
    width = height = None
    if match := _SIZE.match(by_key.get("size", "")):
        width, height = int(match[1]), int(match[2])
    weights = _pairs(by_key.get("lora weights", ""))
    hashes = _pairs(by_key.get("lora hashes", ""))
    names = list(dict.fromkeys([*hashes, *weights]))
    loras = tuple((name, _float(weights.get(name)) or 1.0, hashes.get(name)) for name in names)
    known = {"steps", "sampler", "cfg scale", "seed", "size", "model hash", "model", "lora hashes", "lora weights",
             "hyper-sd"}
    return ImageMetadata(
        format=format_name, prompt="\n".join(prompt_lines).strip(), negative_prompt="\n".join(negative_lines).strip(),
        steps=_int(by_key.get("steps")), sampler=by_key.get("sampler"), guidance=_float(by_key.get("cfg scale")),
        seed=_int(by_key.get("seed")), width=width, height=height, model_name=by_key.get("model"),
        model_hash=by_key.get("model hash"), loras=loras, recipe=by_key.get("hyper-sd"),
        extra={k: v for k, v in fields.items() if k.lower() not in known},
    )


def _pairs(text: str) -> dict[str, str]:
    pairs = {}
    for part in text.split(","):
        name, sep, value = part.rpartition(":")
        if sep and name.strip():
            pairs[name.strip()] = value.strip()
    return pairs


def _json_object(text: str) -> dict | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def parse_comfyui(prompt_json: str) -> ImageMetadata | None:
    """The API graph in the `prompt` chunk: the sampler node and what feeds it."""
    graph = _json_object(prompt_json)
    if graph is None:
        return None
    nodes = {key: node for key, node in graph.items() if isinstance(node, dict) and "inputs" in node}
    sampler = next((n for n in nodes.values() if str(n.get("class_type", "")).startswith("KSampler")), None)
    if sampler is None:
        return None
    inputs = sampler["inputs"]

    def follow(link, want: str | None = None):
        """The node a link points at, walking through nodes until one has input `want`."""
        for _ in range(20):
            if not (isinstance(link, list) and link and str(link[0]) in nodes):
                return None
            node = nodes[str(link[0])]
            if want is None or want in node["inputs"]:
                return node
            link = next((v for v in node["inputs"].values() if isinstance(v, list)), None)
        return None

    def text_of(link) -> str:
        node = follow(link, "text")
        text = node["inputs"].get("text") if node else ""
        return text if isinstance(text, str) else ""

    model = next((n["inputs"].get("ckpt_name") for n in nodes.values() if "ckpt_name" in n["inputs"]), None)
    loras = tuple(
        (str(n["inputs"]["lora_name"]).rsplit(".", 1)[0], _float(n["inputs"].get("strength_model")) or 1.0, None)
        for n in nodes.values() if "lora_name" in n["inputs"]
    )
    latent = follow(inputs.get("latent_image"), "width")
    return ImageMetadata(
        format="comfyui", prompt=text_of(inputs.get("positive")), negative_prompt=text_of(inputs.get("negative")),
        steps=_int(inputs.get("steps")), sampler=inputs.get("sampler_name"), guidance=_float(inputs.get("cfg")),
        seed=_int(inputs.get("seed", inputs.get("noise_seed"))),
        width=_int(latent["inputs"].get("width")) if latent else None,
        height=_int(latent["inputs"].get("height")) if latent else None,
        model_name=str(model).rsplit(".", 1)[0] if model else None, loras=loras,
    )


def parse_invokeai(text: str) -> ImageMetadata | None:
    data = _json_object(text)
    if data is None:
        return None
    model = data.get("model") or {}
    loras = []
    for lora in data.get("loras") or []:
        if isinstance(lora, dict):
            info = lora.get("model") or lora.get("lora") or {}
            name = info.get("name") or info.get("model_name") or info.get("key") if isinstance(info, dict) else None
            if name:
                loras.append((str(name), _float(lora.get("weight")) or 1.0, info.get("hash")))
    return ImageMetadata(
        format="invokeai", prompt=str(data.get("positive_prompt", "")), negative_prompt=str(data.get("negative_prompt", "")),
        steps=_int(data.get("steps")), sampler=data.get("scheduler"), guidance=_float(data.get("cfg_scale")),
        seed=_int(data.get("seed")), width=_int(data.get("width")), height=_int(data.get("height")),
        model_name=(model.get("name") or model.get("model_name")) if isinstance(model, dict) else str(model),
        model_hash=model.get("hash") if isinstance(model, dict) else None, loras=tuple(loras),
    )


FOOOCUS_KEYS = {"guidance_scale", "base_model", "sharpness", "adm_guidance", "performance", "styles",
                "resolution", "refiner_model", "metadata_scheme"}


def is_comfyui_graph(data: Any) -> bool:
    """A ComfyUI API graph: node ids mapping to objects with a class_type and inputs."""
    return isinstance(data, dict) and bool(data) and any(
        isinstance(node, dict) and "class_type" in node and "inputs" in node for node in data.values())


def parse_fooocus(text: str) -> ImageMetadata | None:
    """Fooocus's JSON `parameters`, recognised by its own keys (other tools write JSON there too)."""
    data = _json_object(text)
    if data is None or "prompt" not in data or not FOOOCUS_KEYS & set(data):
        return None
    width = height = None
    resolution = str(data.get("resolution", ""))
    if numbers := re.findall(r"\d+", resolution):
        if len(numbers) >= 2:
            width, height = int(numbers[0]), int(numbers[1])
    loras = []
    for key, value in data.items():
        if key.startswith("lora_combined_") and isinstance(value, str) and " : " in value:
            name, weight = value.rsplit(" : ", 1)
            loras.append((name.rsplit(".", 1)[0], _float(weight) or 1.0, None))
    return ImageMetadata(
        format="fooocus", prompt=str(data.get("prompt", "")), negative_prompt=str(data.get("negative_prompt", "")),
        steps=_int(data.get("steps")), sampler=data.get("sampler"), guidance=_float(data.get("guidance_scale")),
        seed=_int(data.get("seed")), width=width, height=height,
        model_name=str(data.get("base_model", "")).rsplit(".", 1)[0] or None,
        model_hash=data.get("base_model_hash"), loras=tuple(loras),
    )


_DREAM_FLAG = re.compile(r"^(-[A-Za-z])(.+)?$")  # "-s 50" or, joined, "-s50"


def parse_dream(text: str) -> ImageMetadata | None:
    """InvokeAI's "Dream" command line: the prompt (quoted or not, `[negative]` at its end), then
    options as `-s 50` or joined as `-s50`: -s steps, -S seed, -W/-H size, -C guidance, -A sampler."""
    words = text.split()  # an unquoted prompt is plain words: its apostrophes are text ("it's")
    if text.lstrip()[:1] in ("'", '"'):
        try:
            words = shlex.split(text)
        except ValueError:  # an unbalanced quote inside the prompt
            pass
    prompt_words: list[str] = []
    options: dict[str, str] = {}
    index = 0
    while index < len(words):
        word = words[index]
        match = _DREAM_FLAG.match(word) if options or prompt_words else None
        if match is None and not options:
            prompt_words.append(word)
        elif match is not None:
            if match[2] is not None:  # joined: "-s50"
                options[match[1]] = match[2]
            elif index + 1 < len(words):
                options[match[1]] = words[index + 1]
                index += 1
        index += 1
    if not prompt_words and not options:
        return None
    prompt, negative = _split_negative(" ".join(prompt_words))
    return ImageMetadata(
        format="invokeai", prompt=prompt, negative_prompt=negative, steps=_int(options.get("-s")),
        sampler=options.get("-A"), guidance=_float(options.get("-C")), seed=_int(options.get("-S")),
        width=_int(options.get("-W")), height=_int(options.get("-H")),
    )


def _split_negative(prompt: str) -> tuple[str, str]:
    """InvokeAI writes the negative prompt in square brackets inside the prompt."""
    negatives = re.findall(r"\[([^\[\]]*)\]", prompt)
    return re.sub(r"\s*\[[^\[\]]*\]", "", prompt).strip(), ", ".join(n.strip() for n in negatives if n.strip())


def parse_sd_metadata(text: str) -> ImageMetadata | None:
    """InvokeAI 2's `sd-metadata` JSON: the model, and the generation under "image"."""
    data = _json_object(text)
    image = data.get("image") if data is not None else None
    if not isinstance(image, dict):
        return None
    raw_prompt = image.get("prompt", "")
    if isinstance(raw_prompt, list):  # [{"prompt": "…", "weight": 1.0}, …]
        raw_prompt = " ".join(str(p.get("prompt", "")) for p in raw_prompt if isinstance(p, dict))
    prompt, negative = _split_negative(str(raw_prompt))
    return ImageMetadata(
        format="invokeai", prompt=prompt, negative_prompt=negative, steps=_int(image.get("steps")),
        sampler=image.get("sampler") if isinstance(image.get("sampler"), str) else None,
        guidance=_float(image.get("cfg_scale")), seed=_int(image.get("seed")), width=_int(image.get("width")),
        height=_int(image.get("height")),
        model_name=str(data.get("model_weights")) if data.get("model_weights") else None,
        model_hash=str(data.get("model_hash")) if data.get("model_hash") else None,
    )


def parse_chunks(chunks: dict[str, str]) -> ImageMetadata | None:
    """The best description of an image from its text chunks, or None when it has none."""
    if "hypersd" in chunks:
        try:
            request = json.loads(chunks["hypersd"])
        except ValueError:
            request = None
        base = parse_a1111(chunks.get("parameters", ""), "hypersd")
        if isinstance(request, dict):
            if base is None:
                base = ImageMetadata("hypersd", prompt=str(request.get("prompt", "")))
            return ImageMetadata(**{**base.__dict__, "format": "hypersd", "request": request})
    parameters = chunks.get("parameters", "")
    if is_comfyui_graph(_json_object(parameters)) and "prompt" not in chunks:
        chunks = {**chunks, "prompt": parameters}  # a ComfyUI graph in the UserComment (Civitai)
    readers = (("parameters", parse_fooocus), ("parameters", parse_a1111), ("prompt", parse_comfyui),
               ("invokeai_metadata", parse_invokeai), ("sd-metadata", parse_sd_metadata), ("Dream", parse_dream))
    found = [parsed for key, reader in readers if key in chunks and (parsed := reader(chunks[key])) is not None]
    # When chunks disagree, real values win over placeholders: an image saver's `parameters` with
    # no prompt next to the graph that made the image loses to the graph.
    return next((parsed for parsed in found if parsed.prompt.strip()), found[0] if found else None)
