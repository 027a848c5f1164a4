"""Other tools' prompt weighting, written in AUTOMATIC1111's syntax (the one this app reads) for reuse.

The gallery keeps a prompt as its tool wrote it; reusing it turns the tool's weighting into A1111's, so the
words weigh here what they weighed there:

- NovelAI: `{word}` weighs 1.05, `[word]` 1/1.05, nesting multiplies; V4's `1.5::words::` weighs 1.5 (to the end
  when unclosed). Round brackets are plain characters there, so they are escaped for A1111.
- InvokeAI (compel): `word+`, `word++`, `word-` weigh 1.1, 1.21, 0.9 the word they follow; `(words)+`,
  `(words)-`, `(words)1.3` a group; a group with no weight is only a group. A prompt using compel's functions
  (`.and()`, `.blend()`, `.swap()`) is left as written.

Weights that come to 1 are written without brackets; others as `(text:W)`.
"""

from __future__ import annotations

import re

NOVELAI_STEP = 1.05
COMPEL_UP, COMPEL_DOWN = 1.1, 0.9

_NOVELAI_TOKEN = re.compile(r"(-?\d+(?:\.\d+)?::|::|[{}\[\]])")
_COMPEL_FUNCTION = re.compile(r"\)\s*\.\s*(?:and|blend|swap)\s*\(")
_SUFFIX = re.compile(r"\++|-+|\d+(?:\.\d+)?|\.\d+")
_WORD_SUFFIX = re.compile(r"([^\s(),\\]+?)(\++|-+)(?=[\s,()]|$)")


def novelai_to_a1111(text: str) -> str:
    """A NovelAI prompt in A1111's syntax (see the module's notes)."""
    pieces: list[tuple[str, float]] = []
    braces = brackets = 0
    numeric: float | None = None
    for token in _NOVELAI_TOKEN.split(text or ""):
        if token == "{":
            braces += 1
        elif token == "}":
            braces = max(0, braces - 1)
        elif token == "[":
            brackets += 1
        elif token == "]":
            brackets = max(0, brackets - 1)
        elif token == "::":
            numeric = None
        elif token.endswith("::"):
            numeric = float(token[:-2])
        elif token:
            weight = NOVELAI_STEP ** (braces - brackets) * (1.0 if numeric is None else numeric)
            pieces.append((_escaped(token), weight))
    return _written(pieces)


def compel_to_a1111(text: str) -> str:
    """An InvokeAI (compel) prompt in A1111's syntax (see the module's notes)."""
    if not text or _COMPEL_FUNCTION.search(text):
        return text or ""
    pieces, _ = _compel_group(text, 0)
    return _written(pieces)


def _compel_group(text: str, at: int) -> tuple[list[tuple[str, float]], int]:
    """The pieces from `at` to the `)` closing this group (or the end), and where reading stopped (after it)."""
    pieces: list[tuple[str, float]] = []
    plain = ""
    while at < len(text):
        char = text[at]
        if char == "\\" and at + 1 < len(text):
            plain += text[at:at + 2]  # an escaped character stays escaped, as A1111 reads it
            at += 2
            continue
        if char == ")":
            pieces += _compel_words(plain)
            return pieces, at + 1
        if char == "(":
            pieces += _compel_words(plain)
            plain = ""
            inner, at = _compel_group(text, at + 1)
            suffix = _SUFFIX.match(text, at)
            weight = _compel_weight(suffix.group()) if suffix else 1.0
            at = suffix.end() if suffix else at
            pieces += [(part, part_weight * weight) for part, part_weight in inner]
            continue
        plain += char
        at += 1
    pieces += _compel_words(plain)
    return pieces, at


def _compel_words(text: str) -> list[tuple[str, float]]:
    """Plain text with `word+` / `word-` weights on single words."""
    pieces, at = [], 0
    for match in _WORD_SUFFIX.finditer(text):
        pieces.append((_escaped_brackets(text[at:match.start()]), 1.0))
        pieces.append((_escaped_brackets(match.group(1)), _compel_weight(match.group(2))))
        at = match.end()
    pieces.append((_escaped_brackets(text[at:]), 1.0))
    return [(part, weight) for part, weight in pieces if part]


def _compel_weight(suffix: str) -> float:
    if suffix.startswith("+"):
        return COMPEL_UP ** len(suffix)
    if suffix.startswith("-"):
        return COMPEL_DOWN ** len(suffix)
    return float(suffix)


def _escaped(text: str) -> str:
    return re.sub(r"(?<!\\)([()])", r"\\\1", text)


def _escaped_brackets(text: str) -> str:
    return re.sub(r"(?<!\\)([\[\]])", r"\\\1", text)


def _written(pieces: list[tuple[str, float]]) -> str:
    """Pieces of equal weight joined, in A1111's syntax; the spaces around a weighted piece stay outside it."""
    merged: list[list] = []
    for text, weight in pieces:
        if merged and abs(merged[-1][1] - weight) < 1e-9:
            merged[-1][0] += text
        else:
            merged.append([text, weight])
    out = []
    for text, weight in merged:
        if abs(weight - 1.0) < 1e-9 or not text.strip():
            out.append(text)
            continue
        core = text.strip()
        lead, trail = text[:len(text) - len(text.lstrip())], text[len(text.rstrip()):]
        out.append(f"{lead}({core}:{round(weight, 4):g}){trail}")
    return "".join(out)


TOOL_SYNTAX = {"novelai": ("NovelAI", novelai_to_a1111), "invokeai": ("InvokeAI", compel_to_a1111)}
CHARACTERS = ("Character prompts", "Character negative prompts")  # NovelAI V4's, in an image's `extra` (novelai.py)
FULL_PROMPT, FULL_NEGATIVE = "Full prompt", "Full negative prompt"  # Fooocus's as run, in `extra` (fooocus.py)


def reused_prompts(format_name: str, prompt: str, negative: str,
                   extra: dict[str, str] | None = None) -> tuple[str, str, str | None]:
    """The prompt and negative prompt of an image made by `format_name`'s tool, in A1111's syntax, and a note
    saying so when that changed them (None otherwise). NovelAI V4's character prompts (in the image's `extra`) are
    added to the prompt after its own text, as a model here takes one prompt for the whole picture; a Fooocus image's
    prompts are those it ran, its styles applied (`FULL_PROMPT`), where it wrote them."""
    tool, convert = TOOL_SYNTAX.get(format_name, (None, None))
    notes = []
    full = extra.get(FULL_PROMPT) if format_name == "fooocus" and extra else None
    if full and full.strip() != prompt.strip():
        typed = prompt.strip()
        prompt, negative = full, extra.get(FULL_NEGATIVE) or negative
        notes.append("The prompts are those Fooocus ran, its styles' words (and Fooocus V2's) in them, as no style of "
                     f"Fooocus's is made here; it was typed as \u201c{typed[:80]}\u201d.")
    if convert is not None:
        written = convert(prompt), convert(negative)
        if written != (prompt, negative):
            prompt, negative = written
            notes.append(f"The prompts' {tool} weighting is written in A1111's syntax, which this app reads, so the "
                         "words weigh what they weighed there.")
    characters = {name: _lines(extra.get(name)) for name in CHARACTERS} if format_name == "novelai" and extra else {}
    if characters.get(CHARACTERS[0]):
        joined = [_joined(text, [convert(line) for line in characters[name]] if convert else characters[name])
                  for text, name in ((prompt, CHARACTERS[0]), (negative, CHARACTERS[1]))]
        prompt, negative = joined
        count = len(characters[CHARACTERS[0]])
        notes.append(f"NovelAI's {count} character prompt{'s' * (count != 1)} {'follow' if count != 1 else 'follows'} "
                     "the prompt: a model here takes one prompt for the whole picture, not one per character.")
    return prompt, negative, " ".join(notes) or None


def _lines(text) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()] if isinstance(text, str) else []


def _joined(text: str, more: list[str]) -> str:
    """`text` with `more` after it, each parted by a comma."""
    return ", ".join(part for part in (text.strip().rstrip(","), *more) if part)
