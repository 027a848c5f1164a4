"""The smaller formats, one reader each, every one recognised by its own keys.

- SwarmUI: `parameters` JSON with `sui_image_params` (and `sui_models` with hashes).
- Stability Matrix: `parameters-json` with `PositivePrompt`, `CfgScale`, `ModelName`, …
- Easy Diffusion: one PNG chunk per setting (`prompt`, `num_inference_steps`,
  `use_stable_diffusion_model`, …, or the same with display names), or that JSON in a JPEG.
- Draw Things: JSON (`c`, `uc`, `scale`, `size`, …) in the XMP packet's `exif:UserComment`, or
  as a JPEG's UserComment.
- TensorArt: `generation_data` beside the graph it ran; Civitai: `extraMetadata` in its graph.
- Hugging Face Space demos and other diffusers scripts: JSON with diffusers' argument names
  (`num_inference_steps`, `guidance_scale`), often with `Model` and `Model hash`.
"""

from __future__ import annotations

import html
import re
from typing import Any

from hypersd_desktop.core.vocab import MAX_DILATE_ERODE
from hypersd_desktop.gallery.formats.common import (
    ImageMetadata, json_object, size_of, stem, to_float, to_int, to_text,
)


def parse_swarmui(text: str) -> ImageMetadata | None:
    data = json_object(text)
    params = data.get("sui_image_params") if data else None
    if not isinstance(params, dict):
        return None
    models = {m.get("param"): m for m in data.get("sui_models") or [] if isinstance(m, dict)}
    model = models.get("model") or {}
    names = params.get("loras") if isinstance(params.get("loras"), list) else []
    weights = params.get("loraweights") if isinstance(params.get("loraweights"), list) else []
    loras = tuple((stem(str(name)) or str(name), (to_float(weights[i]) if i < len(weights) else None) or 1.0, None)
                  for i, name in enumerate(names))
    sampler = params.get("sampler") or params.get("comfyuisampler") or params.get("autowebuisampler")
    vae = params.get("vae") if isinstance(params.get("vae"), str) else None  # "None", "Automatic": the model's own
    vae = vae if vae and vae.strip().lower() not in ("none", "automatic") else None
    prompt, segments = swarmui_prompt(to_text(params.get("prompt")))
    shaping = _segment_settings(params)
    for key in [key for key in segments if key.startswith("Segment model")]:  # each refine's mask made so
        segments.update({key.replace("model", name): value for name, value in shaping.items()})
    return ImageMetadata(
        format="swarmui", prompt=prompt, negative_prompt=swarmui_prompt(to_text(params.get("negativeprompt")))[0],
        steps=to_int(params.get("steps")), sampler=sampler if isinstance(sampler, str) else None,
        guidance=to_float(params.get("cfgscale")), seed=to_int(params.get("seed")), width=to_int(params.get("width")),
        height=to_int(params.get("height")), model_name=stem(params.get("model")),
        model_hash=_short_hash(model.get("hash")), loras=loras, vae_name=vae,
        vae_hash=_short_hash((models.get("vae") or {}).get("hash")) if vae else None,
        extra={**_swarmui_passes(params), **segments},
    )


# SwarmUI's prompt syntax: the tags that begin a section of the prompt (its text runs to the next such tag), and
# those that are no words of it
_SWARMUI_SECTION = re.compile(r"<(segment|object|region|clear|extend):([^<>]*)>|<(base|refiner|video|videoswap)>",
                              re.IGNORECASE)
_SWARMUI_COMMENT = re.compile(r"<comment:[^<>]*>", re.IGNORECASE)
_SWARMUI_BREAK = re.compile(r"\s*<break>\s*", re.IGNORECASE)
SEGMENT_CREATIVITY = 0.6  # SwarmUI's default strength for a `<segment:…>` refine
# How SwarmUI makes each refine's mask, unless the image says otherwise: the pixels it grows it by ("Segment Mask
# Grow"), N each way, as a square 2N + 1 across grows a mask here (SwarmUI's ComfyUI graph grows it with tapered
# corners, so a little less along the diagonals); its blur ("Segment Mask Blur"): SwarmMaskBlur's Gaussian of
# deviation N pixels cut off at N, which spreads an edge as a Gaussian of 0.54 N does (the deviation of a normal
# cut off at one); and the picture around it ("Segment Mask Oversize"), ADetailer's inpaint padding
SEGMENT_MASK_GROW = 16
SEGMENT_MASK_BLUR = 10
SEGMENT_MASK_OVERSIZE = 16
CUT_GAUSSIAN = 0.54


def swarmui_prompt(text: str) -> tuple[str, dict[str, str]]:
    """A SwarmUI prompt as A1111 would write it, and its `<segment:TARGET,CREATIVITY,THRESHOLD> words` refines in
    the shape ADetailer writes its passes (`Segment model`, `Segment denoising strength`, `Segment prompt`, the
    second's keys ending " 2nd" …: `common.detail_pass` reads them). The main prompt is the text before the first
    section (a segment, region, object, the refiner's or the video's own words); `<comment:…>` is left out and
    `<break>` is A1111's BREAK; `<lora:…>` stays, as A1111 writes it."""
    from hypersd_desktop.gallery.formats.common import adetailer_suffix

    text = re.sub(r"(?<=\S)[ \t]{2,}(?=\S)", " ", _SWARMUI_BREAK.sub(" BREAK ", _SWARMUI_COMMENT.sub("", text)))
    sections = list(_SWARMUI_SECTION.finditer(text))
    main = (text[:sections[0].start()] if sections else text).strip()
    segments: dict[str, str] = {}
    refines = [(index, section) for index, section in enumerate(sections) if (section[1] or "").lower() == "segment"]
    for number, (index, section) in enumerate(refines):
        target, *numbers = (part.strip() for part in re.sub(r":[^:]*:", "", section[2]).split(","))
        if target.lower().startswith("yolo-"):  # a YOLO model's file, else what CLIPSeg looks for
            target = target[5:]
        creativity = (to_float(numbers[0]) if numbers else None) or SEGMENT_CREATIVITY
        words = text[section.end():sections[index + 1].start() if index + 1 < len(sections) else len(text)].strip()
        ending = adetailer_suffix(number)
        segments[f"Segment model{ending}"] = target or "segment"
        segments[f"Segment denoising strength{ending}"] = f"{creativity:g}"
        segments[f"Segment prompt{ending}"] = words or main
    return main, segments


def _segment_settings(params: dict) -> dict[str, str]:
    """How SwarmUI ran each `<segment:…>` refine, by the ends of ADetailer's keys (`common.detail_pass` reads
    them): its mask's growth, blur and padding, and its own steps, CFG scale and size where the image sets them
    ("Segment Steps", "Segment CFG Scale", "Segment Target Resolution")."""
    def setting(name: str, default: int, high: int) -> int:
        value = to_int(params.get(name))
        return default if value is None or value < 0 else min(value, high)

    grow = setting("segmentmaskgrow", SEGMENT_MASK_GROW, (MAX_DILATE_ERODE - 1) // 2)
    found = {"dilate erode": str(2 * grow + 1 if grow else 0), "inpaint padding":
             str(setting("segmentmaskoversize", SEGMENT_MASK_OVERSIZE, 256)),
             "mask blur": str(round(CUT_GAUSSIAN * setting("segmentmaskblur", SEGMENT_MASK_BLUR, 64)))}
    steps, guidance = to_int(params.get("segmentsteps")), to_float(params.get("segmentcfgscale"))
    width, height = size_of(params.get("segmenttargetresolution"))
    for switch, values in (("use separate steps", {"steps": steps}),
                           ("use separate CFG scale", {"CFG scale": guidance}),
                           ("use inpaint width height", {"inpaint width": width, "inpaint height": height})):
        if None not in values.values():
            found.update({switch: "True", **{name: f"{value:g}" for name, value in values.items()}})
    return found


def _swarmui_passes(params: dict) -> dict[str, str]:
    """What SwarmUI ran besides the prompt and settings, in A1111's words (`common.other_passes`): its parameters'
    ids are their names in lower-case letters ("Init Image Creativity": `initimagecreativity`; the second
    ControlNet's model: `controlnettwomodel`)."""
    found: dict[str, str] = {}
    strength = to_float(params.get("initimagecreativity"))
    if strength is not None:
        found["Denoising strength"] = f"{strength:g}"
        if "maskblur" in params or "maskimage" in params:
            found["Mask"] = "Mask Image"
    for number, suffix in enumerate(("", "two", "three")):
        model = params.get(f"controlnet{suffix}model")
        if isinstance(model, str) and model.strip():
            found[f"ControlNet {number}"] = f"Model: {stem(model)}"
    hires = _swarmui_hires(params)
    found.update({key: value for key, value in hires.items() if key not in found})
    refiner = params.get("refinermodel")
    if isinstance(refiner, str) and refiner.strip() and refiner.strip() != "(Use Base)" and not hires:
        found["Refiner"] = stem(refiner) or refiner
        share = to_float(params.get("refinercontrolpercentage"))  # the refiner's share of the steps
        if share is not None and 0 <= share <= 1:
            found["Refiner switch at"] = f"{1 - share:g}"
    if params.get("variationseed") is not None and (to_float(params.get("variationseedstrength")) or 0) > 0:
        found["Variation seed"] = str(params["variationseed"])
        found["Variation seed strength"] = f"{to_float(params['variationseedstrength']):g}"
    tiling = params.get("seamlesstileable")  # SwarmUI's: "true", "X-Only", "Y-Only" or "false"
    if isinstance(tiling, str) and tiling.strip().lower() not in ("", "false"):
        found["Tiling"] = {"x-only": "x", "y-only": "y"}.get(tiling.strip().lower(), "True")
    return found


def _swarmui_hires(params: dict) -> dict[str, str]:
    """SwarmUI's refiner run on the finished image (its default method, "PostApply") enlarged by its "Refiner
    Upscale": A1111's Hires fix, in A1111's words. Its "Refiner Control Percentage" is the share of the schedule
    repainted, and the second pass runs that share of its "Refiner Steps" (else of the steps); a refiner model,
    CFG scale or sampler of its own are the second pass's own, as A1111's Hires checkpoint, CFG scale and sampler."""
    scale = to_float(params.get("refinerupscale"))
    method = params.get("refinermethod")
    if scale is None or scale <= 1 or (isinstance(method, str) and method.strip().lower() not in ("", "postapply")):
        return {}
    share = to_float(params.get("refinercontrolpercentage"))
    share = share if share is not None and 0 < share <= 1 else 0.2  # SwarmUI's default
    found = {"Hires upscale": f"{scale:g}", "Hires upscaler": _swarmui_upscaler(params.get("refinerupscalemethod")),
             "Denoising strength": f"{share:g}"}
    steps = to_int(params.get("refinersteps")) or to_int(params.get("steps"))
    ran = steps - round(steps * (1 - share)) if steps else 0  # from the step the share leaves to the end
    if ran > 0:
        found["Hires steps"] = str(ran)
    model = params.get("refinermodel")
    if isinstance(model, str) and model.strip() and model.strip() != "(Use Base)":
        found["Hires checkpoint"] = stem(model) or model
    guidance = to_float(params.get("refinercfgscale"))
    if guidance is not None and guidance != to_float(params.get("cfgscale")):
        found["Hires CFG Scale"] = f"{guidance:g}"
    sampler = params.get("refinersampler")
    if isinstance(sampler, str) and sampler.strip() and sampler != params.get("sampler"):
        found["Hires sampler"] = sampler
    return found


def _swarmui_upscaler(method) -> str:
    """SwarmUI's "Refiner Upscale Method" as A1111 names an upscaler: `model-4x-UltraSharp.pth` is the model's
    name, `latent-bislerp` "Latent", `pixel-lanczos` (its default) "Lanczos"."""
    kind, _, name = (method if isinstance(method, str) and method.strip() else "pixel-lanczos").partition("-")
    if kind == "model":
        return stem(name) or name
    return "Latent" if kind == "latent" else (name or kind).replace("-", " ").capitalize()


def _short_hash(value) -> str | None:
    """SwarmUI writes "0x" + the full sha256; A1111-style matching wants its first 10 digits."""
    if not isinstance(value, str):
        return None
    value = value.lower().removeprefix("0x")
    return value[:10] if re.fullmatch(r"[0-9a-f]{10,64}", value) else None


def parse_stability_matrix(text: str) -> ImageMetadata | None:
    data = json_object(text)
    if data is None or "PositivePrompt" not in data:
        return None
    return ImageMetadata(
        format="stabilitymatrix", prompt=to_text(data.get("PositivePrompt")),
        negative_prompt=to_text(data.get("NegativePrompt")), steps=to_int(data.get("Steps")),
        sampler=data.get("Sampler") if isinstance(data.get("Sampler"), str) else None,
        guidance=to_float(data.get("CfgScale")), seed=to_int(data.get("Seed")), width=to_int(data.get("Width")),
        height=to_int(data.get("Height")), model_name=stem(data.get("ModelName")),
        model_hash=data.get("ModelHash") if isinstance(data.get("ModelHash"), str) else None,
    )


def parse_tensorart(text: str) -> ImageMetadata | None:
    """TensorArt's `generation_data` (beside the ComfyUI graph it ran); a seed of -1 means the
    graph's own."""
    data = json_object(text)
    if data is None or "baseModel" not in data and "ksamplerName" not in data:
        return None
    model = data.get("baseModel") if isinstance(data.get("baseModel"), dict) else {}
    seed = to_int(data.get("seed"))
    return ImageMetadata(
        format="tensorart", prompt=to_text(data.get("prompt")), negative_prompt=to_text(data.get("negativePrompt")),
        steps=to_int(data.get("steps")), sampler=data.get("ksamplerName") if isinstance(data.get("ksamplerName"), str) else None,
        guidance=to_float(data.get("cfgScale")), seed=seed if seed is not None and seed >= 0 else None,
        width=to_int(data.get("width")), height=to_int(data.get("height")),
        model_name=stem(model.get("modelFileName")),
        model_hash=model.get("hash") if isinstance(model.get("hash"), str) else None,
    )


def parse_civitai_extra(text: Any) -> ImageMetadata | None:
    """Civitai's `extraMetadata` (a JSON string inside the graph it puts in the UserComment)."""
    data = json_object(text)
    if data is None or "prompt" not in data:
        return None
    return ImageMetadata(
        format="comfyui", prompt=to_text(data.get("prompt")), negative_prompt=to_text(data.get("negativePrompt")),
        steps=to_int(data.get("steps")), sampler=data.get("sampler") if isinstance(data.get("sampler"), str) else None,
        guidance=to_float(data.get("cfgScale")), seed=to_int(data.get("seed")), width=to_int(data.get("width")),
        height=to_int(data.get("height")),
        model_name=data.get("baseModel") if isinstance(data.get("baseModel"), str) else None,
        civitai=tuple(dict.fromkeys(("", version) for version in (  # versions only: their kind is not said here
            to_int(resource.get("modelVersionId")) for resource in data.get("resources") or ()
            if isinstance(resource, dict)) if version is not None and version > 0)),
    )


# Easy Diffusion's keys, and the display names its later versions write instead.
_EASY_KEYS = {
    "prompt": ("prompt", "Prompt"), "negative": ("negative_prompt", "Negative Prompt"), "seed": ("seed", "Seed"),
    "model": ("use_stable_diffusion_model", "Stable Diffusion model"), "sampler": ("sampler_name", "Sampler"),
    "width": ("width", "Width"), "height": ("height", "Height"), "steps": ("num_inference_steps", "Steps"),
    "guidance": ("guidance_scale", "Guidance Scale"),
}


def is_easy_diffusion(data: dict) -> bool:
    return any(key in data for key in _EASY_KEYS["model"]) and any(key in data for key in _EASY_KEYS["steps"])


def parse_easy_diffusion(data: dict) -> ImageMetadata | None:
    """From the chunks of a PNG, or the JSON of a JPEG's UserComment."""
    if not is_easy_diffusion(data):
        return None

    def get(name: str):
        return next((data[key] for key in _EASY_KEYS[name] if key in data), None)

    return ImageMetadata(
        format="easydiffusion", prompt=to_text(get("prompt")), negative_prompt=to_text(get("negative")),
        steps=to_int(get("steps")), sampler=get("sampler") if isinstance(get("sampler"), str) else None,
        guidance=to_float(get("guidance")), seed=to_int(get("seed")), width=to_int(get("width")),
        height=to_int(get("height")), model_name=stem(get("model")),
    )


_XMP_COMMENT = re.compile(r"<exif:UserComment>(.*?)</exif:UserComment>", re.DOTALL)
_XMP_ITEM = re.compile(r"<rdf:li[^>]*>(.*?)</rdf:li>", re.DOTALL)


def parse_draw_things(xmp: str) -> ImageMetadata | None:
    """Read with patterns, not an XML parser: an XMP packet is untrusted text (entity expansion)."""
    block = _XMP_COMMENT.search(xmp)
    if block is None:
        return None
    item = _XMP_ITEM.search(block[1])
    return parse_draw_things_json(html.unescape(item[1] if item else block[1]).strip())


def parse_draw_things_json(text: str) -> ImageMetadata | None:
    """Draw Things' record: `c` and `uc` are the prompts; also found as a JPEG's UserComment."""
    data = json_object(text)
    if data is None or not isinstance(data.get("c"), str) or not {"uc", "scale", "sampler"} & set(data):
        return None
    width, height = size_of(data.get("size"))
    loras = tuple((stem(entry.get("file")) or "", to_float(entry.get("weight")) or 1.0, None)
                  for entry in data.get("lora") or [] if isinstance(entry, dict) and entry.get("file"))
    strength = to_float(data.get("strength"))  # 1 for an image from the prompt; under 1, from a picture
    return ImageMetadata(
        extra={"Denoising strength": f"{strength:g}"} if strength is not None and 0 < strength < 1 else {},
        format="drawthings", prompt=to_text(data.get("c")), negative_prompt=to_text(data.get("uc")),
        steps=to_int(data.get("steps")), sampler=data.get("sampler") if isinstance(data.get("sampler"), str) else None,
        guidance=to_float(data.get("scale")), seed=to_int(data.get("seed")), width=width, height=height,
        model_name=stem(data.get("model")), loras=loras,
    )


def parse_diffusers_json(text: str) -> ImageMetadata | None:
    data = json_object(text)
    if data is None or "num_inference_steps" not in data or not isinstance(data.get("prompt"), str):
        return None
    model = data.get("Model") or data.get("model") or data.get("model_id")
    sampler = data.get("scheduler") or data.get("sampler")
    width, height = to_int(data.get("width")), to_int(data.get("height"))
    if width is None:
        width, height = size_of(data.get("resolution"))  # "1024 x 1024"
    return ImageMetadata(
        format="diffusers", prompt=to_text(data.get("prompt")), negative_prompt=to_text(data.get("negative_prompt")),
        steps=to_int(data.get("num_inference_steps")), sampler=sampler if isinstance(sampler, str) else None,
        guidance=to_float(data.get("guidance_scale")), seed=to_int(data.get("seed")), width=width, height=height,
        model_name=stem(model) if isinstance(model, str) else None,
        model_hash=data.get("Model hash") if isinstance(data.get("Model hash"), str) else None,
    )
