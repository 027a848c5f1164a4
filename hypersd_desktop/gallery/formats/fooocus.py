"""Fooocus and RuinedFooocus: JSON in the `parameters` chunk (older Fooocus: `Comment`; JPEG:
the comment or UserComment), each recognised by its own keys."""

from __future__ import annotations

import re
from typing import Any

from hypersd_desktop.gallery.formats.common import ImageMetadata, json_object, size_of, stem, to_float, to_int, to_text
from hypersd_desktop.gallery.formats.syntax import FULL_NEGATIVE, FULL_PROMPT

FULL_PROMPT_KEY = "full_prompt"
FOOOCUS_KEYS = {"base_model", "sharpness", "adm_guidance", "performance", "styles",
                "resolution", "refiner_model", "metadata_scheme"}


def parse_fooocus(text: str) -> ImageMetadata | None:
    data = json_object(text)
    if data is None or "prompt" not in data or not FOOOCUS_KEYS & set(data):
        return None
    width, height = size_of(data.get("resolution"))
    loras = []
    for key, value in data.items():
        if key.startswith("lora_combined_") and isinstance(value, str) and " : " in value:
            name, weight = value.rsplit(" : ", 1)
            loras.append((stem(name) or name, to_float(weight) or 1.0, None))
    for entry in data.get("loras") or []:  # metadata_scheme "fooocus": [name, weight, hash]
        if isinstance(entry, list) and len(entry) >= 2 and isinstance(entry[0], str):
            loras.append((stem(entry[0]) or entry[0], to_float(entry[1]) or 1.0,
                          entry[2] if len(entry) > 2 and isinstance(entry[2], str) else None))
    return ImageMetadata(
        format="fooocus", prompt=to_text(data.get("prompt")), negative_prompt=to_text(data.get("negative_prompt")),
        steps=to_int(data.get("steps")), sampler=data.get("sampler"), guidance=to_float(data.get("guidance_scale")),
        seed=to_int(data.get("seed")), width=width, height=height, model_name=stem(data.get("base_model")),
        model_hash=data.get("base_model_hash"), loras=tuple(loras), vae_name=_chosen(data.get("vae")),
        clip_skip=_clip_skip(data.get("clip_skip")), extra={**_other_passes(data), **_full_prompts(data)},
    )


def _full_prompts(data: dict[str, Any]) -> dict[str, str]:
    """The prompts Fooocus ran (its metadata scheme "fooocus", from version 2.2): the styles' templates around the
    typed prompt and the V2 expansion, each a list of prompts that Fooocus encodes in turn; joined by commas, as its
    own A1111-style metadata writes them."""
    found = {}
    for key, name in ((FULL_PROMPT_KEY, FULL_PROMPT), ("full_negative_prompt", FULL_NEGATIVE)):
        parts = data.get(key)
        parts = [parts] if isinstance(parts, str) else parts if isinstance(parts, list) else []
        text = ", ".join(part.strip() for part in parts if isinstance(part, str) and part.strip())
        if text:
            found[name] = text
    return found


def _clip_skip(value: Any) -> int | None:
    skip = to_int(value)
    return skip if skip is not None and 1 <= skip <= 12 else None


_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"")


def _other_passes(data: dict[str, Any]) -> dict[str, str]:
    """What Fooocus ran besides the prompt as typed, in the words `common.other_passes` reads: its styles (its
    V2 prompt expansion among them; written as Python's list, "['Fooocus V2', 'Fooocus Enhance']") and the
    refiner it switched to."""
    found: dict[str, str] = {}
    styles = data.get("styles")
    names = styles if isinstance(styles, list) else [a or b for a, b in _QUOTED.findall(styles)] \
        if isinstance(styles, str) else []
    names = [name for name in names if isinstance(name, str) and name.strip()]
    if names:
        found["Fooocus styles"] = ", ".join(names)
    refiner = data.get("refiner_model")
    if isinstance(refiner, str) and refiner.strip() and refiner.strip() != "None":
        found["Refiner"] = refiner.strip()
        switch = to_float(data.get("refiner_switch"))
        if switch is not None:
            found["Refiner switch at"] = f"{switch:g}"
    return found


def _chosen(name: Any) -> str | None:
    """A VAE chosen in the settings; None for "Default (model)", the model's own."""
    return name if isinstance(name, str) and name.strip() and not name.startswith("Default") else None


def is_ruinedfooocus(data: dict[str, Any]) -> bool:
    return data.get("software") == "RuinedFooocus" or {"Prompt", "Negative", "cfg", "base_model_name"} <= set(data)


def parse_ruinedfooocus(text: str) -> ImageMetadata | None:
    """RuinedFooocus: `Prompt`, `Negative`, `cfg`, `sampler_name`, `base_model_name`, `loras` as
    [[name, weight], …] or "name:weight" strings."""
    data = json_object(text)
    if data is None or not is_ruinedfooocus(data):
        return None
    loras = []
    for entry in data.get("loras") or []:
        if isinstance(entry, list) and len(entry) >= 2:
            name, weight = str(entry[0]), entry[1]
        elif isinstance(entry, str) and ":" in entry:
            name, weight = entry.rsplit(":", 1)
        else:
            continue
        loras.append((stem(name) or name, to_float(weight) or 1.0, None))
    return ImageMetadata(
        format="ruinedfooocus", prompt=to_text(data.get("Prompt")), negative_prompt=to_text(data.get("Negative")),
        steps=to_int(data.get("steps")), sampler=data.get("sampler_name"), guidance=to_float(data.get("cfg")),
        seed=to_int(data.get("seed")), width=to_int(data.get("width")), height=to_int(data.get("height")),
        model_name=stem(data.get("base_model_name")), model_hash=data.get("base_model_hash"), loras=tuple(loras),
    )
