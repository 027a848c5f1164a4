"""InvokeAI, every version: `invokeai_metadata` JSON (3.x and later), `sd-metadata` JSON (2.x),
and the old "Dream" command line (1.x, also written by NMKD's GUI)."""

from __future__ import annotations

import re
import shlex

from hypersd_desktop.gallery.formats.common import (
    ImageMetadata, json_object, split_negative, stem, to_float, to_int, to_text,
)


def parse_invokeai(text: str) -> ImageMetadata | None:
    data = json_object(text)
    if data is None:
        return None
    model = data.get("model") or {}
    loras = []
    for lora in data.get("loras") or []:
        if isinstance(lora, dict):
            info = lora.get("model") or lora.get("lora") or {}
            name = (info.get("name") or info.get("model_name") or info.get("key")) if isinstance(info, dict) else None
            if name:
                loras.append((str(name), to_float(lora.get("weight")) or 1.0, info.get("hash")))
    vae = data.get("vae") if isinstance(data.get("vae"), dict) else {}  # None: the model's own
    return ImageMetadata(
        format="invokeai", prompt=to_text(data.get("positive_prompt")), negative_prompt=to_text(data.get("negative_prompt")),
        steps=to_int(data.get("steps")), sampler=data.get("scheduler"), guidance=to_float(data.get("cfg_scale")),
        seed=to_int(data.get("seed")), width=to_int(data.get("width")), height=to_int(data.get("height")),
        model_name=(model.get("name") or model.get("model_name")) if isinstance(model, dict) else stem(model),
        model_hash=model.get("hash") if isinstance(model, dict) else None, loras=tuple(loras),
        vae_name=to_text(vae.get("name") or vae.get("model_name")) or None, vae_hash=to_text(vae.get("hash")) or None,
        extra=_other_inputs(data),
    )


def _name(model) -> str | None:
    """A model's name in InvokeAI's metadata: {"name": …} (4.x and later) or {"model_name": …} (3.x)."""
    name = (model.get("name") or model.get("model_name")) if isinstance(model, dict) else None
    return name if isinstance(name, str) and name else None


def _other_inputs(data: dict) -> dict[str, str]:
    """What InvokeAI ran besides the prompts and settings, in A1111's words (`gallery.formats.common.other_passes`
    names them on reuse): a canvas or picture it started from, ControlNets and T2I-Adapters (3.x: `controlnets`,
    `t2iAdapters`; 5.x: the canvas's enabled control layers), IP-Adapters (`ipAdapters`, later `ref_images`),
    seamless tiling and the SDXL refiner."""
    found: dict[str, str] = {}
    mode = data.get("generation_mode")
    if isinstance(mode, str) and any(word in mode for word in ("img2img", "inpaint", "outpaint")):
        found["Generation mode"] = mode
        strength = to_float(data.get("strength"))
        if strength is not None:
            found["Denoising strength"] = f"{strength:g}"
        if isinstance(data.get("init_image"), str):
            found["Init image"] = data["init_image"]
    canvas = data.get("canvas_v2_metadata") if isinstance(data.get("canvas_v2_metadata"), dict) else {}
    layers = [layer.get("controlAdapter") for layer in canvas.get("controlLayers") or []
              if isinstance(layer, dict) and layer.get("isEnabled", True) and isinstance(layer.get("controlAdapter"), dict)]
    controls = [*(unit.get("control_model") for unit in data.get("controlnets") or [] if isinstance(unit, dict)),
                *(unit.get("t2i_adapter_model") for unit in data.get("t2iAdapters") or [] if isinstance(unit, dict)),
                *(adapter.get("model") for adapter in layers)]
    for number, model in enumerate(controls):
        found[f"ControlNet {number}"] = f"Model: {_name(model) or 'unknown'}"
    references = [*(unit.get("ip_adapter_model") for unit in data.get("ipAdapters") or [] if isinstance(unit, dict)),
                  *((unit.get("config") or {}).get("model") if isinstance(unit.get("config"), dict) else unit.get("model")
                    for unit in data.get("ref_images") or [] if isinstance(unit, dict))]
    if references:
        found["IP-Adapter"] = ", ".join(dict.fromkeys(_name(model) or "unknown" for model in references))
    across, down = data.get("seamless_x") is True, data.get("seamless_y") is True
    if across or down:  # as this app writes it: "True" both ways, else the one axis
        found["Tiling"] = "True" if across and down else "x" if across else "y"
    refiner = _name(data.get("refiner_model"))
    if refiner:
        found["Refiner"] = refiner
        start = to_float(data.get("refiner_start"))
        if start is not None:
            found["Refiner switch at"] = f"{start:g}"
    return found


def parse_sd_metadata(text: str) -> ImageMetadata | None:
    """InvokeAI 2's `sd-metadata`: the model, and the generation under "image"."""
    data = json_object(text)
    image = data.get("image") if data is not None else None
    if not isinstance(image, dict):
        return None
    raw_prompt = image.get("prompt", "")
    if isinstance(raw_prompt, list):  # [{"prompt": "…", "weight": 1.0}, …]
        raw_prompt = " ".join(str(p.get("prompt", "")) for p in raw_prompt if isinstance(p, dict))
    prompt, negative = split_negative(str(raw_prompt))
    return ImageMetadata(
        format="invokeai", prompt=prompt, negative_prompt=negative, steps=to_int(image.get("steps")),
        sampler=image.get("sampler") if isinstance(image.get("sampler"), str) else None,
        guidance=to_float(image.get("cfg_scale")), seed=to_int(image.get("seed")), width=to_int(image.get("width")),
        height=to_int(image.get("height")),
        model_name=str(data.get("model_weights")) if data.get("model_weights") else None,
        model_hash=str(data.get("model_hash")) if data.get("model_hash") else None,
        extra=_other_inputs({"generation_mode": image.get("type"), "strength": image.get("strength"),
                             "init_image": image.get("init_image_path")}),
    )


_DREAM_FLAG = re.compile(r"^(-[A-Za-z])(.+)?$")  # "-s 50" or, joined, "-s50"


def parse_dream(text: str) -> ImageMetadata | None:
    """The prompt (quoted or not, `[negative]` inside it), then options as `-s 50` or joined as
    `-s50`: -s steps, -S seed, -W/-H size, -C guidance, -A sampler."""
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
            if match[2] is not None:
                options[match[1]] = match[2]
            elif index + 1 < len(words):
                options[match[1]] = words[index + 1]
                index += 1
        index += 1
    if not prompt_words and not options:
        return None
    prompt, negative = split_negative(" ".join(prompt_words))
    return ImageMetadata(
        format="invokeai", prompt=prompt, negative_prompt=negative, steps=to_int(options.get("-s")),
        sampler=options.get("-A"), guidance=to_float(options.get("-C")), seed=to_int(options.get("-S")),
        width=to_int(options.get("-W")), height=to_int(options.get("-H")),
    )
