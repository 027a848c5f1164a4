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


def without_network_tags(prompt: str, names: set[str] | None = None) -> str:
    """The prompt without its extra-network tags (those naming one of `names`, in any case, where given): the
    words the text encoder is meant to read."""
    def kept(tag: re.Match) -> str:
        return "" if names is None or tag[2].strip().lower() in names else tag[0]

    return re.sub(r"[ \t]*" + NETWORK_TAG.pattern, kept, prompt or "", flags=re.IGNORECASE).strip()


# ComfyUI's `embedding:EasyNegative`, `embedding:EasyNegative.safetensors`, `embedding:negatives/bad_hands.pt`
EMBEDDING_PREFIX = re.compile(r"\bembedding:(?:[^\s,()\[\]:]*[/\\])?([^\s,()\[\]:/\\]+?)(?:\.safetensors|\.pt|\.bin)?"
                              r"(?=[\s,()\[\]:]|$)", re.IGNORECASE)


def embeddings_by_name(prompt: str) -> str:
    """The prompt with ComfyUI's `embedding:NAME` written as the bare name, which is how A1111 and this app
    name an embedding in a prompt."""
    return EMBEDDING_PREFIX.sub(lambda match: match.group(1), prompt or "")


# -- trigger words --------------------------------------------------------------------------------------------------

MAX_TRIGGER_WORDS = 32
MAX_TRIGGER_LENGTH = 300


def _brackets(text: str) -> tuple[list[tuple[int, int]], set[int]]:
    """The brackets of `text` that close one another, as (opening, closing) positions, and the positions of the
    rest: one left open, one closing nothing (a typo)."""
    pairs, opened, stray = [], [], set()
    for index, char in enumerate(text):
        if char in "([{<":
            opened.append(index)
        elif char in ")]}>":
            if opened:
                pairs.append((opened.pop(), index))
            else:
                stray.add(index)
    return pairs, stray.union(opened)


def _pieces(text: str) -> list[str]:
    """`text` cut at its commas outside brackets (`(red hair, blue eyes:1.2)`, `[a, b]`, `<lora:…>`), as written. A
    bracket left open (a typo) guards nothing, so words added after it stay an item of their own."""
    inside = [0] * (len(text) + 1)  # +1 where a closed bracket's span starts, -1 after it ends
    for start, end in _brackets(text)[0]:
        inside[start] += 1
        inside[end + 1] -= 1
    pieces, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += inside[index]
        if char == "," and depth == 0:
            pieces.append(text[start:index])
            start = index + 1
    return [*pieces, text[start:]]


def prompt_items(text: str) -> list[str]:
    """`text`'s comma-separated items, their spaces tidied, empty ones left out; a comma inside brackets does not
    separate."""
    return [" ".join(piece.split()) for piece in _pieces(text or "") if piece.strip()]


def trigger_words(*sources) -> tuple[str, ...]:
    """The trigger words of a LoRA or embedding from what its makers wrote: each source a text of comma-separated
    words (A1111's "activation text", a `modelspec.trigger_phrase`) or a list of such texts (Civitai's
    `trainedWords`); anything else is left out. Duplicates (in any case) are dropped and the count and each length
    capped, so a hostile file cannot flood the prompt."""
    words: dict[str, str] = {}
    for source in sources:
        texts = [source] if isinstance(source, str) else source if isinstance(source, (list, tuple)) else ()
        for text in texts:
            if not isinstance(text, str):
                continue
            for item in prompt_items(text):
                item = " ".join(_matched(item).split())
                if item and len(item) <= MAX_TRIGGER_LENGTH and len(words) < MAX_TRIGGER_WORDS:
                    words.setdefault(item.lower(), item)
    return tuple(words.values())


def _matched(text: str) -> str:
    """`text` without its brackets that close or open nothing (a trigger word's typo), so that added to a prompt it
    never closes a bracket the prompt left open."""
    stray = _brackets(text)[1]
    return "".join(char for index, char in enumerate(text) if index not in stray)


def with_words(prompt: str, words) -> str:
    """`prompt` with each of `words` it lacks (compared in any case, as whole comma-separated items) added at its
    end after a comma, as A1111 adds a LoRA's activation text."""
    have = {item.lower() for item in prompt_items(prompt)}
    missing = [word for word in words if word.lower() not in have]
    if not missing:
        return prompt
    text = prompt.rstrip()
    joiner = "" if not text else " " if text.endswith(",") else ", "
    return text + joiner + ", ".join(missing)


def without_words(prompt: str, words) -> str:
    """`prompt` without the comma-separated items that are exactly one of `words` (in any case); the rest of the
    text, the person's own words, is kept as written."""
    drop = {word.lower() for word in words}
    if not drop or not any(item.lower() in drop for item in prompt_items(prompt)):
        return prompt
    kept = [piece for piece in _pieces(prompt) if " ".join(piece.split()).lower() not in drop]
    return ",".join(kept).strip().strip(",").strip()
