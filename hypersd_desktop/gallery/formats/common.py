"""What every reader returns, and the value parsing they share.

Every reader takes text it found in an image and returns `ImageMetadata` or None; none raises on
odd input. Numbers are exact: integers of any size (ComfyUI seeds go to 2^64 - 1) never pass
through a float, decimals are read as written.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from hypersd_desktop.core.prompt_tags import network_tags
from hypersd_desktop.core.vocab import (
    MASK_MERGES, MAX_DILATE_ERODE, MAX_MASK_OFFSET, SeamFix, Tiling, upscaler_families,
)


@dataclass(frozen=True)
class ImageMetadata:
    """What an image says about how it was made. `request` is this app's exact request, if present.

    `sampler` is the tool's own name for it, kept as written; `sampler_key` is the same sampler in
    one vocabulary across tools (see `sampler_key`)."""

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
    embeddings: tuple[tuple[str, str | None], ...] = ()  # (name, hash) of the textual-inversion embeddings used
    recipe: str | None = None
    clip_skip: int | None = None  # A1111's count: 2 reads the text encoder's second-to-last layer
    vae_name: str | None = None  # a VAE chosen instead of the model's own, as the tool names it (A1111: its file)
    vae_hash: str | None = None
    # (kind, version id) of the Civitai resources the image names (kind: "checkpoint", "lora", "embedding", or ""
    # where the image does not say), for what is not installed to be downloaded from there
    civitai: tuple[tuple[str, int], ...] = ()
    extra: dict[str, str] = field(default_factory=dict)
    request: dict[str, Any] | None = None

    @property
    def sampler_key(self) -> str | None:
        return sampler_key(self.sampler)


def merged(primary: ImageMetadata | None, fallback: ImageMetadata | None, format: str | None = None) -> ImageMetadata | None:
    """`primary`'s fields, each one it lacks taken from `fallback`: for tools that write their own
    record beside a ComfyUI graph."""
    if primary is None or fallback is None:
        chosen = primary or fallback
        return ImageMetadata(**{**chosen.__dict__, "format": format}) if chosen and format else chosen
    values = {name: value if value not in (None, "", ()) else getattr(fallback, name)
              for name, value in primary.__dict__.items()}
    values["extra"] = {**fallback.extra, **primary.extra}
    if format:
        values["format"] = format
    return ImageMetadata(**values)


# Civitai's names for the kinds of resource (in its generator's `Civitai resources` and in AIRs), as the app's
CIVITAI_KINDS = {"checkpoint": "checkpoint", "lora": "lora", "locon": "lora", "lycoris": "lora", "dora": "lora",
                 "embed": "embedding", "embedding": "embedding", "textualinversion": "embedding"}
# (its layer and format may follow: `…@2514310:clip.safetensors`)
_AIR = re.compile(r"^urn:air:[\w.-]+:(?P<type>[\w.-]+):civitai:\d+@(?P<version>\d+)(?:[:.][\w.:-]*)?$", re.IGNORECASE)


def civitai_airs(airs: Any) -> tuple[tuple[str, int], ...]:
    """The (kind, version id) of the checkpoints, LoRAs and embeddings in a list of Civitai AIRs
    (`urn:air:sdxl:checkpoint:civitai:827184@2514310`), as Civitai's generator lists them in its graphs."""
    found = (_AIR.match(air.strip()) for air in airs if isinstance(air, str)) if isinstance(airs, list) else ()
    return tuple(dict.fromkeys((CIVITAI_KINDS[m["type"].lower()], int(m["version"])) for m in found
                               if m and m["type"].lower() in CIVITAI_KINDS))


def to_int(value: Any) -> int | None:
    """An integer from metadata text or JSON: exact for integers of any size, truncated for
    decimals ("4.0"), None for anything else (including inf and nan)."""
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


def to_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def to_text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def json_object(text: Any) -> dict | None:
    if not isinstance(text, str) or not text.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(text.rstrip().rstrip("\0"))  # TensorArt ends its JSON with a NUL
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def stem(name: Any) -> str | None:
    """A model's name as tools show it: the file name without folders or its weights suffix."""
    if not isinstance(name, str) or not name.strip():
        return None
    name = re.split(r"[\\/]", name.strip())[-1]
    return re.sub(r"\.(safetensors|ckpt|pt|pth|bin|gguf|sft)$", "", name, flags=re.IGNORECASE)


_SIZE = re.compile(r"(\d+)\s*[x×*,]\s*(\d+)")


def size_of(text: Any) -> tuple[int | None, int | None]:
    """Width and height from "832x1216", "1024 x 1024 (square)", "(768, 1280)" or "768*1280"."""
    match = _SIZE.search(str(text)) if text is not None else None
    return (int(match[1]), int(match[2])) if match else (None, None)


def prompt_loras(prompt: str) -> dict[str, float]:
    """The LoRAs a prompt's `<lora:NAME:WEIGHT>` tags apply, by name, with their weights (1 when not given)."""
    found: dict[str, float] = {}
    for kind, name, weight in network_tags(prompt):
        if kind != "hypernet" and name:
            value = to_float(weight)
            found[name] = 1.0 if value is None else value
    return found


def split_negative(prompt: str) -> tuple[str, str]:
    """InvokeAI writes the negative prompt in square brackets inside the prompt."""
    negatives = re.findall(r"\[([^\[\]]*)\]", prompt)
    return re.sub(r"\s*\[[^\[\]]*\]", "", prompt).strip(), ", ".join(n.strip() for n in negatives if n.strip())


# One vocabulary for samplers across tools: A1111's "DPM++ 2M Karras", ComfyUI's "dpmpp_2m",
# InvokeAI's "k_dpmpp_2m" and "dpmpp_2m_k", Fooocus's "dpmpp_2m_sde_gpu" all name the same
# sampler family; the key is ComfyUI's spelling (the most widely written), without scheduler
# suffixes, "k_" prefixes or GPU variants.
_SAMPLER_ALIASES = {
    "euler a": "euler_ancestral", "euler_a": "euler_ancestral", "eulera": "euler_ancestral",
    "dpm++ 2m": "dpmpp_2m", "dpm++ 2m sde": "dpmpp_2m_sde", "dpm++ sde": "dpmpp_sde", "dpm++ 2s a": "dpmpp_2s_ancestral",
    "dpm++ 3m sde": "dpmpp_3m_sde", "dpm2": "dpm_2", "dpm2 a": "dpm_2_ancestral", "dpm fast": "dpm_fast",
    "dpm adaptive": "dpm_adaptive", "unipc": "uni_pc", "uni_pc_bh2": "uni_pc", "plms": "plms", "ddim": "ddim",
    "ddim_trailing": "ddim", "ddim-trailing": "ddim", "lms": "lms", "heun": "heun", "lcm": "lcm", "tcd": "tcd",
    "euler": "euler", "dpmpp_2m_sde_gpu": "dpmpp_2m_sde", "dpmpp_sde_gpu": "dpmpp_sde", "pndm": "plms",
    "dpmpp_2m_k": "dpmpp_2m", "dpmpp_2m_sde_k": "dpmpp_2m_sde", "euler_k": "euler", "lms_k": "lms", "heun_k": "heun",
    "dpm_2_k": "dpm_2", "dpmpp_sde_k": "dpmpp_sde", "restart": "restart", "deis": "deis", "ipndm": "ipndm",
    "dpm-solver++": "dpmpp_2m", "flow match euler discrete": "euler",  # Mochi Diffusion's (Core ML's schedulers)
    "unipc bh2": "uni_pc", "unipc_bh2": "uni_pc",
}
_SCHEDULE_WORDS = re.compile(r"\s+(karras|exponential|sgm[_ ]uniform|simple|normal|beta|uniform|align your steps)$")


_SAMPLER_KEYS = set(_SAMPLER_ALIASES.values())


def sampler_key(name: Any) -> str | None:
    if not isinstance(name, str) or not name.strip():
        return None
    if " - " in name:  # Krita's AI plugin writes its preset's name, "Default - DPM++ 2M": the sampler ends it
        tail = sampler_key(name.rsplit(" - ", 1)[1])
        if tail in _SAMPLER_KEYS:
            return tail
    key = name.strip().lower()
    key = _SCHEDULE_WORDS.sub("", key)
    for prefix in ("sample_", "k_"):
        key = key.removeprefix(prefix)
    key = _SAMPLER_ALIASES.get(key, key)
    key = re.sub(r"[\s\-]+", "_", key)
    return _SAMPLER_ALIASES.get(key, key)


HIRES_DEFAULT_STRENGTH = 0.7  # A1111's Hires fix denoising strength when an image does not say it
HIRES_SCALES = (1.0, 4.0)  # the enlargements this app's Hires fix makes: above the first, at most the second


def _hires_target(metadata: ImageMetadata) -> tuple[int, int] | None:
    """The size A1111's Hires fix (Forge, reForge and SD.Next write it too) enlarged an image to after its first
    pass; None without one."""
    extra = {key.lower(): value for key, value in metadata.extra.items()}
    factor = to_float(extra.get("hires upscale") or extra.get("hires scale"))
    target = size_of(extra.get("hires size"))
    if target == (None, None):
        target = (to_int(extra.get("hires resize-1")) or None, to_int(extra.get("hires resize-2")) or None)
    enlarged = (factor is not None and factor > 1) or None not in target
    if not enlarged or not (metadata.width and metadata.height):
        return None
    return target if None not in target else (round(metadata.width * factor), round(metadata.height * factor))


def hires_pass(metadata: ImageMetadata) -> str | None:
    """How a Hires fix enlarged an image after its first pass, in words: "enlarged to 1536 × 1536 by a Hires fix
    pass (R-ESRGAN 4x+)"; None without one."""
    final = _hires_target(metadata)
    if final is None:
        return None
    upscaler = {key.lower(): value for key, value in metadata.extra.items()}.get("hires upscaler")
    return f"enlarged to {final[0]} × {final[1]} by a Hires fix pass{f' ({upscaler})' if upscaler else ''}"


class HiresSettings(NamedTuple):
    """The Hires fix this app runs to make an image's second pass again."""

    scale: float  # the enlargement along the width
    strength: float  # the image's denoising strength
    steps: int | None  # the second pass's steps: A1111's "Hires steps", or without them all the first pass's


def hires_settings(metadata: ImageMetadata) -> HiresSettings | None:
    """The Hires fix that makes an image's second pass again; None without a Hires fix, or with one this app's
    does not make (over 4 times)."""
    final = _hires_target(metadata)
    if final is None:
        return None
    scale = round(final[0] / metadata.width, 4)
    if not HIRES_SCALES[0] < scale <= HIRES_SCALES[1]:
        return None
    extra = {key.lower(): value for key, value in metadata.extra.items()}
    strength = to_float(extra.get("denoising strength"))
    steps = to_int(extra.get("hires steps")) or metadata.steps  # A1111 writes them only when they are not 0
    return HiresSettings(scale, strength if strength is not None and 0 < strength <= 1 else HIRES_DEFAULT_STRENGTH,
                         steps if steps is not None and steps > 0 else None)


class PartPass(NamedTuple):
    """A face or hand pass as an image says it ran (the settings this app's detail passes take): the detector it found
    them with, the strength, how sure the detector was, the image around each, the mask's blur, the pass's own
    prompts (empty: the image's), and the tool that ran it."""

    detector: str
    strength: float
    confidence: float
    padding: int
    mask_blur: int
    prompt: str
    negative_prompt: str
    tool: str = "ADetailer"
    largest: int = 0  # ADetailer's "mask only top k largest" (0: all)
    # the pass's own steps, CFG scale and size (ADetailer's "use separate steps", "use separate CFG scale", "use
    # inpaint width height"); None: the image's
    steps: int | None = None
    guidance: float | None = None
    size: tuple[int, int] | None = None
    # how its masks were shaped (ADetailer's "dilate erode", "x offset", "y offset", "mask min ratio", "mask max
    # ratio", "mask merge invert" in lower case)
    dilate_erode: int = 0
    x_offset: int = 0
    y_offset: int = 0
    min_ratio: float = 0.0
    max_ratio: float = 1.0
    merge: str = "none"

    def mask_shape(self) -> dict[str, Any]:
        """How its masks were shaped, by the names a request's `DetailPass` takes them by (the same)."""
        return {name: getattr(self, name) for name in ("dilate_erode", "x_offset", "y_offset", "min_ratio",
                                                       "max_ratio", "merge")}


MAX_PASS_STEPS = 100  # the most steps a detail pass of its own runs here (the engine's MAX_STEPS)
# ADetailer's defaults, for the fields an image leaves out
DETAIL_PASS_DEFAULTS = {"strength": 0.4, "confidence": 0.3, "padding": 32, "mask_blur": 4}
IMPACT_FACE_DETAILER = "Impact Pack's FaceDetailer"
DETAIL_PARTS = ("face", "hand")  # what this app's detail passes repaint, in the order they run


def adetailer_suffix(number: int) -> str:
    """How ADetailer ends the keys of its pass `number` (from 0) in an image's text: "", " 2nd", " 3rd", " 4th" …"""
    if number == 0:
        return ""
    count = number + 1
    return f" {count}" + ("th" if 11 <= count % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(count % 10, "th"))


# The tools whose detail passes an image's fields name (their keys' first word, lower-case), as reuse names them:
# ADetailer's own; SwarmUI's `<segment:…>` refining and a ComfyUI graph's FaceDetailer nodes, which others.py and
# comfyui.py write in ADetailer's shape
DETAIL_TOOLS = {"adetailer": "ADetailer", "segment": "SwarmUI's <segment> refining", "detailer": IMPACT_FACE_DETAILER}


def _detail_models(extra: dict[str, str]) -> list[tuple[str, str, str]]:
    """The detail passes in an image's fields (lower-case keys), in the order they ran: the tool's key word
    (`DETAIL_TOOLS`), the ending of their keys and the model that found what each repainted."""
    passes = []
    for key, value in extra.items():
        found = re.fullmatch(r"(adetailer|segment|detailer) model( (\d+)(?:st|nd|rd|th))?", key)
        if found and value and value.lower() != "none":
            passes.append((list(DETAIL_TOOLS).index(found[1]), int(found[3] or 1), found[1], found[2] or "", value))
    return [(tool, ending, model) for _rank, _number, tool, ending, model in sorted(passes)]


def detail_pass(metadata: ImageMetadata, part: str) -> PartPass | None:
    """The first of an image's detail passes whose model finds `part` ("face": face_yolov8n.pt, mediapipe_face_full
    …; "hand": hand_yolov8n.pt): ADetailer's, then SwarmUI's `<segment:face>` refines, then a ComfyUI graph's
    FaceDetailer nodes (Impact Pack) with such a detector; None for another image. ADetailer's `[PROMPT]` is the
    image's prompt, as ADetailer reads it; a FaceDetailer's prompts are the graph's, and its crop factor is not
    pixels (ADetailer's padding stands in)."""
    extra = {key.lower(): value.strip() for key, value in metadata.extra.items() if isinstance(value, str)}

    def number(key: str, default: float, low: float, high: float, read=to_float) -> float:
        value = read(extra.get(key))
        return value if value is not None and low <= value <= high else default

    tool, ending, detector = next(((tool, ending, model) for tool, ending, model in _detail_models(extra)
                                   if part in model.lower()), ("adetailer", "", ""))
    if not detector:
        return None
    prompts = [extra.get(f"{tool} {key}{ending}", "").replace("[PROMPT]", own).strip()
               for key, own in (("prompt", metadata.prompt), ("negative prompt", metadata.negative_prompt))]
    defaults = DETAIL_PASS_DEFAULTS

    def setting(key: str, default: float, low: float, high: float, read=to_float) -> float:
        return number(f"{tool} {key}{ending}", default, low, high, read)

    def separate(switch: str, *keys: str, low: float, high: float, read=to_float) -> list | None:
        """The pass's own values where its `switch` ("use separate steps" …) is on and each is in range."""
        if extra.get(f"{tool} {switch.lower()}{ending}", "").lower() != "true":
            return None
        values = [setting(key.lower(), None, low, high, read) for key in keys]
        return None if None in values else values

    steps = separate("use separate steps", "steps", low=1, high=MAX_PASS_STEPS, read=to_int)
    guidance = separate("use separate CFG scale", "CFG scale", low=0, high=30)
    size = separate("use inpaint width height", "inpaint width", "inpaint height", low=64, high=4096, read=to_int)
    ratios = (setting("mask min ratio", 0.0, 0, 1), setting("mask max ratio", 1.0, 0, 1))  # as ADetailer writes them
    merge = extra.get(f"{tool} mask merge invert{ending}", "none").lower()  # "Merge and Invert"
    grown = MAX_DILATE_ERODE
    return PartPass(detector, setting("denoising strength", defaults["strength"], 0.01, 1),
                    setting("confidence", defaults["confidence"], 0, 1),
                    int(setting("inpaint padding", defaults["padding"], 0, 256, to_int)),
                    int(setting("mask blur", defaults["mask_blur"], 0, 64, to_int)),
                    prompts[0] if prompts[0] != metadata.prompt else "",
                    prompts[1] if prompts[1] != metadata.negative_prompt else "", DETAIL_TOOLS[tool],
                    largest=int(setting("mask only top k largest", 0, 0, 100, to_int)),
                    # its own where they are not the image's (a FaceDetailer's are always said)
                    steps=int(steps[0]) if steps and steps[0] != metadata.steps else None,
                    guidance=guidance[0] if guidance and guidance[0] != metadata.guidance else None,
                    size=(int(size[0]) // 8 * 8, int(size[1]) // 8 * 8) if size else None,
                    # the second: as earlier versions of ADetailer wrote it
                    dilate_erode=int(setting("dilate erode", setting("dilate/erode", 0, -grown, grown, to_int),
                                             -grown, grown, to_int)),
                    x_offset=int(setting("x offset", 0, -MAX_MASK_OFFSET, MAX_MASK_OFFSET, to_int)),
                    y_offset=int(setting("y offset", 0, -MAX_MASK_OFFSET, MAX_MASK_OFFSET, to_int)),
                    min_ratio=ratios[0] if ratios[0] <= ratios[1] else 0.0,
                    max_ratio=ratios[1] if ratios[0] <= ratios[1] else 1.0,
                    merge=merge if merge in MASK_MERGES else "none")


def detail_notes(metadata: ImageMetadata, recipe_settings: bool = False) -> list[str]:
    """How reuse repeats an image's face and hand passes (`detail_pass`); with `recipe_settings` (a Hyper-SD recipe's
    steps and guidance stand in for the image's), without the passes' own steps and CFG scale."""
    notes = []
    for part in DETAIL_PARTS:
        found = detail_pass(metadata, part)
        if found is not None:
            sampled = own_pass_settings(found._replace(prompt="", size=None)) if recipe_settings else ""
            own = own_pass_settings(found._replace(steps=None, guidance=None) if recipe_settings else found)
            notes.append(f"The image's {part}s were made again by {found.tool} ({found.detector}, strength "
                         f"{found.strength:g}); reuse does that with Detail {part}s{f' with {own}' if own else ''}, "
                         f"which finds the {part}s with the pose models (ViTPose Base and RT-DETR in the Models tab)."
                         + (f" The pass's {sampled.removeprefix('its ')} give way to the recipe's." if sampled else "")
                         + _unrepeated_pass_settings(metadata, found))
    return notes


def own_pass_settings(found, with_prompt: bool = True) -> str:
    """A detail pass's own prompt, steps, CFG scale and size (a `PartPass`), in words ("" where it has none)."""
    parts = ["its own prompt"] if with_prompt and found.prompt else []
    parts += [f"its own {found.steps} steps"] if found.steps is not None else []
    parts += [f"CFG scale {found.guidance:g}"] if found.guidance is not None else []
    parts += [f"made at {found.size[0]} × {found.size[1]}"] if found.size else []
    return _listed(parts) if parts else ""


# ADetailer's settings of a pass that reuse does not repeat: the switch that turns each on, and the value's key
_UNREPEATED_PASS_SETTINGS = (
    ("use separate checkpoint", "checkpoint", "checkpoint"), ("use separate VAE", "VAE", "VAE"),
    ("use separate sampler", "sampler", "sampler"), ("use separate noise multiplier", "noise multiplier",
                                                     "noise multiplier"),
    ("use separate CLIP skip", "CLIP skip", "CLIP skip"), ("", "ControlNet model", "ControlNet"),
    ("restore face", "", "face restoration"))


def _unrepeated_pass_settings(metadata: ImageMetadata, found: PartPass) -> str:
    """What else ADetailer's pass `found` ran with that reuse does not repeat, as a sentence ("" where nothing)."""
    extra = {key.lower(): value.strip() for key, value in metadata.extra.items() if isinstance(value, str)}
    tool = next((key for key, name in DETAIL_TOOLS.items() if name == found.tool), "adetailer")
    ending = next((ending for by, ending, model in _detail_models(extra) if by == tool and model == found.detector), "")
    said = []
    for switch, key, words in _UNREPEATED_PASS_SETTINGS:
        on = extra.get(f"{tool} {switch.lower()}{ending}", "").lower() == "true" if switch else True
        value = extra.get(f"{tool} {key.lower()}{ending}", "") if key else ""
        if on and (value and value.lower() != "none" or not key and switch):
            said.append(f"{words} {value}" if value else words)
    return f" Its own {_listed(said)} {'is' if len(said) == 1 else 'are'} not repeated." if said else ""


# What tools write as a Hires fix's upscaler when no upscaler model enlarged the image: a resampling of the picture,
# or A1111's latent upscale (the latents enlarged before they are decoded)
_RESAMPLINGS = re.compile(r"^(latent|lanczos|nearest|bicubic|bilinear|area|none)\b", re.IGNORECASE)


def hires_upscaler(metadata: ImageMetadata) -> str | None:
    """The upscaler model a Hires fix enlarged an image with, by the name its tool gives it ("4x-UltraSharp",
    A1111's "R-ESRGAN 4x+"); None without a Hires fix, or where the tool resampled the picture (Lanczos, Latent)."""
    if hires_pass(metadata) is None:
        return None
    name = {key.lower(): value for key, value in metadata.extra.items()}.get("hires upscaler")
    return name.strip() if isinstance(name, str) and name.strip() and not _RESAMPLINGS.match(name.strip()) else None


def hires_note(metadata: ImageMetadata, upscaler: str | None = None) -> str | None:
    """What reuse changes of an image made with a Hires fix: it runs this app's, enlarging with `upscaler` (the
    installed upscaler model reuse chose) or Lanczos, or, for an enlargement it does not make, only the first
    pass."""
    enlarged = hires_pass(metadata)
    if enlarged is None:
        return None
    width, height = metadata.width, metadata.height
    settings = hires_settings(metadata)
    if settings is None:
        return (f"The image was made at {width} × {height} and then {enlarged}; reuse makes the first pass, at "
                f"{width} × {height}.")
    said = "" if "denoising strength" in {key.lower() for key in metadata.extra} else \
        " (A1111’s default: the image does not say)"
    own = _second_pass_own(metadata)
    model = hires_upscaler(metadata)
    lacking = (f" ({model} is not installed here: an {upscaler_families()} upscaler in "
               "safetensors imports in the Models tab)") if model and upscaler is None else ""
    return (f"The image was made at {width} × {height} and then {enlarged}; reuse runs the Hires fix at "
            f"×{settings.scale:g}, strength {settings.strength:g}{said}, enlarging with {upscaler or 'Lanczos'}"
            f"{lacking}."
            + (f" The second pass had its own {_listed(own)}, which reuse does not repeat: it runs with the first "
               "pass's." if own else ""))


def hires_prompts(metadata: ImageMetadata) -> tuple[str | None, str | None]:
    """A Hires fix's second pass's own prompt and negative prompt (A1111's `Hires prompt`, `Hires negative
    prompt`), each None where it is the first pass's or not said."""
    extra = {key.lower(): value.strip() for key, value in metadata.extra.items() if isinstance(value, str)}

    def own(key: str, first: str) -> str | None:
        return extra[key] if extra.get(key) and extra[key] != first.strip() else None

    return own("hires prompt", metadata.prompt), own("hires negative prompt", metadata.negative_prompt)


def hires_guidance(metadata: ImageMetadata) -> float | None:
    """A Hires fix's second pass's own CFG scale (Forge's and reForge's `Hires CFG Scale`; a ComfyUI second
    sampler's cfg reads as it), None where it is the first pass's, not said, or out of range."""
    extra = {key.lower(): value.strip() for key, value in metadata.extra.items() if isinstance(value, str)}
    guidance = to_float(extra.get("hires cfg scale"))
    if guidance is None or guidance == metadata.guidance or not 0 <= guidance <= 30:
        return None
    return guidance


def _second_pass_own(metadata: ImageMetadata) -> list[str]:
    """What A1111 (and Forge, reForge) let a Hires fix's second pass have of its own that reuse does not repeat
    (its prompts and CFG scale it does: `hires_prompts`, `hires_guidance`), where an image says it did."""
    extra = {key.lower(): value.strip() for key, value in metadata.extra.items() if isinstance(value, str)}
    own = []
    sampler = extra.get("hires sampler")
    if sampler and sampler != metadata.sampler and not sampler.lower().startswith("use same"):
        own.append(f"sampler ({sampler})")
    checkpoint = _without_hash(extra.get("hires checkpoint", ""))
    if checkpoint and not checkpoint.lower().startswith("use same"):
        own.append(f"model ({stem(checkpoint)})")
    return own


PLOT_SCRIPTS = ("x/y/z plot", "x/y plot")  # A1111's grid scripts, as they write themselves into a grid's text


def plot_axes(fields: dict) -> str | None:
    """The axes of an X/Y/Z plot whose grid `fields` (an image's A1111 fields, or the `plot` this app keeps in a
    grid's request) describe, in words: `Steps (1,2,4) × Seed (1-3)` (random seeds as the seeds A1111 chose); None
    for another image."""
    fields = {str(key).lower(): value.strip() for key, value in fields.items() if isinstance(value, str)}
    if fields.get("script", "").lower() not in PLOT_SCRIPTS:
        return None
    axes = []
    for name in "xyz":
        kind = fields.get(f"{name} type")
        if not kind or kind.lower() == "nothing":
            continue
        values = fields.get(f"fixed {name} values") or fields.get(f"{name} values")  # the seeds a `-1` was made
        axes.append(f"{kind} ({values})" if values else kind)
    return " × ".join(axes) or None


def repaint_tile(metadata: ImageMetadata) -> int | None:
    """The tiles the Ultimate SD Upscale extension repainted an image in (its `tile_width`, as A1111 writes it and
    as read from its ComfyUI node), as this app's tiles take them (64 to 2048 pixels, a multiple of 8); None where
    it did not."""
    extra = {key.lower(): value for key, value in metadata.extra.items()}
    tile = to_int(extra.get("ultimate sd upscale tile_width"))
    return None if tile is None or tile < 64 else min(2048, tile // 8 * 8)


def tile_surround(metadata: ImageMetadata) -> tuple[int, int]:
    """The picture around each of the Ultimate SD Upscale extension's tiles and the blur of the edge it was laid back
    in along, in pixels (its "padding" and "mask_blur"; its defaults, 32 and 8, where the image does not say or says
    something out of its sliders' range)."""
    extra = {key.lower(): value for key, value in metadata.extra.items()}
    padding = to_int(extra.get("ultimate sd upscale padding"))
    blur = to_int(extra.get("ultimate sd upscale mask_blur"))
    return (padding if padding is not None and 0 <= padding <= 128 else 32,
            blur if blur is not None and 0 <= blur <= 64 else 8)


class TileSeams(NamedTuple):
    """The seams fix of an image made in tiles (`seams_fix_of`), as a request's `SeamsFix` takes it."""

    mode: SeamFix
    strength: float
    width: int
    mask_blur: int
    padding: int


def seams_fix_of(metadata: ImageMetadata) -> TileSeams | None:
    """The seams fix the Ultimate SD Upscale extension's tiles were given (this app's and its ComfyUI node's: the
    A1111 extension writes none), the extension's defaults where one is not said; None where the image has none or
    one this app does not make."""
    extra = {key.lower(): value for key, value in metadata.extra.items()}
    named = str(extra.get("ultimate sd upscale seams_fix_type", "")).lower()
    if repaint_tile(metadata) is None or "band" not in named and "half" not in named:
        return None
    mode = SeamFix.BAND if "band" in named else SeamFix.HALF_TILE_CORNERS if "intersection" in named or "+" in named \
        else SeamFix.HALF_TILE

    def value(key: str, default: float, low: float, high: float) -> float:
        found = to_float(extra.get(f"ultimate sd upscale seams_fix_{key}"))
        return default if found is None or not low <= found <= high else found

    return TileSeams(mode, value("denoise", 0.35, 0.01, 1.0), int(value("width", 64, 8, 256)),
                     int(value("mask_blur", 4, 0, 64)), int(value("padding", 16, 0, 256)))


def other_passes(metadata: ImageMetadata, unrepeated: bool = False) -> list[str]:
    """What an image's tool did besides the settings reuse takes (A1111's fields, which Forge, reForge, SD.Next and
    image savers write too; what a ComfyUI graph says of the same), in words; a Hires fix is `hires_pass`'s. With
    `unrepeated`, what reuse does not repeat: without the face and hand passes reuse makes (`detail_pass`: Detail
    faces, Detail hands)."""
    extra = {key.lower(): value.strip() for key, value in metadata.extra.items() if isinstance(value, str)}
    parts = []
    strength = picture_strength(metadata)
    mode = extra.get("generation mode", "")  # InvokeAI's: "img2img", "sdxl_inpaint", "outpaint" …
    if strength is not None or mode and _hires_target(metadata) is None:
        picture = extra.get("init image", "")
        named = f" ({picture})" if picture and len(picture) <= 80 and "://" not in picture else ""
        kind = "outpainting" if "outpaint" in mode else "inpainting" if _inpainted(extra) else "image-to-image"
        parts.append(f"{kind} from another picture{named}" + (f" at strength {strength:g}" if strength is not None
                                                               else ""))
    adapters = {key: name for key, value in extra.items() if (name := _ip_adapter_unit(key, value))}
    modules = [module for key, value in extra.items() if key not in adapters
               for module in _controlnet_modules(key, value)]
    if modules or any(key.startswith("controlnet") and key not in adapters for key in extra):
        parts.append(f"ControlNet{f' ({_listed(list(dict.fromkeys(modules)))})' if modules else ''}")
    if extra.get("fooocus styles") and not extra.get("full prompt"):  # else reuse runs the prompt with their words
        parts.append(f"Fooocus's styles on the prompt ({extra['fooocus styles']})")
    adapted = [*adapters.values(), *([extra["ip-adapter"]] if extra.get("ip-adapter") else [])]
    if adapted:
        parts.append(f"IP-Adapter ({_listed(list(dict.fromkeys(adapted)))})")
    repeated = [(found.tool, found.detector) for part in DETAIL_PARTS
                if unrepeated and (found := detail_pass(metadata, part))]
    passes = [(DETAIL_TOOLS[tool], model) for tool, _ending, model in _detail_models(extra)]
    for done in repeated:  # the first that finds each part; another of the same part is not repeated
        if done in passes:
            passes.remove(done)
    for tool in DETAIL_TOOLS.values():
        detectors = [model for by, model in passes if by == tool]
        if detectors:
            parts.append(f"{tool}'s second pass ({_listed(detectors)})" if tool == "ADetailer" else
                         f"{tool} ({_listed(detectors)})")
    # a ComfyUI graph's other detailers (Impact Pack's DetailerForEach …), which no FaceDetailer node names
    named = {model for tool, _ending, model in _detail_models(extra) if tool == "detailer"}
    others = [name for name in extra.get("detailer", "").split(", ") if name and name not in named]
    if others:
        parts.append(f"a detailer pass ({', '.join(others)})")
    tile = repaint_tile(metadata)
    if tile is not None:  # the Ultimate SD Upscale extension's (and its ComfyUI node's) tiles
        upscaler = extra.get("ultimate sd upscale upscaler", "")
        by = f", enlarged by {upscaler}" if upscaler and upscaler.lower() not in ("none", "lanczos") else ""
        seams = seams_fix_of(metadata)
        fixed = f", its seams fixed by a {seams.mode.label.lower()}" if seams is not None else ""
        parts.append(f"Ultimate SD Upscale (tiles of {tile}{by}{fixed}; reuse ticks In tiles, for the picture it was "
                     "made from given with Enlarge)")
    refiner = _without_hash(extra.get("refiner", ""))
    if refiner:
        switch = to_float(extra.get("refiner switch at"))
        parts.append(f"the refiner {stem(refiner)}" + (f" from {switch:.0%} of the steps" if switch is not None else ""))
    variation = to_float(extra.get("variation seed strength"))
    reused = variation_of(metadata) is not None and strength is None  # reuse varies an image from the prompt
    if extra.get("variation seed") and (variation is None or variation > 0) and not reused:
        parts.append(f"the variation seed {extra['variation seed']}" + (f" at {variation:g}" if variation else ""))
    axes = plot_axes(metadata.extra)
    if axes:
        parts.append(f"an X/Y/Z plot of {axes} (this is its grid; reuse makes its first image)")
    if extra.get("face restoration"):
        parts.append(f"face restoration ({extra['face restoration']})")
    enlarged = to_float(extra.get("postprocess upscale by"))  # A1111's Extras tab (and a ComfyUI graph's, so read)
    target = extra.get("postprocess upscale to")
    if (enlarged is not None and enlarged > 1) or target:
        how = f"×{enlarged:g}" if enlarged is not None and enlarged > 1 else f"to {target}"
        upscaler = extra.get("postprocess upscaler")
        by = f" by {upscaler}" if upscaler else ""
        parts.append(f"an enlargement {how}{by} of the finished image (Enlarge, in the gallery, does that to the "
                     "image reuse makes)")
    return parts


_PROMPT_FIELD = re.compile(r"\bprompts?\b", re.IGNORECASE)
_ADDRESS = re.compile(r"<?https?://", re.IGNORECASE)


def other_prompts(extra: dict[str, Any]) -> dict[str, str]:
    """The prompts an image holds besides its own two, by field: NovelAI V4's character prompts, ADetailer's
    ("ADetailer prompt 2nd"), a Hires fix's own ("Hires negative prompt"). The gallery searches their words. A field
    of addresses (Midjourney's image prompts) holds no words to search."""
    return {key: value.strip() for key, value in extra.items()
            if _PROMPT_FIELD.search(key) and isinstance(value, str) and value.strip()
            and not all(_ADDRESS.match(word) for word in value.split())}


def picture_strength(metadata: ImageMetadata) -> float | None:
    """The strength an image was made from a picture at (image-to-image, inpainting), where it says one; None for
    an image made from the prompt, or enlarged by a Hires fix (whose strength is `hires_settings`')."""
    extra = {key.lower(): value for key, value in metadata.extra.items() if isinstance(value, str)}
    strength = to_float(extra.get("denoising strength"))
    return strength if strength is not None and 0 < strength <= 1 and _hires_target(metadata) is None else None


def _inpainted(extra: dict[str, str]) -> bool:
    return any(key in extra for key in ("mask blur", "inpaint area", "masked content", "mask mode", "mask")) \
        or any(word in extra.get("generation mode", "") for word in ("inpaint", "outpaint"))


def tiling_of(metadata: ImageMetadata) -> Tiling:
    """Which way the image tiles: A1111's `Tiling: True` (both ways), or "x" or "y" (one way, as this app writes
    InvokeAI's seamless X or Y and SwarmUI's X-Only or Y-Only)."""
    value = {key.lower(): value for key, value in metadata.extra.items()}.get("tiling", "").strip().lower()
    return {"true": Tiling.BOTH, "x": Tiling.X, "y": Tiling.Y}.get(value, Tiling.OFF)


def variation_of(metadata: ImageMetadata) -> tuple[int, float] | None:
    """A1111's variation seed and strength (`Variation seed`, `Variation seed strength`, which Forge and SD.Next
    write too, and SwarmUI's read as them), None where the image has none or one out of range."""
    extra = {key.lower(): value for key, value in metadata.extra.items()}
    seed, strength = to_int(extra.get("variation seed")), to_float(extra.get("variation seed strength"))
    if seed is None or strength is None or not 0 <= seed < 2**63 or not 0 < strength <= 1:
        return None
    return seed, strength


def unrepeated_note(metadata: ImageMetadata) -> str | None:
    """What reuse does not repeat of `other_passes`, and how to make the image from its source picture again;
    None when the image says of nothing else."""
    parts = other_passes(metadata, unrepeated=True)
    if not parts:
        return None
    note = f"The image was made with {_listed(parts)}, which reuse does not repeat."
    if parts[0].startswith(("inpainting ", "outpainting ", "image-to-image ")):
        inpainted = _inpainted({key.lower(): value for key, value in metadata.extra.items()})
        strength = picture_strength(metadata)
        note += (f" Give that picture as the init image{' with its mask' if inpainted else ''} to make it again "
                 f"from it{f' (at strength {strength:g})' if strength is not None else ''}.")
    return note


def _controlnet_modules(key: str, value: str) -> list[str]:
    """What a ControlNet field names: its preprocessor (`ControlNet 0: "Module: canny, Model: …"` of
    sd-webui-controlnet and Forge, or the older `ControlNet-0 Module: canny`), else its model (a unit given its
    control image as it is, or a ComfyUI graph's)."""
    if re.fullmatch(r"controlnet[ -]?\d*", key):
        module, model = _unit_fields(value)
        if not module or module.lower() == "none":  # no preprocessor (or ComfyUI's graph): the model says which
            module = model
    else:
        module = value if re.fullmatch(r"controlnet[ -]?\d* module", key) else None
    return [module] if module and module.lower() not in ("none", "unknown") else []


def _ip_adapter_unit(key: str, value: str) -> str | None:
    """The IP-Adapter a ControlNet field names, where its unit is one (sd-webui-controlnet and Forge run
    IP-Adapters as ControlNet units: `ControlNet 0: "Module: ip-adapter_clip_h, Model: ip-adapter_sd15 [hash]"`):
    its model, else its preprocessor; None for a ControlNet's unit."""
    if not re.fullmatch(r"controlnet[ -]?\d*", key):
        return None
    module, model = _unit_fields(value)
    if not re.match(r"ip[-_ ]?adapter", module.lower()) and not re.match(r"ip[-_ ]?adapter", model.lower()) \
            and "(ipadapter)" not in module.lower().replace("-", ""):
        return None
    return model if model and model.lower() not in ("none", "unknown") else module


def _unit_fields(value: str) -> tuple[str, str]:
    """A ControlNet unit's preprocessor and model (without its hash), as sd-webui-controlnet writes them: `Module: …,
    Model: …` (1.1.4xx, Forge), `preprocessor: …, model: …` (1.1.2xx, with A1111 1.2 to 1.4)."""
    fields = {name.lower(): text.strip()
              for name, text in re.findall(r"(?:^|,\s*)(module|preprocessor|model):\s*([^,]+)", value, re.IGNORECASE)}
    return fields.get("module") or fields.get("preprocessor", ""), _without_hash(fields.get("model", ""))


def _without_hash(name: str) -> str:
    """A model as A1111 names it, "name [hash]", without its hash."""
    return re.sub(r"\s*\[[0-9a-fA-F]+\]$", "", name)


def _listed(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
