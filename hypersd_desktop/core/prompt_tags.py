"""A1111's extra-network tags in a prompt: `<lora:NAME:WEIGHT>` (also `<lora:NAME>`, `<lora:NAME:TE:UNET>`, named
arguments after), the older LyCORIS extension's `<lyco:…>`, and hypernetworks' `<hypernet:…>`; and ComfyUI's
way of naming an embedding, `embedding:NAME` (with a file extension or a subfolder at times).

A1111 takes them out of the prompt before the text encoder reads it and applies the networks they name. The
gallery reads LoRA weights from them; the engines leave them out of the text (LoRAs are applied from the
request's list).
"""

from __future__ import annotations

import math
import re

NETWORK_TAG = re.compile(r"<(lora|lyco|hypernet):([^:>]+)(?::([^:>]*))?[^>]*>", re.IGNORECASE)


def network_tags(prompt: str) -> list[tuple[str, str, str]]:
    """The prompt's tags as (kind, name, weight as written, "" when none), in order."""
    return [(kind.lower(), name.strip(), weight.strip()) for kind, name, weight in NETWORK_TAG.findall(prompt or "")]


def tag_weight(text: str) -> float:
    """A tag's weight as A1111 reads it: a number, else 1 (`<lora:NAME>`, or named arguments only)."""
    try:
        weight = float(text)
    except ValueError:
        return 1.0
    return weight if math.isfinite(weight) else 1.0


def without_network_tags(prompt: str) -> str:
    """The prompt without its extra-network tags: the words the text encoder is meant to read."""
    return re.sub(r"[ \t]*" + NETWORK_TAG.pattern, "", prompt or "", flags=re.IGNORECASE).strip()


# ComfyUI's `embedding:EasyNegative`, `embedding:EasyNegative.safetensors`, `embedding:negatives/bad_hands.pt`
EMBEDDING_PREFIX = re.compile(r"\bembedding:(?:[^\s,()\[\]:]*[/\\])?([^\s,()\[\]:/\\]+?)(?:\.safetensors|\.pt|\.bin)?"
                              r"(?=[\s,()\[\]:]|$)", re.IGNORECASE)


def embeddings_by_name(prompt: str) -> str:
    """The prompt with ComfyUI's `embedding:NAME` written as the bare name, which is how A1111 and this app
    name an embedding in a prompt."""
    return EMBEDDING_PREFIX.sub(lambda match: match.group(1), prompt or "")
