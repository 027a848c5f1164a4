"""Textual-inversion embeddings: each file's vectors become new tokens of the text encoders, named by the file's
name without its extension (as A1111 names them), so the name in a prompt reads as the embedding.

Names are read without case, as A1111 reads them (`in_their_case`). Files are read with safetensors in the layouts `inspect` recognises: A1111's `emb_params` (vectors × width),
one tensor named by its token (diffusers), or `clip_l` and `clip_g` for SDXL's two encoders. A multi-vector
embedding takes one token per vector (`NAME`, `NAME_1`, …), which diffusers' `maybe_convert_prompt` spells out
in a prompt. Loading them again after another request's embeddings first removes those.
"""

from __future__ import annotations

import re
from pathlib import Path

from hypersd_desktop.core.errors import InputError

Loaded = tuple[tuple[str, int, int], ...]  # (path, size, mtime) of each embedding in the pipeline


def stamp(paths: tuple[str, ...]) -> Loaded:
    """What identifies `paths` as loaded: the files and their size and time, so an edited file loads again."""
    stamps = []
    for path in paths:
        try:
            stat = Path(path).stat()
        except OSError:
            raise InputError(f"The embedding {path} does not exist; check the path or install it.") from None
        stamps.append((path, stat.st_size, stat.st_mtime_ns))
    return tuple(stamps)


def apply(pipe, paths: tuple[str, ...], loaded: Loaded) -> Loaded:
    """Make `paths` the pipeline's embeddings (`loaded` is what the pipeline has now); returns what it has."""
    wanted = stamp(paths)
    if wanted == loaded:
        return loaded
    encoders = _encoders(pipe)
    # the tokens of what was loaded, and of what is wanted (left from a load that failed part way); only these:
    # a model may ship added tokens of its own
    names = {Path(path).stem for path, _, _ in loaded} | {Path(path).stem for path in paths}
    for tokenizer, encoder in encoders:
        tokens = [token for token in tokenizer.added_tokens_encoder
                  if token in names or re.fullmatch(r"(.+)_\d+", token) and token.rsplit("_", 1)[0] in names]
        if tokens:
            pipe.unload_textual_inversion(tokens=tokens, tokenizer=tokenizer, text_encoder=encoder)
    for path in paths:
        _load(pipe, Path(path), encoders)
    return wanted


def _encoders(pipe) -> list[tuple[object, object]]:
    pairs = [(pipe.tokenizer, pipe.text_encoder)]
    if getattr(pipe, "text_encoder_2", None) is not None:
        pairs.append((pipe.tokenizer_2, pipe.text_encoder_2))
    return pairs


def _load(pipe, path: Path, encoders) -> None:
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    if "clip_l" in tensors:
        parts = [tensors["clip_l"], tensors.get("clip_g")]
    else:
        parts = [tensors["emb_params"] if "emb_params" in tensors else next(iter(tensors.values()))]
    name = path.stem
    for (tokenizer, encoder), vectors in zip(encoders, parts):
        if vectors is None:
            continue
        width = encoder.get_input_embeddings().weight.shape[-1]
        if vectors.shape[-1] != width:
            raise InputError(f"The embedding {path.name} has vectors {vectors.shape[-1]} wide; this base model's text "
                             f"encoder takes {width}. It was made for another base model.")
        if name in tokenizer.get_vocab():
            raise InputError(f"The embedding {path.name} is named like a word the text encoder already knows "
                             f"({name!r}); rename the file to a name of its own.")
        pipe.load_textual_inversion(vectors, token=name, tokenizer=tokenizer, text_encoder=encoder)


def in_their_case(text: str, paths: tuple[str, ...]) -> str:
    """`text` with each embedding's name written as its file names it, in whatever case it was typed: A1111 reads
    names without case (its text encoders' tokenizer lowercases every prompt), so "easynegative" applies
    EasyNegative.safetensors. Longer names first, so one name inside another is not split."""
    names = sorted({Path(path).stem for path in paths}, key=len, reverse=True)
    if not names or not text:
        return text
    spelled = {name.lower(): name for name in reversed(names)}
    pattern = re.compile("|".join(re.escape(name) for name in names), re.IGNORECASE)
    return pattern.sub(lambda match: spelled[match.group(0).lower()], text)


def spelled_out(pipe, tokenizer):
    """The function that writes a prompt's multi-vector embedding names out as all their tokens."""
    return lambda text: pipe.maybe_convert_prompt(text, tokenizer)
