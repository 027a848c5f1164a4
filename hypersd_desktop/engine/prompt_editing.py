"""Prompt editing and alternation, as AUTOMATIC1111 reads them: prompts that change while the image is made.

- `[from:to:when]` reads `from` up to step `when`, then `to`; `[to:when]` adds `to` after step `when`, and
  `[from::when]` removes `from` then. `when` with a decimal point is a fraction of the steps (`0.5`, `.25`),
  without one a step number.
- `[a|b|c]` takes `a`, `b`, `c`, `a`, … in turn, step by step; an option may be empty (`[fe|]male`).
- These nest, and hold emphasis (`[(red:1.2):blue:0.5]`); emphasis brackets around them are kept for the
  emphasis reader (`prompts.parse`), which reads each step's text.

`schedule(text, steps)` gives a prompt's texts with the last step each holds, as A1111's
`get_learned_conditioning_prompt_schedules` does (its documented examples are the tests). Step numbers
count from 1; A1111's sampler counts its steps from 0 and uses, at step `i`, the first text whose last step
is at least `i` (`text_at`), so a text holds one step more than its number says. A prompt that cannot be
read as this syntax (a `|` outside brackets, a `\\` at its end) is one text, as A1111 leaves it.

Reading follows A1111's grammar: outside all brackets, a bracket that opens nothing is a character of the
text; inside a bracket, everything must form a part (`(…)`, `(…:…)`, `[…]`, an edit or an alternation),
or the bracket is a character again. Where A1111's parser (an Earley parser) finds several readings of a
malformed prompt, it sometimes picks one with a bracket read as a character where this reader finds a part;
on well-formed prompts the two agree (tests/engine/prompt_editing_cases.json says how that was checked).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from hypersd_desktop.core.prompt_tags import NETWORK_TAG, without_network_tags

_NUMBER = re.compile(r"\s*([+-]?(?:\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?))\s*")
_AND = re.compile(r"\bAND\b")  # A1111's own pattern for it
_PLAIN = re.compile(r"(?:[^\\\[\]():|]|\\.)+", re.DOTALL)


@dataclass(frozen=True)
class _Edit:
    before: tuple | None  # None: `[to:when]`, nothing before
    after: tuple
    when: str  # the number as written


@dataclass(frozen=True)
class _Alternation:
    options: tuple


class _Unreadable(Exception):
    """The prompt is not this syntax as a whole: it is one text."""


def schedule(text: str, steps: int) -> list[tuple[int, str]]:
    """The texts `text` reads as over `steps` steps, each with the last step (from 1) it holds, in order.

    >>> schedule("a [cat:dog:0.5]", 4)
    [(2, 'a cat'), (4, 'a dog')]
    """
    if NETWORK_TAG.search(text):  # A1111 takes `<lora:NAME:0.5>` out first: its colons are not an edit's
        text = without_network_tags(text)
    try:
        parts = _Reader(text).top()
    except (_Unreadable, RecursionError):  # brackets nested past Python's stack: no prompt is written so
        return [(steps, text)]
    ends = {steps}
    for part in _walk(parts):
        if isinstance(part, _Edit):
            when = _step(part.when, steps)
            if when >= 1:
                ends.add(when)
        elif isinstance(part, _Alternation):
            ends.update(range(1, steps + 1))
    return [(end, _text(parts, end, steps)) for end in sorted(ends)]


def runs(texts: list[str], steps: int) -> list[tuple[int, list[str]]]:
    """The texts of prompts read together (a batch's prompts and their negative) over each run of steps in which
    none of them changes, with the last step of the run; one run when no text is edited."""
    schedules = [schedule(text, steps) if is_edited(text) else [(steps, text)] for text in texts]
    ends = sorted({end for entries in schedules for end, _ in entries})
    return [(end, [text_at(entries, end) for entries in schedules]) for end in ends]


def run_of(ends: list[int], index: int) -> int:
    """Which run of `runs` (given their last steps) sampling step `index`, counted from 0, is in."""
    return next((k for k, end in enumerate(ends) if index <= end), len(ends) - 1)


def text_at(entries: list[tuple[int, str]], index: int) -> str:
    """The text a schedule gives at sampling step `index` (counted from 0, as A1111's sampler counts)."""
    return next((text for end, text in entries if index <= end), entries[-1][1])


def is_edited(text: str) -> bool:
    """Whether `text` may change between steps: a quick test of its characters, before `has_edits`."""
    return "[" in text and (":" in text or "|" in text)


def has_edits(text: str) -> bool:
    """Whether `text` holds an edit or an alternation (`(red:1.2) [dusk]` holds neither)."""
    if not is_edited(text):
        return False
    if NETWORK_TAG.search(text):
        text = without_network_tags(text)
    try:
        parts = _Reader(text).top()
    except (_Unreadable, RecursionError):
        return False
    return any(isinstance(part, (_Edit, _Alternation)) for part in _walk(parts))


def unchanging_warnings(prompt: str, negative_prompt: str, steps: int, running: int | None = None) -> list[str]:
    """A warning for the prompt and the negative prompt ("" where it is not used) whose edits or alternations
    change nothing over the `running` steps that run (all `steps` of the schedule, or fewer from an init image),
    naming the text read throughout."""
    warnings = []
    for label, text in (("prompt", prompt), ("negative prompt", negative_prompt)):
        if not has_edits(text):
            continue
        entries = schedule(text, steps)
        read = {text_at(entries, index) for index in range(running or steps)}
        if len(read) == 1:
            shown = " ".join(read.pop().split())
            shown = shown if len(shown) <= 80 else shown[:79] + "…"
            warnings.append(f"Prompt editing in the {label} changes nothing at {steps} step{'' if steps == 1 else 's'}: "
                            f"it reads \"{shown}\" throughout. Steps count from 0, as in AUTOMATIC1111, so an edit at "
                            "step k shows from step k + 1; use more steps for the change to show.")
    return warnings


def and_warnings(prompt: str, negative_prompt: str) -> list[str]:
    """A warning for a prompt that joins prompts with A1111's `AND` (composable diffusion, which mixes one noise
    prediction per part): this app reads such a prompt as one text, "AND" and all."""
    return [f"The {label} joins parts with AND, which AUTOMATIC1111 reads as composable diffusion (one prediction "
            "per part, mixed); this app reads it as one text. Write the parts as one prompt, or weigh them with "
            "(part:1.2)." for label, text in (("prompt", prompt), ("negative prompt", negative_prompt))
            if _AND.search(text)]


def _step(written: str, steps: int) -> int:
    value = float(written)
    if "." in written:
        value *= steps
    return min(steps, int(value)) if math.isfinite(value) else (steps if value > 0 else -1)


def _walk(parts):
    for part in parts:
        if isinstance(part, _Edit):
            yield part
            yield from _walk(part.before or ())
            yield from _walk(part.after)
        elif isinstance(part, _Alternation):
            yield part
            for option in part.options:
                yield from _walk(option)
        elif isinstance(part, tuple):
            yield from _walk(part)


def _text(parts, step: int, steps: int) -> str:
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, _Edit):
            chosen = (part.before or ()) if step <= _step(part.when, steps) else part.after
            out.append(_text(chosen, step, steps))
        elif isinstance(part, _Alternation):
            out.append(_text(part.options[(step - 1) % len(part.options)], step, steps))
        else:
            out.append(_text(part, step, steps))
    return "".join(out)


class _Reader:
    """A reader of the grammar over one prompt; parts are strings, `_Edit`, `_Alternation` and tuples of
    parts (an emphasis group, its brackets kept as strings)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._brackets: dict[int, tuple | None] = {}  # what the bracket at a position opens: read once

    def top(self) -> tuple:
        """The whole prompt: parts, and outside all brackets, stray brackets and colons as characters."""
        parts, at = [], 0
        while at < len(self.text):
            char = self.text[at]
            if char == "|":
                raise _Unreadable
            if char in "[(":
                found = self._bracket(at)
                if found is not None:
                    parts.append(found[0])
                    at = found[1]
                    continue
                parts.append(char)
                at += 1
            elif char in "]):":
                parts.append(char)
                at += 1
            else:
                text, at = self._plain(at)
                parts.append(text)
        return tuple(parts)

    def _plain(self, at: int) -> tuple[str, int]:
        match = _PLAIN.match(self.text, at)
        if match is None:  # a backslash at the end escapes nothing: A1111 reads no part of such a prompt
            raise _Unreadable
        return match.group(0), match.end()

    def _prompt(self, at: int) -> tuple[tuple, int] | None:
        """The parts from `at` up to the first `]`, `)`, `:` or `|` of this level; None when a bracket in
        them opens nothing (inside brackets there are no stray characters)."""
        parts = []
        while at < len(self.text) and self.text[at] not in "]):|":
            if self.text[at] in "[(":
                found = self._bracket(at)
                if found is None:
                    return None
                parts.append(found[0])
                at = found[1]
            else:
                text, at = self._plain(at)
                parts.append(text)
        return tuple(parts), at

    def _bracket(self, at: int):
        """The part that the bracket at `at` opens and the position after it, or None when it opens none."""
        if at not in self._brackets:
            self._brackets[at] = self._read_bracket(at)
        return self._brackets[at]

    def _read_bracket(self, at: int):
        opening = self.text[at]
        first = self._prompt(at + 1)
        if first is None:
            return None
        parts, at = first
        if at >= len(self.text):
            return None
        mark = self.text[at]
        if opening == "(":
            if mark == ")":
                return ("(", *parts, ")"), at + 1
            if mark == ":":
                second = self._prompt(at + 1)
                if second is not None and second[1] < len(self.text) and self.text[second[1]] == ")":
                    return ("(", *parts, ":", *second[0], ")"), second[1] + 1
            return None
        if mark == "]":
            return ("[", *parts, "]"), at + 1
        if mark == "|":
            return self._alternation(parts, at)
        if mark == ":":
            return self._edit(parts, at)
        return None

    def _alternation(self, first: tuple, at: int):
        options = [first]
        while at < len(self.text) and self.text[at] == "|":
            found = self._prompt(at + 1)
            if found is None:
                return None
            option, at = found
            options.append(option)
        if at < len(self.text) and self.text[at] == "]":
            return _Alternation(tuple(options)), at + 1
        return None

    def _edit(self, first: tuple, at: int):
        """`[first:…` read on as `[from:to:when]` or `[to:when]`."""
        second = self._prompt(at + 1)
        if second is None:
            return None
        parts, at = second
        if at >= len(self.text):
            return None
        if self.text[at] == "]":  # [to:when]
            when = _number_of(parts)
            return (_Edit(None, first, when), at + 1) if when is not None else None
        if self.text[at] == ":":  # [from:to:when]
            third = self._prompt(at + 1)
            if third is None or third[1] >= len(self.text) or self.text[third[1]] != "]":
                return None
            when = _number_of(third[0])
            return (_Edit(first, parts, when), third[1] + 1) if when is not None else None
        return None


def _number_of(parts: tuple) -> str | None:
    """The number `parts` are (spaces around it allowed), as written; None when they are anything else."""
    if len(parts) != 1 or not isinstance(parts[0], str):
        return None
    match = _NUMBER.fullmatch(parts[0])
    return match.group(1) if match else None
