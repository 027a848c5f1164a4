"""Prompts as AUTOMATIC1111 and its forks read them, the syntax most prompts people share are written in.

- Emphasis: `(word)` weighs a part 1.1 times, `[word]` 1/1.1 times, `(word:1.3)` 1.3 times; brackets nest and
  multiply, an unclosed bracket runs to the end, and `\\(`, `\\)`, `\\[`, `\\]` are the characters themselves.
- `BREAK` starts a new chunk of the text encoder's window.
- Prompt editing and alternation (`[cat:dog:0.5]`, `[cat|dog]`) are read before this, by `prompt_editing`,
  which gives the text of each step.
- Extra-network tags (`<lora:NAME:0.8>`) are left out of the text, as A1111 leaves them out; LoRAs are applied
  from the request's list. ComfyUI's `embedding:NAME` is read as the embedding's bare name.
- A prompt past the window (75 tokens between the start and end tokens) is encoded in chunks of 75 tokens
  whose embeddings are joined, so nothing is cut off up to `MAX_WINDOWS` chunks. A chunk ends after a comma
  when one is within the last 20 tokens, so a phrase is not split across two chunks.

Weights multiply the text encoder's output at their tokens, after which each chunk is scaled back to its
unweighted mean (A1111's "Original" emphasis). A prompt with none of this syntax that fits the window gives
the tokens the diffusers pipelines make themselves, so it is encoded by them and images match the model
card's code. Torch-free: the backends run their own text encoders over the chunks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hypersd_desktop.core.prompt_tags import EMBEDDING_PREFIX, NETWORK_TAG, embeddings_by_name, without_network_tags

EMPHASIS = 1.1
CHUNK_TOKENS = 75  # between the start and end tokens of CLIP's 77-token window
MAX_WINDOWS = 8  # 600 tokens, past any prompt written to be read; a pasted page would make every step crawl
COMMA_BACKTRACK = 20
BREAK = None  # the weight that marks a BREAK in `parse`'s output

_PARTS = re.compile(r"""
    \\[()\[\]\\]          # an escaped bracket or backslash
  | \\                    # a lone backslash
  | \(                    # opens emphasis
  | \[                    # opens de-emphasis
  | :\s*([+-]?[.\d]+)\s*\) # closes emphasis with an explicit weight
  | \)
  | ]
  | [^\\()\[\]:]+         # text
  | :
""", re.VERBOSE)
_BREAK = re.compile(r"\s*\bBREAK\b\s*")
_SYNTAX = re.compile(r"[()\[\]\\]|\bBREAK\b")


def parse(text: str) -> list[tuple[str, float | None]]:
    """`text` as (part, weight) pairs in order, neighbours of equal weight merged; a BREAK is ("BREAK", None).

    >>> parse("a (red:1.3) [cat] BREAK (on a mat")
    [('a ', 1.0), ('red', 1.3), (' ', 1.0), ('cat', 0.9090909090909091), ('', 1.0), ('BREAK', None), ('', 1.0), ('on a mat', 1.1)]
    """
    parts: list[list] = []
    opened: dict[str, list[int]] = {"(": [], "[": []}

    def multiply(start: int, factor: float) -> None:
        for part in parts[start:]:
            if part[1] is not BREAK:
                part[1] *= factor

    for match in _PARTS.finditer(text):
        token, weight = match.group(0), match.group(1)
        if token in opened:
            opened[token].append(len(parts))
        elif weight is not None and opened["("]:
            multiply(opened["("].pop(), _number(weight))
        elif token == ")" and opened["("]:
            multiply(opened["("].pop(), EMPHASIS)
        elif token == "]" and opened["["]:
            multiply(opened["["].pop(), 1 / EMPHASIS)
        elif token.startswith("\\"):
            parts.append([token[1:], 1.0])
        else:
            for index, piece in enumerate(_BREAK.split(token)):
                if index:
                    parts.append(["BREAK", BREAK])
                parts.append([piece, 1.0])
    for bracket, factor in (("(", EMPHASIS), ("[", 1 / EMPHASIS)):
        for start in opened[bracket]:
            multiply(start, factor)
    merged: list[tuple[str, float | None]] = []
    for piece, weight in parts:  # empty parts stay: A1111 keeps them, and they keep their neighbours apart
        if merged and merged[-1][1] == weight:
            merged[-1] = (merged[-1][0] + piece, weight)
        else:
            merged.append((piece, weight))
    return merged or [("", 1.0)]


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:  # "1.2.3" matches the pattern; A1111 reads such a weight as 1
        return 1.0


def has_syntax(text: str) -> bool:
    """Whether `text` has brackets, backslashes, BREAK or extra-network tags, which the pipelines' own encoding
    would read as words, or ComfyUI's `embedding:NAME`."""
    return bool(_SYNTAX.search(text) or NETWORK_TAG.search(text) or EMBEDDING_PREFIX.search(text))


@dataclass(frozen=True)
class Chunk:
    """One window of the text encoder: `ids` (start token, up to 75 tokens, end token, padding), the weight
    of each position, and `length`, the positions before the padding."""

    ids: tuple[int, ...]
    weights: tuple[float, ...]
    length: int

    @property
    def weighted(self) -> bool:
        return any(weight != 1.0 for weight in self.weights)


Convert = Callable[[str], str]  # spells out a text's multi-vector embedding names (see `embeddings.spelled_out`)


def token_count(tokenizer, text: str, convert: Convert | None = None) -> int:
    """How many tokens `text` is, without the start and end tokens."""
    text = convert(text) if convert else text
    return len(tokenizer(text, truncation=False, add_special_tokens=False, verbose=False).input_ids)


def needs_chunks(tokenizer, text: str, convert: Convert | None = None) -> bool:
    """Whether `text` must be encoded here rather than by the pipeline: it has the syntax, or it is longer
    than one window (the pipeline would cut it)."""
    return has_syntax(text) or token_count(tokenizer, text, convert) > CHUNK_TOKENS


def dropped_words(tokenizer, text: str, windows: int = MAX_WINDOWS, convert: Convert | None = None) -> str | None:
    """The start of what of `text` lies past its first `windows` windows (None when nothing does): what a
    reader of that many windows leaves out."""
    rest = chunks(tokenizer, text, convert)[windows:]
    if not rest:
        return None
    text = " ".join(tokenizer.decode(window.ids[1:window.length - 1], clean_up_tokenization_spaces=True)
                    for window in rest)
    words = text.lstrip(" ,").split()  # a window may start after the comma that ended the one before
    return " ".join(words[:12]) + (" …" if len(words) > 12 else "")


def length_warnings(tokenizer, prompt: str, negative_prompt: str, windows: int = MAX_WINDOWS,
                    advice: str = "", convert: Convert | None = None, steps: int | None = None) -> list[str]:
    """A warning for the prompt and for the negative prompt (pass "" where it is not used) when a reader of
    `windows` windows leaves part of it out; `advice` ends the sentence that says what to do. An edited prompt
    (`prompt_editing`) is judged by the texts its `steps` steps read, not by the text with every edit in it."""
    from hypersd_desktop.engine import prompt_editing

    warnings = []
    for label, text in (("prompt", prompt), ("negative prompt", negative_prompt)):
        read = ([step_text for _, step_text in prompt_editing.schedule(text, steps)]
                if steps and prompt_editing.has_edits(text) else [text])
        dropped = next((words for step_text in read if step_text
                        and (words := dropped_words(tokenizer, step_text, windows, convert))), None)
        if dropped:
            warnings.append(f"The {label} is longer than the {windows * CHUNK_TOKENS} tokens that are read; this "
                            f"part was dropped: \"{dropped}\". Shorten the {label}{advice}.")
    return warnings


def counted(tokenizer, text: str, steps: int | None = None, vectors: Mapping[str, int] | None = None
            ) -> tuple[int, int]:
    """How many tokens `text` is as the text encoder reads it (its weights, BREAKs and LoRA tags taken out; an
    edited prompt's longest text over `steps` steps), and in how many windows of `CHUNK_TOKENS`: A1111's counter.
    `vectors` are the embeddings the text names, each with its vectors: an embedding's name takes one token per
    vector, as the engine spells it out (`embeddings.spelled_out`), in any case."""
    from hypersd_desktop.engine import prompt_editing

    texts = ([step_text for _, step_text in prompt_editing.schedule(text, steps)]
             if steps and prompt_editing.has_edits(text) else [text])
    counts = []
    for step_text in texts:
        windows = chunks(tokenizer, _as_vectors(without_network_tags(embeddings_by_name(step_text)), vectors))
        counts.append((sum(window.length - 2 for window in windows), len(windows)))
    return max(counts, key=lambda count: (count[1], count[0]))


def _as_vectors(text: str, vectors: Mapping[str, int] | None) -> str:
    """`text` with each embedding name of `vectors` (in any case, longer names first) written as that many words of
    one token each, apart from the words beside it, as the engine's tokenizer parts a name it has added."""
    if not vectors or not text:
        return text
    by_name = {name.lower(): count for name, count in vectors.items()}
    names = sorted(vectors, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(name) for name in names), re.IGNORECASE)
    return pattern.sub(lambda match: " " + " ".join(["a"] * by_name[match.group(0).lower()]) + " ", text)


def chunks(tokenizer, text: str, convert: Convert | None = None) -> list[Chunk]:
    """`text` (without its extra-network tags, parsed by `parse`, its embedding names spelled out by `convert`)
    as the windows `tokenizer`'s text encoder reads, at least one; the engines read the first `MAX_WINDOWS`."""
    parsed = parse(embeddings_by_name(without_network_tags(text)))
    pieces = [convert(piece) if convert else piece for piece, weight in parsed if weight is not BREAK]
    token_lists = iter(tokenizer(pieces, truncation=False, add_special_tokens=False, verbose=False).input_ids
                       if pieces else [])
    comma = _comma_id(tokenizer)
    done: list[Chunk] = []
    tokens: list[int] = []
    weights: list[float] = []
    last_comma = -1

    def close() -> None:
        nonlocal tokens, weights, last_comma
        done.append(_window(tokenizer, tokens, weights))
        tokens, weights, last_comma = [], [], -1

    for piece, weight in parsed:
        if weight is BREAK:
            close()
            continue
        for token in next(token_lists):
            if token == comma:
                last_comma = len(tokens)
            elif len(tokens) == CHUNK_TOKENS and last_comma != -1 and len(tokens) - last_comma <= COMMA_BACKTRACK:
                # the chunk is full: carry what follows its last comma into the next one
                cut = last_comma + 1
                carried = tokens[cut:], weights[cut:]
                tokens, weights = tokens[:cut], weights[:cut]
                close()
                tokens, weights = list(carried[0]), list(carried[1])
            if len(tokens) == CHUNK_TOKENS:
                close()
            tokens.append(token)
            weights.append(weight)
    if tokens or not done:
        close()
    return done


def _comma_id(tokenizer) -> int | None:
    token = tokenizer.convert_tokens_to_ids(",</w>")
    return None if token is None or token == tokenizer.unk_token_id else token


def _window(tokenizer, tokens: list[int], weights: list[float]) -> Chunk:
    """The start token, `tokens`, the end token and then padding: the tokenizer's own pad token, as the
    pipelines pad (the end token for SD1.5's tokenizer, "!" for SDXL's second)."""
    padding = CHUNK_TOKENS - len(tokens)
    ids = [tokenizer.bos_token_id, *tokens, tokenizer.eos_token_id, *[tokenizer.pad_token_id] * padding]
    return Chunk(tuple(ids), (1.0, *weights, 1.0, *[1.0] * padding), len(tokens) + 2)


def padded(chunk_lists: list[list[Chunk]], empty: Chunk) -> list[list[Chunk]]:
    """Every list as long as the longest, filled with `empty` (the empty prompt's chunk), so that prompts and
    negative prompts of different lengths give embeddings of one shape."""
    longest = max(len(chunk_list) for chunk_list in chunk_lists)
    return [chunk_list + [empty] * (longest - len(chunk_list)) for chunk_list in chunk_lists]


def emphasise(hidden, weights):
    """`hidden` (1 × tokens × width, a torch tensor or numpy array) multiplied by each token's weight
    (`weights`: 1 × tokens × 1, same kind) and scaled back to its former mean."""
    before = hidden.mean()
    weighted = hidden * weights
    after = weighted.mean()
    return weighted * (before / after) if after != 0 else weighted
