"""Weighing a prompt's words from the keyboard, as AUTOMATIC1111's Ctrl+Up and Ctrl+Down do in its prompt boxes.

`nudged(text, start, end, up)` is the text after one press with the characters `start:end` selected:

- Nothing selected: the `<lora:…>` tag, or else the `(…)` group, the cursor is in, or else the word at the cursor
  (up to a space or one of `.,\\/!?%^*;:{}=`~()`); nothing there, nothing changes.
- Words in a weighted group, `(red fox:1.2)`: its weight goes up or down by 0.1; at 1 the brackets go.
- A LoRA tag, `<lora:fox:0.8>`: its weight goes up or down by 0.05.
- Other words: they are weighted, `(red fox:1.1)` or `(red fox:0.9)` (the spaces after them left outside).

The words stay selected, so pressing again goes on weighing them. It returns None where nothing changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WEIGHT_STEP = 0.1
LORA_STEP = 0.05
DELIMITERS = set(".,\\/!?%^*;:{}=`~() \t\r\n")
_WEIGHT = re.compile(r":\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*\)")
_LORA = re.compile(r"<(lora|lyco|hypernet):([^<>]*):([+-]?(?:\d+\.?\d*|\.\d+))((?::[^<>]*)?)>", re.IGNORECASE)


@dataclass(frozen=True)
class Nudge:
    text: str
    start: int  # the words weighed, selected after the edit
    end: int


def nudged(text: str, start: int, end: int, up: bool) -> Nudge | None:
    start, end = min(start, end), max(start, end)
    if start == end:
        found = _lora_at(text, start) or _group_at(text, start) or _word_at(text, start)
        if found is None:
            return None
        start, end = found
    lora = _LORA.fullmatch(text, start - 1, end + 1) if start > 0 else None
    if lora is None and text[start:start + 1] == "<":
        lora = _LORA.fullmatch(text, start, end)
    if lora is not None:
        return _lora_weighed(text, lora, up)
    while end > start and text[end - 1] in " \t\r\n":
        end -= 1
    if end == start:
        return None
    step = WEIGHT_STEP if up else -WEIGHT_STEP
    weight = _WEIGHT.match(text, end) if start > 0 and text[start - 1] == "(" else None
    if weight is not None:
        new = round(float(weight.group(1)) + step, 6)
        if new == 1:  # no weight: the brackets go
            words = text[start:end]
            edited = text[:start - 1] + words + text[weight.end():]
            return Nudge(edited, start - 1, start - 1 + len(words))
        return Nudge(text[:end] + f":{new:g})" + text[weight.end():], start, end)
    words = text[start:end]
    return Nudge(f"{text[:start]}({words}:{1 + step:g}){text[end:]}", start + 1, end + 1)


def _lora_weighed(text: str, lora: re.Match, up: bool) -> Nudge:
    weight = round(float(lora.group(3)) + (LORA_STEP if up else -LORA_STEP), 6)
    tag = f"<{lora.group(1)}:{lora.group(2)}:{weight:g}{lora.group(4)}>"
    edited = text[:lora.start()] + tag + text[lora.end():]
    return Nudge(edited, lora.start() + 1, lora.start() + len(tag) - 1)


def _lora_at(text: str, cursor: int) -> tuple[int, int] | None:
    for match in _LORA.finditer(text):
        if match.start() < cursor < match.end() or match.start() == cursor:
            return match.start() + 1, match.end() - 1
    return None


def _group_at(text: str, cursor: int) -> tuple[int, int] | None:
    """The words of the innermost weighted `(…:w)` group around the cursor."""
    depth, opened = 0, None
    for i in range(cursor - 1, -1, -1):
        if text[i] == ")":
            depth += 1
        elif text[i] == "(":
            if depth == 0:
                opened = i
                break
            depth -= 1
    if opened is None:
        return None
    depth = 0
    for i in range(opened + 1, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            if depth == 0:
                colon = text.rfind(":", opened + 1, i)
                if colon == -1 or _WEIGHT.match(text, colon) is None or cursor > i:
                    return None
                return opened + 1, colon
            depth -= 1
    return None


def _word_at(text: str, cursor: int) -> tuple[int, int] | None:
    start = cursor
    while start > 0 and text[start - 1] not in DELIMITERS:
        start -= 1
    end = cursor
    while end < len(text) and text[end] not in DELIMITERS:
        end += 1
    return (start, end) if end > start else None
