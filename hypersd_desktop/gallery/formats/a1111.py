"""AUTOMATIC1111 and its forks (Forge, reForge, SD.Next) and the image savers that copy them.

The `parameters` text (a PNG chunk, the EXIF UserComment of a JPEG or WebP, or the "stealth"
alpha-channel copy): prompt lines, `Negative prompt:` lines, then one settings line of
`Key: value` pairs, values optionally JSON-quoted. Keys are matched without case ("CFG Scale"
from comfy-image-saver is "CFG scale"). A LoRA is named in `Lora hashes` (with its short hash) and
applied by a `<lora:NAME:WEIGHT>` tag in the prompt, where its weight is; the prompt is kept as
written. Embeddings the prompts used are named in `TI hashes`.

Some fields hold unquoted JSON, which A1111's own pattern would cut at its first comma, so every
field whose value opens with `{` or `[` is read as JSON first: Civitai's extension (and image
savers that copy it) adds `Hashes: {"model": …, "lora:NAME": …, "embed:NAME": …}`, and Civitai's
generator `Civitai resources: [{"type": "checkpoint", "modelName": …}, {"type": "lora", "weight": …}]`,
which names the model, LoRAs and embeddings by their Civitai names where the text has no `Model`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypersd_desktop.gallery.formats.common import (
    CIVITAI_KINDS, ImageMetadata, prompt_loras, size_of, stem, to_float, to_int)

# A1111's own pattern for `key: value` pairs.
_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_KNOWN = {"steps", "sampler", "cfg scale", "seed", "size", "model hash", "model", "lora hashes", "lora weights",
          "hyper-sd", "clip skip", "ti hashes"}
_JSON_FIELD = re.compile(r"(?:^|,)\s*(\w[\w \-/]+):\s*(?=[\[{])")


def parse_a1111(text: str, format_name: str = "a1111") -> ImageMetadata | None:
    lines = text.strip().split("\n")
    if not lines or not lines[-1].lstrip().startswith("Steps:") and "Steps: " not in lines[-1]:
        return None
    settings_line, json_fields = _take_json_fields(lines.pop())
    hashes_json = next((value for key, value in json_fields.items() if key.lower() == "hashes"
                        and isinstance(value, dict)), {})
    resources, civitai = _civitai_resources(json_fields)
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
    by_key = {key.lower(): value for key, value in fields.items()}
    width, height = size_of(by_key.get("size"))
    prompt = "\n".join(prompt_lines).strip()
    tagged = prompt_loras(prompt)
    weights = {name: to_float(weight) for name, weight in _pairs(by_key.get("lora weights", "")).items()}
    hashes = {**_prefixed(hashes_json, "lora:"), **_pairs(by_key.get("lora hashes", ""))}
    weights = {**resources["lora"], **weights}
    names = list(dict.fromkeys([*hashes, *weights, *tagged]))
    loras = tuple((name, _first(weights.get(name), tagged.get(name), 1.0), hashes.get(name)) for name in names)
    embeddings = {**{name: None for name in resources["embedding"]}, **_prefixed(hashes_json, "embed:"),
                  **_pairs(by_key.get("ti hashes", ""))}
    model_hash = _hex(by_key.get("model hash")) or _hex(hashes_json.get("model"))  # Krita's plugin: "unknown"
    return ImageMetadata(
        format=format_name, prompt=prompt, negative_prompt="\n".join(negative_lines).strip(),
        steps=to_int(by_key.get("steps")), sampler=by_key.get("sampler"), guidance=to_float(by_key.get("cfg scale")),
        seed=to_int(by_key.get("seed")), width=width, height=height,
        model_name=stem(by_key.get("model")) or next(iter(resources["checkpoint"]), None),
        model_hash=model_hash, loras=loras, embeddings=tuple(embeddings.items()), recipe=by_key.get("hyper-sd"),
        clip_skip=to_int(by_key.get("clip skip")), vae_name=_chosen_vae(by_key.get("vae")),
        vae_hash=_hex(by_key.get("vae hash")) or _hex(hashes_json.get("vae")), civitai=civitai,
        extra={**{k: v for k, v in fields.items() if k.lower() not in _KNOWN},
               **{k: json.dumps(v, ensure_ascii=False) for k, v in json_fields.items() if k.lower() != "hashes"}},
    )


def _chosen_vae(name: str | None) -> str | None:
    """The VAE field's file; None for the settings' words for the model's own ("None", "Automatic")."""
    return name if name and name.strip().lower() not in ("none", "automatic") else None


def _take_json_fields(line: str) -> tuple[str, dict]:
    """The settings line without its fields of unquoted JSON, and those fields' values by key."""
    found, at = {}, 0
    while (match := _JSON_FIELD.search(line, at)) is not None:
        try:
            value, end = json.JSONDecoder().raw_decode(line, match.end())
        except (ValueError, RecursionError):
            at = match.end()
            continue
        found[match.group(1).strip()] = value
        line = line[:match.start()] + line[end:]
        at = match.start()
    return line, found


def _civitai_resources(fields: dict) -> tuple[dict[str, dict], tuple[tuple[str, int], ...]]:
    """Civitai's generator's resources by kind: "checkpoint" and "embedding" names, "lora" names with weights; and
    the (kind, version id) of each, where it gives its version."""
    kinds: dict[str, dict] = {"checkpoint": {}, "lora": {}, "embedding": {}}
    versions = []
    resources = next((value for key, value in fields.items() if key.lower() == "civitai resources"), [])
    for resource in resources if isinstance(resources, list) else []:
        if not isinstance(resource, dict):
            continue
        kind = CIVITAI_KINDS.get(str(resource.get("type", "")).lower())
        version = to_int(resource.get("modelVersionId"))
        if kind is not None and version is not None and version > 0:
            versions.append((kind, version))
        if kind is not None and isinstance(resource.get("modelName"), str) and resource["modelName"].strip():
            weight = to_float(resource.get("weight"))
            kinds[kind][resource["modelName"].strip()] = 1.0 if weight is None else weight
    return kinds, tuple(dict.fromkeys(versions))


def _prefixed(hashes: dict, prefix: str) -> dict[str, str]:
    """The names and hashes of the `Hashes` entries whose key starts with `prefix` ("lora:" or "embed:", any case)."""
    return {key[len(prefix):].strip(): value.strip() for key, value in hashes.items()
            if isinstance(key, str) and key.lower().startswith(prefix) and isinstance(value, str)
            and key[len(prefix):].strip()}


def _pairs(text: str) -> dict[str, str]:
    pairs = {}
    for part in text.split(","):
        name, sep, value = part.rpartition(":")
        if sep and name.strip():
            pairs[name.strip()] = value.strip()
    return pairs


def _first(*values: float | None) -> float:
    return next(value for value in values if value is not None)


def _hex(value: Any) -> str | None:
    """A hash as written, or None for what is no hash (Krita's AI plugin writes "Model hash: unknown")."""
    return value.strip() if isinstance(value, str) and re.fullmatch(r"\s*(0x)?[0-9a-fA-F]{8,64}\s*", value) else None
